"""The one way tests compare floats with reference numbers.

Torch, oneDNN, faiss and onnxruntime pick different kernels on different CPUs (AVX2,
AVX-512, none), so the same code differs by float32 rounding from machine to machine.
Every comparison of a float result with a reference goes through `assert_close`, with a
relative + absolute tolerance that scales with magnitude; exact equality is kept for
integers, indices, key lists and shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["AUDIO", "HZ", "INTERMEDIATE", "Tolerance", "assert_close"]


class Tolerance:
    """A named (rtol, atol) pair: |actual - expected| <= atol + rtol * |expected|."""

    def __init__(self, rtol: float, atol: float) -> None:
        self.rtol = rtol
        self.atol = atol

    def __repr__(self) -> str:
        return f"Tolerance(rtol={self.rtol:g}, atol={self.atol:g})"


INTERMEDIATE = Tolerance(rtol=1e-5, atol=1e-6)
"""Hidden activations, latents, spectrograms: float32 rounding of a few kernels."""
AUDIO = Tolerance(rtol=0.0, atol=1e-4)
"""Waveforms in [-1, 1]."""
HZ = Tolerance(rtol=1e-5, atol=1e-4)
"""Pitch in Hz: relative."""


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float64)


def assert_close(
    actual: Any,
    expected: Any,
    tolerance: Tolerance = INTERMEDIATE,
    *,
    what: str = "value",
) -> None:
    """Fail unless `actual` matches `expected` in shape and within `tolerance` everywhere.

    Accepts numpy arrays, torch tensors and numbers. The message names `what`, the
    largest absolute and relative difference and where it is.
    """
    got, want = _as_array(actual), _as_array(expected)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    if got.size == 0:
        return
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN positions differ"
    got, want = np.nan_to_num(got), np.nan_to_num(want)
    diff = np.abs(got - want)
    allowed = tolerance.atol + tolerance.rtol * np.abs(want)
    if np.all(diff <= allowed):
        return
    worst = int(np.argmax(diff - allowed))
    index = np.unravel_index(worst, got.shape)
    relative = diff / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    raise AssertionError(
        f"{what}: differs beyond {tolerance}: max abs diff {diff.max():.3g}, "
        f"max rel diff {relative.max():.3g}; worst at {tuple(int(i) for i in index)}: "
        f"{got[index]!r} vs reference {want[index]!r}"
    )
