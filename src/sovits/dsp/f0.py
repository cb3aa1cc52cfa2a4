"""Fundamental-frequency (f0) scales and post-processing.

This module owns every f0 conversion the models and pitch extractors share:

* coarse pitch bins fed to the content encoder's pitch embedding (`f0_to_coarse`);
* the log-f0 scale of the f0 decoder (`f0_to_lf0`, `lf0_to_f0`, `normalize_f0`);
* transposition in semitones (`shift_f0`);
* the frame-level clean-up every pitch extractor applies to its raw track
  (`interpolate_f0`, `resize_f0`, `post_process_f0`).

All of them reproduce so-vits-svc 4.1 bit for bit, including its quirks (noted per
function), because the released models were trained on exactly these numbers.
f0 is always in Hz; 0 (or below) means unvoiced.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import InputError

__all__ = [
    "F0_BIN",
    "F0_MAX",
    "F0_MEL_MAX",
    "F0_MEL_MIN",
    "F0_MIN",
    "MAX_TRANSPOSE",
    "check_transpose",
    "f0_to_coarse",
    "f0_to_lf0",
    "interpolate_f0",
    "lf0_to_f0",
    "normalize_f0",
    "post_process_f0",
    "resize_f0",
    "shift_f0",
]

F0_BIN = 256
"""Number of coarse pitch bins (the pitch embedding has this many rows)."""
F0_MIN = 50.0
"""Hz mapped to coarse bin 1."""
F0_MAX = 1100.0
"""Hz mapped to coarse bin 255."""
F0_MEL_MIN = 1127.0 * math.log(1.0 + F0_MIN / 700.0)
F0_MEL_MAX = 1127.0 * math.log(1.0 + F0_MAX / 700.0)

# Linear map of the mel value onto the bins: mel * _COARSE_SCALE - _COARSE_OFFSET
# sends F0_MEL_MIN to 1 and F0_MEL_MAX to F0_BIN - 1.
_COARSE_SCALE = (F0_BIN - 2) / (F0_MEL_MAX - F0_MEL_MIN)
_COARSE_OFFSET = F0_MEL_MIN * _COARSE_SCALE - 1.0


def f0_to_coarse(f0: Tensor) -> Tensor:
    """Quantise f0 [..] (Hz) to coarse pitch bins [..] int64 in 0..255.

    mel = 1127 ln(1 + f0/700) is mapped linearly so that 50 Hz -> 1 and 1100 Hz -> 255,
    then rounded half to even. Bins below 1 (f0 <= ~51.3 Hz, 0 or negative) become 1.
    Quirk kept from the original: its clamp is applied in the wrong order, so values
    that round to 256 or more (f0 >= ~1103.1 Hz in float32) become **0**, not 255.
    The arithmetic runs in the input's dtype, so fp16 input gives fp16 rounding.
    """
    mel = 1127 * (1 + f0 / 700).log()
    mel = torch.where(mel > 0, mel * _COARSE_SCALE - _COARSE_OFFSET, mel)
    coarse = torch.round(mel).long()
    coarse = torch.where(coarse < 1, torch.ones_like(coarse), coarse)
    return torch.where(coarse >= F0_BIN, torch.zeros_like(coarse), coarse)


def f0_to_lf0(f0: Tensor) -> Tensor:
    """f0 [B, T] (Hz) -> log-f0 [B, 1, T]: 2595 log10(1 + f0/700) / 500 (mel / 500)."""
    return 2595.0 * torch.log10(1.0 + f0.unsqueeze(1) / 700.0) / 500


def lf0_to_f0(lf0: Tensor) -> Tensor:
    """Inverse of `f0_to_lf0`: log-f0 [B, 1, T] -> f0 [B, T] (Hz). Can be negative."""
    return (700 * (torch.pow(10, lf0 * 500 / 2595) - 1)).squeeze(1)


def normalize_f0(
    lf0: Tensor,
    x_mask: Tensor,
    uv: Tensor,
    *,
    random_scale: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Centre log-f0 on each row's voiced mean: the f0 decoder's input.

    lf0 [B, 1, T], x_mask [B, 1, T], uv [B, T] (1 = voiced) -> [B, 1, T], masked.
    The mean is taken over frames where uv is set; a row with no voiced frame divides
    by 9999 instead of 0 (so its mean is ~0). With `random_scale` (training only) each
    row is multiplied by a factor drawn from U(0.8, 1.2) on the CPU with `generator`
    (the original drew it from the global RNG in float32).
    Raises InputError if the result contains NaN (the original quit the process).
    """
    uv_sum = torch.sum(uv, dim=1, keepdim=True)
    uv_sum = torch.where(uv_sum == 0, torch.full_like(uv_sum, 9999), uv_sum)
    means = torch.sum(lf0[:, 0, :] * uv, dim=1, keepdim=True) / uv_sum
    batch = lf0.shape[0]
    if random_scale:
        factor = torch.empty(batch, 1).uniform_(0.8, 1.2, generator=generator)
    else:
        factor = torch.ones(batch, 1)
    factor = factor.to(device=lf0.device, dtype=lf0.dtype)
    normalized = (lf0 - means.unsqueeze(-1)) * factor.unsqueeze(-1)
    if torch.isnan(normalized).any():
        raise InputError(
            "normalised log-f0 contains NaN", hint="check the f0 and voicing inputs for NaN"
        )
    return normalized * x_mask


