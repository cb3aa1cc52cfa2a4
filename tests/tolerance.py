"""The one way tests compare floats with reference numbers (policy: tests/fixtures/README.md).

Torch, oneDNN, faiss and onnxruntime pick different kernels on different CPUs (AVX2,
AVX-512, none), so the same code differs by float32 rounding from machine to machine.
Every comparison of a float result with a reference goes through `assert_close` (or
`assert_neighbours` for nearest-neighbour searches), with a named tolerance that scales
with magnitude: an element passes when

    |actual - expected| <= atol + rtol * |expected| + scale * max(|expected|)

Exact equality is kept for integers, indices, key lists, shapes and for round trips
(what was written must be read back bit for bit).

Two environment switches serve the portability checks (tests/report_tolerance.py):

* ``SOVITS_TOLERANCE_LOG=<file>``: every comparison appends one JSON line (test, what,
  tolerance, largest absolute / relative difference, how much of the tolerance it used,
  and whether a 1e-3 relative change of the reference would have failed it).
* ``SOVITS_TOLERANCE_PERTURB=<r>``: every reference is multiplied by ``1 + r`` before the
  comparison, to show by hand that the tests stay sharp (``r = 1e-3`` must fail them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AUDIO",
    "DEEP_SAMPLED_MEL",
    "DISTANCE",
    "HALF_AUDIO",
    "HZ",
    "INTERMEDIATE",
    "LOG_MEL",
    "NOISE_SAMPLED",
    "PHASE_AUDIO",
    "SAMPLED_MEL",
    "SINE_PHASE",
    "VOCODER_AUDIO",
    "Tolerance",
    "assert_close",
    "assert_neighbours",
]

SHARPNESS = 1e-3
"""A reference changed by this much (relative) must fail every comparison."""


@dataclass(frozen=True)
class Tolerance:
    """A named allowance: |actual - expected| <= atol + rtol*|expected| + scale*max|expected|."""

    name: str
    rtol: float
    atol: float
    scale: float = 0.0

    def allowed(self, expected: np.ndarray) -> np.ndarray:
        """Per-element allowance for a reference array (float64, same shape)."""
        peak = float(np.abs(expected).max()) if expected.size else 0.0
        return self.atol + self.rtol * np.abs(expected) + self.scale * peak

    def __repr__(self) -> str:
        parts = [f"rtol={self.rtol:g}", f"atol={self.atol:g}"]
        if self.scale:
            parts.append(f"scale={self.scale:g}")
        return f"{self.name}({', '.join(parts)})"


INTERMEDIATE = Tolerance("INTERMEDIATE", rtol=1e-5, atol=1e-6, scale=1e-6)
"""Hidden activations, latents, f0 in log space, blends: float32 rounding of a few kernels.

