"""Conversion measures on constructed cases with known answers, folder mode, bad input."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
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
    Evaluator,
    evaluate_conversion,
    evaluate_folders,
    match_pairs,
    pitch_metrics,
    resolve_f0_method,
    summarise,
)
from sovits.evaluation.conversion import EvaluationResult
from sovits.evaluation.folders import table_csv, transpose_from_name
from tests.assets import missing_asset
from tests.tolerance import INTERMEDIATE, Tolerance, assert_close

RATE = 16000
NO_SPEAKER = EvaluationSettings(speaker_similarity=False)
CENTS_OF_A_METHOD = Tolerance("CENTS_OF_A_METHOD", rtol=0.0, atol=3.0)
"""An f0 method's error on a steady synthetic tone (measured: under 2 cents)."""


def tone(frequency: float, seconds: float = 1.5, *, level: float = 0.3) -> np.ndarray:
    """A harmonic tone with 0.2 s of silence at both ends."""
    time = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * k * frequency * time) / k for k in range(1, 10))
    gap = np.zeros(int(0.2 * RATE))
    return np.concatenate([gap, level * wave / 2, gap]).astype(np.float32)


def sing(
    voice: SingerVoice, seed: int, *, transpose: float = 0, melody_seed: int = 0
) -> np.ndarray:
    notes = random_melody(SINGER_A, np.random.default_rng([melody_seed, 0]), seconds=3.0)
    wave, _ = synthesize_phrase(
        voice, transposed(notes, transpose), RATE, np.random.default_rng([seed, 1])
    )
    return wave


@pytest.fixture
def resemblyzer() -> None:
    """Skip (or, under SOVITS_REQUIRE_ASSETS, fail) without Resemblyzer's weights."""
    if importlib.util.find_spec("resemblyzer") is None:
        missing_asset("Resemblyzer's weights: pip install --no-deps resemblyzer==0.1.4")


needs_speaker = pytest.mark.usefixtures("resemblyzer")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("evaluation")
    waves = {
        "tone": tone(220.0),
        "tone_25_cents": tone(220.0 * 2 ** (25 / 1200)),
        "tone_up3": tone(220.0 * 2 ** (3 / 12)),
        "tone_octave": tone(440.0),
        "silence": np.zeros(2 * RATE, dtype=np.float32),
        "a": sing(SINGER_A, 1),
        "a_again": sing(SINGER_A, 2),  # the same melody, sung again by singer A
        "b": sing(SINGER_B, 3),  # the same melody by singer B
        "b_other": sing(SINGER_B, 4, melody_seed=5),  # another melody by singer B
    }
    return {name: save_audio(folder / f"{name}.wav", wave, RATE) for name, wave in waves.items()}


# ------------------------------------------------------------------ pitch measures


def test_pitch_measures_of_tracks_with_known_errors() -> None:
    reference = np.full(100, 220.0)
    voiced = np.ones(100, dtype=bool)
    shifted = pitch_metrics(reference, voiced, reference * 2 ** (30 / 1200), voiced)
    assert_close(shifted.f0_error_cents_median, 30.0, INTERMEDIATE, what="30 cents")
    assert shifted.raw_pitch_accuracy == 1.0 and shifted.octave_error_rate == 0.0
    wrong = pitch_metrics(reference, voiced, reference * 2 ** (70 / 1200), voiced)
    assert wrong.raw_pitch_accuracy == 0.0 and wrong.raw_chroma_accuracy == 0.0
    octave = pitch_metrics(reference, voiced, reference * 2, voiced)
    assert octave.raw_pitch_accuracy == 0.0 and octave.raw_chroma_accuracy == 1.0
    assert octave.octave_error_rate == 1.0
    assert_close(octave.f0_error_cents_median, 1200.0, INTERMEDIATE, what="an octave")
    # the transpose moves the reference: +3 semitones expected, +3 sung
    moved = pitch_metrics(reference, voiced, reference * 2 ** 0.25, voiced, transpose=3)
    assert_close(moved.f0_error_cents_median, 0.0, INTERMEDIATE, what="transposed")


