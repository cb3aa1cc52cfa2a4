"""The `sovits check-config` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption


def check_config(
    config: Annotated[Path, typer.Argument(help="so-vits-svc config.json to validate.")],
    as_json: JsonOption = False,
) -> None:
    """Validate a so-vits-svc config.json: unknown, missing or ill-typed keys are reported."""
    from sovits.config import load_svc_config

    with CommandJob("check-config", {"config": config}, as_json=as_json) as job:
        cfg = load_svc_config(config)
        speakers = sorted(cfg.spk, key=cfg.spk.__getitem__)
        job.extra["report"] = {
            "sample_rate": cfg.data.sampling_rate, "hop_length": cfg.data.hop_length,
            "speech_encoder": cfg.model.speech_encoder, "speakers": speakers,
        }
        job.say(
            f"{config}: ok: {cfg.data.sampling_rate} Hz, hop {cfg.data.hop_length}, "
            f"encoder {cfg.model.speech_encoder}, speakers: {', '.join(speakers)}"
        )


def register(app: typer.Typer) -> None:
    """Add `check-config` to `app`."""
    app.command("check-config")(check_config)
