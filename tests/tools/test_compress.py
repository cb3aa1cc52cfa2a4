"""compress: the original compress_model.py's output, checked against the release
files it wrote for the fixtures, and the same audio as the uncompressed model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.checkpoints import load_synthesizer, read_checkpoint
from sovits.errors import CheckpointError, InputError
from sovits.models.noise import NoiseSource
from sovits.tools.compress import compress_model, default_output_path
from tests.conftest import SOVITS41, load_npz
from tests.tolerance import AUDIO, assert_close

VARIANT = SOVITS41 / "variants" / "f_resblock2_nof0pred"  # the one training checkpoint
CONFIG = VARIANT / "config.json"


def _payload(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _audio(model_path: Path, config: Path | None) -> np.ndarray:
    model, _ = load_synthesizer(model_path, config, fast=False)
    arrays = load_npz(VARIANT / "fixtures.npz")
    with torch.inference_mode():
        out = model.infer(
            torch.from_numpy(arrays["in.c"]),
            torch.from_numpy(arrays["in.f0"]),
            torch.from_numpy(arrays["in.uv"]),
            speaker=torch.from_numpy(arrays["in.sid"]),
            noise_scale=0.4,
            noise=NoiseSource.from_seed(52468),
        )
    return out.audio.numpy()


def test_compressing_the_training_checkpoint_gives_the_original_release(tmp_path: Path) -> None:
    output = tmp_path / "G_0_release.pth"
    result = compress_model(VARIANT / "G_0.pth", output, config=CONFIG)
    assert (result.output, result.kept_keys, result.dropped_keys) == (output, 238, 103)
    ours, reference = _payload(output), _payload(VARIANT / "G_0_release.pth")
    assert list(ours["model"]) == list(reference["model"])
    for key, tensor in reference["model"].items():
        assert ours["model"][key].dtype == tensor.dtype
        assert torch.equal(ours["model"][key], tensor), key
    assert ours["optimizer"] == reference["optimizer"]
    assert (ours["iteration"], ours["learning_rate"]) == (0, 0.0001)
    assert output.stat().st_size < (VARIANT / "G_0.pth").stat().st_size / 4


def test_compressed_model_converts_like_the_training_checkpoint(tmp_path: Path) -> None:
    output = compress_model(VARIANT / "G_0.pth", tmp_path / "small.pth", config=CONFIG).output
    audio = _audio(output, CONFIG)
    np.testing.assert_array_equal(audio, _audio(VARIANT / "G_0.pth", CONFIG))
    expected = load_npz(VARIANT / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, AUDIO, what="infer_ns0.4.audio")

    release = compress_model(VARIANT / "G_0.pth", tmp_path / "small.safetensors",
                             config=CONFIG, release=True)
    assert release.release and read_checkpoint(release.output).container == "sovits-release"
    np.testing.assert_array_equal(_audio(release.output, None), audio)


def test_half_matches_the_original_half_release(tmp_path: Path) -> None:
    folder = SOVITS41 / "variants" / "c_dsconv_share"
    result = compress_model(folder / "G_0_release.pth", tmp_path / "half.pth",
                            config=folder / "config.json", half=True)
    assert result.dtype == "float16"
    ours, reference = _payload(result.output), _payload(folder / "G_0_release_half.pth")
    assert list(ours["model"]) == list(reference["model"])
    for key, tensor in reference["model"].items():
        assert ours["model"][key].dtype == torch.float16
        assert torch.equal(ours["model"][key], tensor), key
    assert ours["optimizer"] == reference["optimizer"]


def test_default_names_and_refusals(tmp_path: Path) -> None:
    assert default_output_path("logs/G_100.pth") == Path("logs/G_100_release.pth")
    assert default_output_path("G_1.pth", half=True) == Path("G_1_release_half.pth")
    assert default_output_path("G_1.pth", release=True) == Path("G_1_release.safetensors")
    source = tmp_path / "G_0.pth"
    shutil.copy(VARIANT / "G_0.pth", source)
    assert compress_model(source, config=CONFIG).output == tmp_path / "G_0_release.pth"
    with pytest.raises(InputError, match="overwrite the input"):
        compress_model(source, source, config=CONFIG)
    with pytest.raises(CheckpointError, match="needs the model's config"):
        compress_model(source, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="does not fit the config"):
        compress_model(source, tmp_path / "x.pth",
                       config=SOVITS41 / "variants" / "b_vol" / "config.json")
    assert not (tmp_path / "x.pth").exists()
