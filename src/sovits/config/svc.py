"""The so-vits-svc `config.json`: typed, frozen and strictly validated.

This module owns the JSON layout the original so-vits-svc 4.0/4.1 code reads and
writes (`train`, `data`, `model`, `spk` sections). Reading checks every key: unknown
keys, missing keys and values of the wrong type are reported with their key path
(`model.n_layers`), all at once, as one `ConfigError`. Writing produces every key in
the original's order, so the original code can read the file back.

Keys that so-vits-svc 4.1 added are optional: a 4.0 config lacks them, and they are
filled with the value the original 4.1 code uses when the key is absent (each default
below names the code path that decides it). `SvcConfig.filled_defaults` lists which
keys were filled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sovits.config._validation import (
    Problems,
    describe_value,
    find_speaker_id,
    join_problems,
    parse_json,
    read_fields,
    read_speaker_ids,
    read_text_file,
    speaker_names_by_id,
    suggest,
)
from sovits.errors import ConfigError
from sovits.files import atomic_write

logger = logging.getLogger(__name__)

SpeechEncoderName = Literal[
    "vec768l12",
    "vec256l9",
    "vec256l9-onnx",
    "vec256l12-onnx",
    "vec768l9-onnx",
    "vec768l12-onnx",
    "hubertsoft-onnx",
    "hubertsoft",
    "whisper-ppg",
    "cnhubertlarge",
    "dphubert",
    "whisper-ppg-large",
    "wavlmbase+",
    "spectral",
]
"""Speech encoder names the original's `utils.get_speech_encoder` accepts, and sovits's
download-free fallback "spectral" (which the original cannot read)."""

VocoderName = Literal["nsf-hifigan", "nsf-snake-hifigan"]
"""Decoders `SynthesizerTrn` can build (the original silently falls back to
nsf-hifigan for any other name; sovits refuses it instead)."""

UnitInterpolateMode = Literal["left", "nearest", "linear"]
"""How units are stretched to the f0 frame count (`utils.repeat_expand_2d` modes)."""

HalfType = Literal["fp16", "bf16"]
"""Mixed-precision type for training (train.py uses bfloat16 for "bf16", else float16)."""

ResblockType = Literal["1", "2"]

# The original SynthesizerTrn has no `sampling_rate` key in the template: train.py,
# compress_model.py and infer_tool build it with `**hps.model`, so the constructor
# default (44100) is what the NSF source uses, whatever `data.sampling_rate` says.
ORIGINAL_NSF_SAMPLING_RATE = 44100

_SSL_DIM_OF_ENCODER = {
    "vec768l12": 768,
    "vec256l9": 256,
    "vec256l9-onnx": 256,
    "vec256l12-onnx": 256,
    "vec768l9-onnx": 768,
    "vec768l12-onnx": 768,
    "hubertsoft-onnx": 256,
    "hubertsoft": 256,
    "whisper-ppg": 1024,
    "cnhubertlarge": 1024,
    "dphubert": 768,
    "whisper-ppg-large": 1280,
    "wavlmbase+": 768,
    "spectral": 64,
}

_TEMPLATE_PACKAGE = "sovits.config"
_TEMPLATE_FILES = {False: "config_template.json", True: "config_tiny_template.json"}


def _absent_from(origin: str) -> dict[str, str]:
    """Field metadata of a key that may be missing; `origin` names who decides its default."""
    return {"absent_default_from": origin}


# Field metadata of an optional key that is left out of the written file while it is None.
_OMIT_IF_NONE = {"omit_if_none": True}
# Where the defaults of keys that 4.0 configs lack come from in the original 4.1 code.
_BY_SYNTHESIZER = _absent_from("models.SynthesizerTrn.__init__ keyword default")
_BY_SVC = _absent_from("inference/infer_tool.Svc.__init__ fallback")
_BY_TRAINING = _absent_from("train.py / data_utils.py behaviour when the option is off")
_UNUSED = _absent_from("not read by the original model")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The `train` section: optimiser, schedule, batch and checkpoint settings.

    `segment_size` is in samples; `max_speclen` in frames; `port` is the DDP
    master port, as a string like the original writes it.
    """

    log_interval: int
    eval_interval: int
    seed: int
    epochs: int
    learning_rate: float
    betas: tuple[float, float]
    eps: float
    batch_size: int
    fp16_run: bool
    # train.py reads it unconditionally; anything but "bf16" means float16.
    half_type: HalfType = field(default="fp16", metadata=_BY_TRAINING)
    lr_decay: float
    segment_size: int
    init_lr_ratio: float
    warmup_epochs: int
    c_mel: float
    c_kl: float
    use_sr: bool
    max_speclen: int
    port: str
    keep_ckpts: int
    all_in_mem: bool
    # A 4.0 config has no volume augmentation (data_utils: `hparams.train.vol_aug and ...`).
    vol_aug: bool = field(default=False, metadata=_BY_TRAINING)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """The `data` section: audio and spectrogram settings.

    `sampling_rate` in Hz; `filter_length` (n_fft), `hop_length` and `win_length` in
    samples; `mel_fmin`/`mel_fmax` in Hz (`mel_fmax` None means sampling_rate / 2).
    """

    training_files: str
    validation_files: str
    max_wav_value: float
    sampling_rate: int
    filter_length: int
    hop_length: int
    win_length: int
    n_mel_channels: int
    mel_fmin: float
    mel_fmax: float | None
    # inference/infer_tool.Svc.__init__: `unit_interpolate_mode ... else 'left'`.
    unit_interpolate_mode: UnitInterpolateMode = field(default="left", metadata=_BY_SVC)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The `model` section: the arguments `SynthesizerTrn(**hps.model)` receives.

    `speech_encoder`, `speaker_embedding`, `n_layers_q` and `use_spectral_norm` are
    not synthesizer arguments (the original swallows them in `**kwargs`; the last
    one configures the discriminator).
    """

    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: ResblockType
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    n_layers_q: int
    # The defaults below are SynthesizerTrn.__init__'s keyword defaults (models.py, 4.1).
    n_layers_trans_flow: int = field(default=3, metadata=_BY_SYNTHESIZER)
    n_flow_layer: int = field(default=4, metadata=_BY_SYNTHESIZER)
    use_spectral_norm: bool
    gin_channels: int
    ssl_dim: int
    n_speakers: int
    vocoder_name: VocoderName = field(default="nsf-hifigan", metadata=_BY_SYNTHESIZER)
    # inference/infer_tool.Svc.__init__: `speech_encoder ... else 'vec768l12'`.
    speech_encoder: SpeechEncoderName = field(default="vec768l12", metadata=_BY_SVC)
    # Not a SynthesizerTrn argument: it lands in **kwargs and changes nothing.
    speaker_embedding: bool = field(default=False, metadata=_UNUSED)
    vol_embedding: bool = field(default=False, metadata=_BY_SYNTHESIZER)
    use_depthwise_conv: bool = field(default=False, metadata=_BY_SYNTHESIZER)
    flow_share_parameter: bool = field(default=False, metadata=_BY_SYNTHESIZER)
    use_automatic_f0_prediction: bool = field(default=True, metadata=_BY_SYNTHESIZER)
    use_transformer_flow: bool = field(default=False, metadata=_BY_SYNTHESIZER)
    # Not in the templates. When present it reaches SynthesizerTrn (and the NSF source)
    # through **hps.model; when absent the constructor default 44100 Hz applies.
    sampling_rate: int | None = field(default=None, metadata=_OMIT_IF_NONE)


@dataclass(frozen=True, kw_only=True)
class SvcConfig:
    """A whole so-vits-svc config.json.

    `spk` maps speaker names to ids in [0, model.n_speakers). `filled_defaults` lists
    the key paths (e.g. "model.speech_encoder") that were absent from the file and
    filled with the original's defaults; it does not take part in equality.
    """

    train: TrainConfig
    data: DataConfig
    model: ModelConfig
    spk: Mapping[str, int]
    filled_defaults: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spk", types.MappingProxyType(dict(self.spk)))
        problems = _semantic_problems(self)
        if problems:
            raise ConfigError(join_problems(problems))

    @property
    def spec_channels(self) -> int:
        """Linear spectrogram bins: filter_length // 2 + 1."""
        return self.data.filter_length // 2 + 1

    @property
    def segment_frames(self) -> int:
        """Training segment length in frames: segment_size // hop_length."""
        return self.train.segment_size // self.data.hop_length

    @property
    def upsample_factor(self) -> int:
        """Samples per frame produced by the decoder (product of upsample_rates = hop)."""
        return math.prod(self.model.upsample_rates)

    @property
    def nsf_sampling_rate(self) -> int:
        """Sampling rate (Hz) the original's NSF sine source assumes.

        It is `model.sampling_rate` when the file has that key, else the
        SynthesizerTrn default of 44100 Hz, even for a config whose
        `data.sampling_rate` differs.
        """
        if self.model.sampling_rate is not None:
            return self.model.sampling_rate
        return ORIGINAL_NSF_SAMPLING_RATE

    @property
    def speaker_names(self) -> tuple[str, ...]:
        """Speaker names ordered by id (then by name for shared ids)."""
        return speaker_names_by_id(self.spk)

    def speaker_id(self, name: str) -> int:
        """The id of speaker `name`; InputError naming close matches if unknown."""
        return find_speaker_id(self.spk, name, owner="the config")

    def to_dict(self) -> dict[str, Any]:
        """The original's JSON layout; see `svc_config_to_dict`."""
        return svc_config_to_dict(self)


