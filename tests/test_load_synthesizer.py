"""Loading so-vits-svc model files end to end: config + checkpoint -> synthesizer -> audio.

Every form of G_*.pth must give the original's audio (fixture `infer_ns0.4.audio`,
default seed), and a checkpoint that does not fit its config must fail clearly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.checkpoints import (
    load_synthesizer,
    read_checkpoint,
    write_release,
    write_training_checkpoint,
)
from sovits.config import load_svc_config
from sovits.errors import CheckpointError
from sovits.models.noise import NoiseSource, ReplayNoise
from tests.conftest import SOVITS41, VARIANTS, load_npz
from tests.models.synth_factory import recorded_draws
from tests.tolerance import AUDIO, HALF_AUDIO, assert_close

FAST = AUDIO
"""The loader turns on the decoder's fast CPU path (a different op order); the exact
path is compared with the plain audio tolerance in tests/models and below."""


def _variant(variant: str) -> Path:
    return SOVITS41 / "variants" / variant


def _convert(
    model_path: Path, config_path: Path | None, variant: str, *, fast: bool = True
) -> np.ndarray:
    model, _ = load_synthesizer(model_path, config_path, fast=fast)
    arrays = load_npz(_variant(variant) / "fixtures.npz")
    volume = torch.from_numpy(arrays["in.vol"]) if "in.vol" in arrays else None
    with torch.inference_mode():
        out = model.infer(
            torch.from_numpy(arrays["in.c"]),
            torch.from_numpy(arrays["in.f0"]),
            torch.from_numpy(arrays["in.uv"]),
            speaker=torch.from_numpy(arrays["in.sid"]),
            noise_scale=0.4,
            volume=volume,
            noise=NoiseSource.from_seed(52468),
        )
    return out.audio.numpy()


@pytest.mark.parametrize("variant", VARIANTS)
def test_release_file_and_config_give_the_original_audio(variant: str) -> None:
    folder = _variant(variant)
    audio = _convert(folder / "G_0_release.pth", folder / "config.json", variant)
    expected = load_npz(_variant(variant) / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, FAST, what="infer_ns0.4.audio")


@pytest.mark.parametrize("variant", ["a_default", "e_snake"])
def test_exact_path_is_bit_for_bit_the_original(variant: str) -> None:
    folder = _variant(variant)
    audio = _convert(folder / "G_0_release.pth", folder / "config.json", variant, fast=False)
    expected = load_npz(folder / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, AUDIO, what="infer_ns0.4.audio")


def test_half_file_runs_as_the_original_does_on_cpu() -> None:
    variant = "a_default"
    folder = _variant(variant)
    model, _ = load_synthesizer(
        folder / "G_0_release_half.pth", folder / "config.json", dtype=torch.float16, fast=False
    )
    arrays = load_npz(folder / "fixtures.npz")
    half = load_npz(folder / "fixtures_half.npz")
    with torch.inference_mode():
        out = model.infer(
            torch.from_numpy(arrays["in.c"]).half(),
            torch.from_numpy(arrays["in.f0"]).half(),
            torch.from_numpy(arrays["in.uv"]).half(),
            speaker=torch.from_numpy(arrays["in.sid"]),
            noise_scale=0.4,
            noise=ReplayNoise(recorded_draws(32)[:3]),
        )
    assert out.audio.dtype == torch.float16
    assert_close(out.audio, half["half.audio"], HALF_AUDIO, what="half.audio")


def test_training_checkpoint_with_optimizer_state_gives_the_original_audio() -> None:
    variant = "f_resblock2_nof0pred"
    audio = _convert(_variant(variant) / "G_0.pth", _variant(variant) / "config.json", variant)
    expected = load_npz(_variant(variant) / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, FAST, what="infer_ns0.4.audio")


def test_ddp_prefixed_checkpoint_loads(tmp_path: Path) -> None:
    variant = "b_vol"
    checkpoint = read_checkpoint(_variant(variant) / "G_0_release.pth")
    prefixed = {f"module.{key}": value for key, value in checkpoint.model_state.items()}
    path = tmp_path / "G_ddp.pth"
    torch.save({"model": prefixed, "iteration": 3, "optimizer": None, "learning_rate": 1e-4}, path)
    audio = _convert(path, _variant(variant) / "config.json", variant)
    expected = load_npz(_variant(variant) / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, FAST, what="infer_ns0.4.audio")


def test_safe_release_carries_its_config(tmp_path: Path) -> None:
    variant = "d_transformer_flow"
    checkpoint = read_checkpoint(_variant(variant) / "G_0_release.pth")
    config = load_svc_config(_variant(variant) / "config.json")
    path = tmp_path / "model.safetensors"
    write_release(path, model_state=checkpoint.model_state, config=config)
    audio = _convert(path, None, variant)
    expected = load_npz(_variant(variant) / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, FAST, what="infer_ns0.4.audio")


def test_our_training_checkpoint_round_trips_through_the_loader(tmp_path: Path) -> None:
    variant = "c_dsconv_share"
    model, _ = load_synthesizer(
        _variant(variant) / "G_0_release.pth", _variant(variant) / "config.json", fold=False
    )
    path = tmp_path / "G_5.pth"
    write_training_checkpoint(
        path, model_state=model.state_dict(), optimizer_state=None, learning_rate=1e-4, iteration=5
    )
    assert read_checkpoint(path).iteration == 5
    audio = _convert(path, _variant(variant) / "config.json", variant)
    expected = load_npz(_variant(variant) / "fixtures.npz")["infer_ns0.4.audio"]
    assert_close(audio, expected, FAST, what="infer_ns0.4.audio")


def test_checkpoint_for_another_config_names_the_mismatching_key() -> None:
    with pytest.raises(CheckpointError, match=r"G_0_release\.pth") as error:
        load_synthesizer(
            _variant("a_default") / "G_0_release.pth", _variant("b_vol") / "config.json"
        )
    assert "emb_g.weight" in str(error.value) or "pre.weight" in str(error.value)


def test_release_without_config_needs_one(tmp_path: Path) -> None:
    path = tmp_path / "G_0.pth"
    shutil.copy(_variant("b_vol") / "G_0_release.pth", path)
    with pytest.raises(CheckpointError, match="config"):
        load_synthesizer(path)


def test_truncated_checkpoint_names_the_file(tmp_path: Path) -> None:
    source = (_variant("b_vol") / "G_0_release.pth").read_bytes()
    path = tmp_path / "G_100.pth"
    path.write_bytes(source[: len(source) // 2])
    with pytest.raises(CheckpointError, match=r"G_100\.pth"):
        load_synthesizer(path, _variant("b_vol") / "config.json")
