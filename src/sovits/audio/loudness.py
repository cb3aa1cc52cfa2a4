"""Loudness (ITU-R BS.1770-4 via pyloudnorm), true peak, and normalisation to a target.

Integrated loudness is pyloudnorm's K-weighted, gated measurement (400 ms blocks, 75 %
overlap, -70 LUFS absolute and -10 LU relative gates). True peak follows BS.1770-4
Annex 2: the largest magnitude of the signal oversampled 4 times (soxr's high-quality
linear-phase filter stands in for the recommendation's 48-tap interpolator), never
below the sample peak.

`normalize_loudness` applies one gain so the integrated loudness reaches the target,
reduced where needed so the true peak stays at or below a ceiling. The default target
is -23 LUFS (EBU R 128): a level that leaves about 22 dB of headroom under a -1 dBTP
ceiling, so singing with a high crest factor almost always reaches the target without
being held back by its peaks, and every clip of a dataset ends up equally loud. (The
seed's resample.py instead scales every clip to a 0 dBFS sample peak, which its README
warns can harm the sound.) Silent or too-short signals get no loudness gain (never an
infinite one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sovits.errors import InputError

__all__ = [
    "DEFAULT_TARGET_LUFS",
    "DEFAULT_TRUE_PEAK_DBTP",
    "LOUDNESS_BLOCK_SECONDS",
    "TRUE_PEAK_OVERSAMPLING",
    "LoudnessResult",
    "amplitude_to_db",
    "integrated_loudness",
    "normalize_loudness",
    "true_peak",
]

DEFAULT_TARGET_LUFS = -23.0
"""Default integrated loudness target, LUFS (EBU R 128)."""
DEFAULT_TRUE_PEAK_DBTP = -1.0
"""Default true-peak ceiling, dBTP (EBU R 128's maximum for production)."""
LOUDNESS_BLOCK_SECONDS = 0.4
"""BS.1770 gating block: shorter signals have no integrated loudness."""
TRUE_PEAK_OVERSAMPLING = 4
"""Oversampling factor of the true-peak estimate (BS.1770-4 Annex 2)."""


def amplitude_to_db(amplitude: float) -> float:
    """20 log10(amplitude), -inf for 0."""
    return 20.0 * math.log10(amplitude) if amplitude > 0 else -math.inf


def _mono_float64(wave: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(wave)
    if array.ndim != 1:
        raise InputError(f"{name} needs a mono wave of shape [N], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name} needs float samples, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: the wave contains NaN or infinite samples")
    return np.asarray(array, dtype=np.float64)


def integrated_loudness(wave: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of a mono wave (float [N] at `sample_rate` Hz), in LUFS.

    -inf when no 400 ms block is louder than the -70 LUFS absolute gate (silence).
    Raises InputError when the wave is shorter than one block (0.4 s), and when
    pyloudnorm is not installed.
    """
    audio = _mono_float64(wave, "integrated_loudness")
    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    if audio.shape[0] < LOUDNESS_BLOCK_SECONDS * sample_rate:
        raise InputError(
            f"{audio.shape[0] / sample_rate:.3f} s of audio is too short to measure its "
            f"loudness (BS.1770 needs at least {LOUDNESS_BLOCK_SECONDS} s)"
        )
    try:
        import pyloudnorm
    except ImportError as error:
        raise InputError(
            "loudness measurement needs the pyloudnorm package", hint="pip install pyloudnorm"
        ) from error
    if not np.any(audio):
        return -math.inf
    meter = pyloudnorm.Meter(sample_rate, block_size=LOUDNESS_BLOCK_SECONDS)
    loudness = float(meter.integrated_loudness(audio))
    return loudness if math.isfinite(loudness) else -math.inf


def true_peak(
    wave: np.ndarray, sample_rate: int, *, oversampling: int = TRUE_PEAK_OVERSAMPLING
) -> float:
    """True peak of a mono wave (float [N] at `sample_rate` Hz) as a linear amplitude.

    The largest |x| of the wave oversampled `oversampling` times with soxr, or the
    sample peak when that is larger; 0 for an empty or all-zero wave.
    """
    import soxr

    audio = _mono_float64(wave, "true_peak")
    if sample_rate <= 0 or oversampling < 1:
        raise InputError(
            f"need a positive sample rate and oversampling, got {sample_rate}, {oversampling}"
        )
    if audio.shape[0] == 0:
        return 0.0
    sample_peak = float(np.max(np.abs(audio)))
    if oversampling == 1 or sample_peak == 0.0:
        return sample_peak
    upsampled = soxr.resample(audio, sample_rate, sample_rate * oversampling, quality="soxr_hq")
    return max(sample_peak, float(np.max(np.abs(upsampled))))


@dataclass(frozen=True)
class LoudnessResult:
    """A wave after `normalize_loudness`, with what was measured and done.

    wave: the normalised wave, same shape and dtype as the input.
    loudness_lufs: integrated loudness of the input, LUFS; None when it could not be
        measured (shorter than 0.4 s) and -inf for silence.
    true_peak_dbtp: true peak of the output, dBTP (-inf for silence).
    gain_db: the gain applied, dB.
    limited: True when the true-peak ceiling held the gain below what the loudness
        target asked for (the output is then quieter than the target).
    """

    wave: np.ndarray
    loudness_lufs: float | None
    true_peak_dbtp: float
    gain_db: float
    limited: bool

    @property
    def output_lufs(self) -> float | None:
        """Integrated loudness of the output, LUFS (None when it could not be measured)."""
        if self.loudness_lufs is None:
            return None
        return self.loudness_lufs + self.gain_db


def normalize_loudness(
    wave: np.ndarray,
    sample_rate: int,
    *,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_ceiling: float = DEFAULT_TRUE_PEAK_DBTP,
) -> LoudnessResult:
    """Scale a mono wave (float [N] at `sample_rate` Hz) to `target_lufs` LUFS.

    One gain for the whole wave: target - measured loudness, lowered when the true peak
    would otherwise exceed `true_peak_ceiling` dBTP. A silent wave (loudness -inf) is
    returned unchanged; a wave too short to measure (< 0.4 s) only gets the reduction
    that its true-peak ceiling needs. Raises InputError for a bad wave or rate, or a
    target / ceiling that is not finite.
    """
    if not (math.isfinite(target_lufs) and math.isfinite(true_peak_ceiling)):
        raise InputError(
            f"loudness target and true-peak ceiling must be finite, got {target_lufs} LUFS "
            f"and {true_peak_ceiling} dBTP"
        )
    array = np.asarray(wave)
    audio = _mono_float64(array, "normalize_loudness")
    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    loudness: float | None
    if audio.shape[0] < LOUDNESS_BLOCK_SECONDS * sample_rate:
        loudness = None
    else:
        loudness = integrated_loudness(audio, sample_rate)
    peak_db = amplitude_to_db(true_peak(audio, sample_rate))
    if loudness is not None and math.isinf(loudness):
        return LoudnessResult(array, loudness, peak_db, 0.0, False)
    wanted = 0.0 if loudness is None else target_lufs - loudness
    allowed = true_peak_ceiling - peak_db  # +inf for an all-zero wave
    limited = wanted > allowed
    gain_db = min(wanted, allowed)
    if gain_db == 0.0:
        return LoudnessResult(array, loudness, peak_db, 0.0, False)
    scale = 10.0 ** (gain_db / 20.0)
    output = (audio * scale).astype(array.dtype, copy=False)
    return LoudnessResult(output, loudness, peak_db + gain_db, gain_db, limited)