# --------------------------------------------------------------------------- reading


_SECTIONS: dict[str, type] = {"train": TrainConfig, "data": DataConfig, "model": ModelConfig}
_TOP_LEVEL_KEYS = ("train", "data", "model", "spk")


def _read_section(
    cls: type, raw: Any, section: str, problems: Problems, filled: list[str]
) -> dict[str, Any] | None:
    """Keyword arguments for dataclass `cls` from the JSON object `raw`."""
    if not isinstance(raw, Mapping):
        problems.add(section, f"expected an object, got {describe_value(raw)}")
        return None
    fields = [spec.name for spec in dataclasses.fields(cls)]
    before = len(problems.lines)
    for key in raw:
        if key not in fields:
            if not isinstance(key, str):
                problems.add(section, f"key {key!r} is not a string")
                continue
            suggestion = suggest(key, fields, prefix=f"{section}.")
            problems.add(f"{section}.{key}", f"unknown key{suggestion}")
    values = read_fields(cls, raw, section, problems, filled)
    return values if len(problems.lines) == before else None


def _read_speakers(raw: Any, problems: Problems) -> dict[str, int] | None:
    if not isinstance(raw, Mapping):
        problems.add("spk", f"expected an object of speaker name -> id, got {describe_value(raw)}")
        return None
    return read_speaker_ids(raw, problems)


