"""`sovits merge`, `sovits compress`, `sovits inspect`: model-file tools.

Each command parses its options, calls one `sovits.tools` function and prints a
short summary, or with --json the HTTP API's job object of its job kind (inspect's
adds the report under "report"). The library is imported inside the commands so
`sovits --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption
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
    as_json: JsonOption = False,
) -> None:
    """Blend models of one architecture into one (so-vits-svc's model merge)."""
    from sovits.tools.merge import merge_model_files

    params = {"models": models, "rates": rate, "mode": mode, "config": config, "output": output}
    with CommandJob("merge", params, as_json=as_json) as job:
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
        job.result(output)
        shown = ", ".join(f"{path.name} {weight:.4f}"
                          for path, weight in zip(models, weights.tolist(), strict=True))
        job.say(f"{output}: merged {len(models)} models ({mode}: {shown})")


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
    as_json: JsonOption = False,
) -> None:
    """Drop what only training needs (enc_q, optimizer state), optionally in float16."""
    from sovits.tools.compress import compress_model

    params = {"model": model, "config": config, "output": output, "half": half,
              "release": release}
    with CommandJob("compress", params, as_json=as_json) as job:
        result = compress_model(model, output, config=config, half=half, release=release)
        job.result(result.output)
        before, after = model.stat().st_size, result.output.stat().st_size
        kind = "sovits release" if result.release else "so-vits-svc release"
        job.say(
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
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the HTTP API's inspect job object, the report "
                     "under \"report\"."),
    ] = False,
) -> None:
    """Describe a model file: format, version, speakers, needed files, config mismatches.

    Exits 1 when the model does not fit its config."""
    from sovits.tools.inspect import format_report, inspect_model

    with CommandJob("inspect", {"model": model, "config": config}, as_json=as_json) as job:
        report = inspect_model(model, config)
        job.extra["report"] = report.to_dict()
        for line in format_report(report).splitlines():
            job.say(line)
    if report.fits_config is False:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `merge`, `compress` and `inspect` to `app`."""
    app.command("merge")(merge)
    app.command("compress")(compress)
    app.command("inspect")(inspect)
