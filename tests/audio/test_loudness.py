"""Loudness and true peak: BS.1770 reference values, pyloudnorm as the independent meter,
and an independent oversampling estimate (scipy) for the true-peak ceiling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import resample_poly

from sovits.audio.loudness import (
    amplitude_to_db,
    integrated_loudness,
    normalize_loudness,
    true_peak,
)
from sovits.errors import InputError

pyloudnorm = pytest.importorskip("pyloudnorm")

RATE = 48000


def _sine(frequency: float, amplitude: float, seconds: float, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32)


def _independent_true_peak_db(wave: np.ndarray) -> float:
    """8x polyphase oversampling with scipy (not the code under test's soxr)."""
    upsampled = resample_poly(np.asarray(wave, dtype=np.float64), 8, 1)
    return amplitude_to_db(max(float(np.max(np.abs(upsampled))), float(np.max(np.abs(wave)))))


def _speech_like(seconds: float = 3.0) -> np.ndarray:
    """Noise bursts with a slow envelope: a signal with real dynamics."""
    rng = np.random.default_rng(7)
    t = np.arange(round(seconds * RATE)) / RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) ** 2
    return (0.05 * envelope * rng.standard_normal(t.shape[0])).astype(np.float32)


def test_full_scale_997_hz_sine_reads_minus_3_lufs() -> None:
    # BS.1770: a 0 dBFS 997 Hz sine in one channel measures -3.01 LKFS
    assert integrated_loudness(_sine(997.0, 1.0, 5.0), RATE) == pytest.approx(-3.01, abs=0.05)


def test_true_peak_finds_the_peak_between_samples() -> None:
    # fs/4 with a 45 degree phase: every sample sits at 0.707 of the true peak (-3 dB)
    wave = _sine(RATE / 4, 0.5, 0.5, phase=math.pi / 4)
    sample_peak_db = amplitude_to_db(float(np.max(np.abs(wave))))
    assert sample_peak_db == pytest.approx(amplitude_to_db(0.5) - 3.01, abs=0.01)
    assert amplitude_to_db(true_peak(wave, RATE)) == pytest.approx(amplitude_to_db(0.5), abs=0.1)
    assert true_peak(np.zeros(100, dtype=np.float32), RATE) == 0.0


def test_normalised_loudness_matches_the_target_on_pyloudnorm() -> None:
    wave = _speech_like()
    result = normalize_loudness(wave, RATE, target_lufs=-23.0, true_peak_ceiling=-1.0)
    assert not result.limited
    assert result.wave.dtype == np.float32 and result.wave.shape == wave.shape
    meter = pyloudnorm.Meter(RATE)
    assert result.loudness_lufs == pytest.approx(meter.integrated_loudness(wave.astype(np.float64)))
    measured = meter.integrated_loudness(result.wave.astype(np.float64))
    assert measured == pytest.approx(-23.0, abs=0.01)
    assert result.output_lufs == pytest.approx(-23.0)


def test_true_peak_ceiling_holds_the_gain_back() -> None:
    # quiet noise with a few loud clicks: reaching -10 LUFS would push the clicks far over
    wave = _speech_like() * 0.2
    wave[RATE // 2 :: RATE // 3] = 0.5
    result = normalize_loudness(wave, RATE, target_lufs=-10.0, true_peak_ceiling=-1.0)
    assert result.limited
    assert result.true_peak_dbtp == pytest.approx(-1.0, abs=1e-6)
    assert _independent_true_peak_db(result.wave) <= -1.0 + 0.05
    measured = pyloudnorm.Meter(RATE).integrated_loudness(result.wave.astype(np.float64))
    assert measured < -10.0
    assert measured == pytest.approx(result.output_lufs, abs=0.01)


def test_silence_gets_no_gain_and_no_nan() -> None:
    silence = np.zeros(RATE, dtype=np.float32)
    assert integrated_loudness(silence, RATE) == -math.inf
    result = normalize_loudness(silence, RATE)
    assert result.gain_db == 0.0 and not result.limited
    assert result.loudness_lufs == -math.inf
    np.testing.assert_array_equal(result.wave, silence)
    # below the -70 LUFS absolute gate counts as silence too
    whisper = _speech_like() * 1e-5
    assert normalize_loudness(whisper, RATE).gain_db == 0.0


def test_too_short_clip_is_only_peak_capped() -> None:
    short = _sine(440.0, 0.5, 0.2)
    result = normalize_loudness(short, RATE)
    assert result.loudness_lufs is None and result.gain_db == 0.0
    np.testing.assert_array_equal(result.wave, short)
    hot = _sine(440.0, 1.0, 0.2)
    capped = normalize_loudness(hot, RATE, true_peak_ceiling=-6.0)
    assert capped.limited and capped.gain_db < 0
    assert _independent_true_peak_db(capped.wave) <= -6.0 + 0.05
    with pytest.raises(InputError, match="too short"):
        integrated_loudness(short, RATE)


def test_bad_input_raises_input_error() -> None:
    with pytest.raises(InputError, match="NaN"):
        normalize_loudness(np.array([0.0, np.nan] * RATE, dtype=np.float32), RATE)
    with pytest.raises(InputError, match="mono"):
        normalize_loudness(np.zeros((2, RATE), dtype=np.float32), RATE)
    with pytest.raises(InputError, match="finite"):
        normalize_loudness(np.zeros(RATE, dtype=np.float32), RATE, target_lufs=math.inf)