def parse_svc_config(data: Mapping[str, Any], *, source: str = "<config>") -> SvcConfig:
    """Validate a parsed config.json (`json.load` result) and build an SvcConfig.

    Every problem is reported with its key path; all problems found are raised
    together as one ConfigError whose `where` is `source`.
    """
    problems = Problems()
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a JSON object at the top level, got {describe_value(data)}",
                          where=source)
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            problems.add(str(key), f"unknown key{suggest(str(key), list(_TOP_LEVEL_KEYS))}")
    filled: list[str] = []
    sections: dict[str, dict[str, Any] | None] = {}
    for name, cls in _SECTIONS.items():
        if name not in data:
            problems.add(name, "missing required section")
            sections[name] = None
            continue
        sections[name] = _read_section(cls, data[name], name, problems, filled)
    speakers: dict[str, int] | None = None
    if "spk" not in data:
        problems.add("spk", "missing required section")
    else:
        speakers = _read_speakers(data["spk"], problems)
    if problems.lines:
        raise ConfigError(join_problems(problems.lines), where=source)
    assert speakers is not None
    train, data_section, model = (sections[name] for name in _SECTIONS)
    assert train is not None and data_section is not None and model is not None
    try:
        config = SvcConfig(
            train=TrainConfig(**train),
            data=DataConfig(**data_section),
            model=ModelConfig(**model),
            spk=speakers,
            filled_defaults=tuple(filled),
        )
    except ConfigError as error:
        raise ConfigError(error.message, where=source, hint=error.hint) from None
    if filled:
        logger.info("%s: keys absent, filled with so-vits-svc 4.1 defaults: %s",
                    source, ", ".join(filled))
    if "model.speech_encoder" in filled:
        expected_dim = _SSL_DIM_OF_ENCODER[config.model.speech_encoder]
        if config.model.ssl_dim != expected_dim:
            logger.warning(
                "%s: model.speech_encoder is missing, so it defaults to %r (%d-dim units) as in "
                "so-vits-svc 4.1, but model.ssl_dim is %d; a 4.0 model usually needs "
                '"speech_encoder": "vec256l9" in its config',
                source, config.model.speech_encoder, expected_dim, config.model.ssl_dim,
            )
    return config


