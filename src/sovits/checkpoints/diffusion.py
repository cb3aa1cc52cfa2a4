"""Diffusion model files: so-vits-svc 4.1's `model_<step>.pt` read, loaded strictly, written.

The file, as the original's `Saver.save_model` writes it, is
`{'global_step': int, 'model': Unit2Mel state dict}` plus `'optimizer'` (an AdamW state
dict) when `train.save_opt` is on. Reading goes through `torch.load(weights_only=True)`,
so a pickle that would run code is refused, never executed.

`load_diffusion_model` builds a `Unit2Mel` from the diffusion config (by default the
`config.yaml` beside the model file, as the original looks for it) and the vocoder's
mel dimension (`num_mels` of the config.json in the folder of `vocoder.ckpt`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sovits.checkpoints import (
    check_state_dict,
    load_model_state,
    load_torch_file,
    read_counter,
    read_optimizer_state,
    require_file,
    strip_ddp_prefix,
    write_model_file,
)
from sovits.config.diffusion import DiffusionConfig, load_diffusion_config
from sovits.errors import CheckpointError, ConfigError
from sovits.models.diffusion.unit2mel import Unit2Mel

logger = logging.getLogger(__name__)

DEFAULT_N_MELS = 128
"""Mel bins of the NSF-HiFiGAN vocoders so-vits-svc 4.1 uses."""

CONFIG_FILE_NAME = "config.yaml"
_OUTPUT_PROJECTION = "decoder.denoise_fn.output_projection.weight"


@dataclass
class DiffusionCheckpoint:
    """What a diffusion model file holds: the Unit2Mel state dict, the training step,
    and the optimizer state when it was saved with one."""

    model_state: dict[str, Tensor]
    global_step: int
    optimizer_state: dict[str, Any] | None = None


def read_diffusion_checkpoint(path: str | os.PathLike[str]) -> DiffusionCheckpoint:
    """Read a diffusion `model_<step>.pt` on the CPU (with or without optimizer state).

    Raises CheckpointError naming the file when it is missing, truncated, corrupt, not
    a diffusion checkpoint, or holds objects that are not plain weights.
    """
    path = Path(path)
    require_file(path)
    payload = load_torch_file(path)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("model"), Mapping):
        kind = (
            "top-level keys: " + ", ".join(repr(key) for key in list(payload)[:5])
            if isinstance(payload, Mapping)
            else f"the file holds a {type(payload).__name__}"
        )
        raise CheckpointError(
            f"not a diffusion checkpoint: expected a dict with a 'model' state dict ({kind})",
            where=path,
        )
    state = strip_ddp_prefix(check_state_dict(payload["model"], path, "'model'"))
    return DiffusionCheckpoint(
        model_state=state,
        global_step=read_counter(payload.get("global_step", 0), "global_step", path),
        optimizer_state=read_optimizer_state(payload, path),
    )


def unit2mel_arguments(config: DiffusionConfig, n_mels: int) -> dict[str, Any]:
    """Keyword arguments of `Unit2Mel` for `config` and the vocoder's mel bins."""
    return {
        "unit_channels": config.data.encoder_out_channels,
        "n_speakers": config.model.n_spk,
        "use_pitch_aug": config.model.use_pitch_aug,
        "n_mels": n_mels,
        "n_layers": config.model.n_layers,
        "residual_channels": config.model.n_chans,
        "hidden_channels": config.model.n_hidden,
        "timesteps": config.model.timesteps,
        "k_step_max": config.model.k_step_max,
    }


def build_unit2mel(config: DiffusionConfig, n_mels: int = DEFAULT_N_MELS) -> Unit2Mel:
    """A freshly initialised Unit2Mel for `config`, in float32 on the CPU."""
    return Unit2Mel(**unit2mel_arguments(config, n_mels))


