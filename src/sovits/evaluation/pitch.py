"""F0 fidelity of a conversion: the melody-extraction measures of MIREX, on two tracks.

The reference is the source's f0 moved by the transpose (f0 * 2^(t / 12)) with the
source's voicing; the estimate is the converted file's f0 and voicing. Both come from
the same extractor, frame by frame (frame t of one is compared with frame t of the
other, over the frames both have). With R the frames voiced in the reference, E those
voiced in the estimate and the error e = 1200 log2(estimate / reference) in cents:

* raw_pitch_accuracy: share of R where the estimate is voiced and |e| <= 50 cents;
* raw_chroma_accuracy: the same with e folded onto one octave (an octave error counts
  as right): min(|e| mod 1200, 1200 - |e| mod 1200) <= 50;
* f0_error_cents_median: median |e| over R and E;
* octave_error_rate: share of R and E where |e| > 50 cents but the folded error is
  within 50 (the pitch class is right, the octave wrong);
* voicing_precision |R and E| / |E|, voicing_recall |R and E| / |R|, voicing_f1
  2 |R and E| / (|R| + |E|);
* f0_correlation: Pearson correlation of the two pitch curves in cents over R and E
  (the shape of the melody, blind to a constant offset).

A measure whose frame set is empty (or, for the correlation, has fewer than 3 frames or
no variation) is None, never NaN. (Unlike mir_eval's raw pitch accuracy, a frame the
estimate calls unvoiced never counts as right, since our tracks fill unvoiced frames
by interpolation instead of keeping a pitch guess.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovits.errors import InputError

__all__ = ["CENTS_THRESHOLD", "PitchMetrics", "cents_error", "pearson", "pitch_metrics"]

CENTS_THRESHOLD = 50.0
"""An estimate within this many cents of the reference is right (a quarter tone)."""


@dataclass(frozen=True)
class PitchMetrics:
    """The measures of the module doc (shares 0-1, cents); None where undefined.

    reference_frames: |R|; both_voiced_frames: |R and E|.
    """

    raw_pitch_accuracy: float | None
    raw_chroma_accuracy: float | None
    f0_error_cents_median: float | None
    octave_error_rate: float | None
    voicing_precision: float | None
    voicing_recall: float | None
    voicing_f1: float | None
    f0_correlation: float | None
    voicing_agreement: float
    reference_frames: int
    both_voiced_frames: int


def cents_error(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """1200 log2(estimate / reference), float64, for positive f0 arrays (Hz)."""
    return 1200.0 * np.log2(
        np.asarray(estimate, dtype=np.float64) / np.asarray(reference, dtype=np.float64)
    )


def pearson(first: np.ndarray, second: np.ndarray) -> float | None:
    """Pearson correlation of two equally long series, or None with fewer than 3
    values or a constant series."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError(
            f"correlation needs two 1-D series of one length, got {a.shape}, {b.shape}"
        )
    if a.shape[0] < 3:
        return None
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    if scale <= 1e-12 * max(1.0, float(np.sum(a * a) + np.sum(b * b))):
        return None
    return float(np.clip(np.sum(a * b) / scale, -1.0, 1.0))


def _share(count: int, total: int) -> float | None:
    return None if total == 0 else count / total


def pitch_metrics(
    reference_f0: np.ndarray,
    reference_voiced: np.ndarray,
    estimate_f0: np.ndarray,
    estimate_voiced: np.ndarray,
    *,
    transpose: float = 0.0,
    threshold_cents: float = CENTS_THRESHOLD,
) -> PitchMetrics:
    """The measures of the module doc for f0 tracks [T] (Hz) and voicing [T] (bool) of
    the source (before the transpose, in semitones) and the conversion; the tracks are
    cut to the shorter one. Raises InputError when a track is empty or a pair of
    arrays differ in length."""
    ref_f0, ref_voiced = np.asarray(reference_f0, np.float64), np.asarray(reference_voiced, bool)
    est_f0, est_voiced = np.asarray(estimate_f0, np.float64), np.asarray(estimate_voiced, bool)
    if ref_f0.shape != ref_voiced.shape or est_f0.shape != est_voiced.shape or ref_f0.ndim != 1:
        raise InputError("each f0 track needs a voicing mask of its own length")
    frames = min(ref_f0.shape[0], est_f0.shape[0])
    if frames == 0:
        raise InputError("nothing to compare: one of the f0 tracks has no frames")
    ref_f0, ref_voiced = ref_f0[:frames] * 2.0 ** (transpose / 12.0), ref_voiced[:frames]
    est_f0, est_voiced = est_f0[:frames], est_voiced[:frames]
    ref_voiced = ref_voiced & (ref_f0 > 0)
    est_voiced = est_voiced & (est_f0 > 0)
    both = ref_voiced & est_voiced
    n_ref, n_est, n_both = int(ref_voiced.sum()), int(est_voiced.sum()), int(both.sum())

    error = np.abs(cents_error(est_f0[both], ref_f0[both])) if n_both else np.zeros(0)
    folded = np.mod(error, 1200.0)
    folded = np.minimum(folded, 1200.0 - folded)
    right = int(np.sum(error <= threshold_cents))
    right_chroma = int(np.sum(folded <= threshold_cents))
    octave_errors = int(np.sum((error > threshold_cents) & (folded <= threshold_cents)))
    correlation = (
        pearson(np.log2(est_f0[both]), np.log2(ref_f0[both])) if n_both else None
    )
    return PitchMetrics(
        raw_pitch_accuracy=_share(right, n_ref),
        raw_chroma_accuracy=_share(right_chroma, n_ref),
        f0_error_cents_median=float(np.median(error)) if n_both else None,
        octave_error_rate=_share(octave_errors, n_both),
        voicing_precision=_share(n_both, n_est),
        voicing_recall=_share(n_both, n_ref),
        voicing_f1=_share(2 * n_both, n_ref + n_est),
        f0_correlation=correlation,
        voicing_agreement=float(np.mean(ref_voiced == est_voiced)),
        reference_frames=n_ref,
        both_voiced_frames=n_both,
    )
