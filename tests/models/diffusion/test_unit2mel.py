"""Unit2Mel and its WaveNet denoiser against so-vits-svc 4.1 (tiny fixtures).

Conditioning, denoiser outputs and the training loss use the original's op order, so
they match to float32 round-off: the shared INTERMEDIATE tolerance of tests/tolerance.py
(the README suggests a looser 1e-5 for cond).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sovits.errors import InputError
from sovits.models.diffusion.denoiser import WaveNet, step_embedding
from sovits.models.diffusion.unit2mel import Unit2Mel
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import INTERMEDIATE, Tolerance, assert_close

DIFFUSION = FIXTURES / "sovits41-extras" / "diffusion"
SAME_ORDER_ATOL = INTERMEDIATE
COND_ATOL = INTERMEDIATE
TINY = {"unit_channels": 16, "n_mels": 128, "n_layers": 3, "residual_channels": 16,
        "hidden_channels": 12}


def _state(name: str) -> dict[str, torch.Tensor]:
    return torch.load(DIFFUSION / name / "model_2000.pt", weights_only=True)["model"]


def tiny_2spk() -> Unit2Mel:
    model = Unit2Mel(n_speakers=2, use_pitch_aug=True, **TINY)
    model.load_state_dict(_state("tiny_2spk"), strict=True)
    return model.eval()


def tiny_1spk_kmax100() -> Unit2Mel:
    model = Unit2Mel(n_speakers=1, use_pitch_aug=False, k_step_max=100, **TINY)
    model.load_state_dict(_state("tiny_1spk_kmax100"), strict=True)
    return model.eval()


def _close(actual: torch.Tensor, expected: np.ndarray, tolerance: Tolerance) -> None:
    assert_close(actual, expected, tolerance, what="Unit2Mel")


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("name", "build"), [("tiny_2spk", tiny_2spk), ("tiny_1spk_kmax100", tiny_1spk_kmax100)]
)
def test_state_dict_layout_equals_the_original(name, build):
    manifest = json.loads((DIFFUSION / "manifest.json").read_text())["models"][name]
    state = build().state_dict()
    assert list(state) == list(manifest["state_dict"])
    for key, (shape, dtype) in manifest["state_dict"].items():
        assert list(state[key].shape) == shape, key
        assert str(state[key].dtype) == dtype, key


def test_fresh_schedule_buffers_equal_the_stored_ones():
    fresh = Unit2Mel(n_speakers=2, use_pitch_aug=True, **TINY).state_dict()
    stored = _state("tiny_2spk")
    buffers = [key for key in stored if key.startswith("decoder.") and "denoise_fn" not in key]
    assert len(buffers) == 14
    for key in buffers:
        assert torch.equal(fresh[key], stored[key]), key
    assert fresh["decoder.spec_min"].item() == -12.0
    assert fresh["decoder.spec_max"].item() == 2.0


def test_k_step_max_rule():
    assert tiny_2spk().k_step_max == 1000  # 0 means the whole chain
    assert tiny_1spk_kmax100().k_step_max == 100
    assert Unit2Mel(n_speakers=1, k_step_max=5000, **TINY).k_step_max == 1000


# --------------------------------------------------------------------------- denoiser


@pytest.fixture(scope="module")
def denoiser_npz():
    return load_npz(DIFFUSION / "denoiser_forward_tiny_2spk.npz")


@pytest.mark.parametrize("case", ["t_long", "t_long_mid", "t_float"])
def test_denoiser_forward(denoiser_npz, case):
    denoiser = tiny_2spk().decoder.denoise_fn
    spec = torch.from_numpy(denoiser_npz["spec"])
    cond = torch.from_numpy(denoiser_npz["cond"])
    steps = torch.from_numpy(denoiser_npz[case])
    with torch.no_grad():
        out = denoiser(spec, steps, cond)
        projected = denoiser(spec, steps, projected_condition=denoiser.project_condition(cond))
    assert out.shape == (2, 1, 128, 20)
    _close(out, denoiser_npz[f"out_{case}"], SAME_ORDER_ATOL)
    assert torch.equal(out, projected)


def test_step_embedding_and_mlp(denoiser_npz):
    denoiser = tiny_2spk().decoder.denoise_fn
    steps = torch.from_numpy(denoiser_npz["t_float"])
    _close(step_embedding(steps, 16), denoiser_npz["sinusoidal_emb_t_float"], SAME_ORDER_ATOL)
    _close(denoiser.step_features(steps), denoiser_npz["mlp_t_float"], SAME_ORDER_ATOL)


def test_fresh_denoiser_predicts_zero_noise():
    # The original zero-initialises the output projection's weight.
    denoiser = WaveNet(n_mels=8, n_layers=2, residual_channels=8, hidden_channels=4)
    out = denoiser(torch.randn(1, 1, 8, 5), torch.tensor([3]), torch.randn(1, 4, 5))
    assert torch.equal(out, denoiser.output_projection.bias.detach()[None, None, :, None]
                       .expand(1, 1, 8, 5))


# --------------------------------------------------------------------------- conditioning


@pytest.fixture(scope="module")
def cond_npz():
    return load_npz(DIFFUSION / "cond_embed_tiny_2spk.npz")


def _inputs(npz):
    return tuple(torch.from_numpy(npz[key]) for key in ("units", "f0", "volume"))


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("cond_spk0", {"speaker": torch.tensor([[0]])}),
        ("cond_spk1", {"speaker": torch.tensor([[1]])}),
        ("cond_spk1_aug_shift", {"speaker": torch.tensor([[1]]),
                                 "aug_shift": torch.tensor([[[3.0]]])}),
        ("cond_spk_mix_dict", {"speaker_mix": {0: 0.3, 1: 0.7}}),
    ],
)
def test_cond(cond_npz, case, options):
    cond = tiny_2spk().cond(*_inputs(cond_npz), **options)
    assert cond.shape == (1, 12, 20)  # [B, H, T]
    _close(cond.transpose(1, 2), cond_npz[case], COND_ATOL)


def test_cond_accepts_an_int_speaker(cond_npz):
    model = tiny_2spk()
    assert torch.equal(model.cond(*_inputs(cond_npz), speaker=1),
                       model.cond(*_inputs(cond_npz), speaker=torch.tensor([[1]])))


def test_speaker_weights_constant_equal_speaker_mix(cond_npz):
    model = tiny_2spk()
    weights = torch.tensor([0.3, 0.7]).expand(1, 20, 2)
    by_weights = model.cond(*_inputs(cond_npz), speaker_weights=weights)
    _close(by_weights.transpose(1, 2), cond_npz["cond_spk_mix_dict"], SAME_ORDER_ATOL)


def test_speaker_weights_per_frame(cond_npz):
    model = tiny_2spk()
    inputs = _inputs(cond_npz)
    # Frames 0..9 speaker 0, frames 10..19 speaker 1, as one-hot weights.
    weights = torch.zeros(1, 20, 2)
    weights[0, :10, 0] = 1.0
    weights[0, 10:, 1] = 1.0
    mixed = model.cond(*inputs, speaker_weights=weights)
    speaker0 = model.cond(*inputs, speaker=0)
    speaker1 = model.cond(*inputs, speaker=1)
    assert torch.equal(mixed[..., :10], speaker0[..., :10])
    assert torch.equal(mixed[..., 10:], speaker1[..., 10:])
    # A linear ramp gives the per-frame blend of the two embeddings.
    ramp = torch.linspace(0, 1, 20)
    weights = torch.stack([1 - ramp, ramp], dim=-1)[None]
    blended = model.cond(*inputs, speaker_weights=weights)
    expected = speaker0 * (1 - ramp) + speaker1 * ramp
    torch.testing.assert_close(blended, expected, rtol=0, atol=1e-6)


def test_speaker_weights_batch(cond_npz):
    model = tiny_2spk()
    units, f0, volume = (value.expand(2, -1, -1) for value in _inputs(cond_npz))
    weights = torch.zeros(2, 20, 2)
    weights[0, :, 0] = 1.0
    weights[1, :, 1] = 1.0
    out = model.cond(units, f0, volume, speaker_weights=weights)
    assert torch.equal(out, model.cond(units, f0, volume, speaker=torch.tensor([[0], [1]])))


def test_speaker_errors(cond_npz):
    model = tiny_2spk()
    inputs = _inputs(cond_npz)
    with pytest.raises(InputError, match="exactly one"):
        model.cond(*inputs)
    with pytest.raises(InputError, match="exactly one"):
        model.cond(*inputs, speaker=0, speaker_mix={0: 1.0})
    with pytest.raises(InputError, match="out of range"):
        model.cond(*inputs, speaker=2)
    with pytest.raises(InputError, match="out of range"):
        model.cond(*inputs, speaker_mix={0: 0.5, 5: 0.5})
    with pytest.raises(InputError, match="speaker_weights"):
        model.cond(*inputs, speaker_weights=torch.ones(1, 20, 3))
    with pytest.raises(InputError, match="integers"):
        model.cond(*inputs, speaker=torch.tensor([[0.5]]))


def test_single_speaker_model_ignores_the_speaker(cond_npz):
    model = tiny_1spk_kmax100()
    inputs = _inputs(cond_npz)
    plain = model.cond(*inputs)
    assert torch.equal(plain, model.cond(*inputs, speaker=0))
    assert torch.equal(plain, model.cond(*inputs, speaker_mix={0: 1.0}))
    # No aug_shift_embed: aug_shift is ignored, as in the original.
    assert torch.equal(plain, model.cond(*inputs, aug_shift=torch.tensor([[[3.0]]])))


def test_input_shape_errors(cond_npz):
    model = tiny_2spk()
    units, f0, volume = _inputs(cond_npz)
    with pytest.raises(InputError, match="units"):
        model.cond(units[..., :8], f0, volume, speaker=0)
    with pytest.raises(InputError, match="f0"):
        model.cond(units, f0[:, :10], volume, speaker=0)
    # [B, T] f0 and volume are accepted as [B, T, 1].
    assert torch.equal(model.cond(units, f0[..., 0], volume[..., 0], speaker=0),
                       model.cond(units, f0, volume, speaker=0))


# --------------------------------------------------------------------------- training loss


@pytest.fixture(scope="module")
def loss_npz():
    return load_npz(DIFFUSION / "train_loss_tiny_2spk.npz")


def _loss_inputs(npz):
    return tuple(torch.from_numpy(npz[key]) for key in ("units", "f0", "volume", "mel"))


def test_training_loss(loss_npz):
    model = tiny_2spk().train()
    loss = model.training_loss(
        *_loss_inputs(loss_npz),
        speaker=torch.from_numpy(loss_npz["spk_id"]),
        aug_shift=torch.from_numpy(loss_npz["aug_shift"]),
        steps=torch.from_numpy(loss_npz["t"]),
        noise=torch.from_numpy(loss_npz["noise"]),
    )
    assert loss.shape == ()
    assert_close(loss.item(), loss_npz["loss"], INTERMEDIATE, what="training loss")
    loss.backward()
    assert model.unit_embed.weight.grad is not None
    assert model.spk_embed is not None and model.spk_embed.weight.grad is not None


def test_training_loss_draws_steps_then_noise_from_the_generator(loss_npz):
    model = tiny_2spk().train()
    kwargs = {"speaker": torch.from_numpy(loss_npz["spk_id"]),
              "aug_shift": torch.from_numpy(loss_npz["aug_shift"])}
    drawn = model(*_loss_inputs(loss_npz), generator=torch.Generator().manual_seed(7), **kwargs)
    replay = torch.Generator().manual_seed(7)
    steps = torch.randint(0, 1000, (2,), generator=replay)
    noise = torch.randn(2, 1, 128, 20, generator=replay)
    given = model(*_loss_inputs(loss_npz), steps=steps, noise=noise, **kwargs)
    assert torch.equal(drawn, given)


def test_training_steps_stay_below_k_step_max(loss_npz):
    model = tiny_1spk_kmax100().train()
    seen = []
    model.decoder.denoise_fn.register_forward_pre_hook(lambda _, args: seen.append(args[1]))
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        model.training_loss(*_loss_inputs(loss_npz), generator=generator)
    steps = torch.cat(seen)
    assert steps.min() >= 0 and steps.max() < 100
