"""The `sovits demo` command: two synthetic singers end to end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption

if TYPE_CHECKING:
    from sovits.demo.pipeline import DemoResult


def demo(
    out: Annotated[
        Path, typer.Option("--output", "-o", "--out", help="Folder the results go to.")
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
    as_json: JsonOption = False,
) -> None:
    """Two synthetic singers end to end: dataset, training, conversion, metrics.

    Exits 1 when a conversion misses the demo's targets (see metrics.json "checks");
    with --json the job object lists them under "report".
    """
    params = {"output": out, "work": work, "steps": steps, "minutes": minutes,
              "accelerator": accelerator}
    with CommandJob("demo", params, as_json=as_json) as job:
        result = _run_with_progress(out, work, steps, minutes, accelerator, shown=not as_json)
        missed = result.missed_checks()
        for path in (result.source, *result.converted.values(), result.report_path):
            job.say(f"wrote {job.result(path)}")
        job.result(result.metrics_path)
        job.say(
            f"model: {job.result(result.model_path)} (train it further with `sovits train "
            f"-c {result.config_path} -m {result.model_path.parent}`)"
        )
        job.say(f"{result.metrics_path}:")
        job.say(result.metrics_path.read_text(encoding="utf-8").rstrip())
        job.extra["report"] = {"missed": missed}
        for line in missed:
            job.say(f"target missed: {line}", err=True)
        if not missed:
            job.say("every demo target met")
    if missed:
        raise typer.Exit(1)


def _run_with_progress(
    out: Path, work: Path | None, steps: int, minutes: float | None, accelerator: str,
    *, shown: bool,
) -> DemoResult:
    """`run_demo` with a training bar and stage messages on stderr (none when not shown)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from sovits.demo.pipeline import run_demo

    console = Console(stderr=True, quiet=not shown)
    bar = Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not shown,
    )
    with bar:
        task = bar.add_task("training", total=None, visible=False)

        def on_step(step: int, max_steps: int | None) -> None:
            bar.update(task, completed=step, total=max_steps, visible=True)

        return run_demo(
            out,
            work_dir=work,
            train_steps=steps,
            minutes=minutes,
            accelerator=accelerator,
            progress=lambda message: console.log(message),
            train_progress=on_step,
        )

def register(app: typer.Typer) -> None:
    """Add `demo` to `app`."""
    app.command("demo")(demo)
