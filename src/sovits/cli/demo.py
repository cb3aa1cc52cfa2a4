"""The `sovits demo` command: two synthetic singers end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder the results go to.")
    ] = Path("demo/out"),
    work: Annotated[
        Path | None, typer.Option("--work", help="Intermediate files (default: OUT/../work).")
    ] = None,
    steps: Annotated[
        int,
        typer.Option("--steps", min=0, help="Training steps (0: measure the untrained model)."),
    ] = 300,
    minutes: Annotated[
        float | None,
        typer.Option("--minutes", help="Stop training earlier after this many minutes."),
    ] = None,
    accelerator: Annotated[str, typer.Option(help="cpu, gpu or auto.")] = "cpu",
) -> None:
    """Two synthetic singers end to end: dataset, training, conversion, metrics.

    Exits 1 when a conversion misses the demo's targets (see metrics.json "checks").
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from sovits.demo.pipeline import run_demo

    console = Console(stderr=True)
    bar = Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task("training", total=None, visible=False)

        def on_step(step: int, max_steps: int | None) -> None:
            bar.update(task, completed=step, total=max_steps, visible=True)

        result = run_demo(
            out,
            work_dir=work,
            train_steps=steps,
            minutes=minutes,
            accelerator=accelerator,
            progress=lambda message: console.log(message),
            train_progress=on_step,
        )
    for path in (result.source, *result.converted.values(), result.report_path):
        typer.echo(f"wrote {path}")
    typer.echo(
        f"model: {result.model_path} (train it further with `sovits train -c "
        f"{result.config_path} -m {result.model_path.parent}`)"
    )
    typer.echo(f"{result.metrics_path}:")
    typer.echo(result.metrics_path.read_text(encoding="utf-8").rstrip())
    missed = result.missed_checks()
    for line in missed:
        typer.echo(f"target missed: {line}", err=True)
    if missed:
        raise typer.Exit(1)
    typer.echo("every demo target met")


def register(app: typer.Typer) -> None:
    """Add `demo` to `app`."""
    app.command("demo")(demo)
