"""`sovits evaluate`: text by default, JSON on stdout with --json, tables with -o,
pictures with --plot; files or folders."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sovits import cli
from sovits.audio.io import save_audio
from sovits.demo.singer import SINGER_A, SINGER_B, held_out_melody, synthesize_phrase, transposed
from tests.assets import missing_asset

RATE = 16000
INTERFACE_KEYS = {
    "f0_error_cents_median",
    "raw_pitch_accuracy",
    "raw_chroma_accuracy",
    "octave_error_rate",
    "voicing_f1",
    "f0_correlation",
    "loudness_correlation",
    "speaker_similarity_to_target",
    "speaker_similarity_to_source",
}


@pytest.fixture
def resemblyzer() -> None:
    """Skip (or, under SOVITS_REQUIRE_ASSETS, fail) without Resemblyzer's weights."""
    if importlib.util.find_spec("resemblyzer") is None:
        missing_asset("Resemblyzer's weights: pip install --no-deps resemblyzer==0.1.4")


needs_speaker = pytest.mark.usefixtures("resemblyzer")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    paths = {}
    melody = held_out_melody(SINGER_A, note_seconds=0.12)
    for name, voice, shift in (("a", SINGER_A, 0), ("b", SINGER_B, 0), ("b_up2", SINGER_B, 2)):
        notes = transposed(melody, shift)
        wave, _ = synthesize_phrase(voice, notes, RATE, np.random.default_rng(0))
        paths[name] = save_audio(folder / f"{name}.wav", wave, RATE)
    return paths


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, ["evaluate", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@needs_speaker
def test_json_prints_one_object_with_the_interface_keys(clips: dict[str, Path]) -> None:
    code, out, _ = run(str(clips["a"]), str(clips["b"]), "--target-ref", str(clips["b_up2"]),
                       "-t", "0", "--json")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert set(data) >= INTERFACE_KEYS
    assert data["speaker_similarity_to_target"] > data["speaker_similarity_to_source"]
    assert data["raw_pitch_accuracy"] > 0.9 and data["target_references"] == [str(clips["b_up2"])]


def test_text_report_and_tables_written_with_o(clips: dict[str, Path], tmp_path: Path) -> None:
    table = tmp_path / "out" / "metrics.csv"
    code, out, err = run(str(clips["a"]), str(clips["a"]), "-m", "dio", "--no-speaker",
                         "-o", str(table))  # fmt: skip
    assert code == 0
    assert "raw pitch accuracy:   100.0 %" in out and "median error:         0.00 cents" in out
    assert "speaker similarity" not in out
    assert f"metrics written to {table}" in err
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert rows[0]["raw_pitch_accuracy"] == "1" and rows[0]["f0_method"] == "dio"
    folder = tmp_path / "tables"
    run(str(clips["a"]), str(clips["a"]), "-m", "dio", "--no-speaker", "-o", str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.csv", "metrics.json"]


def test_plot_draws_a_png_beside_the_table(clips: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    code, _, err = run(str(clips["a"]), str(clips["b"]), "--no-speaker", "--plot",
                       "-o", str(tmp_path / "m.json"))  # fmt: skip
    assert code == 0
    picture = tmp_path / "plots" / "b.png"
    assert picture.read_bytes()[:4] == b"\x89PNG" and "plot written" in err


def test_folders_print_json_lines_and_name_unmatched_files(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    sources, converted = tmp_path / "in", tmp_path / "out"
    sources.mkdir()
    converted.mkdir()
    (sources / "song.wav").write_bytes(clips["a"].read_bytes())
    (sources / "alone.wav").write_bytes(clips["a"].read_bytes())
    (converted / "song_2key_b_sovits_pm.flac").write_bytes(clips["b_up2"].read_bytes())
    (converted / "stray.wav").write_bytes(clips["b"].read_bytes())
    code, out, err = run(str(sources), str(converted), "--no-speaker", "--json")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["type"] for o in objects] == ["pair", "summary"]
    pair, summary = objects
    assert pair["transpose"] == 2.0  # read from the name
    assert pair["raw_pitch_accuracy"] > 0.9
    assert summary["raw_pitch_accuracy"]["mean"] == pair["raw_pitch_accuracy"]
    assert summary["unmatched_sources"] == ["alone.wav"]
    assert "no source for converted file stray.wav" in err
    code, out, _ = run(str(sources), str(converted), "--no-speaker")
    assert "95 % confidence intervals over 1 pairs" in out


def test_bad_input_is_one_error_line(clips: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["evaluate", str(clips["a"]), str(tmp_path / "no.wav"),
                                          "--no-speaker"])  # fmt: skip
    assert result.exit_code != 0 and "audio file not found" in str(result.exception)
    result = CliRunner().invoke(cli.app, ["evaluate", str(clips["a"]), str(tmp_path),
                                          "--no-speaker"])  # fmt: skip
    assert "both be files or both be folders" in str(result.exception)
    result = CliRunner().invoke(cli.app, ["evaluate", str(clips["a"]), str(clips["a"]),
                                          "--plot"])  # fmt: skip
    assert "--plot writes pictures beside the table" in str(result.exception)
