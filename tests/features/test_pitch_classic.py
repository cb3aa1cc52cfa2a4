"""pm, dio and harvest against the original predictors' steps, re-derived here directly
from praat-parselmouth / pyworld calls and numpy (so-vits-svc 4.1's PMF0Predictor,
DioF0Predictor, HarvestF0Predictor `compute_f0_uv`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sovits.errors import InputError
from sovits.features.pitch.base import PitchExtractor, PitchTrack
from sovits.features.pitch.classic import DioExtractor, HarvestExtractor, PmExtractor

parselmouth = pytest.importorskip("parselmouth")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pyworld = pytest.importorskip("pyworld")


def _tone(sample_rate: int, seconds: float = 0.6) -> np.ndarray:
    """A 180 -> 260 Hz harmonic glide with 0.1 s of silence at both ends."""
    count = int(sample_rate * seconds)
    f0 = np.linspace(180.0, 260.0, count)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = sum(0.2 / k * np.sin(k * phase) for k in range(1, 8))
    edge = int(0.1 * sample_rate)
    wave[:edge] = 0.0
    wave[-edge:] = 0.0
    return np.asarray(wave, dtype=np.float32)


def _interpolate(f0: np.ndarray, hop: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The predictors' interpolate_f0, written out for frames with >= 2 voiced values."""
    voiced = f0 > 0
    points = np.nonzero(f0)[0]
    point_times = hop / sample_rate * points.astype(np.float32)
    frame_times = np.arange(len(f0)) * hop / sample_rate
    values = f0[points]
    filled = np.interp(frame_times, point_times, values, left=values[0], right=values[-1])
    return filled, voiced


def _resize(f0: np.ndarray, frames: int) -> np.ndarray:
    source = np.array(f0)
    source[source < 0.001] = np.nan
    positions = np.arange(0, len(source) * frames, len(source)) / frames
    return np.nan_to_num(np.interp(positions, np.arange(len(source)), source))


def _assert_track(track: PitchTrack, f0: np.ndarray, voiced: np.ndarray) -> None:
    assert track.f0.dtype == np.float32 and track.voiced.dtype == np.bool_
    np.testing.assert_array_equal(track.f0, f0.astype(np.float32))
    np.testing.assert_array_equal(track.voiced, voiced)


@pytest.mark.parametrize(("sample_rate", "hop"), [(44100, 512), (16000, 160), (32000, 320)])
def test_pm_matches_the_original_steps(sample_rate: int, hop: int) -> None:
    wave = _tone(sample_rate)
    frames = len(wave) // hop
    raw = (
        parselmouth.Sound(wave, sample_rate)
        .to_pitch_ac(
            time_step=hop / sample_rate, voicing_threshold=0.6, pitch_floor=50, pitch_ceiling=1100
        )
        .selected_array["frequency"]
    )
    left = (frames - len(raw) + 1) // 2
    padded = np.pad(raw, [[left, frames - len(raw) - left]])
    expected = _interpolate(padded, hop, sample_rate)
    track = PmExtractor().extract(wave, sample_rate, hop)
    assert len(track) == frames and track.hop_length == hop
    _assert_track(track, *expected)
    assert not track.voiced[:3].any() and track.voiced[frames // 2]


@pytest.mark.parametrize("method", ["dio", "harvest"])
@pytest.mark.parametrize(("sample_rate", "hop"), [(44100, 512), (16000, 160)])
def test_world_methods_match_the_original_steps(method: str, sample_rate: int, hop: int) -> None:
    wave = _tone(sample_rate)
    audio = wave.astype(np.double)
    analyse = pyworld.dio if method == "dio" else pyworld.harvest
    raw, times = analyse(
        audio, fs=sample_rate, f0_floor=50, f0_ceil=1100, frame_period=1000 * hop / sample_rate
    )
    raw = pyworld.stonemask(audio, raw, times, sample_rate)
    if method == "dio":
        # the original rounds element by element with round(value, 1) on numpy floats
        raw = np.array([round(value, 1) for value in raw])
    frames = len(wave) // hop + 1  # a p_len other than the default works the same way
    expected = _interpolate(_resize(raw, frames), hop, sample_rate)
    extractor = DioExtractor() if method == "dio" else HarvestExtractor()
    track = extractor.extract(wave, sample_rate, hop, n_frames=frames)
    _assert_track(track, *expected)
    assert 180 < np.median(track.f0[track.voiced]) < 260


def test_pm_pads_symmetrically_and_cuts_to_the_frame_count() -> None:
    wave = _tone(16000)
    praat_frames = len(PmExtractor().raw_f0(wave, 16000, 160))
    wanted = len(wave) // 160
    assert praat_frames < wanted
    track = PmExtractor().extract(wave, 16000, 160, n_frames=praat_frames - 2)
    assert len(track) == praat_frames - 2
    # a large hop makes Praat's (centred) frames as many as the wave's hops
    assert len(PmExtractor().extract(wave, 16000, 2000, n_frames=2)) == 2


@pytest.mark.parametrize("extractor_class", [PmExtractor, DioExtractor, HarvestExtractor])
def test_a_wave_shorter_than_the_analysis_window_is_unvoiced(extractor_class: type) -> None:
    wave = _tone(16000)[1600:2400]  # 50 ms: Praat needs 3 periods of 50 Hz (60 ms)
    track = extractor_class().extract(wave, 16000, 160)
    assert len(track) == 5
    assert track.f0.dtype == np.float32


@pytest.mark.parametrize("extractor_class", [PmExtractor, DioExtractor, HarvestExtractor])
def test_silence_is_all_unvoiced(extractor_class: type) -> None:
    extractor = extractor_class()
    assert isinstance(extractor, PitchExtractor)
    track = extractor.extract(np.zeros(16000, dtype=np.float32), 16000, 160)
    assert len(track) == 100
    assert not track.voiced.any()
    np.testing.assert_array_equal(track.f0, np.zeros(100, dtype=np.float32))


def test_f0_range_limits_the_search() -> None:
    wave = _tone(16000)
    limited = DioExtractor(f0_min=300.0, f0_max=1100.0).extract(wave, 16000, 160)
    assert np.all(limited.f0[limited.voiced] >= 290)


@pytest.mark.parametrize("extractor_class", [PmExtractor, DioExtractor, HarvestExtractor])
def test_bad_input(extractor_class: type) -> None:
    with pytest.raises(InputError):
        extractor_class(f0_min=500.0, f0_max=100.0)
    extractor = extractor_class()
    with pytest.raises(InputError, match="mono"):
        extractor.extract(np.zeros((2, 4000), dtype=np.float32), 16000, 160)
    with pytest.raises(InputError, match="floating"):
        extractor.extract(np.zeros(4000, dtype=np.int16), 16000, 160)
    with pytest.raises(InputError, match="too short"):
        extractor.extract(np.zeros(100, dtype=np.float32), 16000, 160)
