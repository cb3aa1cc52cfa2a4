"""openvpi NSF-HiFiGAN (generator variant "openvpi" and NsfHifiganVocoder) against 4.1 numbers.

The fixtures were made by so-vits-svc's `diffusion.vocoder.Vocoder` with the original
Generator after remove_weight_norm. The reference path runs the original's operations in
order (expected bit-identical); the fast CPU path reorders float additions inside the
convolutions. The README's vocoder tolerance is atol 1e-3 on audio; with f0 given
bit-identical the shared AUDIO tolerance (1e-4) holds, and stays sharp.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from sovits.audio.resample import resample
from sovits.dsp.spectrogram import vocoder_mel
from sovits.errors import InputError
from sovits.models.noise import NoiseSource, ReplayNoise, ZeroNoise
from sovits.models.nsf_vocoder import LOG10_SCALE, NsfHifiganVocoder, VocoderMelSettings
from sovits.models.vocoder import NsfHifiganGenerator, SineGenerator, enable_fast_cpu_inference
from sovits.models.weight_norm import fold_weight_norm
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import AUDIO, INTERMEDIATE, assert_close

VOCODER = FIXTURES / "sovits41-extras" / "vocoder"
MODELS = ("nsf_hifigan_tiny", "nsf_hifigan_tiny_resblock2")
SOURCE_ATOL = INTERMEDIATE
AUDIO_ATOL = AUDIO
FAST_ATOL = AUDIO
MEL_ATOL = INTERMEDIATE


@cache
def config(name: str) -> dict[str, Any]:
    return dict(json.loads((VOCODER / name / "config.json").read_text()))


@cache
def generator_state(name: str) -> dict[str, Tensor]:
    return dict(torch.load(VOCODER / name / "model", weights_only=True)["generator"])


@cache
def infer_arrays(name: str) -> dict[str, np.ndarray]:
    return load_npz(VOCODER / f"{name}_infer.npz")


def mel_settings(name: str) -> VocoderMelSettings:
    h = config(name)
    return VocoderMelSettings(
        sampling_rate=h["sampling_rate"],
        hop_length=h["hop_size"],
        n_fft=h["n_fft"],
        win_length=h["win_size"],
        num_mels=h["num_mels"],
        fmin=h["fmin"],
        fmax=h["fmax"],
    )


def build_generator(name: str) -> NsfHifiganGenerator:
    h = config(name)
    generator = NsfHifiganGenerator(
        in_channels=h["num_mels"],
        gin_channels=0,
        sampling_rate=h["sampling_rate"],
        resblock=h["resblock"],
        resblock_kernel_sizes=h["resblock_kernel_sizes"],
        resblock_dilation_sizes=h["resblock_dilation_sizes"],
        upsample_rates=h["upsample_rates"],
        upsample_initial_channel=h["upsample_initial_channel"],
        upsample_kernel_sizes=h["upsample_kernel_sizes"],
        variant="openvpi",
    )
    generator.load_state_dict(generator_state(name), strict=True)
    return generator.eval()


def build_vocoder(name: str, **options: Any) -> NsfHifiganVocoder:
    return NsfHifiganVocoder(fold_weight_norm(build_generator(name)), mel_settings(name), **options)


def recorded_noise(name: str) -> ReplayNoise:
    arrays = infer_arrays(name)
    return ReplayNoise([torch.from_numpy(arrays["rand_ini"]), torch.from_numpy(arrays["noise"])])


def inputs(name: str) -> tuple[Tensor, Tensor]:
    arrays = infer_arrays(name)
    return torch.from_numpy(arrays["mel"]), torch.from_numpy(arrays["f0"])


# ------------------------------------------------------------------------------ keys


@pytest.mark.parametrize("name", MODELS)
def test_generator_keys_and_shapes_equal_the_openvpi_file(name: str) -> None:
    expected = {key: tuple(value.shape) for key, value in generator_state(name).items()}
    generator = build_generator(name)
    assert {key: tuple(value.shape) for key, value in generator.state_dict().items()} == expected
    assert generator.cond is None
    assert not any(key.startswith("cond.") for key in generator.state_dict())


def test_openvpi_paddings_round_down() -> None:
    arguments: dict[str, Any] = {
        "in_channels": 4,
        "gin_channels": 0,
        "sampling_rate": 16000,
        "resblock": "2",
        "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3]],
        "upsample_rates": [3, 3],
        "upsample_initial_channel": 8,
        "upsample_kernel_sizes": [6, 6],
    }
    openvpi = NsfHifiganGenerator(**arguments, variant="openvpi")
    so_vits = NsfHifiganGenerator(**arguments)
    assert openvpi.ups[0].padding == (1,) and so_vits.ups[0].padding == (2,)
    assert openvpi.noise_convs[0].padding == (1,) and so_vits.noise_convs[0].padding == (2,)
    # (With odd differences neither original keeps the lengths aligned; openvpi's releases
    # use even ones, where both roundings agree.)


# ------------------------------------------------------------------------ parity


@pytest.mark.parametrize("name", MODELS)
def test_source_reproduces_the_original(name: str) -> None:
    generator = build_generator(name)
    _, f0 = inputs(name)
    arrays = infer_arrays(name)
    with torch.no_grad():
        source = generator.excitation(f0, recorded_noise(name)).transpose(1, 2)
        silent = generator.excitation(f0, ZeroNoise()).transpose(1, 2)
    assert_close(source, arrays["har_source"], SOURCE_ATOL)
    assert_close(silent, arrays["har_source_nonoise"], SOURCE_ATOL)


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("name", MODELS)
def test_generator_reproduces_the_original(name: str, fold: bool) -> None:
    generator = build_generator(name)
    if fold:
        fold_weight_norm(generator)
    mel, f0 = inputs(name)
    arrays = infer_arrays(name)
    with torch.no_grad():
        audio = generator(mel.transpose(1, 2), f0, noise=recorded_noise(name))
        silent = generator(mel.transpose(1, 2), f0, noise=ZeroNoise())
    assert_close(audio, arrays["audio"], AUDIO_ATOL)
    assert_close(silent, arrays["audio_nonoise"], AUDIO_ATOL)


@pytest.mark.parametrize("name", MODELS)
def test_vocoder_infer_reproduces_diffusion_vocoder_infer(name: str) -> None:
    vocoder = build_vocoder(name)
    mel, f0 = inputs(name)
    arrays = infer_arrays(name)
    audio = vocoder.infer(mel, f0[:, :, None], noise=recorded_noise(name))
    assert_close(audio, arrays["audio"][:, 0], AUDIO_ATOL)
    silent = vocoder.infer(mel, f0[:, :, None], noise=ZeroNoise())
    assert_close(silent, arrays["audio_nonoise"][:, 0], AUDIO_ATOL)


def test_infer_cuts_f0_to_the_mel_length() -> None:
    name = MODELS[0]
    vocoder = build_vocoder(name)
    mel, f0 = inputs(name)
    longer = torch.cat([f0, torch.full((1, 5), 300.0)], dim=1)
    audio = vocoder.infer(mel, longer[:, :, None], noise=ZeroNoise())
    assert_close(audio, infer_arrays(name)["audio_nonoise"][:, 0], AUDIO_ATOL)
    with pytest.raises(InputError, match="frames"):
        vocoder.infer(mel, f0[:, :-1, None], noise=ZeroNoise())
    with pytest.raises(InputError, match="mel"):
        vocoder.infer(mel[:, :, :-1], f0[:, :, None], noise=ZeroNoise())


def test_log10_type_scales_the_mel() -> None:
    name = MODELS[0]
    vocoder = build_vocoder(name, mel_type="nsf-hifigan-log10")
    mel, f0 = inputs(name)
    audio = vocoder.infer(mel, f0[:, :, None], noise=ZeroNoise())
    with torch.no_grad():
        expected = vocoder.generator(LOG10_SCALE * mel.transpose(1, 2), f0, noise=ZeroNoise())
    assert torch.equal(audio, expected[:, 0])
    plain = build_vocoder(name).infer(mel, f0[:, :, None], noise=ZeroNoise())
    assert not torch.allclose(audio, plain)


@pytest.mark.parametrize("name", MODELS)
def test_fast_cpu_path_matches_the_original(name: str) -> None:
    vocoder = enable_fast_cpu_inference(build_vocoder(name))
    assert isinstance(vocoder, NsfHifiganVocoder)
    mel, f0 = inputs(name)
    with torch.no_grad():
        assert vocoder.generator.uses_fast_path(mel)
    audio = vocoder.infer(mel, f0[:, :, None], noise=recorded_noise(name))
    assert_close(audio, infer_arrays(name)["audio"][:, 0], FAST_ATOL)
    again = vocoder.infer(mel, f0[:, :, None], noise=recorded_noise(name))
    assert torch.equal(audio, again)


def test_seeded_noise_draws_in_the_original_order() -> None:
    name = MODELS[0]
    vocoder = build_vocoder(name)
    mel, f0 = inputs(name)
    generator = torch.Generator().manual_seed(7)
    rand_ini = torch.rand((1, 9), generator=generator)
    sine_noise = torch.randn((1, 16 * 512, 9), generator=generator)
    expected = vocoder.infer(mel, f0, noise=ReplayNoise([rand_ini, sine_noise]))
    assert torch.equal(vocoder.infer(mel, f0, noise=NoiseSource.from_seed(7)), expected)


# ----------------------------------------------------------------- sine generator


def test_float64_mode_differs_from_the_float32_frame_rate_mode() -> None:
    f0 = torch.linspace(100.0, 900.0, 64)[None]
    wide = SineGenerator(44100, harmonic_num=8, mode="frame-rate-float64")
    narrow = SineGenerator(44100, harmonic_num=8, onnx_compatible=True)
    assert narrow.mode == "frame-rate" and wide.takes_frame_rate_f0
    wide_sines, wide_uv = wide(f0, ZeroNoise(), 512)
    narrow_sines, narrow_uv = narrow(f0, ZeroNoise(), 512)
    assert torch.equal(wide_uv, narrow_uv)
    assert wide_sines.dtype == torch.float32
    assert not torch.equal(wide_sines, narrow_sines)
    torch.testing.assert_close(wide_sines, narrow_sines, rtol=0, atol=1e-2)
    with pytest.raises(ValueError, match="contradicts"):
        SineGenerator(44100, onnx_compatible=True, mode="frame-rate-float64")


def test_openvpi_generator_has_one_source_algorithm_and_no_speaker() -> None:
    generator = build_generator(MODELS[0])
    assert generator.onnx_compatible is False
    with pytest.raises(ValueError, match="ONNX"):
        generator.onnx_compatible = True
    mel, f0 = inputs(MODELS[0])
    with pytest.raises(ValueError, match="gin_channels=0"):
        generator(mel.transpose(1, 2), f0, torch.zeros(1, 4, 1), noise=ZeroNoise())


# ---------------------------------------------------------------------- mel front end


@pytest.fixture(scope="module")
def mel_npz() -> dict[str, np.ndarray]:
    return load_npz(VOCODER / "nsf_hifigan_mel_extract.npz")


@pytest.mark.parametrize(
    ("keyshift", "key"),
    [(0, "mel_keyshift_0"), (2, "mel_keyshift_2"), (-3.5, "mel_keyshift_m3p5")],
)
def test_extract_reproduces_the_original(
    mel_npz: dict[str, np.ndarray], keyshift: float, key: str
) -> None:
    vocoder = build_vocoder(MODELS[0])
    audio = torch.from_numpy(mel_npz["audio"])[None]
    assert_close(vocoder.extract(audio, 44100, keyshift=keyshift), mel_npz[key], MEL_ATOL)


def test_extract_of_a_clip_shorter_than_a_window(mel_npz: dict[str, np.ndarray]) -> None:
    vocoder = build_vocoder(MODELS[0])
    audio = torch.from_numpy(mel_npz["audio_short"])[None]
    assert_close(vocoder.extract(audio, 44100), mel_npz["mel_short"], MEL_ATOL)


def test_extract_resamples_other_rates_to_the_vocoder_rate(
    mel_npz: dict[str, np.ndarray],
) -> None:
    vocoder = build_vocoder(MODELS[0])
    wave = resample(mel_npz["audio"], 44100, 32000)
    mel = vocoder.extract(torch.from_numpy(wave)[None], 32000)
    back = torch.from_numpy(resample(wave, 32000, 44100))[None]
    expected = vocoder_mel(
        back,
        sample_rate=44100,
        n_fft=2048,
        n_mels=128,
        hop_length=512,
        win_length=2048,
        fmin=40,
        fmax=16000,
    ).transpose(1, 2)
    assert torch.equal(mel, expected)
    assert mel.shape == (1, 24, 128)


def test_vocoder_checks_its_parts() -> None:
    generator = build_generator(MODELS[0])
    settings = mel_settings(MODELS[0])
    with pytest.raises(InputError, match="vocoder type"):
        NsfHifiganVocoder(generator, settings, mel_type="mel")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="hop"):
        NsfHifiganVocoder(
            generator,
            VocoderMelSettings(44100, 256, 1024, 1024, 128, 40, 16000),
        )
    with pytest.raises(InputError, match="mel bins"):
        NsfHifiganVocoder(
            generator,
            VocoderMelSettings(44100, 512, 2048, 2048, 80, 40, 16000),
        )
