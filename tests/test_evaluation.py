"""Conversion metrics: f0 error in cents, voicing agreement, singer timbre distances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sovits.audio.io import save_audio
from sovits.demo.singer import (
    SINGER_A,
    SINGER_B,
    SingerVoice,
    random_melody,
    synthesize_phrase,
    transposed,
)
from sovits.errors import InputError
from sovits.evaluation import (
    EvaluationSettings,
    cepstral_distance,
    evaluate_conversion,
    timbre_frames,
)

RATE = 16000
FAST = EvaluationSettings(f0_method="dio")


def _clip(
    voice: SingerVoice, seed: int, *, seconds: float = 3.0, transpose: float = 0
) -> np.ndarray:
    notes = random_melody(voice, np.random.default_rng([seed, 0]), seconds=seconds)
    shifted = transposed(notes, transpose)
    wave, _ = synthesize_phrase(voice, shifted, RATE, np.random.default_rng([seed, 1]))
    return wave


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("evaluation")
    waves = {
        "a": _clip(SINGER_A, 0, seconds=2.0),
        "a_up3": _clip(SINGER_A, 0, seconds=2.0, transpose=3),
        "b1": _clip(SINGER_B, 1, seconds=2.0),
        "b2": _clip(SINGER_B, 2, seconds=2.0),
    }
    return {name: save_audio(folder / f"{name}.wav", wave, RATE) for name, wave in waves.items()}


def test_a_file_against_itself_is_perfect(files: dict[str, Path]) -> None:
    result = evaluate_conversion(files["a"], files["a"], settings=FAST)
    assert result.f0_error_cents == 0.0
    assert result.f0_frames > 100
    assert result.voicing_agreement == 1.0
    assert result.distance_to_source == 0.0
    assert result.distance_to_target is None and result.target_to_source is None


def test_a_transposed_rendition_matches_with_the_transpose(files: dict[str, Path]) -> None:
    # the same performance (same generator draws) sung 3 semitones higher
    result = evaluate_conversion(files["a"], files["a_up3"], transpose=3, settings=FAST)
    assert result.f0_error_cents is not None and result.f0_error_cents < 15
    assert result.voicing_agreement > 0.9
    wrong = evaluate_conversion(files["a"], files["a_up3"], transpose=0, settings=FAST)
    assert wrong.f0_error_cents is not None and 280 < wrong.f0_error_cents < 320


def test_harvest_is_the_default_and_json_round_trips(files: dict[str, Path]) -> None:
    result = evaluate_conversion(
        files["a"], files["a_up3"], transpose=3, target_references=[files["b1"], files["b2"]]
    )
    assert result.f0_method == "harvest"
    assert result.f0_error_cents is not None and result.f0_error_cents < 15
    data = json.loads(result.to_json())
    assert data["target_references"] == [str(files["b1"]), str(files["b2"])]
    assert data["transpose"] == 3.0
    assert data["distance_to_target"] == pytest.approx(result.distance_to_target)
    # a singer-A file is much closer to singer A (itself, transposed) than to singer B
    assert result.distance_to_target is not None and result.target_to_source is not None
    assert result.distance_to_target > 2 * result.distance_to_source
    assert "distance to target" in result.to_text()


def test_singers_are_far_apart_on_the_same_melody() -> None:
    """What makes the demo's target meaningful: the demo compares a conversion with
    singer B singing the source's melody. Sung by the two singers, one melody is many
    times further apart than two renditions of it by one singer (other vibrato phase
    and breath noise), for melodies anywhere in singer A's range."""

    def descriptor(voice: SingerVoice, notes: list, seed: int) -> np.ndarray:
        wave, _ = synthesize_phrase(voice, notes, RATE, np.random.default_rng([seed, 1]))
        return timbre_frames(wave, FAST).descriptor()

    within, between = [], []
    for seed in range(4):
        melody = random_melody(SINGER_A, np.random.default_rng([seed, 0]), seconds=3.0)
        a1, a2 = descriptor(SINGER_A, melody, 10 + seed), descriptor(SINGER_A, melody, 20 + seed)
        b1, b2 = descriptor(SINGER_B, melody, 10 + seed), descriptor(SINGER_B, melody, 20 + seed)
        within += [cepstral_distance(a1, a2), cepstral_distance(b1, b2)]
        between += [cepstral_distance(a, b) for a in (a1, a2) for b in (b1, b2)]
    assert min(between) > 5 * max(within)


def test_unusable_input_is_an_input_error(tmp_path: Path) -> None:
    short = save_audio(tmp_path / "short.wav", np.zeros(100, dtype=np.float32), RATE)
    with pytest.raises(InputError):
        evaluate_conversion(short, short, settings=FAST)
    with pytest.raises(InputError):
        evaluate_conversion(tmp_path / "missing.wav", short, settings=FAST)
    with pytest.raises(InputError):
        EvaluationSettings(n_cepstra=0)
    quiet = save_audio(tmp_path / "quiet.wav", np.zeros(RATE, dtype=np.float32), RATE)
    with pytest.raises(InputError, match="unknown f0 method"):
        evaluate_conversion(quiet, quiet, settings=EvaluationSettings(f0_method="nope"))


def test_silence_has_no_f0_error(tmp_path: Path) -> None:
    quiet = save_audio(tmp_path / "quiet.wav", np.zeros(RATE, dtype=np.float32), RATE)
    result = evaluate_conversion(quiet, quiet, settings=FAST)
    assert result.f0_error_cents is None and result.f0_frames == 0
    assert result.voicing_agreement == 1.0
