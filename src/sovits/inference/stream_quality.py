"""Measures of live conversion against offline conversion (tests and benchmarks/live.py).

* `log_mel_distance`: mean absolute difference of two waves' log-mel spectrograms, dB
  (2048-sample window, 512 hop, 80 bands), optionally only over chosen frames;
* `join_discontinuities`: block joins where the output jumps by more than the signal's
  own largest sample-to-sample step away from the joins;
* `f0_cents_error`: median deviation of a wave's f0 from a reference f0, cents, over
  frames voiced in both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "MEL_HOP",
    "MEL_WINDOW",
    "f0_cents_error",
    "join_discontinuities",
    "log_mel",
    "log_mel_distance",
]

MEL_WINDOW = 2048
MEL_HOP = 512


def log_mel(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-mel spectrogram of float32 [N], dB: float64 [N // MEL_HOP, 80]; frame f
    covers samples [f * MEL_HOP - 768, f * MEL_HOP + 1280) (zero padded at the ends)."""
    from sovits.dsp.spectrogram import mel_spectrogram

    y = torch.from_numpy(np.asarray(wave, np.float32))[None]
    mel = mel_spectrogram(
        y, sample_rate=sample_rate, n_fft=MEL_WINDOW, n_mels=80, hop_length=MEL_HOP,
        win_length=MEL_WINDOW, fmin=0.0, fmax=None, center=False,
    )[0]
    return 20.0 / np.log(10.0) * mel.T.double().numpy()


def log_mel_distance(
    first: np.ndarray, second: np.ndarray, sample_rate: int, *, frames: np.ndarray | None = None
) -> float:
    """Mean |log-mel(first) - log-mel(second)| in dB over all frames, or those where the
    boolean `frames` mask is True (cut to the shorter wave)."""
    length = min(first.shape[0], second.shape[0])
    a, b = log_mel(first[:length], sample_rate), log_mel(second[:length], sample_rate)
    count = min(a.shape[0], b.shape[0])
    diff = np.abs(a[:count] - b[:count]).mean(axis=1)
    if frames is not None:
        diff = diff[np.asarray(frames[:count], bool)]
    return float(diff.mean()) if diff.size else float("nan")


def frames_away_from(points: Sequence[int], length: int, guard: int) -> np.ndarray:
    """Mask of log-mel frames of a wave of `length` samples whose window stays more
    than `guard` samples from every point (sample index)."""
    count = length // MEL_HOP
    starts = np.arange(count) * MEL_HOP - (MEL_WINDOW - MEL_HOP) // 2
    mask = np.ones(count, bool)
    for point in points:
        mask &= (starts + MEL_WINDOW + guard <= point) | (starts - guard >= point)
    return mask


def join_discontinuities(wave: np.ndarray, joins: Sequence[int], *, guard: int = 4) -> int:
    """Joins (sample indices where a block's audio begins) at which the wave steps by
    more than its own largest step elsewhere (more than `guard` samples from a join)."""
    samples = np.asarray(wave, np.float64)
    steps = np.abs(np.diff(samples))
    if steps.size == 0:
        return 0
    away = np.ones(steps.shape[0], bool)
    inside = [j for j in joins if 0 < j < samples.shape[0]]
    for join in inside:
        away[max(0, join - 1 - guard) : join + guard] = False
    ceiling = float(steps[away].max()) if away.any() else 0.0
    return sum(1 for join in inside if steps[join - 1] > ceiling)


def f0_cents_error(
    wave: np.ndarray, sample_rate: int, reference_hz: np.ndarray, hop: int
) -> float:
    """Median |cents| between the f0 of `wave` (pm extractor, frames of `hop`) and
    `reference_hz` [T] over frames voiced in both; NaN when none are."""
    from sovits.features.pitch.registry import create_pitch_extractor

    n_frames = min(reference_hz.shape[0], wave.shape[0] // hop)
    track = create_pitch_extractor("pm").extract(
        np.asarray(wave, np.float32), sample_rate, hop, n_frames=n_frames
    )
    reference = np.asarray(reference_hz[:n_frames], np.float64)
    both = track.voiced & (reference > 0)
    if not both.any():
        return float("nan")
    cents = 1200.0 * np.log2(track.f0[both].astype(np.float64) / reference[both])
    return float(np.median(np.abs(cents)))
