"""Sample-rate conversion: the one resampler of sovits (soxr, high quality).

It is `librosa.resample(y, orig_sr=..., target_sr=...)` with librosa's default
`res_type="soxr_hq"` and `fix=True`, which is what so-vits-svc's resample.py calls:
the same soxr filter, then the output cut or zero-padded to ceil(N * to / from)
samples.
"""

from __future__ import annotations

import math

import numpy as np

from sovits.errors import InputError

__all__ = ["resample"]


def resample(wave: np.ndarray, from_sr: int, to_sr: int) -> np.ndarray:
    """Resample `wave` ([N] or [C, N], float) from `from_sr` Hz to `to_sr` Hz.

    Returns an array of the input's float dtype (float32 stays float32) with
    ceil(N * to_sr / from_sr) samples along the last axis; the input itself when the
    rates are equal. Raises InputError for non-positive rates, a non-float wave or a
    wave of more than two dimensions.
    """
    import soxr

    if from_sr <= 0 or to_sr <= 0:
        raise InputError(f"sample rates must be positive, got {from_sr} and {to_sr}")
    array = np.asarray(wave)
    if array.ndim not in (1, 2):
        raise InputError(f"resample needs a wave of shape [N] or [C, N], got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"resample needs float samples, got dtype {array.dtype}")
    if from_sr == to_sr:
        return array
    dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    length = array.shape[-1]
    target_length = math.ceil(length * (float(to_sr) / from_sr))
    if length == 0:
        return np.zeros((*array.shape[:-1], 0), dtype=dtype)
    # soxr takes [N] or [N, C]
    frames = np.ascontiguousarray(array.T if array.ndim == 2 else array, dtype=dtype)
    output = np.asarray(soxr.resample(frames, from_sr, to_sr, quality="soxr_hq"), dtype=dtype)
    if output.ndim == 2:
        output = output.T
    got = output.shape[-1]
    if got > target_length:
        output = output[..., :target_length]
    elif got < target_length:
        padding = [(0, 0)] * (output.ndim - 1) + [(0, target_length - got)]
        output = np.pad(output, padding)
    return np.ascontiguousarray(output)
