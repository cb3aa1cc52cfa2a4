"""`sovits train` end to end on a tiny preprocessed dataset in the seed's folder layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sovits.audio.io import save_audio
from sovits.checkpoints import read_checkpoint
from sovits.cli import app
from sovits.features.store import encode_feature, feature_path
from sovits.training import trainer as trainer_module
from sovits.training.checkpointing import find_checkpoints, model_dir_for
from tests.training.tiny import tiny_config, tiny_discriminator

CLIPS_PER_SPEAKER = 3
FRAMES = 40


def _write_dataset(root: Path) -> None:
    """dataset/44k/<speaker>/<clip>.wav with units and f0 as `sovits preprocess` leaves them,
    filelists/{train,val}.txt and configs/config.json."""
    config = tiny_config(batch_size=2, eval_interval=2, log_interval=1)
    data = config.to_dict()
    data["data"]["training_files"] = "filelists/train.txt"
    data["data"]["validation_files"] = "filelists/val.txt"
    (root / "configs").mkdir()
    (root / "configs" / "config.json").write_text(json.dumps(data), encoding="utf-8")
    hop, rate = config.data.hop_length, config.data.sampling_rate
    generator = np.random.default_rng(0)
    lines = []
    for speaker in config.spk:
        folder = root / "dataset" / "44k" / speaker
        folder.mkdir(parents=True)
        for index in range(CLIPS_PER_SPEAKER):
            wav = folder / f"{speaker}_{index}.wav"
            pitch = 180.0 + 60.0 * index
            time_axis = np.arange(FRAMES * hop) / rate
            save_audio(wav, (0.3 * np.sin(2 * np.pi * pitch * time_axis)).astype(np.float32), rate)
            units = torch.from_numpy(generator.standard_normal((config.model.ssl_dim, FRAMES // 2)))
            feature_path(wav, "content").write_bytes(encode_feature("content", units.float()))
            f0 = np.full(FRAMES, pitch, dtype=np.float32)
            feature_path(wav, "f0").write_bytes(encode_feature("f0", (f0, np.ones(FRAMES))))
            lines.append(f"./dataset/44k/{speaker}/{wav.name}")
    (root / "filelists").mkdir()
    (root / "filelists" / "train.txt").write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    (root / "filelists" / "val.txt").write_text(lines[0] + "\n", encoding="utf-8")


@pytest.fixture
def seed_layout(tmp_path, monkeypatch) -> Path:
    _write_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    # the real 47 M-parameter discriminator is too slow for a CPU test
    monkeypatch.setattr(trainer_module, "build_discriminator", tiny_discriminator)
    return tmp_path


def test_train_runs_stops_and_resumes_in_the_seed_layout(seed_layout: Path):
    runner = CliRunner()
    command = ["train", "-m", "44k", "--max-steps", "3", "--accelerator", "cpu",
               "--num-workers", "0"]
    first = runner.invoke(app, command)
    assert first.exit_code == 0, first.output
    model_dir = seed_layout / "logs" / "44k"
    assert "steps 0..2" in first.output
    assert sorted(find_checkpoints(model_dir)["G"]) == [0, 2]
    assert (model_dir / "config.json").is_file() and (model_dir / "train.log").is_file()
    assert list(model_dir.glob("events.out.tfevents.*"))

    command[command.index("3")] = "5"
    second = runner.invoke(app, [*command, "--json"])  # the API's job object, alone
    assert second.exit_code == 0, second.output
    view = json.loads(second.stdout)
    assert (view["kind"], view["state"], view["error"]) == ("train", "done", None)
    assert view["report"] == {"first_step": 3, "last_step": 4, "stopped_by": "max_steps"}
    assert view["results"] == [str(model_dir.resolve())]
    assert view["log"][-1].endswith("steps 3..4 (stopped: max_steps)")
    steps = find_checkpoints(model_dir)
    assert sorted(steps["G"]) == sorted(steps["D"]) == [0, 2, 4]
    for paths in steps.values():
        for path in paths.values():
            read_checkpoint(path)
    assert "resuming (G_2.pth)" in (model_dir / "train.log").read_text(encoding="utf-8")


def test_train_refuses_to_start_over_a_corrupt_checkpoint(seed_layout: Path):
    model_dir = seed_layout / "logs" / "44k"
    model_dir.mkdir(parents=True)
    (model_dir / "G_4.pth").write_bytes(b"not a checkpoint")
    (model_dir / "D_4.pth").write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(
        app, ["train", "--max-steps", "6", "--accelerator", "cpu", "--num-workers", "0"]
    )
    assert result.exit_code != 0
    assert "G_4.pth" in str(result.exception)
    assert sorted(find_checkpoints(model_dir)["G"]) == [4]


def test_model_names_and_paths():
    assert model_dir_for("44k") == Path("logs/44k")
    assert model_dir_for("./runs/alto") == Path("runs/alto")
    assert model_dir_for("/data/alto") == Path("/data/alto")
    with pytest.raises(ValueError):
        model_dir_for(" ")


def test_the_cli_imports_no_training_machinery_at_startup():
    heavy = ("torch", "lightning_fabric", "torch.utils.tensorboard", "sovits.training.trainer")
    code = (
        "import sys, sovits.cli; "
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
