"""Reading openvpi NSF-HiFiGAN vocoder folders (so-vits-svc's `pretrain/nsf_hifigan`).

A vocoder folder holds `config.json` (HiFiGAN and mel settings) and `model`, a torch
file `{'generator': state_dict}` with weight-norm keys (`*.weight_g`, `*.weight_v`).
`load_nsf_hifigan` reads both safely (`torch.load(weights_only=True)`), builds the
"openvpi" `NsfHifiganGenerator`, fills it strictly and wraps it in an
`NsfHifiganVocoder`. Finding the folder (`$SOVITS_HOME`, the user cache) is the
resolver's job (`sovits.features.pretrained.resolve_weights("nsf_hifigan")`); this module
takes an explicit path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sovits.checkpoints import check_state_dict, load_model_state, load_torch_file
from sovits.errors import CheckpointError, ConfigError, MissingFileError
from sovits.models.nsf_vocoder import MelType, NsfHifiganVocoder, VocoderMelSettings
from sovits.models.vocoder import NsfHifiganGenerator, enable_fast_cpu_inference
from sovits.models.weight_norm import fold_weight_norm

__all__ = ["MODEL_FILE_NAME", "load_nsf_hifigan", "parse_nsf_hifigan_config"]

MODEL_FILE_NAME = "model"
CONFIG_FILE_NAME = "config.json"

_WHERE_IT_GOES = (
    "put the unzipped folder (model, config.json) at pretrain/nsf_hifigan "
    "(or $SOVITS_HOME/pretrain/nsf_hifigan)"
)
_WHERE_IT_COMES_FROM = (
    "download nsf_hifigan_20221211.zip from openvpi's vocoders releases "
    "(https://github.com/openvpi/vocoders/releases/tag/nsf-hifigan-v1), "
    "or run `sovits pretrained fetch nsf_hifigan`"
)


def _missing(what: str, path: Path) -> MissingFileError:
    return MissingFileError(
        f"NSF-HiFiGAN vocoder {what} not found",
        where=path,
        hint=f"{_WHERE_IT_GOES}; {_WHERE_IT_COMES_FROM}",
    )


def _locate(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(model file, config.json) for a vocoder folder or the `model` file inside it."""
    given = Path(path).expanduser()
    if not given.exists():
        raise _missing("folder", given)
    model = given / MODEL_FILE_NAME if given.is_dir() else given
    if not model.is_file():
        raise _missing("model file", model)
    config = model.parent / CONFIG_FILE_NAME
    if not config.is_file():
        raise _missing("config.json", config)
    return model, config


def _integer(config: Mapping[str, Any], key: str, where: str) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}", where=where)
    return value


def _integers(config: Mapping[str, Any], key: str, where: str) -> list[int]:
    value = config[key]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a non-empty list, got {value!r}", where=where)
    return [_integer({key: item}, key, where) for item in value]


def _frequency(config: Mapping[str, Any], key: str, where: str) -> float | None:
    value = config[key]
    if value is None and key == "fmax":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{key} must be a frequency in Hz, got {value!r}", where=where)
    return float(value)


_REQUIRED_KEYS = (
    "resblock",
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "num_mels",
    "sampling_rate",
    "n_fft",
    "win_size",
    "hop_size",
    "fmin",
    "fmax",
)
"""The config.json keys the original reads; the release's training keys are ignored."""


