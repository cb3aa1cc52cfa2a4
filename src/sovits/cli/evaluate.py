"""The `sovits evaluate` command: measure a conversion, or folders of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._options import f0_method_option, legacy_aliases

TABLE_SUFFIXES = (".json", ".csv")

_LEGACY = {"-m": "--f0-method", "--method": "--f0-method",
           "--speaker": "--speaker-similarity", "--no-speaker": "--no-speaker-similarity"}
"""Earlier spellings, still accepted (hidden): `-m` is the model in other commands and
`--speaker` names the target speaker there."""


def _plot_folder(out: Path | None) -> Path:
    from sovits.errors import InputError

    if out is None:
        raise InputError("--plot writes pictures beside the table", hint="add -o FOLDER")
    return (out.parent if out.suffix.lower() in TABLE_SUFFIXES else out) / "plots"


def evaluate(
    source: Annotated[
        Path, typer.Argument(help="The audio that was converted, or a folder of them.")
    ],
    converted: Annotated[
        Path,
        typer.Argument(
            help="The conversion of SOURCE, or a folder of conversions (paired by name: "
            "the source's name, or it followed by '_', as `sovits infer` names them)."
        ),
    ],
    target_ref: Annotated[
        list[Path] | None,
        typer.Option(
            "--target-ref",
            metavar="REF",
            help="A clip of the target singer (repeat for more).",
        ),
    ] = None,
    transpose: Annotated[
        float | None,
        typer.Option(
            "--transpose",
            "-t",
            help="Semitones SOURCE was transposed by (default: read from a converted "
            "name '<source>_<n>key...' as `sovits infer` writes it, else 0).",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str,
        f0_method_option(
            "f0 method both sides are measured with; auto: the most accurate one "
            "installed (swift, else fcpe, else harvest).",
            extra=("auto",),
        ),
    ] = "auto",
    print_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON on stdout: one object (for folders: one line per pair, then "
            "a summary line) instead of the text report.",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            "--out",
            help="Write the table: a .json or .csv file, or a folder (metrics.json and "
            "metrics.csv).",
        ),
    ] = None,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot",
            help="Also draw each pair's F0 curves, spectrograms and measures as PNG in "
            "plots/ beside the -o table.",
        ),
    ] = False,
    speaker: Annotated[
        bool,
        typer.Option(
            "--speaker-similarity/--no-speaker-similarity",
            help="Speaker similarity by Resemblyzer's encoder (needs its weights: "
            "pip install --no-deps resemblyzer==0.1.4).",
        ),
    ] = True,
) -> None:
    """Measure conversions: F0 fidelity (pitch and chroma accuracy, cents, octave errors,
    voicing, correlation), loudness correlation, speaker similarity to the target and to
    the source, timbre distances, clipping and silence."""
    from sovits.errors import InputError
    from sovits.evaluation import EvaluationSettings, Evaluator, FolderEvaluation
    from sovits.evaluation.folders import evaluate_folders, transpose_from_name

    folders = source.is_dir() and converted.is_dir()
    if not folders and (source.is_dir() or converted.is_dir()):
        raise InputError(
            "SOURCE and CONVERTED must both be files or both be folders",
            where=source if source.is_dir() else converted,
        )
    plot_folder = _plot_folder(out) if plot else None
    settings = EvaluationSettings(f0_method=method, speaker_similarity=speaker)
    evaluator = Evaluator(settings, target_references=target_ref or ())

    if folders:

        def progress(done: int, total: int, name: str) -> None:
            typer.echo(f"[{done}/{total}] {name}", err=True)

        table = evaluate_folders(
            source,
            converted,
            transpose=transpose,
            plot_dir=plot_folder,
            progress=progress,
            evaluator=evaluator,
        )
        for line in table.messages():
            typer.echo(f"warning: {line}", err=True)
        if print_json:
            typer.echo("\n".join(table.json_lines()))
        else:
            typer.echo(table.to_text(), nl=False)
    else:
        plot_path = None
        if plot_folder is not None:
            plot_path = plot_folder / f"{converted.stem}.png"
        if transpose is None:
            transpose = transpose_from_name(source.stem, converted.stem) or 0.0
        result = evaluator.evaluate(source, converted, transpose=transpose, plot=plot_path)
        table = FolderEvaluation(results=(result,))
        if print_json:
            typer.echo(json.dumps({"type": "pair", **result.to_dict()}))
        else:
            typer.echo(result.to_text(), nl=False)
        if plot_path is not None:
            typer.echo(f"plot written to {plot_path}", err=True)

    if out is not None:
        if out.suffix.lower() in TABLE_SUFFIXES:
            written = [table.write(out)]
        else:
            written = [table.write(out / "metrics.json"), table.write(out / "metrics.csv")]
        for path in written:
            typer.echo(f"metrics written to {path}", err=True)
    if folders and plot_folder is not None:
        typer.echo(f"plots written to {plot_folder}", err=True)


def register(app: typer.Typer) -> None:
    """Add `evaluate` to `app`."""
    app.command("evaluate", cls=legacy_aliases(_LEGACY))(evaluate)
