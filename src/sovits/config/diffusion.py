"""The so-vits-svc 4.1 diffusion config (`config.yaml` / `diffusion.yaml`): typed and frozen.

This module owns the YAML layout that the original's diffusion trainer and
`preprocess_flist_config.py` write and that its inference reads: sections `data`,
`model`, `device`, `vocoder`, `infer`, `env`, `train` and `spk`.

Reading is checked key by key, and every problem is reported at once with its key path
(`model.n_chans`) in one `ConfigError`:

* keys inference cannot do without are required (`data.encoder_out_channels`,
  `data.sampling_rate`, `data.block_size`, `data.encoder`, `model.n_layers`,
  `model.n_chans`, `model.n_hidden`, `vocoder.type`, `vocoder.ckpt`, `infer.speedup`,
  `infer.method`);
* other known keys may be absent: they get the value the original uses when the key
  is missing (for `model.n_spk`, `model.use_pitch_aug`, `model.timesteps`,
  `model.k_step_max`, `data.unit_interpolate_mode`) or the 4.1 template's value (the
  training keys), and `DiffusionConfig.filled_defaults` lists them;
* keys sovits does not know (newer or older versions of the format) are kept in
  `DiffusionConfig.extra` and written back unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sovits.config._validation import (
    Problems,
    convert_value,
    describe_value,
    find_speaker_id,
    join_problems,
    read_fields,
    read_speaker_ids,
    read_text_file,
    speaker_names_by_id,
)
from sovits.config.svc import SpeechEncoderName, UnitInterpolateMode
from sovits.errors import ConfigError
from sovits.files import atomic_write

logger = logging.getLogger(__name__)

DiffusionSampler = Literal["ddim", "pndm", "dpm-solver", "dpm-solver++", "unipc"]
"""`infer.method`: the sampler used when `infer.speedup` > 1."""

DiffusionVocoderType = Literal["nsf-hifigan", "nsf-hifigan-log10"]
"""`vocoder.type`: the NSF-HiFiGAN the mel is made for ("-log10" scales the mel by
log10(e) before the vocoder)."""

AmpDtype = Literal["fp32", "fp16", "bf16"]

# Where a default comes from when a key is absent.
_BY_UNIT2MEL = {"absent_default_from": "the original's Unit2Mel, which receives None"}
_BY_SVC = {"absent_default_from": "inference/infer_tool.Svc fallback"}
_BY_TEMPLATE = {"absent_default_from": "configs_template/diffusion_template.yaml"}


@dataclass(frozen=True, kw_only=True)
class DiffusionDataConfig:
    """The `data` section: audio rate (Hz), hop (`block_size`, samples), unit encoder.

    `duration` is the training clip length in seconds; `encoder_sample_rate` /
    `encoder_hop_size` the encoder's own rate (Hz) and hop (samples).
    """

    sampling_rate: int
    block_size: int
    encoder: SpeechEncoderName
    encoder_out_channels: int
    unit_interpolate_mode: UnitInterpolateMode = field(default="left", metadata=_BY_SVC)
    duration: float = field(default=2.0, metadata=_BY_TEMPLATE)
    cnhubertsoft_gate: int = field(default=10, metadata=_BY_TEMPLATE)
    encoder_sample_rate: int = field(default=16000, metadata=_BY_TEMPLATE)
    encoder_hop_size: int = field(default=320, metadata=_BY_TEMPLATE)
    training_files: str = field(default="filelists/train.txt", metadata=_BY_TEMPLATE)
    validation_files: str = field(default="filelists/val.txt", metadata=_BY_TEMPLATE)
    extensions: tuple[str, ...] = field(default=("wav",), metadata=_BY_TEMPLATE)


@dataclass(frozen=True, kw_only=True)
class DiffusionModelConfig:
    """The `model` section: Unit2Mel's size and schedule.

    n_layers: WaveNet layers; n_chans: residual channels; n_hidden: conditioning width;
    n_spk: speaker count (1 = no speaker embedding); use_pitch_aug: whether the model
    has `aug_shift_embed`; timesteps: schedule length; k_step_max: deepest trained step
    (0 = the whole chain).
    """

    type: str = field(default="Diffusion", metadata=_BY_TEMPLATE)
    n_layers: int
    n_chans: int
    n_hidden: int
    use_pitch_aug: bool = field(default=False, metadata=_BY_UNIT2MEL)
    timesteps: int = field(default=1000, metadata=_BY_UNIT2MEL)
    k_step_max: int = field(default=0, metadata=_BY_UNIT2MEL)
    n_spk: int = field(default=1, metadata=_BY_UNIT2MEL)


@dataclass(frozen=True, kw_only=True)
class DiffusionVocoderConfig:
    """The `vocoder` section: `ckpt` is the vocoder's `model` file (its folder holds
    config.json); a relative path is relative to the working directory in the original."""

    type: DiffusionVocoderType
    ckpt: str


@dataclass(frozen=True, kw_only=True)
class DiffusionInferConfig:
    """The `infer` section: speedup (1 = plain DDPM over every step) and sampler."""

    speedup: int
    method: DiffusionSampler


@dataclass(frozen=True, kw_only=True)
class DiffusionEnvConfig:
    """The `env` section: the training output folder and GPU index."""

    expdir: str = field(default="logs/44k/diffusion", metadata=_BY_TEMPLATE)
    gpu_id: int = field(default=0, metadata=_BY_TEMPLATE)


@dataclass(frozen=True, kw_only=True)
class DiffusionTrainConfig:
    """The `train` section of the original diffusion trainer.

    Intervals count optimiser steps; `lr` with `gamma` decay every `decay_step` steps;
    `save_opt` stores the optimizer state in each checkpoint.
    """

    num_workers: int = field(default=4, metadata=_BY_TEMPLATE)
    amp_dtype: AmpDtype = field(default="fp32", metadata=_BY_TEMPLATE)
    batch_size: int = field(default=48, metadata=_BY_TEMPLATE)
    cache_all_data: bool = field(default=True, metadata=_BY_TEMPLATE)
    cache_device: str = field(default="cpu", metadata=_BY_TEMPLATE)
    cache_fp16: bool = field(default=True, metadata=_BY_TEMPLATE)
    epochs: int = field(default=100000, metadata=_BY_TEMPLATE)
    interval_log: int = field(default=10, metadata=_BY_TEMPLATE)
    interval_val: int = field(default=2000, metadata=_BY_TEMPLATE)
    interval_force_save: int = field(default=5000, metadata=_BY_TEMPLATE)
    lr: float = field(default=0.0001, metadata=_BY_TEMPLATE)
    decay_step: int = field(default=100000, metadata=_BY_TEMPLATE)
    gamma: float = field(default=0.5, metadata=_BY_TEMPLATE)
    weight_decay: float = field(default=0.0, metadata=_BY_TEMPLATE)
    save_opt: bool = field(default=False, metadata=_BY_TEMPLATE)


_SECTIONS: dict[str, type] = {
    "data": DiffusionDataConfig,
    "model": DiffusionModelConfig,
    "vocoder": DiffusionVocoderConfig,
    "infer": DiffusionInferConfig,
    "env": DiffusionEnvConfig,
    "train": DiffusionTrainConfig,
}
_REQUIRED_SECTIONS = ("data", "model", "vocoder", "infer")
# The order the 4.1 template writes the top level in.
_TOP_LEVEL_ORDER = ("data", "model", "device", "vocoder", "infer", "env", "train", "spk")
_DEFAULT_DEVICE = "cuda"


@dataclass(frozen=True, kw_only=True)
class DiffusionConfig:
    """A whole diffusion config.

    `spk` maps speaker names to ids. `extra` holds keys sovits does not know, nested as
    in the file (`{"train": {"foo": 1}}`), and is written back. `filled_defaults` lists
    the key paths absent from the file; neither takes part in equality of values
    except `extra`.
    """

    data: DiffusionDataConfig
    model: DiffusionModelConfig
    vocoder: DiffusionVocoderConfig
    infer: DiffusionInferConfig
    env: DiffusionEnvConfig = field(default_factory=DiffusionEnvConfig)
    train: DiffusionTrainConfig = field(default_factory=DiffusionTrainConfig)
    device: str = _DEFAULT_DEVICE
    spk: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    filled_defaults: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spk", types.MappingProxyType(dict(self.spk)))
        object.__setattr__(self, "extra", types.MappingProxyType(copy.deepcopy(dict(self.extra))))
        problems = _semantic_problems(self)
        if problems:
            raise ConfigError(join_problems(problems))

    @property
    def k_step_max(self) -> int:
        """The deepest step the model denoises from: model.k_step_max if it is in
        (0, timesteps), else timesteps."""
        k_step_max, timesteps = self.model.k_step_max, self.model.timesteps
        return k_step_max if 0 < k_step_max < timesteps else timesteps

    @property
    def shallow_only(self) -> bool:
        """Whether the model was trained on the first k_step_max steps only (it can then
        refine a mel but not render from noise)."""
        return self.k_step_max != self.model.timesteps

    @property
    def speaker_names(self) -> tuple[str, ...]:
        """Speaker names ordered by id (then by name for shared ids)."""
        return speaker_names_by_id(self.spk)

    def speaker_id(self, name: str) -> int:
        """The id of speaker `name`; InputError naming close matches if unknown."""
        return find_speaker_id(self.spk, name, owner="the diffusion config")

    def to_dict(self) -> dict[str, Any]:
        """The original's YAML layout; see `diffusion_config_to_dict`."""
        return diffusion_config_to_dict(self)


