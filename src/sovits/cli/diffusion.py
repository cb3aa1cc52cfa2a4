"""`sovits train-diff`: train the shallow-diffusion model (so-vits-svc's train_diff.py).

The command reads diffusion.yaml, trains into its `env.expdir` (resuming what is
there) on Lightning Fabric, shows a progress bar and writes `log_info.txt` in the
experiment folder. Ctrl-C stops after the current step with a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sovits.config.diffusion import DiffusionConfig
    from sovits.training.loop import TrainProgress


def _accelerator(given: str | None, config: DiffusionConfig) -> str:
    """--accelerator as given; otherwise "cpu" when the yaml's `device` is cpu, else auto."""
    if given is not None:
        return given
    return "cpu" if config.device.strip().lower() == "cpu" else "auto"


def train_diff(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="diffusion.yaml of the model to train.")
    ] = Path("configs/diffusion.yaml"),
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps", help="Stop after this many steps in total (with a checkpoint)."
        ),
    ] = None,
    accelerator: Annotated[
        str | None,
        typer.Option(
            "--accelerator",
            help="auto, cpu, cuda, mps, ... (default: cpu if the yaml's device is cpu, else auto).",
        ),
    ] = None,
    devices: Annotated[
        str, typer.Option("--devices", help="auto, a count, or ids like 0,1.")
    ] = "auto",
    num_nodes: Annotated[int, typer.Option("--num-nodes", help="Machines (with a launcher).")] = 1,
    strategy: Annotated[str, typer.Option("--strategy", help="auto, ddp, ...")] = "auto",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help="32, 16-mixed or bf16-mixed (default: the yaml's train.amp_dtype)."
        ),
    ] = None,
    num_workers: Annotated[
        int | None,
        typer.Option("--num-workers", help="Data loader processes (default: train.num_workers)."),
    ] = None,
    partial_warm_start: Annotated[
        bool,
        typer.Option(
            "--partial-warm-start", help="Load only the fitting parts of a model_0.pt base model."
        ),
    ] = False,
    no_tensorboard: Annotated[
        bool, typer.Option("--no-tensorboard", help="Write no TensorBoard event files.")
    ] = False,
) -> None:
    """Train (or resume) the shallow-diffusion model of so-vits-svc 4.1."""
    import contextlib
    import logging
    import os
    import signal

    from sovits.config.diffusion import load_diffusion_config
    from sovits.training.diffusion_trainer import (
        LOG_FILE_NAME,
        DiffusionTrainer,
        train_diffusion,
    )
    from sovits.training.loop import TrainOptions

    cfg = load_diffusion_config(config)
    expdir = Path(cfg.env.expdir)
    options = TrainOptions(
        accelerator=_accelerator(accelerator, cfg),
        devices=int(devices) if devices.lstrip("-").isdigit() else devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        max_steps=max_steps,
        partial_warm_start=partial_warm_start,
        tensorboard=not no_tensorboard,
    )
    ranks = ("RANK", "LOCAL_RANK", "NODE_RANK")
    main_process = all(os.environ.get(key, "0") == "0" for key in ranks)
    bar = _DiffusionBar(max_steps) if main_process else None
    handlers: list[logging.Handler] = []
    if main_process:
        from rich.logging import RichHandler

        expdir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(expdir / LOG_FILE_NAME, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        assert bar is not None
        handlers = [RichHandler(console=bar.progress.console, show_path=False), file_handler]
    package_logger = logging.getLogger("sovits")
    for handler in handlers:
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    previous = signal.getsignal(signal.SIGINT)

    def wire_interrupt(trainer: DiffusionTrainer) -> None:
        def on_interrupt(signum: int, frame: object) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            typer.echo("stopping after this step (Ctrl-C again to abort)", err=True)
            trainer.request_stop()

        signal.signal(signal.SIGINT, on_interrupt)

    try:
        with bar if bar is not None else contextlib.nullcontext():
            result = train_diffusion(
                cfg, options, config_path=config, num_workers=num_workers, progress=bar,
                trainer_hook=wire_interrupt,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
        for handler in handlers:
            package_logger.removeHandler(handler)
            handler.close()
    if main_process:
        done = (
            f"steps {result.first_step}..{result.last_step}"
            if result.last_step is not None
            else f"nothing to do at step {result.first_step}"
        )
        typer.echo(f"{expdir}: {done} (stopped: {result.stopped_by})")


class _DiffusionBar:
    """A rich progress bar on stderr: steps done, epoch and the loss."""

    def __init__(self, max_steps: int | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        columns = ("{task.description}", BarColumn(), MofNCompleteColumn(),
                   "{task.fields[losses]}", TimeElapsedColumn())
        self.progress = Progress(*columns, console=Console(stderr=True))
        self.task = self.progress.add_task("train-diff", total=max_steps, losses="")

    def __call__(self, update: TrainProgress) -> None:
        text = (f"epoch {update.epoch}  loss {update.losses['train/loss']:.4f}  "
                f"lr {update.learning_rate:.3g}")
        self.progress.update(self.task, completed=update.steps_done, losses=text)

    def __enter__(self) -> _DiffusionBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def register(app: typer.Typer) -> None:
    """Add `train-diff` to `app`."""
    app.command("train-diff")(train_diff)
