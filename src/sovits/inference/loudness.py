"""Loudness envelope adjustment (-lea): give the output the input's loudness contour.

so-vits-svc 4.1's `utils.change_rms`: the RMS of both waves is taken over half-second
frames (frame sample_rate // 2 * 2, hop sample_rate // 2, centred with zero padding,
float32 as librosa.feature.rms), each envelope is stretched linearly
(F.interpolate, align_corners=False) to the output's length, the output's envelope is
floored at 1e-6, and the output is multiplied by rms_in ** (1 - rate) * rms_out ** (rate - 1).
rate 1 leaves the output alone; rate 0 replaces its envelope with the input's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sovits.audio.slicer import frame_rms
from sovits.errors import InputError

__all__ = ["match_loudness_envelope"]

_RMS_FLOOR = 1e-6


def _envelope(wave: np.ndarray, sample_rate: int, length: int) -> torch.Tensor:
    """Half-second RMS of `wave` stretched to `length` samples: float32 [length]."""
    rms = frame_rms(wave, sample_rate // 2 * 2, sample_rate // 2)
    stretched = F.interpolate(
        torch.from_numpy(rms)[None, None, :], size=length, mode="linear", align_corners=False
    )
    return stretched[0, 0]


def match_loudness_envelope(
    source: np.ndarray, output: np.ndarray, sample_rate: int, rate: float
) -> np.ndarray:
    """Blend the loudness envelope of `output` towards that of `source`.

    source: the converted input, float [N_in] at `sample_rate` Hz; output: the
    conversion, float [N_out] at the same rate; rate in [0, 1] (-lea).
    Returns float32 [N_out]; `output` itself (as float32) when rate is 1.
    """
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"the loudness envelope rate must be in [0, 1], got {rate}")
    if sample_rate < 2:
        raise InputError(f"sample rate must be at least 2 Hz, got {sample_rate}")
    result = np.asarray(output, dtype=np.float32)
    if rate == 1.0 or result.shape[0] == 0:
        return result
    rms_in = _envelope(np.asarray(source, dtype=np.float32), sample_rate, result.shape[0])
    rms_out = _envelope(result, sample_rate, result.shape[0])
    rms_out = torch.clamp(rms_out, min=_RMS_FLOOR)
    gain = torch.pow(rms_in, torch.tensor(1.0 - rate)) * torch.pow(
        rms_out, torch.tensor(rate - 1.0)
    )
    return (torch.from_numpy(result.copy()) * gain).numpy()
