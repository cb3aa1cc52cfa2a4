"""Configuration: frozen dataclasses, strict validation, and the so-vits-svc config.json adapter."""

from __future__ import annotations

from sovits.config.svc import (
    ORIGINAL_NSF_SAMPLING_RATE,
    DataConfig,
    HalfType,
    ModelConfig,
    ResblockType,
    SpeechEncoderName,
    SvcConfig,
    TrainConfig,
    UnitInterpolateMode,
    VocoderName,
    load_svc_config,
    parse_svc_config,
    save_svc_config,
    svc_config_to_dict,
    template_config,
)

__all__ = [
    "ORIGINAL_NSF_SAMPLING_RATE",
    "DataConfig",
    "HalfType",
    "ModelConfig",
    "ResblockType",
    "SpeechEncoderName",
    "SvcConfig",
    "TrainConfig",
    "UnitInterpolateMode",
    "VocoderName",
    "load_svc_config",
    "parse_svc_config",
    "save_svc_config",
    "svc_config_to_dict",
    "template_config",
]
