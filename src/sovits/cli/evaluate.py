"""The `sovits evaluate` command: measure a conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def evaluate(
    source: Annotated[Path, typer.Argument(help="The audio that was converted.")],
    converted: Annotated[Path, typer.Argument(help="The conversion of SOURCE.")],
    target_ref: Annotated[
        list[Path] | None,
        typer.Option("--target-ref", help="A clip of the target singer (repeat for more)."),
    ] = None,
    transpose: Annotated[
        float, typer.Option("--transpose", "-t", help="Semitones SOURCE was transposed by.")
    ] = 0.0,
    method: Annotated[
        str, typer.Option("--method", "-m", "-f0p", help="f0 method the tracks are taken with.")
    ] = "harvest",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")
    ] = None,
) -> None:
    """Measure a conversion: f0 error (cents), voicing agreement, timbre distances (dB)."""
    from sovits.evaluation import EvaluationSettings, evaluate_conversion

    result = evaluate_conversion(
        source,
        converted,
        target_references=target_ref or (),
        transpose=transpose,
        settings=EvaluationSettings(f0_method=method),
    )
    typer.echo(result.to_text(), nl=False)
    if json_path is not None:
        result.write_json(json_path)
        typer.echo(f"metrics written to {json_path}")


def register(app: typer.Typer) -> None:
    """Add `evaluate` to `app`."""
    app.command("evaluate")(evaluate)
