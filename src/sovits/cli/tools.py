"""`sovits merge`, `sovits compress`, `sovits inspect`: model-file tools.

Each command parses its options, calls one `sovits.tools` function and prints a
short summary. The library is imported inside the commands so `sovits --help`
stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sovits.errors import InputError

__all__ = ["compress", "inspect", "merge", "register"]


def merge(
    models: Annotated[list[Path], typer.Argument(help="Two or more model files to blend.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    rate: Annotated[
        list[float] | None,
        typer.Option(
            "--rate",
            "-r",
            help="Percentage of each model, once per model in order "
            "(default in convex mode: 100 each, i.e. equal weights).",
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            "-m",
            help="convex: weights = softmax(rate/100) (the WebUI default); "
            "linear: weights = rate/100, not normalised.",
        ),
    ] = "convex",
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config", "-c",
            help="config.json the models must fit (once for all, or once per model).",
        ),
    ] = None,
) -> None:
    """Blend models of one architecture into one (so-vits-svc's model merge)."""
    from sovits.tools.merge import merge_model_files

    if mode not in ("convex", "linear"):
        raise InputError(f"unknown merge mode {mode!r}", hint="use convex or linear")
    if rate is None:
        if mode == "linear":
            raise InputError(
                "linear mode needs a --rate per model",
                hint="e.g. --rate 50 --rate 50 (rates are not normalised in linear mode)",
            )
        rate = [100.0] * len(models)
    weights = merge_model_files(
        models, rate, output, "convex" if mode == "convex" else "linear", configs=config
    )
    shown = ", ".join(f"{path.name} {weight:.4f}" for path, weight in zip(models, weights.tolist(),
                                                                        strict=True))
    typer.echo(f"{output}: merged {len(models)} models ({mode}: {shown})")


def compress(
    model: Annotated[Path, typer.Argument(help="Training checkpoint G_*.pth to compress.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The model's config.json (optional for sovits "
                     "releases, which store it)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (default: <name>_release[_half].pth)."),
    ] = None,
    half: Annotated[
        bool, typer.Option("--half", "-hf", help="Store the weights as float16.")
    ] = False,
    release: Annotated[
        bool,
        typer.Option("--release", help="Write a sovits safetensors release (config inside) "
                     "instead of the original .pth layout."),
    ] = False,
) -> None:
    """Drop what only training needs (enc_q, optimizer state), optionally in float16."""
    from sovits.tools.compress import compress_model

    result = compress_model(model, output, config=config, half=half, release=release)
    before, after = model.stat().st_size, result.output.stat().st_size
    kind = "sovits release" if result.release else "so-vits-svc release"
    typer.echo(
        f"{result.output}: {kind}, {result.kept_keys} tensors kept, {result.dropped_keys} "
        f"dropped, {result.dtype}; {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
    )


def inspect(
    model: Annotated[Path, typer.Argument(help="Model file to describe.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="config.json to check the model against "
                     "(default: stored in a release, or config.json beside the model)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Describe a model file: format, version, speakers, needed files, config mismatches."""
    from sovits.tools.inspect import format_report, inspect_model

    report = inspect_model(model, config)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(format_report(report), nl=False)
    if report.fits_config is False:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `merge`, `compress` and `inspect` to `app`."""
    app.command("merge")(merge)
    app.command("compress")(compress)
    app.command("inspect")(inspect)