def load_svc_config(path: str | os.PathLike[str]) -> SvcConfig:
    """Read and validate a so-vits-svc config.json file."""
    path = Path(path)
    data = parse_json(read_text_file(path, "config file"), path)
    return parse_svc_config(data, source=str(path))


# --------------------------------------------------------------------------- checks


def _semantic_problems(config: SvcConfig) -> list[str]:
    """Value checks across keys: things the original would crash on, or silently misuse."""
    problems = Problems()
    train, data, model = config.train, config.data, config.model
    problems.require_positive(
        "train", train, "epochs", "learning_rate", "eps", "batch_size", "segment_size",
        "lr_decay", "log_interval", "eval_interval", "max_speclen",
    )
    problems.require_positive(
        "data", data, "max_wav_value", "sampling_rate", "filter_length", "hop_length",
        "win_length", "n_mel_channels",
    )
    problems.require_positive(
        "model", model, "inter_channels", "hidden_channels", "filter_channels", "n_heads",
        "n_layers", "kernel_size", "upsample_initial_channel", "gin_channels", "ssl_dim",
        "n_speakers", "n_flow_layer", "n_layers_trans_flow",
    )
    if model.sampling_rate is not None:
        problems.require_positive("model", model, "sampling_rate")
    for index, beta in enumerate(train.betas):
        if not 0.0 <= beta < 1.0:
            problems.add(f"train.betas[{index}]", f"must be in [0, 1), got {beta!r}")
    if not 0.0 <= model.p_dropout < 1.0:
        problems.add("model.p_dropout", f"must be in [0, 1), got {model.p_dropout!r}")
    if data.hop_length > 0 and train.segment_size % data.hop_length:
        problems.add("train.segment_size",
                     f"{train.segment_size} is not a multiple of data.hop_length "
                     f"({data.hop_length})")
    if data.win_length > data.filter_length > 0:
        problems.add("data.win_length",
                     f"{data.win_length} exceeds data.filter_length ({data.filter_length})")
    if data.mel_fmin < 0:
        problems.add("data.mel_fmin", f"must be >= 0, got {data.mel_fmin!r}")
    if data.mel_fmax is not None and data.mel_fmax <= data.mel_fmin:
        problems.add("data.mel_fmax",
                     f"{data.mel_fmax!r} is not above data.mel_fmin ({data.mel_fmin!r})")
    if model.n_heads > 0 and model.hidden_channels % model.n_heads:
        problems.add("model.n_heads",
                     f"model.hidden_channels ({model.hidden_channels}) is not divisible by "
                     f"{model.n_heads} heads")
    if len(model.upsample_rates) != len(model.upsample_kernel_sizes):
        problems.add("model.upsample_kernel_sizes",
                     f"has {len(model.upsample_kernel_sizes)} entries but model.upsample_rates "
                     f"has {len(model.upsample_rates)}")
    if not model.upsample_rates:
        problems.add("model.upsample_rates", "must not be empty")
    for index, rate in enumerate(model.upsample_rates):
        if rate <= 0:
            problems.add(f"model.upsample_rates[{index}]", f"must be > 0, got {rate}")
    if model.upsample_rates and math.prod(model.upsample_rates) != data.hop_length:
        problems.add("model.upsample_rates",
                     f"multiply to {math.prod(model.upsample_rates)} but data.hop_length is "
                     f"{data.hop_length}; the decoder must produce one hop of audio per frame")
    if len(model.resblock_kernel_sizes) != len(model.resblock_dilation_sizes):
        problems.add("model.resblock_dilation_sizes",
                     f"has {len(model.resblock_dilation_sizes)} entries but "
                     f"model.resblock_kernel_sizes has {len(model.resblock_kernel_sizes)}")
    if not model.resblock_kernel_sizes:
        problems.add("model.resblock_kernel_sizes", "must not be empty")
    needed = 3 if model.resblock == "1" else 2
    for index, dilations in enumerate(model.resblock_dilation_sizes):
        if len(dilations) < needed:
            problems.add(f"model.resblock_dilation_sizes[{index}]",
                         f"resblock {model.resblock!r} needs {needed} dilations, "
                         f"got {len(dilations)}")
    for name, speaker_id in config.spk.items():
        if not 0 <= speaker_id < model.n_speakers:
            problems.add(f"spk.{name}",
                         f"speaker id {speaker_id} is outside [0, model.n_speakers = "
                         f"{model.n_speakers})")
    return problems.lines