def test_voicing_measures_and_correlation() -> None:
    glide = 200.0 * 2 ** (np.arange(10) / 12)
    reference_voiced = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    estimate_voiced = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0, 0], dtype=bool)
    result = pitch_metrics(glide, reference_voiced, glide * 1.01, estimate_voiced)
    # 4 frames voiced in both, 6 in the reference, 6 in the estimate
    assert (result.both_voiced_frames, result.reference_frames) == (4, 6)
    assert_close(result.voicing_precision, 4 / 6, INTERMEDIATE, what="precision")
    assert_close(result.voicing_recall, 4 / 6, INTERMEDIATE, what="recall")
    assert_close(result.voicing_f1, 8 / 12, INTERMEDIATE, what="F1")
    assert_close(result.raw_pitch_accuracy, 4 / 6, INTERMEDIATE, what="RPA")
    assert_close(result.f0_correlation, 1.0, INTERMEDIATE, what="correlation")


def test_undefined_pitch_measures_are_none_not_nan() -> None:
    f0 = np.full(50, 300.0)
    nothing = np.zeros(50, dtype=bool)
    result = pitch_metrics(f0, nothing, f0, nothing)
    assert result.raw_pitch_accuracy is None and result.f0_error_cents_median is None
    assert result.voicing_f1 is None and result.f0_correlation is None
    assert result.voicing_agreement == 1.0
    flat = pitch_metrics(f0, ~nothing, f0, ~nothing)
    assert flat.f0_correlation is None  # no variation: undefined, not NaN
    with pytest.raises(InputError, match="no frames"):
        pitch_metrics(f0[:0], nothing[:0], f0, nothing)


# --------------------------------------------------------------------- whole files


def test_a_tone_shifted_by_known_cents(files: dict[str, Path]) -> None:
    result = evaluate_conversion(files["tone"], files["tone_25_cents"], settings=NO_SPEAKER)
    assert result.f0_method == resolve_f0_method("auto")
    assert_close(result.f0_error_cents_median, 25.0, CENTS_OF_A_METHOD, what="25 cents")
    assert result.raw_pitch_accuracy == 1.0 and result.octave_error_rate == 0.0
    transposed_right = evaluate_conversion(
        files["tone"], files["tone_up3"], transpose=3, settings=NO_SPEAKER
    )
    assert_close(transposed_right.f0_error_cents_median, 0.0, CENTS_OF_A_METHOD, what="+3")
    octave = evaluate_conversion(files["tone"], files["tone_octave"], settings=NO_SPEAKER)
    assert octave.raw_pitch_accuracy == 0.0 and octave.raw_chroma_accuracy == 1.0
    assert octave.octave_error_rate == 1.0


@needs_speaker
def test_a_file_against_itself_is_perfect(files: dict[str, Path]) -> None:
    result = evaluate_conversion(files["a"], files["a"])
    assert result.raw_pitch_accuracy == 1.0 and result.voicing_f1 == 1.0
    assert result.f0_error_cents_median == 0.0 and result.octave_error_rate == 0.0
    assert_close(result.f0_correlation, 1.0, INTERMEDIATE, what="f0 correlation")
    assert_close(result.loudness_correlation, 1.0, INTERMEDIATE, what="loudness correlation")
    assert_close(result.speaker_similarity_to_source, 1.0, INTERMEDIATE, what="similarity")
    assert result.distance_to_source == 0.0 and result.warnings == ()
    assert result.speaker_similarity_to_target is None and result.distance_to_target is None


@needs_speaker
def test_two_singers_against_the_same_one(files: dict[str, Path]) -> None:
    evaluator = Evaluator(target_references=[files["b_other"]])
    by_a = evaluator.evaluate(files["a"], files["a_again"])
    by_b = evaluator.evaluate(files["a"], files["b"])
    # the melody is kept either way
    assert by_a.raw_pitch_accuracy is not None and by_a.raw_pitch_accuracy > 0.9
    assert by_b.raw_pitch_accuracy is not None and by_b.raw_pitch_accuracy > 0.9
    # singer A again sounds like the source, singer B like the target singer
    assert by_a.speaker_similarity_to_source is not None
    assert by_b.speaker_similarity_to_source is not None
    assert by_a.speaker_similarity_to_source > by_b.speaker_similarity_to_source
    assert by_b.speaker_similarity_to_target is not None
    assert by_b.speaker_similarity_to_target > by_b.speaker_similarity_to_source
    assert by_a.speaker_similarity_to_target is not None
    assert by_a.speaker_similarity_to_source > by_a.speaker_similarity_to_target
    assert by_b.target_similarity_to_source == by_a.target_similarity_to_source