# --------------------------------------------------------------------------- reading


def _numeric_string(value: Any, hint: Any) -> Any:
    """PyYAML reads `1e-4` (no dot) as a string; accept it for float keys."""
    if hint is float and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def _read_section(
    cls: type,
    raw: Any,
    section: str,
    problems: Problems,
    filled: list[str],
    extra: dict[str, Any],
) -> dict[str, Any] | None:
    """Keyword arguments for dataclass `cls` from the mapping `raw`; unknown keys go to
    `extra[section]`."""
    if not isinstance(raw, Mapping):
        problems.add(section, f"expected a mapping, got {describe_value(raw)}")
        return None
    fields = {spec.name for spec in dataclasses.fields(cls)}
    before = len(problems.lines)
    unknown = {key: value for key, value in raw.items() if key not in fields}
    for key in unknown:
        if not isinstance(key, str):
            problems.add(section, f"key {key!r} is not a string")
    if unknown:
        extra[section] = unknown
    values = read_fields(cls, raw, section, problems, filled, prepare=_numeric_string)
    return values if len(problems.lines) == before else None


def _read_speakers(raw: Any, problems: Problems) -> dict[str, int] | None:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(
            "spk", f"expected a mapping of speaker name -> id, got {describe_value(raw)}"
        )
        return None
    return read_speaker_ids(raw, problems)


