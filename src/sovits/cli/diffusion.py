"""`sovits train-diff`: train the shallow-diffusion model (so-vits-svc's train_diff.py).

The command reads diffusion.yaml, trains into its `env.expdir` (resuming what is
there) on Lightning Fabric, shows a progress bar and writes `log_info.txt` in the
experiment folder. Ctrl-C stops after the current step with a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sovits.cli._options import JsonOption
from sovits.cli._training import (
    DevicesOption,
    NumNodesOption,
    StrategyOption,
    parse_devices,
    run_training_command,
)

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
    devices: DevicesOption = "auto",
    num_nodes: NumNodesOption = 1,
    strategy: StrategyOption = "auto",
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
    as_json: JsonOption = False,
) -> None:
    """Train (or resume) the shallow-diffusion model of so-vits-svc 4.1."""
    from sovits.config.diffusion import load_diffusion_config
    from sovits.training.diffusion_trainer import LOG_FILE_NAME, train_diffusion
    from sovits.training.loop import TrainOptions

    cfg = load_diffusion_config(config)
    options = TrainOptions(
        accelerator=_accelerator(accelerator, cfg),
        devices=parse_devices(devices),
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        max_steps=max_steps,
        partial_warm_start=partial_warm_start,
        tensorboard=not no_tensorboard,
    )
    run_training_command(
        lambda progress, hook: train_diffusion(
            cfg, options, config_path=config, num_workers=num_workers, progress=progress,
            trainer_hook=hook,
        ),
        out_dir=Path(cfg.env.expdir), log_file_name=LOG_FILE_NAME, label="train-diff",
        max_steps=max_steps, describe=_describe_diffusion_step, as_json=as_json,
        params={"config": str(config), "max_steps": max_steps, "accelerator": options.accelerator,
                "devices": devices, "precision": precision, "num_workers": num_workers},
    )


def _describe_diffusion_step(update: TrainProgress) -> str:
    """The progress bar's text for a diffusion step: epoch, loss and learning rate."""
    return (f"epoch {update.epoch}  loss {update.losses['train/loss']:.4f}  "
            f"lr {update.learning_rate:.3g}")


def register(app: typer.Typer) -> None:
    """Add `train-diff` to `app`."""
    app.command("train-diff")(train_diff)
