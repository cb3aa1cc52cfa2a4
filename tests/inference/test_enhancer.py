"""The NSF-HiFiGAN enhancer against so-vits-svc 4.1's `Enhancer.enhance` (adaptive key 0)."""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from sovits.audio.resample import resample
from sovits.checkpoints.vocoder import load_nsf_hifigan
from sovits.errors import InputError, MissingFileError
from sovits.features import pretrained
from sovits.inference.enhancer import Enhancer, adaptive_sample_rate
from sovits.models.noise import ReplayNoise, ZeroNoise
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import AUDIO, assert_close

VOCODER = FIXTURES / "sovits41-extras" / "vocoder"
TINY = VOCODER / "nsf_hifigan_tiny"


@cache
def arrays() -> dict[str, np.ndarray]:
    return load_npz(VOCODER / "enhancer_nsf_hifigan_tiny.npz")


@cache
def enhancer(fast: bool = False) -> Enhancer:
    return Enhancer(load_nsf_hifigan(TINY, fast=fast))


def recorded_noise() -> ReplayNoise:
    return ReplayNoise(
        [torch.from_numpy(arrays()["rand_ini"]), torch.from_numpy(arrays()["noise"])]
    )


@pytest.mark.parametrize("fast", [False, True])
def test_enhance_reproduces_the_original(fast: bool) -> None:
    data = arrays()
    f0 = data["f0"].copy()
    audio, rate = enhancer(fast).enhance(data["audio"], 44100, f0, 512, noise=recorded_noise())
    assert rate == 44100 and audio.dtype == np.float32
    assert_close(audio, data["enhanced"], AUDIO, what="enhanced")
    silent, _ = enhancer(fast).enhance(data["audio"], 44100, f0, 512, noise=ZeroNoise())
    assert_close(silent, data["enhanced_nonoise"], AUDIO, what="enhanced_nonoise")


def test_enhance_takes_tensors_and_leaves_the_callers_f0_alone() -> None:
    data = arrays()
    f0 = torch.from_numpy(data["f0"].copy())
    f0_array = data["f0"].copy()
    audio, _ = enhancer().enhance(
        torch.from_numpy(data["audio"]), 44100, f0, 512, adaptive_key=3, noise=ZeroNoise()
    )
    enhancer().enhance(data["audio"], 44100, f0_array, 512, adaptive_key=3, noise=ZeroNoise())
    assert torch.equal(f0, torch.from_numpy(data["f0"]))
    np.testing.assert_array_equal(f0_array, data["f0"])
    assert np.isfinite(audio).all()


@pytest.mark.parametrize(
    ("key", "rate"), [(0, 44100), (2, 49500), (-3, 37100), (12, 88200), (0.5, 45400)]
)
def test_adaptive_sample_rate(key: float, rate: int) -> None:
    assert adaptive_sample_rate(44100, key) == rate


def capture_generator_inputs(target: Enhancer) -> tuple[list[tuple[Tensor, Tensor]], Any]:
    seen: list[tuple[Tensor, Tensor]] = []

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append((args[0], args[1]))

    handle = target.vocoder.generator.register_forward_pre_hook(hook, with_kwargs=True)
    return seen, handle


def test_adaptive_key_runs_the_vocoder_at_the_adaptive_rate() -> None:
    data = arrays()
    target = Enhancer(load_nsf_hifigan(TINY, fast=False))
    seen, handle = capture_generator_inputs(target)
    f0 = np.full(24, 220.0, dtype=np.float32)
    try:
        audio, rate = target.enhance(data["audio"], 44100, f0, 512, adaptive_key=2)
    finally:
        handle.remove()
    internal = 49500
    wave = resample(data["audio"], 44100, internal)
    mel, f0_vocoder = seen[0]
    # the audio at 49.5 kHz is analysed with the vocoder's 44.1 kHz settings
    expected_mel = target.vocoder.mel_spectrogram(torch.from_numpy(wave)[None])
    assert torch.equal(mel, expected_mel)
    frames = mel.shape[-1]
    assert frames == len(wave) // 512
    # f0 is scaled by 44100 / 49500, one value per vocoder frame
    expected_f0 = np.float32(220.0) * np.float32(44100 / internal)
    assert f0_vocoder.shape == (1, frames)
    np.testing.assert_array_equal(f0_vocoder.numpy(), np.full((1, frames), expected_f0))
    # the output comes back at the caller's rate
    assert rate == 44100
    assert audio.shape == (int(np.ceil(frames * 512 * 44100 / internal)),)


def test_enhance_resamples_other_input_rates() -> None:
    data = arrays()
    wave = resample(data["audio"], 44100, 32000)
    f0 = np.full(len(wave) // 320, 180.0, dtype=np.float32)
    audio, rate = enhancer().enhance(wave, 32000, f0, 320, noise=ZeroNoise())
    assert rate == 32000
    frames = len(resample(wave, 32000, 44100)) // 512
    assert audio.shape == (int(np.ceil(frames * 512 * 32000 / 44100)),)


def test_enhance_rejects_bad_input() -> None:
    data = arrays()
    with pytest.raises(InputError, match="audio"):
        enhancer().enhance(data["audio"][None], 44100, data["f0"], 512)
    with pytest.raises(InputError, match="f0"):
        enhancer().enhance(data["audio"], 44100, np.zeros(0, np.float32), 512)
    with pytest.raises(InputError, match="positive"):
        enhancer().enhance(data["audio"], 44100, data["f0"], 0)


def test_load_finds_the_known_folder_or_says_where_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pretrained.HOME_VARIABLE, str(tmp_path / "home"))
    monkeypatch.setattr(pretrained, "user_cache_dir", lambda: tmp_path / "cache")
    with pytest.raises(MissingFileError, match="nsf_hifigan"):
        Enhancer.load()
    with pytest.raises(MissingFileError):
        Enhancer.load(tmp_path / "elsewhere")
    assert Enhancer.load(TINY).sampling_rate == 44100
    shutil.copytree(TINY, tmp_path / "home" / "pretrain" / "nsf_hifigan")
    assert Enhancer.load().vocoder.num_mels == 128
    assert Enhancer.load(TINY / "model").vocoder.generator.fast_cpu_inference