def resolve_vocoder_path(
    config: DiffusionConfig, config_path: str | os.PathLike[str]
) -> Path | None:
    """Where `vocoder.ckpt` is: absolute as given; a relative path is tried against the
    working directory (the original's rule), then against the config's folder and each
    folder above it. Returns the first whose folder holds config.json, or None."""
    ckpt = Path(config.vocoder.ckpt).expanduser()
    if ckpt.is_absolute():
        candidates = [ckpt]
    else:
        folder = Path(config_path).resolve().parent
        candidates = [Path.cwd() / ckpt] + [base / ckpt for base in (folder, *folder.parents)]
    for candidate in candidates:
        if (candidate.parent / "config.json").is_file():
            return candidate
    return None


def vocoder_mel_bins(vocoder_config: str | os.PathLike[str]) -> int:
    """`num_mels` of an NSF-HiFiGAN config.json; ConfigError naming the file otherwise."""
    path = Path(vocoder_config)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the vocoder config: {error}", where=path) from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            where=path,
        ) from None
    value = data.get("num_mels") if isinstance(data, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"num_mels must be a positive integer, got {value!r}", where=path)
    return value


def _mel_bins(
    config: DiffusionConfig, config_path: Path, state: Mapping[str, Tensor], model_path: Path
) -> int:
    vocoder = resolve_vocoder_path(config, config_path)
    if vocoder is not None:
        return vocoder_mel_bins(vocoder.parent / "config.json")
    weight = state.get(_OUTPUT_PROJECTION)
    n_mels = int(weight.shape[0]) if weight is not None and weight.dim() == 3 else DEFAULT_N_MELS
    logger.warning(
        "%s: vocoder.ckpt %r has no config.json beside it (looked in the working directory "
        "and above the config); using %d mel bins (%s)",
        config_path,
        config.vocoder.ckpt,
        n_mels,
        f"the width of {model_path.name}" if weight is not None else "the NSF-HiFiGAN default",
    )
    return n_mels


def load_diffusion_model(
    model_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    n_mels: int | None = None,
) -> tuple[Unit2Mel, DiffusionConfig]:
    """Load a diffusion model file with its config, strictly, in eval mode on `device`.

    config_path: default `config.yaml` beside the model file. n_mels: the vocoder's
    mel bins; by default `num_mels` of the config.json beside `vocoder.ckpt` (see
    `resolve_vocoder_path`), or, when that is not found, the model's own width with a
    logged warning. Raises ConfigError / CheckpointError naming the file at fault;
    missing, unexpected and mis-shaped keys are all listed.
    """
    model_path = Path(model_path)
    config_file = (
        Path(config_path) if config_path is not None else model_path.parent / CONFIG_FILE_NAME
    )
    if not config_file.is_file():
        raise ConfigError(
            "diffusion config not found",
            where=config_file,
            hint="pass the diffusion config.yaml / diffusion.yaml the model was trained with",
        )
    config = load_diffusion_config(config_file)
    checkpoint = read_diffusion_checkpoint(model_path)
    if n_mels is None:
        n_mels = _mel_bins(config, config_file, checkpoint.model_state, model_path)
    model = build_unit2mel(config, n_mels)
    load_model_state(model, checkpoint.model_state, source=model_path)
    model.to(device).eval()
    logger.info(
        "loaded diffusion model %s (step %d, sampler %s, speedup %d)",
        model_path,
        checkpoint.global_step,
        config.infer.method,
        config.infer.speedup,
    )
    return model, config


def write_diffusion_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module | Mapping[str, Tensor],
    step: int,
    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
) -> None:
    """Write `{'global_step', 'model'[, 'optimizer']}` as the original's Saver does,
    atomically (a reader sees the old file or the new one)."""
    path = Path(path)
    state = check_state_dict(
        model.state_dict() if isinstance(model, nn.Module) else dict(model), path, "model"
    )
    payload: dict[str, Any] = {
        "global_step": int(step),
        "model": {key: tensor.detach() for key, tensor in state.items()},
    }
    if optimizer is not None:
        payload["optimizer"] = (
            optimizer.state_dict() if isinstance(optimizer, torch.optim.Optimizer)
            else dict(optimizer)
        )
    write_model_file(path, lambda handle: torch.save(payload, handle))
