"""Build sovits Synthesizers for the so-vits-svc 4.1 fixture variants (test helper).

Goes through the real config reader and `sovits.models.build`, the one place that maps
a config.json onto modules, as the original builds `SynthesizerTrn(filter_length // 2
+ 1, segment_size // hop_length, **hps.model)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sovits.config import SvcConfig, load_svc_config
from sovits.models import build
from sovits.models.synthesizer import Synthesizer
from tests.conftest import SOVITS41, load_npz


def variant_dir(variant: str) -> Path:
    return SOVITS41 / "variants" / variant


def variant_config(variant: str) -> SvcConfig:
    """The variant's config.json, parsed."""
    return load_svc_config(variant_dir(variant) / "config.json")


def synthesizer_kwargs(config: SvcConfig) -> dict[str, Any]:
    """Synthesizer keyword arguments for a config."""
    return build.synthesizer_arguments(config)


def build_synthesizer(variant: str) -> Synthesizer:
    """A freshly initialised Synthesizer for a fixture variant (train mode, float32)."""
    return build.build_synthesizer(variant_config(variant))


def release_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The `model` entry of the variant's G_0_release.pth (no enc_q keys)."""
    checkpoint = torch.load(variant_dir(variant) / "G_0_release.pth", weights_only=True)
    return checkpoint["model"]


def load_release_synthesizer(variant: str) -> tuple[Synthesizer, list[str], list[str]]:
    """Synthesizer with the release weights loaded (strict=False), in eval mode.

    Returns (model, missing keys, unexpected keys).
    """
    model = build_synthesizer(variant)
    result = model.load_state_dict(release_state_dict(variant), strict=False)
    model.eval()
    return model, list(result.missing_keys), list(result.unexpected_keys)


def reference_keys(variant: str) -> list[tuple[str, list[int], str]]:
    """(key, shape, dtype) of every state-dict entry of the original, in file order."""
    rows = []
    for line in (variant_dir(variant) / "keys.txt").read_text().splitlines():
        key, shape, dtype = line.split("\t")
        rows.append((key, json.loads(shape), dtype))
    return rows


def variant_fixtures(variant: str) -> dict[str, np.ndarray]:
    return load_npz(variant_dir(variant) / "fixtures.npz")


def recorded_draws(inter_channels: int) -> list[torch.Tensor]:
    """The four RNG draws of the original infer (T = 24), in draw order."""
    draws = load_npz(SOVITS41 / "common" / f"rng_draws_inter{inter_channels}_T24.npz")
    names = (
        "draw0_enc_p_noise",
        "draw1_sinegen_rand_ini",
        "draw2_sinegen_noise",
        "draw3_source_noise",
    )
    return [torch.from_numpy(draws[name]) for name in names]
