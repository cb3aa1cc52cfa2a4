"""`sovits resample`, `sovits slice` and `sovits qc`: seed defaults and aliases, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

from tests.conftest import SOVITS41


def _sovits(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sovits.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def _tone(seconds: float, rate: int, frequency: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_resample_with_the_seed_defaults_inside_a_project_folder(tmp_path: Path) -> None:
    speaker = tmp_path / "dataset_raw" / "alice"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "a.wav", _tone(1.0, 48000), 48000)
    soundfile.write(speaker / "b.flac", _tone(1.0, 22050), 22050)
    result = _sovits("resample", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 written" in result.stdout
    for name in ("a.wav", "b.wav"):
        info = soundfile.info(tmp_path / "dataset" / "44k" / "alice" / name)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
    again = _sovits("resample", cwd=tmp_path)
    assert again.returncode == 0 and "2 already done" in again.stdout


def test_resample_seed_options_and_a_bad_file(tmp_path: Path) -> None:
    speaker = tmp_path / "raw" / "bob"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "good.wav", _tone(1.0, 16000), 16000)
    (speaker / "bad.wav").write_bytes(b"not audio at all")
    result = _sovits(
        "resample",
        "--in_dir",
        str(tmp_path / "raw"),
        "--out_dir2",
        str(tmp_path / "out"),
        "--sr2",
        "22050",
        "--skip_loudnorm",
    )
    assert result.returncode == 1
    assert "1 written" in result.stdout and "1 failed" in result.stdout
    assert "bad.wav" in result.stderr and "Traceback" not in result.stderr
    assert soundfile.info(tmp_path / "out" / "bob" / "good.wav").samplerate == 22050


def test_resample_of_a_missing_folder_is_one_error_line(tmp_path: Path) -> None:
    result = _sovits("resample", "--in-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "dataset folder not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_slice_with_audio_slicer_option_names(tmp_path: Path) -> None:
    phrase = _tone(3.0, 16000)
    source = tmp_path / "long.wav"
    soundfile.write(source, np.concatenate([phrase, np.zeros(8000, np.float32), phrase]), 16000)
    result = _sovits(
        "slice",
        str(source),
        "--out",
        str(tmp_path / "clips"),
        "--db_thresh",
        "-40",
        "--min_length",
        "2000",
        "--min_interval",
        "300",
        "--hop_size",
        "10",
        "--max_sil_kept",
        "200",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == ["long_0.wav", "long_1.wav"]
    bad = _sovits("slice", str(source), "-o", str(tmp_path / "x"), "--min-length", "100")
    assert bad.returncode == 2 and "min_length >= min_interval" in bad.stderr


def test_qc_writes_text_and_png_beside_the_dataset(tmp_path: Path) -> None:
    speaker = tmp_path / "dataset" / "44k" / "alice"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "a.wav", _tone(3.0, 44100), 44100)
    soundfile.write(speaker / "b.wav", _tone(0.5, 44100), 44100)
    result = _sovits("qc", "--f0-method", "none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 clips, 1 too short" in result.stdout
    folder = tmp_path / "dataset" / "44k_qc"
    assert (folder / "report.txt").read_text().startswith("sovits dataset QC")
    assert (folder / "report.png").read_bytes()[:4] == b"\x89PNG"
    # nothing was added inside the dataset folder (the seed's preprocessing lists it)
    assert sorted(p.name for p in (tmp_path / "dataset" / "44k").iterdir()) == ["alice"]


def test_resample_takes_the_rate_from_a_config(tmp_path: Path) -> None:
    config = json.loads((SOVITS41 / "variants" / "a_default" / "config.json").read_text())
    config["data"]["sampling_rate"] = 32000
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    speaker = tmp_path / "raw" / "alice"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "a.wav", _tone(1.0, 48000), 48000)
    out = tmp_path / "out"
    raw = str(tmp_path / "raw")
    result = _sovits("resample", "--in-dir", raw, "--out-dir", str(out), "-c", str(config_path))
    assert result.returncode == 0, result.stderr
    assert soundfile.info(out / "alice" / "a.wav").samplerate == 32000


def test_slice_and_resample_json_is_one_job_object(tmp_path: Path) -> None:
    phrase = _tone(3.0, 16000)
    source = tmp_path / "long.wav"
    soundfile.write(source, np.concatenate([phrase, np.zeros(8000, np.float32), phrase]), 16000)
    clips = tmp_path / "clips"
    result = _sovits("slice", str(source), "--output", str(clips), "--min-length", "2000",
                     "--json")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert (view["kind"], view["state"], view["error"]) == ("slice", "done", None)
    assert view["results"] == [str(clips.resolve())]
    assert view["report"] == {"sources": 1, "clips": 2, "empty": 0, "failed": 0, "ok": True}
    assert view["params"]["min_length_ms"] == 2000

    speaker = tmp_path / "raw" / "bob"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "good.wav", _tone(1.0, 16000), 16000)
    (speaker / "bad.wav").write_bytes(b"not audio at all")
    out = tmp_path / "out"
    result = _sovits("resample", "--in-dir", str(tmp_path / "raw"), "-o", str(out),
                     "--skip-loudnorm", "--json")
    assert result.returncode == 1  # a file failed: the object says so, the status too
    view = json.loads(result.stdout)
    assert view["state"] == "done" and view["report"]["failed"] == 1
    assert any("bad.wav" in line for line in view["log"])
    missing = _sovits("resample", "--in-dir", str(tmp_path / "nowhere"), "--json")
    assert missing.returncode == 2 and missing.stderr == ""
    view = json.loads(missing.stdout)
    assert view["state"] == "failed" and "dataset folder not found" in view["error"]["message"]