@overload
def shift_f0(f0: Tensor, semitones: float) -> Tensor: ...
@overload
def shift_f0(f0: np.ndarray, semitones: float) -> np.ndarray: ...
def shift_f0(f0: Tensor | np.ndarray, semitones: float) -> Tensor | np.ndarray:
    """Transpose f0 (Hz, any shape) by `semitones`: f0 * 2**(semitones/12)."""
    return f0 * 2 ** (semitones / 12)


MAX_TRANSPOSE = 48.0
"""Largest pitch shift any command accepts, semitones (four octaves either way)."""


def check_transpose(semitones: float, *, flag: str = "-t") -> float:
    """`semitones` as a float, or InputError when it is not finite or beyond
    +-MAX_TRANSPOSE (a shift of 100 semitones would put a 220 Hz voice at 71 kHz).
    `flag` names the option in the message."""
    value = float(semitones)
    if not math.isfinite(value) or abs(value) > MAX_TRANSPOSE:
        raise InputError(
            f"transpose ({flag}) {value:g} is out of range; use -{MAX_TRANSPOSE:g} to "
            f"{MAX_TRANSPOSE:g} semitones"
        )
    return value


def interpolate_f0(
    f0: np.ndarray, *, hop_length: int = 512, sampling_rate: int = 44100
) -> tuple[np.ndarray, np.ndarray]:
    """Fill unvoiced frames of an f0 track [T] (Hz) by linear interpolation.

    Returns (f0 [T], vuv [T] float32, 1 where the input is > 0). This is the PM / Dio /
    Harvest predictors' helper; its numerics and output dtypes are kept:

    * every non-zero frame (negative ones too) is an interpolation point; edges hold
      the first / last point; the result is float64 (from np.interp), computed on
      time axes in seconds (float32 points, float64 frames), hence the hop and rate;
    * no non-zero frame: float32 zeros;
    * exactly one non-zero frame: `ones(T, float32) * f0[0]` -- note f0[0], not the
      voiced value, so this is zeros unless frame 0 is the voiced one.
    """
    f0 = np.asarray(f0)
    vuv = np.zeros_like(f0, dtype=np.float32)
    vuv[f0 > 0.0] = 1.0

    frames = f0.shape[0]
    points = np.nonzero(f0)[0]
    values = f0[points]
    if values.shape[0] == 0:
        return np.zeros(frames, dtype=np.float32), vuv
    if values.shape[0] == 1:
        return np.ones(frames, dtype=np.float32) * f0[0], vuv

    seconds_per_frame = hop_length / sampling_rate
    point_times = np.float32(seconds_per_frame) * points.astype(np.float32)
    frame_times = np.arange(frames) * hop_length / sampling_rate
    filled = np.interp(frame_times, point_times, values, left=values[0], right=values[-1])
    return filled, vuv


def resize_f0(f0: np.ndarray, target_len: int) -> np.ndarray:
    """Resample an f0 track [T] (Hz) to [target_len] frames (Dio / Harvest).

    Frames below 0.001 Hz become NaN before linear interpolation at positions
    i * T / target_len; any NaN in the result (a neighbour was unvoiced) becomes 0.
    """
    source = np.array(f0)
    source[source < 0.001] = np.nan
    length = len(source)
    positions = np.arange(0, length * target_len, length) / target_len
    target = np.interp(positions, np.arange(0, length), source)
    return np.nan_to_num(target)


def post_process_f0(
    f0: np.ndarray | Tensor,
    pad_to: int,
    *,
    hop_length: int = 512,
    sampling_rate: int = 44100,
) -> tuple[np.ndarray, np.ndarray]:
    """Resize a raw f0 track [T'] (Hz) to [pad_to] frames and fill unvoiced frames.

    RMVPE / FCPE post-processing: the track (as float32) is resized by nearest
    neighbour to `pad_to` frames, vuv [pad_to] float32 marks frames > 0, and every
    non-zero frame becomes an interpolation point on a time axis in seconds (edges
    hold). Returns (f0 [pad_to] float64, vuv). With no non-zero frame f0 is float32
    zeros; with one it is float32 filled with that frame's value.
    """
    track = torch.as_tensor(f0).detach().to(device="cpu", dtype=torch.float32)
    track = F.interpolate(track[None, None], size=pad_to, mode="nearest")[0, 0]
    vuv = (track > 0.0).to(torch.float32).numpy()

    points = torch.nonzero(track).squeeze(1)
    values = track[points].numpy()
    if values.shape[0] == 0:
        return np.zeros(pad_to, dtype=np.float32), vuv
    if values.shape[0] == 1:
        return np.full(pad_to, values[0], dtype=np.float32), vuv

    point_times = hop_length / sampling_rate * points.numpy()
    frame_times = np.arange(pad_to) * hop_length / sampling_rate
    filled = np.interp(frame_times, point_times, values, left=values[0], right=values[-1])
    return filled, vuv
