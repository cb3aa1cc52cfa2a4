"""The content-encoder protocol and the input checks every encoder shares.

A ContentEncoder turns a mono 16 kHz waveform into one feature vector per frame
("units", so-vits-svc's `c`): [N] float32 -> [T, D]. Every encoder of so-vits-svc 4.1
produces a frame every 320 samples (20 ms).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from sovits.errors import InputError

SAMPLE_RATE = 16000
"""Rate every content encoder reads, Hz."""
HOP_SIZE = 320
"""Samples at SAMPLE_RATE per output frame of every so-vits-svc 4.1 encoder."""


@runtime_checkable
class ContentEncoder(Protocol):
    """Anything that turns a 16 kHz mono wave into frame-wise content features.

    name: registry name ("vec768l12", "whisper-ppg", ...).
    sample_rate: rate `encode` expects, Hz (16000).
    hop_size: samples at `sample_rate` per output frame (320).
    dim: feature size D of the output.
    """

    name: str
    sample_rate: int
    hop_size: int
    dim: int

    def encode(self, wave: Tensor) -> Tensor:
        """Features of `wave` (float32 [N] at `sample_rate`): float32 [T, dim].

        The result lies on the encoder's device.
        """
        ...


def check_wave(wave: Tensor | np.ndarray, *, min_samples: int = 1) -> Tensor:
    """Validate a mono wave and return it as a float32 tensor [N].

    Raises InputError for anything that is not one-dimensional, is not real-valued,
    holds NaN or infinity, or is shorter than `min_samples`.
    """
    if isinstance(wave, np.ndarray):
        wave = torch.from_numpy(np.ascontiguousarray(wave))
    if not isinstance(wave, Tensor):
        raise InputError(f"expected a waveform tensor [N], got {type(wave).__name__}")
    if wave.dim() != 1:
        raise InputError(
            f"expected a mono waveform [N], got shape {list(wave.shape)}",
            hint="mix the channels down (mean over channels) before encoding",
        )
    if wave.is_complex() or not wave.is_floating_point():
        raise InputError(
            f"expected a float waveform in [-1, 1], got dtype {wave.dtype}",
            hint="convert integer PCM to float (int16: divide by 32768)",
        )
    if wave.shape[0] < min_samples:
        raise InputError(
            f"waveform too short: {wave.shape[0]} samples, the encoder needs at least "
            f"{min_samples} at {SAMPLE_RATE} Hz"
        )
    wave = wave.to(torch.float32)
    if not bool(torch.isfinite(wave).all()):
        raise InputError("waveform holds NaN or infinite samples")
    return wave