def parse_diffusion_config(
    data: Mapping[str, Any], *, source: str | Path = "<diffusion config>"
) -> DiffusionConfig:
    """Validate a parsed diffusion config (`yaml.safe_load` result).

    All problems are raised together as one ConfigError whose `where` is `source`.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"expected a mapping at the top level, got {describe_value(data)}", where=source
        )
    problems = Problems()
    filled: list[str] = []
    extra: dict[str, Any] = {}
    sections: dict[str, dict[str, Any] | None] = {}
    for name, cls in _SECTIONS.items():
        if name in data:
            sections[name] = _read_section(cls, data[name], name, problems, filled, extra)
        elif name in _REQUIRED_SECTIONS:
            problems.add(name, "missing required section")
            sections[name] = None
        else:
            sections[name] = {spec.name: spec.default for spec in dataclasses.fields(cls)}
            filled.append(name)
    device = _DEFAULT_DEVICE
    if "device" in data:
        device = convert_value(data["device"], str, "device", problems)
    else:
        filled.append("device")
    speakers: dict[str, int] | None = {}
    if "spk" in data:
        speakers = _read_speakers(data["spk"], problems)
    else:
        filled.append("spk")
    for key, value in data.items():
        if key not in _SECTIONS and key not in ("device", "spk"):
            if not isinstance(key, str):
                problems.add("", f"top-level key {key!r} is not a string")
                continue
            extra[key] = value
    if problems.lines:
        raise ConfigError(join_problems(problems.lines), where=source)
    assert speakers is not None
    built = {
        name: _SECTIONS[name](**values) for name, values in sections.items() if values is not None
    }
    try:
        config = DiffusionConfig(
            data=built["data"],
            model=built["model"],
            vocoder=built["vocoder"],
            infer=built["infer"],
            env=built["env"],
            train=built["train"],
            device=device,
            spk=speakers,
            extra=extra,
            filled_defaults=tuple(filled),
        )
    except ConfigError as error:
        raise ConfigError(error.message, where=source, hint=error.hint) from None
    if filled:
        logger.debug("%s: keys absent, filled with defaults: %s", source, ", ".join(filled))
    if extra:
        logger.debug("%s: keys kept but not used by sovits: %s", source, ", ".join(_paths(extra)))
    return config


def _paths(extra: Mapping[str, Any]) -> list[str]:
    """Key paths of the unknown keys in `extra` ("train.foo", "newsection")."""
    paths: list[str] = []
    for key, value in extra.items():
        if key in _SECTIONS and isinstance(value, Mapping):
            paths.extend(f"{key}.{inner}" for inner in value)
        else:
            paths.append(str(key))
    return paths


def load_diffusion_config(path: str | os.PathLike[str]) -> DiffusionConfig:
    """Read and validate a diffusion config.yaml / diffusion.yaml (yaml.safe_load)."""
    import yaml

    path = Path(path)
    text = read_text_file(path, "diffusion config file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(f"not valid YAML: {problem}{place}", where=path) from None
    return parse_diffusion_config(data, source=path)


# --------------------------------------------------------------------------- checks


def _semantic_problems(config: DiffusionConfig) -> list[str]:
    """Value checks the original would crash on or silently misuse."""
    problems = Problems()
    problems.require_positive(
        "data", config.data, "sampling_rate", "block_size", "encoder_out_channels"
    )
    problems.require_positive("model", config.model, "n_layers", "n_hidden", "timesteps", "n_spk")
    problems.require_positive("infer", config.infer, "speedup")
    if config.model.n_chans < 4 or config.model.n_chans % 2:
        problems.add("model.n_chans", f"must be even and >= 4, got {config.model.n_chans}")
    if not config.vocoder.ckpt:
        problems.add("vocoder.ckpt", "must name the vocoder's model file")
    if config.model.n_spk > 1:
        for name, speaker_id in config.spk.items():
            if not 0 <= speaker_id < config.model.n_spk:
                problems.add(
                    f"spk.{name}",
                    f"speaker id {speaker_id} is outside [0, model.n_spk = {config.model.n_spk})",
                )
    return problems.lines


# --------------------------------------------------------------------------- writing


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def diffusion_config_to_dict(config: DiffusionConfig) -> dict[str, Any]:
    """The config in the 4.1 template's layout and order, every known key written
    (defaults included), unknown keys from `extra` after the known ones."""
    out: dict[str, Any] = {}
    for name in _TOP_LEVEL_ORDER:
        if name == "device":
            out[name] = config.device
        elif name == "spk":
            out[name] = dict(config.spk)
        else:
            section = getattr(config, name)
            out[name] = {
                spec.name: _plain(getattr(section, spec.name))
                for spec in dataclasses.fields(section)
            }
    for key, value in config.extra.items():
        if key in _SECTIONS and isinstance(value, Mapping):
            out[key].update(_plain(copy.deepcopy(dict(value))))
        else:
            out[key] = _plain(copy.deepcopy(value))
    return out


def save_diffusion_config(config: DiffusionConfig, path: str | os.PathLike[str]) -> Path:
    """Write `config` as YAML (UTF-8, template order), atomically; returns the path."""
    import yaml

    path = Path(path)
    text = yaml.safe_dump(
        diffusion_config_to_dict(config),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as error:
        raise ConfigError(f"cannot write the diffusion config ({error})", where=path) from None
    return path
