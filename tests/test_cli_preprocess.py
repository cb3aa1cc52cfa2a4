"""`sovits preprocess-config` and `sovits preprocess`: the seed's commands, run inside a
project folder, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.data.test_preprocess import make_dataset


def _sovits(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sovits.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_the_seed_workflow_inside_a_project_folder(tmp_path: Path) -> None:
    make_dataset(tmp_path, clips_per_speaker=3)
    configured = _sovits("preprocess-config", "--speech_encoder", "spectral", "--vol_aug",
                         cwd=tmp_path)
    assert configured.returncode == 0, configured.stderr
    assert "2 speakers, 2 training clips, 4 validation clips" in configured.stdout
    config = json.loads((tmp_path / "configs" / "config.json").read_text(encoding="utf-8"))
    assert config["model"]["speech_encoder"] == "spectral" and config["model"]["ssl_dim"] == 64
    assert config["model"]["vol_embedding"] and config["spk"] == {"alice": 0, "bob": 1}
    assert (tmp_path / "configs" / "diffusion.yaml").is_file()
    lines = (tmp_path / "filelists" / "train.txt").read_text(encoding="utf-8").splitlines()
    assert all(line.startswith("dataset/44k/") for line in lines)

    first = _sovits("preprocess", "--f0_predictor", "dio", "--num_processes", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "6 clips: 24 features computed" in first.stdout
    assert (tmp_path / "dataset" / "44k" / "bob" / "bob_2.wav.vol.npy").is_file()
    again = _sovits("preprocess", "--f0-predictor", "dio", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 features computed, 24 reused" in again.stdout


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = _sovits("preprocess", "--f0_predictor", "dio", cwd=tmp_path)
    assert missing.returncode == 2
    assert "error: configs/config.json: config file not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    no_data = _sovits("preprocess-config", "--source_dir", "nowhere", cwd=tmp_path)
    assert no_data.returncode == 2 and "dataset folder not found" in no_data.stderr
    make_dataset(tmp_path, clips_per_speaker=1)
    bad_encoder = _sovits("preprocess-config", "--speech-encoder", "vec512", cwd=tmp_path)
    assert bad_encoder.returncode == 2 and "unknown speech encoder 'vec512'" in bad_encoder.stderr
