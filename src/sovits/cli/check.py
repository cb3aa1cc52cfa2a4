"""The `sovits check-config` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def check_config(
    config: Annotated[Path, typer.Argument(help="so-vits-svc config.json to validate.")],
) -> None:
    """Validate a so-vits-svc config.json: unknown, missing or ill-typed keys are reported."""
    from sovits.config import load_svc_config

    cfg = load_svc_config(config)
    speakers = ", ".join(sorted(cfg.spk, key=cfg.spk.__getitem__))
    typer.echo(
        f"{config}: ok: {cfg.data.sampling_rate} Hz, hop {cfg.data.hop_length}, "
        f"encoder {cfg.model.speech_encoder}, speakers: {speakers}"
    )


def register(app: typer.Typer) -> None:
    """Add `check-config` to `app`."""
    app.command("check-config")(check_config)
