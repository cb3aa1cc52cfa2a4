"""Paths in every command: -o makes missing folders, errors name the user's paths
(never a temporary name), a folder where a file is expected says so, ranges are checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits import cli
from tests.conftest import SOVITS41

MODEL = SOVITS41 / "variants" / "a_default" / "G_0_release.pth"


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    time = np.arange(8000) / 16000
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 200 * time)).astype(np.float32), 16000)
    return path


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the console entry point (SovitsError -> one line, exit 2)."""
    monkeypatch.setattr(sys, "argv", ["sovits", *args])
    try:
        cli.main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_output_folders_are_made(
    tone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    curve = tmp_path / "new" / "folder" / "x.csv"
    assert _main(monkeypatch, "f0", str(tone), "-m", "pm", "-o", str(curve)) == 0
    assert curve.is_file()
    release = tmp_path / "deep" / "er" / "small.pth"
    config = MODEL.parent / "config.json"
    assert _main(monkeypatch, "compress", str(MODEL), "-c", str(config), "-o",
                 str(release)) == 0
    assert release.is_file()


def test_write_errors_name_the_users_path(
    tone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    assert _main(monkeypatch, "f0", str(tone), "-m", "pm", "-o",
                 str(blocker / "x.csv")) == 2
    line = _error(capsys)
    assert str(blocker) in line and ".tmp" not in line
    (tmp_path / "taken.csv").mkdir()
    assert _main(monkeypatch, "f0", str(tone), "-m", "pm", "-o",
                 str(tmp_path / "taken.csv")) == 2
    line = _error(capsys)
    assert str(tmp_path / "taken.csv") in line and ".tmp" not in line


def test_a_folder_given_as_audio_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "some" / "folder"
    folder.mkdir(parents=True)
    assert _main(monkeypatch, "f0", str(folder), "-m", "pm", "-o",
                 str(tmp_path / "x.csv")) == 2
    assert "is a folder, expected an audio file" in _error(capsys)
    config = tmp_path / "config.json"
    data = json.loads((MODEL.parent / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    config.write_text(json.dumps(data))
    assert _main(monkeypatch, "infer", "-m", str(MODEL), "-c", str(config), "-s", "spk_a",
                 "-n", str(folder), "-o", str(tmp_path / "out")) == 2
    assert "is a folder, expected an audio file" in _error(capsys)


@pytest.mark.parametrize("transpose", ["100", "-49"])
def test_f0_transpose_out_of_range(
    tone: Path, tmp_path: Path, transpose: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "x.csv"
    assert _main(monkeypatch, "f0", str(tone), "-m", "pm", "-t", transpose, "-o",
                 str(output)) == 2
    assert "-48 to 48 semitones" in _error(capsys)
    assert not output.exists()


def test_f0_file_with_one_row_is_refused_by_infer(
    tone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    curve = tmp_path / "one.csv"
    curve.write_text("time_s,f0_hz,voiced\n0,220,1\n")
    config = tmp_path / "config.json"
    data = json.loads((MODEL.parent / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    config.write_text(json.dumps(data))
    assert _main(monkeypatch, "infer", "-m", str(MODEL), "-c", str(config), "-s", "spk_a",
                 "-n", str(tone), "--f0-file", str(curve), "-o", str(tmp_path / "out")) == 2
    assert "only one row" in _error(capsys)


def test_evaluate_transpose_out_of_range(
    tone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _main(monkeypatch, "evaluate", str(tone), str(tone), "-t", "100",
                 "--no-speaker") == 2
    assert "-48 to 48 semitones" in _error(capsys)
