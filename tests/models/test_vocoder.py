"""NSF-HiFiGAN decoder, harmonic source and snake activation against the original 4.1 numbers.

The reference path runs the original's operations in the original's order (bit-identical
on the fixtures' AVX2 kernels); the fast CPU path reorders float additions inside
convolutions. Both go through the shared tolerances of tests/tolerance.py: other CPUs
round differently.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.models.noise import NoiseSource, ReplayNoise, ZeroNoise
from sovits.models.snake import SnakeAlias, kaiser_sinc_filter1d
from sovits.models.vocoder import (
    NsfHifiganGenerator,
    SineGenerator,
    _PolyphaseUpsample,
    enable_fast_cpu_inference,
)
from sovits.models.weight_norm import fold_weight_norm
from tests.conftest import SOVITS41, load_npz
from tests.tolerance import AUDIO, HALF_AUDIO, INTERMEDIATE, SINE_PHASE, assert_close

FAST = AUDIO
DECODER_VARIANTS = ("a_default", "e_snake", "f_resblock2_nof0pred")
SEED = 52468


@cache
def model_config(variant: str) -> dict[str, Any]:
    config = json.loads((SOVITS41 / "variants" / variant / "config.json").read_text())
    return dict(config["model"])


def decoder_arguments(variant: str) -> dict[str, Any]:
    model = model_config(variant)
    return {
        "in_channels": model["inter_channels"],
        "gin_channels": model["gin_channels"],
        "sampling_rate": 44100,
        "resblock": model["resblock"],
        "resblock_kernel_sizes": model["resblock_kernel_sizes"],
        "resblock_dilation_sizes": model["resblock_dilation_sizes"],
        "upsample_rates": model["upsample_rates"],
        "upsample_initial_channel": model["upsample_initial_channel"],
        "upsample_kernel_sizes": model["upsample_kernel_sizes"],
        "snake": model["vocoder_name"] == "nsf-snake-hifigan",
    }


@cache
def release_decoder_state(variant: str) -> dict[str, Tensor]:
    path = SOVITS41 / "variants" / variant / "G_0_release.pth"
    state = torch.load(path, weights_only=True)["model"]
    return {key[len("dec.") :]: value for key, value in state.items() if key.startswith("dec.")}


def load_decoder(variant: str) -> NsfHifiganGenerator:
    decoder = NsfHifiganGenerator(**decoder_arguments(variant))
    decoder.load_state_dict(release_decoder_state(variant), strict=True)
    return decoder.eval()


@cache
def fixtures(variant: str) -> dict[str, np.ndarray]:
    return load_npz(SOVITS41 / "variants" / variant / "fixtures.npz")


@cache
def draws(inter_channels: int) -> dict[str, np.ndarray]:
    return load_npz(SOVITS41 / "common" / f"rng_draws_inter{inter_channels}_T24.npz")


def vocoder_draws(variant: str) -> list[Tensor]:
    """Draws 1 (initial phases) and 2 (sine noise) of the original infer."""
    recorded = draws(model_config(variant)["inter_channels"])
    return [
        torch.from_numpy(recorded["draw1_sinegen_rand_ini"]),
        torch.from_numpy(recorded["draw2_sinegen_noise"]),
    ]


def decoder_inputs(variant: str) -> tuple[Tensor, Tensor, Tensor]:
    arrays = fixtures(variant)
    return (
        torch.from_numpy(arrays["infer_ns0.4.dec_in"]),
        torch.from_numpy(arrays["in.f0"]),
        torch.from_numpy(arrays["g"]),
    )


def tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(array)


class RecordingNoise(NoiseSource):
    """A seeded NoiseSource that remembers every draw it hands out."""

    def __init__(self, seed: int):
        super().__init__(seed=seed)
        self.drawn: list[Tensor] = []

    def normal(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        self.drawn.append(super().normal(shape, like=like))
        return self.drawn[-1]

    def uniform(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        self.drawn.append(super().uniform(shape, like=like))
        return self.drawn[-1]


# ----------------------------------------------------------------------- sine source


def test_sine_generator_matches_the_original(helpers_npz: dict[str, np.ndarray]) -> None:
    generator = SineGenerator(44100, harmonic_num=8)
    f0 = tensor(helpers_npz["sinegen.in_f0_upsampled"])
    recorded = ReplayNoise(
        [tensor(helpers_npz["sinegen.draw_rand_ini"]), tensor(helpers_npz["sinegen.draw_noise"])]
    )
    sines, uv = generator(f0, recorded)
    assert_close(sines, helpers_npz["sinegen.sine_waves"], what="sinegen.sine_waves")
    assert_close(uv, helpers_npz["sinegen.uv"], what="sinegen.uv")
    sines, _ = generator(f0, ZeroNoise())
    assert_close(
        sines, helpers_npz["sinegen.sine_waves_zero_draws"], what="sinegen.sine_waves_zero_draws"
    )


def test_sine_generator_onnx_mode_matches_the_original(
    helpers_npz: dict[str, np.ndarray],
) -> None:
    generator = SineGenerator(44100, harmonic_num=8, onnx_compatible=True)
    f0_frames = tensor(helpers_npz["sinegen.in_f0_frames"])
    recorded = ReplayNoise(
        [tensor(helpers_npz["sinegen.draw_rand_ini"]), tensor(helpers_npz["sinegen.draw_noise"])]
    )
    sines, uv = generator(f0_frames, recorded, 512)
    assert_close(
        sines, helpers_npz["sinegen_onnx.sine_waves"], SINE_PHASE, what="sinegen_onnx.sine_waves"
    )
    assert_close(uv, helpers_npz["sinegen_onnx.uv"], what="sinegen_onnx.uv")
    sines, _ = generator(f0_frames, ZeroNoise(), 512)
    assert_close(
        sines,
        helpers_npz["sinegen_onnx.sine_waves_zero_draws"],
        SINE_PHASE,
        what="sinegen_onnx.sine_waves_zero_draws",
    )
    with pytest.raises(ValueError, match="upsample_factor"):
        generator(f0_frames, ZeroNoise())


def test_kaiser_filter_matches_the_original(helpers_npz: dict[str, np.ndarray]) -> None:
    taps = kaiser_sinc_filter1d(cutoff=0.25, half_width=0.3, kernel_size=12)
    np.testing.assert_array_equal(taps.numpy(), helpers_npz["kaiser.up_filter"])


def test_snake_alias_keeps_shape_and_changes_values() -> None:
    activation = SnakeAlias(3)
    x = torch.randn(2, 3, 40)
    y = activation(x)
    assert y.shape == x.shape
    assert set(activation.state_dict()) == {
        "act.alpha",
        "act.beta",
        "upsample.filter",
        "downsample.lowpass.filter",
    }
    assert not torch.allclose(y, x)


# ------------------------------------------------------------------------ decoder keys


@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_decoder_keys_and_shapes_equal_the_original(variant: str) -> None:
    expected = []
    for line in (SOVITS41 / "variants" / variant / "keys.txt").read_text().splitlines():
        key, shape, _ = line.split("\t")
        if key.startswith("dec."):
            expected.append((key[len("dec.") :], json.loads(shape)))
    decoder = NsfHifiganGenerator(**decoder_arguments(variant))
    actual = [(key, list(value.shape)) for key, value in decoder.state_dict().items()]
    assert actual == expected


# ---------------------------------------------------------------- decoder parity


@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_decoder_with_recorded_draws_reproduces_the_original(variant: str) -> None:
    decoder = load_decoder(variant)
    x, f0, g = decoder_inputs(variant)
    arrays = fixtures(variant)
    with torch.no_grad():
        source = decoder.excitation(f0, ReplayNoise(vocoder_draws(variant)))
        assert_close(
            source.transpose(1, 2), arrays["infer_ns0.4.har_source"], what="infer_ns0.4.har_source"
        )
        audio = decoder(x, f0, g, noise=ReplayNoise(vocoder_draws(variant)))
    assert_close(audio, arrays["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")


@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_decoder_with_autograd_on_gives_the_same_audio(variant: str) -> None:
    decoder = load_decoder(variant)
    x, f0, g = decoder_inputs(variant)
    audio = decoder(x, f0, g, noise=ReplayNoise(vocoder_draws(variant)))
    assert audio.requires_grad
    assert_close(audio, fixtures(variant)["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")


@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_excitation_with_zero_draws(variant: str) -> None:
    decoder = load_decoder(variant)
    _, f0, _ = decoder_inputs(variant)
    with torch.no_grad():
        source = decoder.excitation(f0, ZeroNoise())
    assert_close(
        source.transpose(1, 2),
        fixtures(variant)["infer_zero.har_source"],
        what="infer_zero.har_source",
    )


@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_decoder_with_zero_draws_reproduces_the_original(variant: str) -> None:
    # infer_zero's decoder input is flow(m_p) (the prior noise was zero too); it is not
    # stored, so the synthesizer's flow recomputes it from the stored m_p.
    from tests.models.synth_factory import load_release_synthesizer

    model, _, _ = load_release_synthesizer(variant)
    arrays = fixtures(variant)
    m_p = tensor(arrays["infer_ns0.4.m_p"])
    _, f0, g = decoder_inputs(variant)
    with torch.no_grad():
        z = model.flow(m_p, torch.ones(1, 1, m_p.shape[-1]), g=g, reverse=True)
        audio = load_decoder(variant)(z, f0, g, noise=ZeroNoise())
    assert_close(audio, arrays["infer_zero.audio"], AUDIO, what="infer_zero.audio")


@pytest.mark.parametrize("variant", ["a_default", "c_dsconv_share"])
def test_float16_model_reproduces_the_original(variant: str) -> None:
    # The original's source keeps float32 harmonics and a float32 initial-phase draw when
    # the model and f0 are float16; the whole infer covers that path (fixtures_half).
    from tests.models.synth_factory import build_synthesizer, recorded_draws

    model = build_synthesizer(variant).half()
    path = SOVITS41 / "variants" / variant / "G_0_release_half.pth"
    model.load_state_dict(torch.load(path, weights_only=True)["model"], strict=False)
    model.eval()
    arrays = fixtures(variant)
    output = model.infer(
        tensor(arrays["in.c"]).half(),
        tensor(arrays["in.f0"]).half(),
        tensor(arrays["in.uv"]).half(),
        speaker=tensor(arrays["in.sid"]),
        noise_scale=0.4,
        noise=ReplayNoise(recorded_draws(model.inter_channels)[:3]),
    )
    assert output.audio.dtype == torch.float16
    expected = load_npz(SOVITS41 / "variants" / variant / "fixtures_half.npz")["half.audio"]
    assert_close(output.audio, expected, HALF_AUDIO, what="half.audio")


def test_seeded_noise_source_gives_the_original_draws() -> None:
    variant = "a_default"
    recorded = draws(32)
    noise = RecordingNoise(SEED)
    prior = noise.normal((1, 32, 24), like=torch.zeros(()))
    # normal draws are computed (Box-Muller: log, cos) by ISA-dependent kernels
    assert_close(prior, recorded["draw0_enc_p_noise"], what="draw0_enc_p_noise")
    decoder = load_decoder(variant)
    x, f0, g = decoder_inputs(variant)
    with torch.no_grad():
        audio = decoder(x, f0, g, noise=noise)
    assert [tuple(d.shape) for d in noise.drawn] == [(1, 32, 24), (1, 9), (1, 12288, 9)]
    np.testing.assert_array_equal(noise.drawn[1].numpy(), recorded["draw1_sinegen_rand_ini"])
    assert_close(noise.drawn[2], recorded["draw2_sinegen_noise"], what="draw2_sinegen_noise")
    # The original's unused source-noise draw comes last, from the same stream.
    unused = noise.normal((1, 12288, 1), like=torch.zeros(()))
    assert_close(unused, recorded["draw3_source_noise"], what="draw3_source_noise")
    assert_close(audio, fixtures(variant)["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")


# ------------------------------------------------------- folded weights, fast CPU path


@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_folded_weight_norm_reproduces_the_original(variant: str) -> None:
    decoder = fold_weight_norm(load_decoder(variant))
    x, f0, g = decoder_inputs(variant)
    with torch.no_grad():
        audio = decoder(x, f0, g, noise=ReplayNoise(vocoder_draws(variant)))
    assert_close(audio, fixtures(variant)["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")


@pytest.mark.parametrize("fold", [True, False])
@pytest.mark.parametrize("variant", DECODER_VARIANTS)
def test_fast_cpu_path_matches_the_original(variant: str, fold: bool) -> None:
    decoder = load_decoder(variant)
    if fold:
        fold_weight_norm(decoder)
    enable_fast_cpu_inference(decoder)
    x, f0, g = decoder_inputs(variant)
    arrays = fixtures(variant)
    with torch.inference_mode():
        # The snake decoder has no fast path; it must still give the original's audio.
        assert decoder.uses_fast_path(x) == (variant != "e_snake")
        audio = decoder(x, f0, g, noise=ReplayNoise(vocoder_draws(variant)))
        assert_close(audio, arrays["infer_ns0.4.audio"], FAST, what="fast-path audio")
        # A second call reuses the packed weights.
        again = decoder(x, f0, g, noise=ReplayNoise(vocoder_draws(variant)))
    assert torch.equal(audio, again)
    assert decoder.uses_fast_path(x) is False  # autograd is on again


def tiny_decoder(resblock: str = "1", **overrides: Any) -> NsfHifiganGenerator:
    arguments: dict[str, Any] = {
        "in_channels": 6,
        "gin_channels": 5,
        "sampling_rate": 44100,
        "resblock": resblock,
        "resblock_kernel_sizes": [3, 7] if resblock == "1" else [3],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]] if resblock == "1" else [[1, 3]],
        "upsample_rates": [4, 3, 2],
        "upsample_initial_channel": 16,
        "upsample_kernel_sizes": [8, 7, 4],
    }
    arguments.update(overrides)
    torch.manual_seed(0)
    decoder = NsfHifiganGenerator(**arguments)
    with torch.no_grad():
        for name, parameter in decoder.named_parameters():
            if name.endswith("weight_g"):
                parameter.uniform_(0.5, 1.5)
    return decoder.eval()


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_fast_path_handles_batches_per_frame_speakers_and_odd_rates(resblock: str) -> None:
    decoder = tiny_decoder(resblock)
    x = torch.randn(2, 6, 9)
    f0 = torch.rand(2, 9) * 400
    g = torch.randn(2, 5, 9)
    with torch.no_grad():
        expected = decoder(x, f0, g, noise=NoiseSource.from_seed(3))
        enable_fast_cpu_inference(decoder)
        assert decoder.uses_fast_path(x)
        actual = decoder(x, f0, g, noise=NoiseSource.from_seed(3))
    assert actual.shape == (2, 1, 9 * 24)
    assert_close(actual, expected, FAST, what="fast-path audio")


def test_fast_path_notices_new_weights() -> None:
    decoder = enable_fast_cpu_inference(tiny_decoder())
    other = tiny_decoder()
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.mul_(1.1)
    x, f0 = torch.randn(1, 6, 7), torch.full((1, 7), 200.0)
    with torch.no_grad():
        before = decoder(x, f0, None, noise=ZeroNoise())
        decoder.load_state_dict(other.state_dict())
        after = decoder(x, f0, None, noise=ZeroNoise())
        expected = other(x, f0, None, noise=ZeroNoise())
    assert not torch.allclose(before, after)
    assert_close(after, expected, FAST, what="fast-path audio")


def test_decoder_with_packed_weights_can_be_deep_copied() -> None:
    decoder = enable_fast_cpu_inference(fold_weight_norm(tiny_decoder()))
    x, f0 = torch.randn(1, 6, 7), torch.full((1, 7), 200.0)
    with torch.no_grad():
        audio = decoder(x, f0, None, noise=ZeroNoise())
        duplicate = copy.deepcopy(decoder)
        assert torch.equal(duplicate(x, f0, None, noise=ZeroNoise()), audio)


@pytest.mark.parametrize(
    ("rate", "kernel", "padding"), [(8, 16, 4), (2, 4, 1), (3, 7, 2), (5, 4, 0), (4, 9, 3)]
)
def test_polyphase_upsample_equals_transposed_convolution(
    rate: int, kernel: int, padding: int
) -> None:
    torch.manual_seed(rate * 100 + kernel)
    conv = torch.nn.ConvTranspose1d(6, 4, kernel, rate, padding=padding)
    x = torch.randn(2, 6, 11)
    expected = conv(x)
    upsample = _PolyphaseUpsample.from_transposed(conv)
    with torch.no_grad():
        actual = upsample(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
    assert_close(actual.squeeze(2), expected, INTERMEDIATE, what="polyphase upsample")


# ------------------------------------------------------------------------ ONNX mode


def test_onnx_mode_decoder_runs_on_frame_rate_f0() -> None:
    decoder = tiny_decoder()
    decoder.onnx_compatible = True
    x, f0 = torch.randn(1, 6, 5), torch.full((1, 5), 220.0)
    with torch.no_grad():
        audio = decoder(x, f0, torch.randn(1, 5, 1), noise=ZeroNoise())
    assert audio.shape == (1, 1, 5 * 24)
    assert torch.isfinite(audio).all()


def test_upsampled_f0_is_the_original_nearest_repeat() -> None:
    decoder = tiny_decoder()
    f0 = torch.tensor([[0.0, 110.0, 220.5]])
    seen: list[Tensor] = []
    decoder.m_source.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    decoder.excitation(f0, ZeroNoise())
    expected = F.interpolate(f0[:, None], scale_factor=24.0, mode="nearest").transpose(1, 2)
    assert torch.equal(seen[0], expected)
    assert torch.equal(seen[0][0, :, 0], f0[0].repeat_interleave(24))
