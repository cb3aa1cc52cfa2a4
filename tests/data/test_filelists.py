"""`preprocess_config`: the train / val split, the filelists, config.json and
diffusion.yaml, as so-vits-svc's preprocess_flist_config.py makes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from sovits.config import load_svc_config, template_config
from sovits.data.filelists import (
    build_diffusion_config,
    build_svc_config,
    diffusion_template,
    preprocess_config,
    read_filelist,
    split_dataset,
    write_filelist,
)
from sovits.errors import ConfigError, InputError


def _wav(path: Path, seconds: float, rate: int = 44100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.zeros(round(seconds * rate), dtype=np.float32), rate)


def make_dataset(root: Path) -> Path:
    """nen: 5 clips + one too short + junk; paimon: 2 clips; yunhao: none."""
    dataset = root / "dataset" / "44k"
    for index in range(5):
        _wav(dataset / "nen" / f"n{index}.wav", 0.5)
    _wav(dataset / "nen" / "short.wav", 0.2)
    _wav(dataset / "nen" / ".hidden.wav", 0.5)
    (dataset / "nen" / "notes.txt").write_text("x")
    (dataset / "nen" / "n0.wav.soft.pt").write_bytes(b"x")
    _wav(dataset / "paimon" / "p 0.wav", 0.5)
    _wav(dataset / "paimon" / "p1.wav", 0.5)
    (dataset / "yunhao").mkdir()
    (dataset / "stray.txt").write_text("not a speaker")
    return dataset


def test_split_follows_the_seed_rules(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    split = split_dataset(dataset, seed=7)
    assert dict(split.speakers) == {"nen": 0, "paimon": 1, "yunhao": 2}
    prefix = str(dataset)
    nen = {f"{prefix}/nen/n{index}.wav" for index in range(5)}
    paimon = {f"{prefix}/paimon/p 0.wav", f"{prefix}/paimon/p1.wav"}
    assert set(split.train) | set(split.val) == nen | paimon
    assert len(set(split.val) & nen) == 2 and len(set(split.val) & paimon) == 1
    assert len(split.train) == 4
    assert [problem.path.name for problem in split.skipped] == ["short.wav"]
    notes = " | ".join(split.notes)
    assert "p 0.wav: characters outside" in notes
    assert "'paimon' has 2 clip(s): 1 for validation, 1 for training" in notes
    assert "'yunhao' has no usable clip" in notes
    assert split_dataset(dataset, seed=7) == split
    assert len(split_dataset(dataset, seed=None).val) == 3


def test_split_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dataset folder not found"):
        split_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no speaker folders"):
        split_dataset(tmp_path / "empty")


def test_filelists_round_trip_in_the_seed_format(tmp_path: Path) -> None:
    lines = ["./dataset/44k/nen/a.wav", "./dataset/44k/nen/b.wav"]
    path = write_filelist(lines, tmp_path / "l.txt")
    assert path.read_text(encoding="utf-8") == "./dataset/44k/nen/a.wav\n./dataset/44k/nen/b.wav\n"
    (tmp_path / "old.txt").write_text("a\\b.wav|nen|text\n\n  c.wav  \n", encoding="utf-8")
    assert read_filelist(tmp_path / "old.txt") == ["a/b.wav", "c.wav"]
    with pytest.raises(InputError, match="filelist not found"):
        read_filelist(tmp_path / "none.txt")


@pytest.mark.parametrize(
    ("encoder", "tiny", "widths"),
    [
        ("vec768l12", False, (768, 768, 768)),
        ("vec256l9", False, (256, 768, 256)),
        ("hubertsoft", True, (256, 512, 256)),
        ("whisper-ppg", False, (1024, 1024, 1024)),
        ("whisper-ppg-large", True, (1280, 512, 1280)),
        ("vec256l9-onnx", False, (256, 768, 768)),
        ("spectral", False, (64, 768, 768)),
    ],
)
def test_config_widths_per_encoder(encoder: str, tiny: bool, widths: tuple[int, int, int]) -> None:
    config = build_svc_config({"a": 0, "b": 1}, speech_encoder=encoder, tiny=tiny)
    model = config.model
    assert (model.ssl_dim, model.filter_channels, model.gin_channels) == widths
    assert model.speech_encoder == encoder and model.n_speakers == 2
    assert dict(config.spk) == {"a": 0, "b": 1}
    assert model.use_depthwise_conv == tiny
    assert not model.vol_embedding and not config.train.vol_aug


def test_config_options_and_errors() -> None:
    config = build_svc_config({"a": 0}, vol_aug=True, training_files="lists/t.txt")
    assert config.train.vol_aug and config.model.vol_embedding
    assert config.data.training_files == "lists/t.txt"
    assert config.data.validation_files == "filelists/val.txt"
    with pytest.raises(InputError, match="unknown speech encoder"):
        build_svc_config({"a": 0}, speech_encoder="vec512")
    with pytest.raises(ConfigError, match="no speakers"):
        build_svc_config({})
    base = build_svc_config({"a": 0}, base=template_config(tiny=True))
    assert base.model.upsample_initial_channel == 400


def test_diffusion_config_from_the_template() -> None:
    template = diffusion_template()
    assert template["model"]["timesteps"] == 1000 and template["infer"]["method"] == "dpm-solver++"
    template["spk"]["x"] = 1
    assert diffusion_template()["spk"] == {"nyaru": 0}
    config = build_svc_config({"a": 0, "b": 1}, speech_encoder="hubertsoft")
    diffusion = build_diffusion_config(config.spk, config)
    assert diffusion["model"]["n_spk"] == 2 and diffusion["spk"] == {"a": 0, "b": 1}
    assert diffusion["data"]["encoder"] == "hubertsoft"
    assert diffusion["data"]["encoder_out_channels"] == 256
    assert diffusion["data"]["training_files"] == "filelists/train.txt"


def test_preprocess_config_writes_the_four_files(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    report = preprocess_config(
        dataset,
        train_list=tmp_path / "lists" / "train.txt",
        val_list=tmp_path / "lists" / "val.txt",
        config_path=tmp_path / "configs" / "config.json",
        speech_encoder="vec256l9",
        vol_aug=True,
        seed=3,
    )
    assert report.summary() == "3 speakers, 4 training clips, 3 validation clips, 1 left out"
    train = read_filelist(report.train_list)
    assert sorted(train) == sorted(report.split.train)
    config = load_svc_config(report.config_path)
    assert config == report.config
    assert config.data.training_files == (tmp_path / "lists" / "train.txt").as_posix()
    assert config.model.ssl_dim == 256 and config.model.vol_embedding
    assert report.diffusion_config_path == tmp_path / "configs" / "diffusion.yaml"
    diffusion = yaml.safe_load(report.diffusion_config_path.read_text(encoding="utf-8"))
    assert diffusion["spk"] == {"nen": 0, "paimon": 1, "yunhao": 2}
    assert diffusion["data"]["encoder"] == "vec256l9"
    assert list(diffusion) == ["data", "model", "device", "vocoder", "infer", "env", "train", "spk"]


def test_preprocess_config_uses_the_seed_defaults_in_a_project_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    report = preprocess_config()
    for name in ("filelists/train.txt", "filelists/val.txt", "configs/config.json",
                 "configs/diffusion.yaml"):
        assert (tmp_path / name).is_file()
    assert all(line.startswith("dataset/44k/") for line in read_filelist("filelists/val.txt"))
    assert report.config.data.training_files == "filelists/train.txt"
    assert report.config.model.speech_encoder == "vec768l12"
