"""The content-encoder registry: every `speech_encoder` name of so-vits-svc 4.1.

Each name maps to a lazily imported "module:Class", the options that reproduce the
original's choice of layer and projection, the weight file it reads (a key of
`sovits.features.pretrained.KNOWN_FILES`) and the feature size of that file. Nothing
heavy is imported until `load_content_encoder` builds an encoder.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from sovits.errors import InputError
from sovits.features.content.base import ContentEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderSpec:
    """How to build one named content encoder.

    name: the `speech_encoder` value of so-vits-svc's config.json.
    target: "module:Class" of the encoder; the class takes (weights path, name=...,
        device=..., **options).
    weights: key of the weight file in `sovits.features.pretrained.KNOWN_FILES`, or ""
        for an encoder that reads no file (the class then gets None).
    dim: feature size D of the output with the original file (the config's ssl_dim).
    options: keyword arguments that select the original's layer / projection.
    description: one line for help texts.
    """

    name: str
    target: str
    weights: str
    dim: int
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


_HUBERT = "sovits.features.content.hubert:FairseqHubertEncoder"
_ONNX = "sovits.features.content.onnx_encoders:OnnxContentEncoder"

ENCODERS: Mapping[str, EncoderSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            EncoderSpec(
                "vec768l12",
                _HUBERT,
                "checkpoint_best_legacy_500.pt",
                768,
                {"output_layer": 12, "final_projection": False},
                "ContentVec, output of Transformer layer 12",
            ),
            EncoderSpec(
                "vec256l9",
                _HUBERT,
                "checkpoint_best_legacy_500.pt",
                256,
                {"output_layer": 9, "final_projection": True},
                "ContentVec, layer 9 through the final projection",
            ),
            EncoderSpec(
                "vec256l9-onnx",
                _ONNX,
                "vec-256-layer-9.onnx",
                256,
                {},
                "ContentVec layer 9 + projection, MoeSS ONNX export",
            ),
            EncoderSpec(
                "vec256l12-onnx",
                _ONNX,
                "vec-256-layer-12.onnx",
                256,
                {},
                "ContentVec layer 12 + projection, MoeSS ONNX export",
            ),
            EncoderSpec(
                "vec768l9-onnx",
                _ONNX,
                "vec-768-layer-9.onnx",
                768,
                {},
                "ContentVec layer 9, MoeSS ONNX export",
            ),
            EncoderSpec(
                "vec768l12-onnx",
                _ONNX,
                "vec-768-layer-12.onnx",
                768,
                {},
                "ContentVec layer 12, MoeSS ONNX export",
            ),
            EncoderSpec(
                "hubertsoft-onnx",
                _ONNX,
                "hubert-soft.onnx",
                256,
                {},
                "HuBERT-soft units, MoeSS ONNX export",
            ),
            EncoderSpec(
                "hubertsoft",
                "sovits.features.content.hubert_soft:HubertSoftEncoder",
                "hubert-soft-0d54a1f4.pt",
                256,
                {},
                "HuBERT-soft units (bshall/hubert)",
            ),
            EncoderSpec(
                "whisper-ppg",
                "sovits.features.content.whisper:WhisperPPGEncoder",
                "medium.pt",
                1024,
                {},
                "Whisper medium encoder output",
            ),
            EncoderSpec(
                "whisper-ppg-large",
                "sovits.features.content.whisper:WhisperPPGEncoder",
                "large-v2.pt",
                1280,
                {},
                "Whisper large-v2 encoder output",
            ),
            EncoderSpec(
                "cnhubertlarge",
                _HUBERT,
                "chinese-hubert-large-fairseq-ckpt.pt",
                1024,
                {"output_layer": None, "final_projection": False},
                "Chinese HuBERT large, final output",
            ),
            EncoderSpec(
                "dphubert",
                "sovits.features.content.dphubert:DPHubertEncoder",
                "DPHuBERT-sp0.75.pth",
                768,
                {},
                "DPHuBERT (pruned HuBERT base), final output",
            ),
            EncoderSpec(
                "wavlmbase+",
                "sovits.features.content.wavlm:WavLMEncoder",
                "WavLM-Base+.pt",
                768,
                {},
                "WavLM Base+, final output",
            ),
            EncoderSpec(
                "spectral",
                "sovits.features.content.spectral:SpectralContentEncoder",
                "",
                64,
                {},
                "download-free fallback: speaker-normalised cepstra (far below ContentVec)",
            ),
        )
    }
)
"""Every encoder name of so-vits-svc 4.1, in the order of its README, then sovits's
download-free `spectral` fallback."""


def encoder_names() -> tuple[str, ...]:
    """All registered encoder names."""
    return tuple(ENCODERS)


def encoder_spec(name: str) -> EncoderSpec:
    """The registry entry of `name`; InputError listing the valid names otherwise."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise InputError(
            f"unknown speech encoder {name!r}",
            hint="choose one of " + ", ".join(ENCODERS),
        ) from None


def encoder_class(spec: EncoderSpec) -> type:
    """Import the class named by `spec.target`."""
    module_name, class_name = spec.target.split(":")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


def load_content_encoder(
    name: str,
    weights: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
) -> ContentEncoder:
    """Build the encoder `name` from its weight file.

    weights: explicit path of the file; None looks it up with
        `sovits.features.pretrained.resolve_weights` ($SOVITS_HOME, then the user cache).
    Raises InputError for unknown names, MissingFileError when the file is not
    found and CheckpointError when it does not fit.
    """
    from sovits.features.pretrained import resolve_weights

    spec = encoder_spec(name)
    path = resolve_weights(spec.weights, weights) if spec.weights else weights
    cls = encoder_class(spec)
    encoder: ContentEncoder = cls(path, name=spec.name, device=device, **spec.options)
    if encoder.dim != spec.dim:
        logger.warning(
            "%s: %s gives %d-dimensional features; the original file gives %d",
            name,
            path,
            encoder.dim,
            spec.dim,
        )
    return encoder
