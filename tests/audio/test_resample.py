"""soxr resampling, checked against librosa.resample (what so-vits-svc's resample.py calls)."""

from __future__ import annotations

import numpy as np
import pytest

from sovits.audio.resample import resample
from sovits.errors import InputError


@pytest.mark.parametrize(
    ("length", "from_sr", "to_sr"),
    [(1001, 16000, 44100), (4410, 48000, 44100), (3, 16000, 44100), (2205, 22050, 44100)],
)
def test_matches_librosa_resample_exactly(length: int, from_sr: int, to_sr: int) -> None:
    librosa = pytest.importorskip("librosa")
    wave = np.random.default_rng(length).standard_normal(length).astype(np.float32) * 0.1
    ours = resample(wave, from_sr, to_sr)
    reference = librosa.resample(wave, orig_sr=from_sr, target_sr=to_sr)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, reference)


def test_channels_are_resampled_independently() -> None:
    wave = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    both = resample(wave, 48000, 44100)
    assert both.shape == (2, 919)
    np.testing.assert_allclose(both[1], resample(wave[1], 48000, 44100), atol=1e-6)


def test_equal_rates_and_empty_waves() -> None:
    wave = np.ones(5, dtype=np.float32)
    assert resample(wave, 44100, 44100) is wave
    assert resample(np.zeros(0, dtype=np.float32), 48000, 44100).shape == (0,)


def test_bad_arguments_raise_input_error() -> None:
    with pytest.raises(InputError):
        resample(np.zeros(10, dtype=np.float32), 0, 44100)
    with pytest.raises(InputError):
        resample(np.zeros(10, dtype=np.int16), 16000, 44100)
    with pytest.raises(InputError):
        resample(np.zeros((1, 1, 10), dtype=np.float32), 16000, 44100)
