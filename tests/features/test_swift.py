"""SwiftF0 (`-f0p swift`): the swift-f0 wheel's network run by sovits, same contract as
the other extractors. Accuracy on known signals is in test_pitch_accuracy.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sovits.errors import InputError, MissingFileError
from sovits.features.pitch import swift
from sovits.features.pitch.registry import PITCH_METHODS, create_pitch_extractor
from sovits.inference.options import ConvertOptions
from tests.assets import missing_asset


@pytest.fixture(autouse=True)
def _swift_installed() -> None:
    if not (importlib.util.find_spec("swift_f0") and importlib.util.find_spec("onnxruntime")):
        missing_asset('swift-f0 is not installed (pip install "sovits[eval]")')


def tone(frequency: float, seconds: float, rate: int) -> np.ndarray:
    time = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * k * frequency * time) / k for k in range(1, 8))
    return (0.2 * wave).astype(np.float32)


def test_swift_is_a_registered_method_that_options_accept() -> None:
    assert "swift" in PITCH_METHODS
    extractor = create_pitch_extractor("swift")
    assert isinstance(extractor, swift.SwiftExtractor) and extractor.name == "swift"
    assert ConvertOptions(speaker="a", f0_method="swift").f0_method == "swift"


@pytest.mark.parametrize(("rate", "hop"), [(16000, 160), (44100, 512), (32000, 320)])
def test_a_steady_tone_is_found_on_the_callers_frames(rate: int, hop: int) -> None:
    track = create_pitch_extractor("swift").extract(tone(220.0, 1.0, rate), rate, hop)
    assert len(track) == rate // hop and track.sample_rate == rate and track.hop_length == hop
    inner = slice(5, len(track) - 5)
    assert track.voiced[inner].all()
    cents = 1200 * np.abs(np.log2(track.f0[inner] / 220.0))
    assert np.median(cents) < 5.0


def test_n_frames_and_silence_follow_the_contract() -> None:
    extractor = create_pitch_extractor("swift")
    silence = extractor.extract(np.zeros(16000, dtype=np.float32), 16000, 160, n_frames=77)
    assert len(silence) == 77
    assert not silence.voiced.any() and not silence.f0.any()
    # a note between silences: unvoiced frames are filled from the voiced neighbours
    wave = np.concatenate([np.zeros(8000), tone(330.0, 0.5, 16000), np.zeros(8000)])
    track = extractor.extract(wave.astype(np.float32), 16000, 160)
    assert not track.voiced[:40].any() and track.voiced[60:90].all()
    assert np.all(track.f0 > 300) and np.all(track.f0 < 360)


def test_long_audio_in_windows_equals_the_package() -> None:
    from swift_f0 import SwiftF0

    rng = np.random.default_rng(0)
    wave = np.concatenate([tone(f, 2.0, 16000) for f in rng.uniform(100, 600, 17)])  # 34 s
    ours = swift.SwiftExtractor(f0_min=60.0, f0_max=900.0)
    pitch, confidence = ours.analyse(wave)
    reference = SwiftF0(threads=1).detect(wave, 16000, fmin=60.0, fmax=900.0)
    assert len(pitch) == len(reference.pitch_hz) == len(wave) // 256
    np.testing.assert_allclose(pitch, reference.pitch_hz, rtol=1e-6)
    np.testing.assert_allclose(confidence, reference.confidence, atol=1e-6)


def test_the_threshold_decides_voicing() -> None:
    wave = tone(200.0, 1.0, 16000)
    always = swift.SwiftExtractor(threshold=0.0).extract(wave, 16000, 160)
    never = swift.SwiftExtractor(threshold=1.0).extract(wave, 16000, 160)
    assert always.voiced.all() and never.voiced.sum() < len(never) // 2


def test_bad_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="f0_min < f0_max"):
        swift.SwiftExtractor(f0_min=900.0, f0_max=100.0)
    with pytest.raises(InputError, match="confidence in 0-1"):
        swift.SwiftExtractor(threshold=2.0)
    with pytest.raises(InputError, match="accepts"):
        create_pitch_extractor("swift", device="cuda")


def test_without_the_package_the_error_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(swift.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingFileError, match=r"sovits\[eval\]"):
        create_pitch_extractor("swift")