The `scale` term covers values near zero inside an array of larger ones, whose rounding
comes from the larger operands (AVX-512: 1.6e-6 on 0.026 in an array reaching 5.6)."""
AUDIO = Tolerance("AUDIO", rtol=0.0, atol=1e-4)
"""Waveforms in [-1, 1] (peaks 0.75..1 in the fixtures), through the original's op order
or another (fast decoder, ONNX graphs, per-frame speaker mixes): a deep decoder and a
pitch-driven sine source turn float32 steps of f0 into up to ~6e-5 on the audio."""
PHASE_AUDIO = Tolerance("PHASE_AUDIO", rtol=0.0, atol=2e-4)
"""Voiced audio whose sine phase depends on kernel rounding: accumulated over the clip in
another runtime (onnxruntime vs torch sin at hundreds of cycles: <= 1e-4), or driven by
an f0 that is itself predicted (float32 steps of f0 move the phase: <= 7.2e-5)."""
SINE_PHASE = Tolerance("SINE_PHASE", rtol=0.0, atol=5e-5)
"""The harmonic source in ONNX mode (amplitude 0.1): its phase is a float32 cumsum over
the clip, whose summation order depends on the kernels (2.2e-5 with ATEN default)."""
HALF_AUDIO = Tolerance("HALF_AUDIO", rtol=0.0, atol=1e-2)
"""float16 audio against the original's float16 run. fp16 kernels differ by ISA (3.3e-3
with ATEN_CPU_CAPABILITY=default) and float16's own step is 9.8e-4 relative, so this one
cannot see a 1e-3 change; it still tells the fp16 path from the fp32 one (0.14 apart)."""
HZ = Tolerance("HZ", rtol=1e-5, atol=1e-4)
"""Pitch in Hz or cents: relative (911.0407 vs 911.0405 Hz is a float32 step; FCPE's
cent table, values 2000..8000, differs by a float32 step of 1e-3 cents)."""
DISTANCE = Tolerance("DISTANCE", rtol=1e-5, atol=1e-5)
"""Squared L2 distances from faiss (values near 2000 differ by up to 5e-4 across ISAs)."""
LOG_MEL = Tolerance("LOG_MEL", rtol=0.0, atol=2e-4)
"""Log-mel spectrograms (natural log of clamped magnitudes; fixture README: 1e-4 .. 2e-4)."""
VOCODER_AUDIO = Tolerance("VOCODER_AUDIO", rtol=0.0, atol=1e-3)
"""NSF-HiFiGAN audio: harmonic phase accumulates over the clip (fixture README: atol 1e-3)."""
SAMPLED_MEL = Tolerance("SAMPLED_MEL", rtol=0.0, atol=1e-4)
"""Mel after a shallow diffusion sampler (values -12..-1; fixture README: atol 1e-4)."""
DEEP_SAMPLED_MEL = Tolerance("DEEP_SAMPLED_MEL", rtol=0.0, atol=2e-4)
"""Mel after a 100-step shallow run (fixture README: atol 2e-4)."""
NOISE_SAMPLED = Tolerance("NOISE_SAMPLED", rtol=0.0, atol=0.05, scale=1e-5)
"""Mel after pure-noise diffusion runs (values up to 4460; fixture README: 1e-5 of max)."""


def _as_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]


def _log(record: dict[str, Any]) -> None:
    path = os.environ.get("SOVITS_TOLERANCE_LOG")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _is_sharp(got: np.ndarray, want: np.ndarray, tolerance: Tolerance) -> bool | None:
    """Would a reference changed by SHARPNESS (relative) fail this comparison? None for
    an all-zero reference, which no relative change moves (it is checked to atol)."""
    if not np.any(want):
        return None
    moved = want * (1 + SHARPNESS)
    return bool(np.any(np.abs(got - moved) > tolerance.allowed(moved)))


def assert_close(
    actual: Any,
    expected: Any,
    tolerance: Tolerance = INTERMEDIATE,
    *,
    what: str = "value",
) -> None:
    """Fail unless `actual` matches `expected` in shape and within `tolerance` everywhere.

    Accepts numpy arrays, torch tensors and numbers; NaNs must sit at the same places.
    The message names `what`, the largest absolute and relative difference and where.
    """
    got, want = _as_array(actual), _as_array(expected)
    perturb = float(os.environ.get("SOVITS_TOLERANCE_PERTURB", "0") or 0)
    if perturb:
        want = want * (1 + perturb)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    if got.size == 0:
        return
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN positions differ"
    got, want = np.nan_to_num(got), np.nan_to_num(want)
    diff = np.abs(got - want)
    allowed = tolerance.allowed(want)
    relative = diff / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    used = float(np.max(diff / allowed)) if np.all(allowed > 0) else float(np.any(diff > 0))
    _log(
        {
            "test": _current_test(),
            "what": what,
            "tolerance": tolerance.name,
            "max_abs": float(diff.max()),
            "max_rel": float(relative[diff > 0].max()) if np.any(diff > 0) else 0.0,
            "peak": float(np.abs(want).max()),
            "used": used,
            "sharp": _is_sharp(got, want, tolerance),
        }
    )
    if np.all(diff <= allowed):
        return
    index = np.unravel_index(int(np.argmax(diff - allowed)), got.shape)
    raise AssertionError(
        f"{what}: differs beyond {tolerance}: max abs diff {diff.max():.3g}, "
        f"max rel diff {relative.max():.3g}, {used:.3g}x the allowance; worst at "
        f"{tuple(int(i) for i in index)}: {got[index]!r} vs reference {want[index]!r}"
    )


def assert_neighbours(
    ids: Any,
    distances: Any,
    expected_ids: Any,
    expected_distances: Any,
    tolerance: Tolerance = DISTANCE,
    *,
    what: str = "neighbours",
) -> None:
    """Compare a k-nearest-neighbour search ([N, k] ids and distances) with a reference.

    Distances go through `assert_close`. Ids must match exactly, except where the
    reference's distance ties (within `tolerance`) with another in the same row, or in
    the last column (its tie may lie past k): there a different CPU may legitimately
    order equal-distance vectors differently. The distances themselves must still match.
    """
    got_ids, want_ids = np.asarray(ids), np.asarray(expected_ids)
    assert got_ids.shape == want_ids.shape, f"{what}: ids shape {got_ids.shape} != {want_ids.shape}"
    assert_close(distances, expected_distances, tolerance, what=f"{what} distances")
    want_d = _as_array(expected_distances)
    allowed = tolerance.allowed(want_d)
    for row, column in zip(*np.nonzero(got_ids != want_ids), strict=True):
        d = want_d[row]
        tied = np.abs(d - d[column]) <= allowed[row] + allowed[row, column]
        tied[column] = False
        assert tied.any() or column == len(d) - 1, (
            f"{what}: row {row} column {column}: id {got_ids[row, column]} != reference "
            f"{want_ids[row, column]}, and its distance {d[column]!r} ties with no other "
            f"(allowance {allowed[row, column]:.3g})"
        )