def test_a_silent_conversion_says_so_without_nan(files: dict[str, Path]) -> None:
    result = evaluate_conversion(files["tone"], files["silence"], settings=NO_SPEAKER)
    assert result.raw_pitch_accuracy == 0.0 and result.voicing_recall == 0.0
    assert result.f0_error_cents_median is None and result.loudness_correlation is None
    assert result.silent_fraction == 1.0
    assert any("converted file is silent" in w for w in result.warnings)
    json.dumps(result.to_dict(), allow_nan=False)  # no NaN anywhere
    source_silent = evaluate_conversion(files["silence"], files["tone"], settings=NO_SPEAKER)
    assert source_silent.raw_pitch_accuracy is None
    assert any("source is silent" in w for w in source_silent.warnings)


def test_clipping_is_measured_at_the_files_rate(tmp_path: Path, files: dict[str, Path]) -> None:
    loud = np.clip(4 * tone(220.0), -1.0, 1.0)
    path = save_audio(tmp_path / "loud.wav", loud, RATE)
    result = evaluate_conversion(files["tone"], path, settings=NO_SPEAKER)
    expected = float(np.mean(np.abs(loud) >= 0.999))
    assert expected > 0.01
    assert_close(result.clipped_fraction, expected, INTERMEDIATE, what="clipped share")
    assert any("clipped" in w for w in result.warnings)


def test_bad_input_is_one_clear_error(tmp_path: Path, files: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="audio file not found"):
        evaluate_conversion(files["tone"], tmp_path / "nope.wav", settings=NO_SPEAKER)
    short = save_audio(tmp_path / "short.wav", np.zeros(100, dtype=np.float32), RATE)
    with pytest.raises(InputError, match="too short"):
        evaluate_conversion(files["tone"], short, settings=NO_SPEAKER)
    with pytest.raises(InputError, match="unknown f0 method"):
        Evaluator(EvaluationSettings(f0_method="nope", speaker_similarity=False))
    with pytest.raises(InputError, match="n_cepstra"):
        EvaluationSettings(n_cepstra=50)


# --------------------------------------------------------------------- folder mode


def test_pairs_are_matched_by_name(tmp_path: Path) -> None:
    sources, converted = tmp_path / "in", tmp_path / "out"
    for name in ("song.wav", "song_b.wav", "solo.flac", "lonely.wav", "notes.txt"):
        (sources / name).parent.mkdir(exist_ok=True)
        (sources / name).write_bytes(b"")
    names = ("song_3key_alice_sovits_pm.flac", "song_b_-2key_x_sovits_pm.wav", "solo.wav",
             "stray.wav")  # fmt: skip
    for name in names:
        (converted / name).parent.mkdir(exist_ok=True)
        (converted / name).write_bytes(b"")
    pairs, lonely_sources, stray = match_pairs(sources, converted)
    found = {(p.source.name, p.converted.name, p.transpose) for p in pairs}
    assert found == {
        ("song.wav", "song_3key_alice_sovits_pm.flac", 3.0),
        ("song_b.wav", "song_b_-2key_x_sovits_pm.wav", -2.0),  # the longest name wins
        ("solo.flac", "solo.wav", None),
    }
    assert [p.name for p in lonely_sources] == ["lonely.wav"]
    assert [p.name for p in stray] == ["stray.wav"]
    assert transpose_from_name("song", "song_0.5key_x") == 0.5
    assert transpose_from_name("song", "songbird_3key") is None