def parse_nsf_hifigan_config(
    config: Mapping[str, Any], *, source: str | os.PathLike[str] = "config.json"
) -> tuple[dict[str, Any], VocoderMelSettings]:
    """An openvpi config.json dict -> (NsfHifiganGenerator keyword arguments, mel settings).

    Raises ConfigError naming `source` for missing keys or values of the wrong type.
    """
    where = os.fspath(source)
    missing = [key for key in _REQUIRED_KEYS if key not in config]
    if missing:
        raise ConfigError(f"missing keys {', '.join(missing)}", where=where)
    resblock = str(config["resblock"])
    if resblock not in ("1", "2"):
        raise ConfigError(f"resblock must be '1' or '2', got {config['resblock']!r}", where=where)
    dilations = config["resblock_dilation_sizes"]
    if not isinstance(dilations, list) or not dilations:
        raise ConfigError(
            f"resblock_dilation_sizes must be a list of lists, got {dilations!r}", where=where
        )
    dilation_sizes = [
        _integers({"resblock_dilation_sizes": item}, "resblock_dilation_sizes", where)
        for item in dilations
    ]
    mel = VocoderMelSettings(
        sampling_rate=_integer(config, "sampling_rate", where),
        hop_length=_integer(config, "hop_size", where),
        n_fft=_integer(config, "n_fft", where),
        win_length=_integer(config, "win_size", where),
        num_mels=_integer(config, "num_mels", where),
        fmin=_frequency(config, "fmin", where) or 0.0,
        fmax=_frequency(config, "fmax", where),
    )
    arguments: dict[str, Any] = {
        "in_channels": mel.num_mels,
        "gin_channels": 0,
        "sampling_rate": mel.sampling_rate,
        "resblock": resblock,
        "resblock_kernel_sizes": _integers(config, "resblock_kernel_sizes", where),
        "resblock_dilation_sizes": dilation_sizes,
        "upsample_rates": _integers(config, "upsample_rates", where),
        "upsample_initial_channel": _integer(config, "upsample_initial_channel", where),
        "upsample_kernel_sizes": _integers(config, "upsample_kernel_sizes", where),
        "variant": "openvpi",
    }
    hop = 1
    for rate in arguments["upsample_rates"]:
        hop *= rate
    if hop != mel.hop_length:
        raise ConfigError(
            f"upsample_rates multiply to {hop}, but hop_size is {mel.hop_length}", where=where
        )
    return arguments, mel


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read the vocoder config ({error})", where=path) from None
    if not isinstance(data, dict):
        raise ConfigError("the vocoder config must be a JSON object", where=path)
    return data


def load_nsf_hifigan(
    path: str | os.PathLike[str],
    *,
    device: torch.device | str = "cpu",
    fold: bool = True,
    fast: bool = True,
    mel_type: MelType = "nsf-hifigan",
) -> NsfHifiganVocoder:
    """Load an openvpi NSF-HiFiGAN folder (or its `model` file, config.json beside it).

    The weights are read with `torch.load(weights_only=True)` and loaded strictly; the
    vocoder comes back in eval mode on `device`, with weight norm folded unless `fold` is
    False (the original's `remove_weight_norm`). `fast` turns on the generator's
    channels-last CPU path (float32 inference; audio within about 1e-5 of the original's
    operation order); `fast=False` is bit-identical to the original. `mel_type` is the
    diffusion config's `vocoder.type`.

    Raises MissingFileError (folder, model or config.json absent), ConfigError (bad
    config.json) or CheckpointError (unreadable file, no 'generator' entry, keys or
    shapes that do not fit config.json).
    """
    model_path, config_path = _locate(path)
    arguments, mel = parse_nsf_hifigan_config(_read_config(config_path), source=config_path)
    payload = load_torch_file(model_path)
    if not isinstance(payload, Mapping) or "generator" not in payload:
        keys = list(payload) if isinstance(payload, Mapping) else type(payload).__name__
        raise CheckpointError(
            f"not an NSF-HiFiGAN model file: expected {{'generator': state_dict}}, got {keys}",
            where=model_path,
        )
    generator_state = payload["generator"]
    if not isinstance(generator_state, Mapping):
        raise CheckpointError("'generator' is not a state dict", where=model_path)
    state = check_state_dict(generator_state, model_path, "'generator'")
    generator = NsfHifiganGenerator(**arguments)
    load_model_state(generator, state, source=model_path)
    vocoder = NsfHifiganVocoder(generator, mel, mel_type=mel_type)
    vocoder.eval()
    vocoder.to(device)
    if fold:
        fold_weight_norm(vocoder)
    enable_fast_cpu_inference(vocoder, fast)
    return vocoder
