"""`sovits evaluate`: prints the conversion metrics and writes them as JSON on request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sovits import cli
from sovits.audio.io import save_audio
from sovits.demo.singer import SINGER_A, SINGER_B, held_out_melody, synthesize_phrase

RATE = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    paths = {}
    for voice in (SINGER_A, SINGER_B):
        notes = held_out_melody(voice, note_seconds=0.12)
        wave, _ = synthesize_phrase(voice, notes, RATE, np.random.default_rng(0))
        paths[voice.name] = save_audio(folder / f"{voice.name}.wav", wave, RATE)
    return paths


def test_prints_the_metrics_and_writes_json(clips: dict[str, Path], tmp_path: Path) -> None:
    source, target = clips["singer_a"], clips["singer_b"]
    report = tmp_path / "out" / "metrics.json"
    args = ["evaluate", str(source), str(source), "--target-ref", str(target), "-m", "dio"]
    result = CliRunner().invoke(cli.app, [*args, "--transpose", "0", "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert "f0 error:           0.00 cents" in result.output
    assert "voicing agreement:  100.0 %" in result.output
    assert "distance to source: 0.00 dB" in result.output
    assert "distance to target:" in result.output
    data = json.loads(report.read_text())
    assert data["f0_error_cents"] == 0.0
    assert data["f0_method"] == "dio"
    assert data["target_references"] == [str(target)]
    assert data["distance_to_target"] > 1.0


def test_without_references_there_is_no_target_distance(clips: dict[str, Path]) -> None:
    source = str(clips["singer_a"])
    result = CliRunner().invoke(cli.app, ["evaluate", source, source, "-m", "dio", "-t", "2"])
    assert result.exit_code == 0, result.output
    assert "distance to target" not in result.output
    assert "transpose 2" in result.output


def test_a_missing_file_is_one_error_line(tmp_path: Path, clips: dict[str, Path]) -> None:
    missing = tmp_path / "nope.wav"
    result = CliRunner().invoke(cli.app, ["evaluate", str(clips["singer_a"]), str(missing)])
    assert result.exit_code != 0
    assert "audio file not found" in str(result.exception)