# --------------------------------------------------------------------------- writing


def _to_json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json_value(item) for item in value]
    return value


def _section_dict(section: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in dataclasses.fields(section):
        value = getattr(section, spec.name)
        if value is None and spec.metadata.get("omit_if_none"):
            continue
        out[spec.name] = _to_json_value(value)
    return out


def svc_config_to_dict(config: SvcConfig) -> dict[str, Any]:
    """The config as the original's JSON layout: every key, lists for sequences.

    Keys filled from defaults while reading are written out, so the result is a
    complete 4.1 config.
    """
    return {
        "train": _section_dict(config.train),
        "data": _section_dict(config.data),
        "model": _section_dict(config.model),
        "spk": dict(config.spk),
    }


def save_svc_config(config: SvcConfig, path: str | os.PathLike[str]) -> None:
    """Write `config` as config.json (2-space indent, UTF-8), atomically.

    The text goes to a temporary file in the same folder, which then replaces
    `path`, so readers never see a half-written file.
    """
    path = Path(path)
    text = json.dumps(svc_config_to_dict(config), indent=2, ensure_ascii=False) + "\n"
    try:
        atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as error:
        raise ConfigError(f"cannot write config file ({error})", where=path) from None


def template_config(tiny: bool = False) -> SvcConfig:
    """The so-vits-svc 4.1 template (`configs_template/config_template.json`).

    With `tiny`, the 4.1 "tiny" template (depthwise convs, shared flow parameters,
    smaller filter and decoder widths).
    """
    name = _TEMPLATE_FILES[tiny]
    resource = resources.files(_TEMPLATE_PACKAGE).joinpath("templates").joinpath(name)
    data = json.loads(resource.read_text(encoding="utf-8"))
    return parse_svc_config(data, source=f"{_TEMPLATE_PACKAGE}/templates/{name}")