def test_nothing_to_pair_and_duplicate_names_are_errors(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.wav").write_bytes(b"")
    (tmp_path / "b" / "y.wav").write_bytes(b"")
    with pytest.raises(InputError, match="no converted file matches a source by name"):
        match_pairs(tmp_path / "a", tmp_path / "b")
    (tmp_path / "a" / "x.flac").write_bytes(b"")
    with pytest.raises(InputError, match="two sources share the name 'x'"):
        match_pairs(tmp_path / "a", tmp_path / "b")
    with pytest.raises(InputError, match="folder not found"):
        match_pairs(tmp_path / "missing", tmp_path / "b")


def test_summary_means_and_intervals_of_known_numbers() -> None:
    def result(error: float | None, accuracy: float | None) -> EvaluationResult:
        return EvaluationResult(
            name="x", source="s", converted="c", target_references=(), transpose=0.0,
            f0_method="dio", f0_error_cents_median=error, raw_pitch_accuracy=accuracy,
        )  # fmt: skip

    summary = summarise([result(18.0, 0.5), result(20.0, 1.0), result(22.0, None)])
    errors = summary["f0_error_cents_median"]
    half = 4.302652729911275 * 2.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert errors.count == 3
    assert_close(
        [errors.mean, errors.ci95_low, errors.ci95_high], [20.0, 20.0 - half, 20.0 + half],
        INTERMEDIATE, what="mean and interval",
    )  # fmt: skip
    accuracy = summary["raw_pitch_accuracy"]
    assert accuracy.count == 2 and accuracy.ci95_high == 1.0  # cut to the range of a share
    nothing = summary["speaker_similarity_to_target"]
    assert (nothing.mean, nothing.ci95_low, nothing.count) == (None, None, 0)
    one = summarise([result(10.0, 0.5)])["f0_error_cents_median"]
    assert (one.mean, one.ci95_low, one.count) == (10.0, None, 1)


def test_folders_give_a_table_with_messages_and_no_nan(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    sources, converted = tmp_path / "sources", tmp_path / "converted"
    sources.mkdir()
    converted.mkdir()
    for name in ("tone", "silence", "a"):
        (sources / f"{name}.wav").write_bytes(files[name].read_bytes())
    (converted / "tone_0key_b_sovits_pm.wav").write_bytes(files["tone_25_cents"].read_bytes())
    (converted / "silence.wav").write_bytes(files["silence"].read_bytes())
    (converted / "a.wav").write_bytes(b"not audio")
    (converted / "extra.wav").write_bytes(files["tone"].read_bytes())
    done: list[str] = []
    table = evaluate_folders(
        sources,
        converted,
        settings=NO_SPEAKER,
        progress=lambda i, n, name: done.append(f"{i}/{n} {name}"),
    )
    assert done == ["1/3 a", "2/3 silence", "3/3 tone_0key_b_sovits_pm"]
    broken, silent, good = table.results
    assert broken.error is not None and broken.raw_pitch_accuracy is None
    assert silent.error is None and silent.f0_error_cents_median is None
    assert_close(good.f0_error_cents_median, 25.0, CENTS_OF_A_METHOD, what="25 cents")
    assert table.unmatched_converted == ("extra.wav",) and table.unmatched_sources == ()
    messages = "\n".join(table.messages())
    assert "no source for converted file extra.wav" in messages
    assert "a: not evaluated" in messages and "silence: the source is silent" in messages
    summary = table.summary_dict()
    assert summary["pairs"] == 3 and summary["evaluated"] == 2
    assert summary["raw_pitch_accuracy"]["count"] == 1  # the silent source has none
    lines = table.json_lines()
    assert [json.loads(line)["type"] for line in lines] == ["pair"] * 3 + ["summary"]
    for line in lines:
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    text = (table.write(tmp_path / "table.csv")).read_text()
    assert "nan" not in text.lower()
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["name"] for r in rows] == [
        "a", "silence", "tone_0key_b_sovits_pm", "mean", "ci95_low", "ci95_high", "count",
    ]  # fmt: skip
    assert rows[1]["f0_error_cents_median"] == "" and rows[2]["transpose"] == "0"
    data = json.loads(table.write(tmp_path / "table.json").read_text())
    assert len(data["pairs"]) == 3 and data["summary"]["type"] == "summary"
    assert table_csv(table.results).count("\n") == 4  # header + 3 rows, no summary
