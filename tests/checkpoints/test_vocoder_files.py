"""Reading openvpi NSF-HiFiGAN folders: strict, safe loading and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sovits.checkpoints.vocoder import load_nsf_hifigan, parse_nsf_hifigan_config
from sovits.errors import CheckpointError, ConfigError, MissingFileError
from sovits.models.noise import ZeroNoise
from sovits.models.nsf_vocoder import NsfHifiganVocoder
from sovits.models.weight_norm import has_weight_norm
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import AUDIO, assert_close

VOCODER = FIXTURES / "sovits41-extras" / "vocoder"
TINY = VOCODER / "nsf_hifigan_tiny"


def copy_folder(tmp_path: Path, source: Path = TINY) -> Path:
    target = tmp_path / "nsf_hifigan"
    shutil.copytree(source, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


@pytest.mark.parametrize("name", ["nsf_hifigan_tiny", "nsf_hifigan_tiny_resblock2"])
@pytest.mark.parametrize("as_file", [False, True])
def test_loads_the_folder_or_its_model_file(name: str, as_file: bool) -> None:
    folder = VOCODER / name
    vocoder = load_nsf_hifigan(folder / "model" if as_file else folder, fast=False)
    assert isinstance(vocoder, NsfHifiganVocoder)
    assert not vocoder.training
    assert (vocoder.sampling_rate, vocoder.hop_length, vocoder.num_mels) == (44100, 512, 128)
    assert vocoder.mel.fmin == 40 and vocoder.mel.fmax == 16000
    assert vocoder.generator.variant == "openvpi"
    # weight norm is folded: a plain buffer per normalised layer, g and v kept
    conv_pre = vocoder.generator.conv_pre
    assert has_weight_norm(conv_pre) and "weight" in conv_pre._buffers
    arrays = load_npz(VOCODER / f"{name}_infer.npz")
    audio = vocoder.infer(
        torch.from_numpy(arrays["mel"]), torch.from_numpy(arrays["f0"]), noise=ZeroNoise()
    )
    assert_close(audio, arrays["audio_nonoise"][:, 0], AUDIO, what="audio_nonoise")


def test_fast_and_unfolded_options() -> None:
    vocoder = load_nsf_hifigan(TINY, fold=False, fast=True, mel_type="nsf-hifigan-log10")
    assert vocoder.generator.fast_cpu_inference
    assert vocoder.mel_type == "nsf-hifigan-log10"
    assert "weight" not in vocoder.generator.conv_pre._buffers


def test_missing_folder_says_where_to_put_it_and_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as error:
        load_nsf_hifigan(tmp_path / "pretrain" / "nsf_hifigan")
    message = str(error.value)
    assert "pretrain/nsf_hifigan" in message and "SOVITS_HOME" in message
    assert "nsf_hifigan_20221211.zip" in message
    assert message.startswith(str(tmp_path / "pretrain" / "nsf_hifigan"))


def test_missing_model_file_and_missing_config(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    (folder / "config.json").unlink()
    with pytest.raises(MissingFileError, match=r"config\.json"):
        load_nsf_hifigan(folder)
    (folder / "model").unlink()
    with pytest.raises(MissingFileError, match="model file"):
        load_nsf_hifigan(folder)


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04broken"])
def test_corrupt_model_file(tmp_path: Path, content: bytes) -> None:
    folder = copy_folder(tmp_path)
    (folder / "model").write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_nsf_hifigan(folder)
    assert str(folder / "model") in str(error.value)


def test_truncated_model_file(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    data = (TINY / "model").read_bytes()
    (folder / "model").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_nsf_hifigan(folder)


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    torch.save({"generator": {}, "hook": Path("x")}, folder / "model")
    with pytest.raises(CheckpointError, match="refused"):
        load_nsf_hifigan(folder)


def test_file_without_generator_entry(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    state = torch.load(TINY / "model", weights_only=True)["generator"]
    torch.save(state, folder / "model")
    with pytest.raises(CheckpointError, match="'generator'"):
        load_nsf_hifigan(folder)


def test_bad_keys_are_named(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    state = dict(torch.load(TINY / "model", weights_only=True)["generator"])
    del state["conv_post.bias"]
    state["cond.weight"] = torch.zeros(32, 4, 1)
    torch.save({"generator": state}, folder / "model")
    with pytest.raises(CheckpointError) as error:
        load_nsf_hifigan(folder)
    message = str(error.value)
    assert "conv_post.bias" in message and "cond.weight" in message


def test_weights_for_another_config_are_refused(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    shutil.copy(VOCODER / "nsf_hifigan_tiny_resblock2" / "model", folder / "model")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_nsf_hifigan(folder)


def test_config_problems(tmp_path: Path) -> None:
    folder = copy_folder(tmp_path)
    config = json.loads((TINY / "config.json").read_text())
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config"):
        load_nsf_hifigan(folder)
    broken = {key: value for key, value in config.items() if key != "hop_size"}
    with pytest.raises(ConfigError, match="hop_size"):
        parse_nsf_hifigan_config(broken)
    with pytest.raises(ConfigError, match="multiply"):
        parse_nsf_hifigan_config({**config, "hop_size": 256})
    with pytest.raises(ConfigError, match="num_mels"):
        parse_nsf_hifigan_config({**config, "num_mels": "128"})
    with pytest.raises(ConfigError, match="resblock"):
        parse_nsf_hifigan_config({**config, "resblock": "3"})


def test_config_parsing_reads_only_the_keys_the_original_reads() -> None:
    config = json.loads((TINY / "config.json").read_text())
    arguments, mel = parse_nsf_hifigan_config({**config, "something_new": 1})
    assert arguments["in_channels"] == 128 and arguments["gin_channels"] == 0
    assert arguments["upsample_initial_channel"] == 32
    assert mel.win_length == 2048 and mel.n_fft == 2048
    _, no_top = parse_nsf_hifigan_config({**config, "fmax": None})
    assert no_top.fmax is None
