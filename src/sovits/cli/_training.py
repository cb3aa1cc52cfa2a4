"""What `sovits train` and `sovits train-diff` share around a training run.

On the main process (rank 0 of a launcher, or no launcher) the run shows a rich
progress bar on stderr, logs the `sovits` loggers both above the bar and into a
log file in the output folder, and ends with a one-line summary. On every
process the first Ctrl-C asks the trainer to stop after the current step (it
writes a checkpoint); a second one aborts. Torch and the trainers are not
imported here: the command passes in a function that runs the training. The
options both commands take alike (`DevicesOption`, `NumNodesOption`,
`StrategyOption`) are declared here once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from sovits.cli._jobs import CommandJob

if TYPE_CHECKING:
    from sovits.training.loop import ProgressCallback, TrainProgress, TrainResult


DevicesOption = Annotated[
    str, typer.Option("--devices", help="auto, a count, or ids like 0,1.")
]
NumNodesOption = Annotated[int, typer.Option("--num-nodes", help="Machines (with a launcher).")]
StrategyOption = Annotated[str, typer.Option("--strategy", help="auto, ddp, ...")]


class Stoppable(Protocol):
    """A trainer that can be asked to stop after its current step."""

    def request_stop(self) -> None: ...


TrainerHook = Callable[[Stoppable], None]
RunTraining = Callable[["ProgressCallback | None", TrainerHook], "TrainResult"]
"""Runs the training given the progress callback (None off the main process) and
the hook that receives the trainer before it starts."""


def parse_devices(devices: str) -> int | str:
    """--devices as Fabric takes it: a count as an int, anything else ("auto", "0,1") as given."""
    return int(devices) if devices.lstrip("-").isdigit() else devices


def run_training_command(
    run: RunTraining,
    *,
    out_dir: Path,
    log_file_name: str,
    label: str,
    max_steps: int | None,
    describe: Callable[[TrainProgress], str],
    params: dict[str, object] | None = None,
    as_json: bool = False,
) -> None:
    """Run `run` with a progress bar, logging and Ctrl-C wired, then print the summary.

    out_dir: the model / experiment folder (created on the main process); the log
    goes to out_dir / log_file_name. label: the bar's title and the job kind of --json.
    max_steps: the bar's total (None: open-ended). describe: the text beside the bar
    after each step (epoch, losses). as_json: no bar; the main process prints the
    HTTP API's job object (`params` as its parameters, the folder as its result, the
    steps under "report") instead of the summary line.
    """
    ranks = ("RANK", "LOCAL_RANK", "NODE_RANK")
    main_process = all(os.environ.get(key, "0") == "0" for key in ranks)
    bar = _TrainingBar(label, max_steps, describe) if main_process and not as_json else None
    handlers: list[logging.Handler] = []
    if main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(out_dir / log_file_name, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers = [file_handler]
    if bar is not None:
        from rich.logging import RichHandler

        handlers.append(RichHandler(console=bar.progress.console, show_path=False))
    package_logger = logging.getLogger("sovits")
    for handler in handlers:
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    previous = signal.getsignal(signal.SIGINT)

    def wire_interrupt(trainer: Stoppable) -> None:
        def on_interrupt(signum: int, frame: object) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            typer.echo("stopping after this step (Ctrl-C again to abort)", err=True)
            trainer.request_stop()

        signal.signal(signal.SIGINT, on_interrupt)

    job = CommandJob(label, params or {}, as_json=as_json and main_process)
    try:
        with job, bar if bar is not None else contextlib.nullcontext():
            result = run(bar, wire_interrupt)
            if main_process:
                done = (
                    f"steps {result.first_step}..{result.last_step}"
                    if result.last_step is not None
                    else f"nothing to do at step {result.first_step}"
                )
                job.extra["report"] = {"first_step": result.first_step,
                                       "last_step": result.last_step,
                                       "stopped_by": result.stopped_by}
                job.say(f"{job.result(out_dir)}: {done} (stopped: {result.stopped_by})")
    finally:
        signal.signal(signal.SIGINT, previous)
        for handler in handlers:
            package_logger.removeHandler(handler)
            handler.close()


class _TrainingBar:
    """A rich progress bar on stderr: steps done of max_steps, a text, time elapsed."""

    def __init__(
        self, label: str, max_steps: int | None, describe: Callable[[TrainProgress], str]
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(),
                   "{task.fields[losses]}", TimeElapsedColumn())
        self.progress = Progress(*columns, console=Console(stderr=True))
        self.task = self.progress.add_task(label, total=max_steps, losses="")
        self.describe = describe

    def __call__(self, update: TrainProgress) -> None:
        self.progress.update(
            self.task, completed=update.steps_done, losses=self.describe(update)
        )

    def __enter__(self) -> _TrainingBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
