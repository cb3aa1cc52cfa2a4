"""The `sovits train` command: GAN training of so-vits-svc 4.1."""

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
    from sovits.training.trainer import TrainProgress


def train(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="config.json of the model to train.")
    ] = Path("configs/config.json"),
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m",
            help="Model folder: a name under logs/ (-m 44k -> logs/44k) or a path (./runs/a).",
        ),
    ] = "44k",
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", help="Stop after this many global steps (with a checkpoint)."),
    ] = None,
    accelerator: Annotated[
        str, typer.Option("--accelerator", help="auto, cpu, cuda, mps, ...")
    ] = "auto",
    devices: DevicesOption = "auto",
    num_nodes: NumNodesOption = 1,
    strategy: StrategyOption = "auto",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help="32, 16-mixed or bf16-mixed (default: the config's fp16_run)."
        ),
    ] = None,
    num_workers: Annotated[
        int | None, typer.Option("--num-workers", help="Data loader processes.")
    ] = None,
    partial_warm_start: Annotated[
        bool,
        typer.Option(
            "--partial-warm-start", help="Load only the fitting parts of G_0/D_0 base models."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Train (or resume) a model: GAN training of so-vits-svc 4.1 on Lightning Fabric."""
    from sovits.config import load_svc_config
    from sovits.training.checkpointing import model_dir_for
    from sovits.training.trainer import TrainOptions
    from sovits.training.trainer import train as run_training

    cfg = load_svc_config(config)
    model_dir = model_dir_for(model)
    options = TrainOptions(
        accelerator=accelerator,
        devices=parse_devices(devices),
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        max_steps=max_steps,
        partial_warm_start=partial_warm_start,
    )
    run_training_command(
        lambda progress, hook: run_training(
            cfg, model_dir, options, num_workers=num_workers, progress=progress,
            trainer_hook=hook,
        ),
        out_dir=model_dir, log_file_name="train.log", label="train", max_steps=max_steps,
        describe=_describe_train_step, as_json=as_json,
        params={"config": str(config), "model": model, "max_steps": max_steps,
                "accelerator": accelerator, "devices": devices, "precision": precision,
                "num_workers": num_workers},
    )


def _describe_train_step(update: TrainProgress) -> str:
    """The progress bar's text for a GAN step: epoch and the main losses."""
    losses = update.losses
    return (f"epoch {update.epoch}  d {losses['loss/d/total']:.3f}  "
            f"g {losses['loss/g/total']:.3f}  mel {losses['loss/g/mel']:.3f}")


def register(app: typer.Typer) -> None:
    """Add `train` to `app`."""
    app.command("train")(train)
