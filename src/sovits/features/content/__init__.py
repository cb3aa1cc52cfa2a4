"""Content (speech) encoders: 16 kHz mono wave -> frame-wise features [T, D].

`load_content_encoder(name)` builds any of so-vits-svc 4.1's `speech_encoder` names
(`encoder_names()`), reading the original weight files without fairseq. Encoder
modules are imported only when an encoder is built.
"""

from __future__ import annotations

from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, ContentEncoder
from sovits.features.content.registry import (
    ENCODERS,
    EncoderSpec,
    encoder_names,
    encoder_spec,
    load_content_encoder,
)

__all__ = [
    "ENCODERS",
    "HOP_SIZE",
    "SAMPLE_RATE",
    "ContentEncoder",
    "EncoderSpec",
    "encoder_names",
    "encoder_spec",
    "load_content_encoder",
]
