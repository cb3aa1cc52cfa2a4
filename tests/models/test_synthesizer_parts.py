"""Synthesizer parts and whole inference against the original so-vits-svc 4.1 numbers.

sovits runs the same ops in the same order as the original (the relative attention keeps
the original's matrix shapes on purpose), so on the fixtures' AVX2 kernels the results are
bit-identical; other CPUs round differently, hence the shared tolerances of tests/tolerance.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch

from sovits.dsp.f0 import f0_to_coarse, f0_to_lf0, lf0_to_f0, normalize_f0
from sovits.errors import InputError
from sovits.models.noise import NoiseSource, ReplayNoise, ZeroNoise
from sovits.models.segments import rand_slice_segments_with_pitch, sequence_mask, slice_segments
from sovits.models.synthesizer import SynthesisOutput, Synthesizer
from sovits.models.weight_norm import fold_weight_norm
from tests.conftest import VARIANTS
from tests.models.synth_factory import (
    load_release_synthesizer,
    recorded_draws,
    synthesizer_kwargs,
    variant_config,
    variant_fixtures,
)
from tests.tolerance import AUDIO, HZ, INTERMEDIATE, PHASE_AUDIO, assert_close

F0_PREDICTING = tuple(v for v in VARIANTS if v != "f_resblock2_nof0pred")


@dataclass
class Case:
    model: Synthesizer
    missing: list[str]
    unexpected: list[str]
    arrays: dict[str, np.ndarray]

    def tensor(self, name: str) -> torch.Tensor:
        return torch.from_numpy(self.arrays[name])

    def volume(self) -> torch.Tensor | None:
        return self.tensor("in.vol") if "in.vol" in self.arrays else None


@cache
def _case(variant: str) -> Case:
    model, missing, unexpected = load_release_synthesizer(variant)
    return Case(model, missing, unexpected, variant_fixtures(variant))


@pytest.mark.parametrize("variant", VARIANTS)
def test_release_weights_load_with_only_the_posterior_encoder_missing(variant: str) -> None:
    case = _case(variant)
    assert case.unexpected == []
    assert case.missing
    assert all(key.startswith("enc_q.") for key in case.missing)


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_input_embeddings(variant: str) -> None:
    case = _case(variant)
    model, t = case.model, case.tensor
    assert_close(model.pre(t("in.c")), case.arrays["pre.out"], INTERMEDIATE, what="pre.out")
    assert_close(
        model.emb_uv(t("in.uv").long()).transpose(1, 2),
        case.arrays["emb_uv.out"],
        INTERMEDIATE,
        what="emb_uv.out",
    )
    assert_close(model.speaker_condition(t("in.sid"), 24), case.arrays["g"], INTERMEDIATE, what="g")
    if case.volume() is not None:
        assert model.emb_vol is not None
        emb_vol = model.emb_vol(t("in.vol")[:, :, None]).transpose(1, 2)
        assert_close(emb_vol, case.arrays["emb_vol.out"], INTERMEDIATE, what="emb_vol.out")
    features = model.content_features(t("in.c"), t("in.uv"), t("x_mask"), case.volume())
    assert_close(features, case.arrays["enc_p.in.x"], INTERMEDIATE, what="enc_p.in.x")
    assert torch.equal(f0_to_coarse(t("in.f0")), t("enc_p.in.f0_coarse"))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("prefix", ["enc_p", "enc_p_T3"])
@torch.no_grad()
def test_content_encoder_mean_and_log_scale(variant: str, prefix: str) -> None:
    # enc_p_T3 has 3 frames, fewer than window + 1: the relative tables are sliced.
    case = _case(variant)
    x = case.tensor(f"{prefix}.in.x")
    mask = torch.ones(1, 1, x.size(2))
    _, m, logs = case.model.enc_p(
        x, mask, case.tensor(f"{prefix}.in.f0_coarse"), noise=ZeroNoise(), noise_scale=0.0
    )
    assert_close(m, case.arrays[f"{prefix}.out.m"], INTERMEDIATE, what=f"{prefix}.out.m")
    assert_close(logs, case.arrays[f"{prefix}.out.logs"], INTERMEDIATE, what=f"{prefix}.out.logs")


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_content_encoder_sample_with_recorded_noise(variant: str) -> None:
    case = _case(variant)
    draw0 = recorded_draws(case.model.inter_channels)[0]
    z_p, m_p, logs_p = case.model.enc_p(
        case.tensor("enc_p.in.x"),
        case.tensor("x_mask"),
        case.tensor("enc_p.in.f0_coarse"),
        noise=ReplayNoise([draw0]),
        noise_scale=0.4,
    )
    assert_close(z_p, case.arrays["infer_ns0.4.z_p"], INTERMEDIATE, what="infer_ns0.4.z_p")
    assert_close(m_p, case.arrays["infer_ns0.4.m_p"], INTERMEDIATE, what="infer_ns0.4.m_p")
    assert_close(logs_p, case.arrays["infer_ns0.4.logs_p"], INTERMEDIATE, what="infer_ns0.4.logs_p")


@pytest.mark.parametrize("variant", VARIANTS)
@torch.no_grad()
def test_flow_reverse_and_forward(variant: str) -> None:
    case = _case(variant)
    mask, g = case.tensor("x_mask"), case.tensor("g")
    z = case.model.flow(case.tensor("infer_ns0.4.z_p"), mask, g=g, reverse=True)
    assert_close(z, case.arrays["infer_ns0.4.z"], INTERMEDIATE, what="infer_ns0.4.z")
    z_p = case.model.flow(case.tensor("flow_fwd.in"), mask, g=g)
    assert_close(z_p, case.arrays["flow_fwd.out"], INTERMEDIATE, what="flow_fwd.out")


@pytest.mark.parametrize("variant", F0_PREDICTING)
@torch.no_grad()
def test_f0_decoder(variant: str) -> None:
    case = _case(variant)
    t = case.tensor
    assert case.model.f0_decoder is not None
    lf0 = f0_to_lf0(t("in.f0"))
    assert_close(lf0, case.arrays["predf0.lf0"], HZ, what="predf0.lf0")
    norm_lf0 = normalize_f0(lf0, t("x_mask"), t("in.uv"), random_scale=False)
    assert_close(norm_lf0, case.arrays["predf0.norm_lf0"], HZ, what="predf0.norm_lf0")
    pred_lf0 = case.model.f0_decoder(t("enc_p.in.x"), norm_lf0, t("x_mask"), speaker=t("g"))
    assert_close(pred_lf0, case.arrays["predf0.pred_lf0"], HZ, what="predf0.pred_lf0")
    assert_close(lf0_to_f0(pred_lf0), case.arrays["predf0.f0"], HZ, what="predf0.f0")


def test_variant_without_f0_decoder_refuses_predict_f0() -> None:
    case = _case("f_resblock2_nof0pred")
    assert case.model.f0_decoder is None
    with pytest.raises(InputError, match="F0 decoder"):
        _infer(case, noise_scale=0.4, predict_f0=True)


# ---------------------------------------------------------------- whole inference


def _infer(case: Case, **options: Any) -> SynthesisOutput:
    t = case.tensor
    return case.model.infer(
        t("in.c"), t("in.f0"), t("in.uv"), speaker=t("in.sid"), volume=case.volume(), **options
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_infer_with_default_seed_reproduces_the_original(variant: str) -> None:
    case = _case(variant)
    global_state = torch.get_rng_state()
    output = _infer(case, noise_scale=0.4)
    assert torch.equal(torch.get_rng_state(), global_state)  # global RNG untouched
    assert_close(output.audio, case.arrays["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")
    assert_close(output.f0, case.arrays["infer_ns0.4.f0_out"], HZ, what="infer_ns0.4.f0_out")


@pytest.mark.parametrize("variant", VARIANTS)
def test_infer_with_recorded_draws(variant: str) -> None:
    case = _case(variant)
    noise = ReplayNoise(recorded_draws(case.model.inter_channels))
    output = _infer(case, noise_scale=0.4, noise=noise, seed=0)
    assert_close(output.audio, case.arrays["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")


@pytest.mark.parametrize("variant", VARIANTS)
def test_infer_noise_scale_zero_still_draws_the_prior_noise(variant: str) -> None:
    case = _case(variant)
    output = _infer(case, noise_scale=0.0, noise=NoiseSource.from_seed(52468))
    assert_close(output.audio, case.arrays["infer_ns0.audio"], AUDIO, what="infer_ns0.audio")


@pytest.mark.parametrize("variant", VARIANTS)
def test_infer_with_all_draws_zero(variant: str) -> None:
    case = _case(variant)
    output = _infer(case, noise_scale=0.4, noise=ZeroNoise())
    assert_close(output.audio, case.arrays["infer_zero.audio"], AUDIO, what="infer_zero.audio")


@pytest.mark.parametrize("variant", F0_PREDICTING)
def test_infer_with_predicted_f0(variant: str) -> None:
    case = _case(variant)
    output = _infer(case, noise_scale=0.4, predict_f0=True)
    assert_close(output.f0, case.arrays["predf0.f0"], HZ, what="predf0.f0")
    assert torch.equal(f0_to_coarse(output.f0), case.tensor("predf0.f0_coarse"))
    # the predicted f0 differs by float32 steps across CPUs, which moves the sine phase
    assert_close(output.audio, case.arrays["predf0.audio"], PHASE_AUDIO, what="predf0.audio")


def test_one_hot_speaker_mix_equals_the_speaker_id() -> None:
    case = _case("a_default")
    frames = 24
    weights = torch.zeros(frames, case.model.n_speakers)
    weights[:, 1] = 1.0
    g_mix = case.model.speaker_condition(weights, frames)
    assert g_mix.shape == (1, case.model.gin_channels, frames)
    g_id = case.model.speaker_condition(torch.tensor([1]), frames)
    assert torch.equal(g_mix, g_id.expand(-1, -1, frames))
    # Per-frame g takes other conv shapes than a broadcast [1, gin, 1]: tiny float
    # differences are possible, hence a looser tolerance for the audio.
    t = case.tensor
    mixed = case.model.infer(t("in.c"), t("in.f0"), t("in.uv"), speaker=weights, noise_scale=0.4)
    assert_close(mixed.audio, case.arrays["infer_ns0.4.audio"], AUDIO, what="mixed audio")


def test_speaker_mix_weights_blend_embedding_rows() -> None:
    model = _case("a_default").model
    weights = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.5, 0.5]])
    g = model.speaker_condition(weights, 2)
    rows = model.emb_g.weight.detach()
    expected = torch.stack([0.25 * rows[0] + 0.75 * rows[1], 0.5 * rows[1] + 0.5 * rows[2]], 1)
    torch.testing.assert_close(g[0], expected)


@pytest.mark.parametrize(
    ("speaker", "message"),
    [
        (torch.tensor([[3]]), "out of range"),
        (torch.tensor([[0, 1]]), r"\[B\] or \[B, 1\]"),
        (torch.ones(5, 3), "mixing weights"),
    ],
)
def test_bad_speaker_is_an_input_error(speaker: torch.Tensor, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _case("a_default").model.speaker_condition(speaker, 24)


def test_volume_model_requires_volume() -> None:
    case = _case("b_vol")
    t = case.tensor
    with pytest.raises(InputError, match="volume"):
        case.model.infer(t("in.c"), t("in.f0"), t("in.uv"), speaker=t("in.sid"))


def test_mismatched_frame_counts_are_an_input_error() -> None:
    case = _case("a_default")
    t = case.tensor
    with pytest.raises(InputError, match="f0"):
        case.model.infer(t("in.c"), t("in.f0")[:, :20], t("in.uv"), speaker=t("in.sid"))


def test_dropout_is_off_in_eval_mode_and_on_in_train_mode() -> None:
    case = _case("a_default")
    model, t = case.model, case.tensor
    args = (t("enc_p.in.x"), t("x_mask"), t("enc_p.in.f0_coarse"))
    with torch.no_grad():
        _, eval_m, _ = model.enc_p(*args, noise=ZeroNoise(), noise_scale=0.0)
        assert_close(eval_m, case.arrays["enc_p.out.m"], INTERMEDIATE, what="enc_p.out.m")
        model.train()
        try:
            _, train_m, _ = model.enc_p(*args, noise=ZeroNoise(), noise_scale=0.0)
        finally:
            model.eval()
    assert not torch.allclose(train_m, eval_m)


# ------------------------------------------------------------------ training pass


def _tiny_synthesizer(variant: str) -> Synthesizer:
    """The variant's switches with a small spectrogram, segment and vocoder (fast)."""
    kwargs = synthesizer_kwargs(variant_config(variant))
    kwargs.update(
        spec_channels=33,
        segment_size=4,
        upsample_initial_channel=32,
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3, 5]] if kwargs["resblock"] == "1" else [[1, 3]],
    )
    return Synthesizer(**kwargs)


def _training_batch(model: Synthesizer, frames: int = 30) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    f0 = 150 + 100 * torch.rand(2, frames, generator=generator)
    uv = torch.ones(2, frames)
    uv[:, :3] = 0
    return {
        "content": torch.randn(2, model.ssl_dim, frames, generator=generator),
        "f0": f0 * uv,
        "uv": uv,
        "spec": torch.randn(2, model.spec_channels, frames, generator=generator).abs(),
        "speaker": torch.tensor([[0], [2]]),
        "content_lengths": torch.tensor([frames, frames - 4]),
        "spec_lengths": torch.tensor([frames, frames - 4]),
    }


def test_training_forward_shapes_and_draw_order() -> None:
    model = _tiny_synthesizer("a_default").eval()  # eval: dropout must not use the RNG
    batch = _training_batch(model)
    global_state = torch.get_rng_state()
    with torch.no_grad():
        out = model(**batch, generator=torch.Generator().manual_seed(123))
        again = model(**batch, generator=torch.Generator().manual_seed(123))
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(out.y_hat, again.y_hat)

    frames, inter = 30, model.inter_channels
    assert out.y_hat.shape == (2, 1, model.segment_size * model.hop_length)
    for name in ("z", "z_p", "m_p", "logs_p", "m_q", "logs_q"):
        assert getattr(out, name).shape == (2, inter, frames)
    assert out.z_mask.shape == (2, 1, frames)
    assert out.z_mask[1, 0, -4:].sum() == 0
    assert out.lf0 is not None and out.lf0.shape == (2, 1, frames)

    # Draw order of the original: f0 scale factor, prior noise, posterior noise,
    # segment starts, then the vocoder.
    replay = torch.Generator().manual_seed(123)
    torch.empty(2, 1).uniform_(0.8, 1.2, generator=replay)  # f0 scale factor
    torch.randn(2, inter, frames, generator=replay)  # enc_p
    posterior_noise = torch.randn(2, inter, frames, generator=replay)
    starts = torch.rand(2, generator=replay)
    highest = batch["spec_lengths"] - model.segment_size + 1
    assert torch.equal(out.ids_slice, (starts * highest).long())
    assert torch.equal(out.z, (out.m_q + posterior_noise * torch.exp(out.logs_q)) * out.z_mask)
    expected_norm = normalize_f0(
        out.lf0,
        out.z_mask,
        batch["uv"],
        random_scale=True,
        generator=torch.Generator().manual_seed(123),
    )
    assert torch.equal(out.norm_lf0, expected_norm)
    with torch.no_grad():
        z_p = model.flow(out.z, out.z_mask, g=model.speaker_condition(batch["speaker"], 30))
    assert torch.equal(out.z_p, z_p)


def test_training_forward_without_f0_decoder_and_with_volume() -> None:
    model = _tiny_synthesizer("f_resblock2_nof0pred")
    batch = _training_batch(model)
    out = model(**batch, generator=torch.Generator().manual_seed(1))
    assert out.lf0 is None and out.norm_lf0 is None and out.pred_lf0 is None
    out.y_hat.sum().backward()  # the training graph is differentiable end to end

    vol_model = _tiny_synthesizer("b_vol")
    batch = _training_batch(vol_model)
    with pytest.raises(InputError, match="volume"):
        vol_model(**batch)
    out = vol_model(**batch, volume=torch.rand(2, 30), generator=torch.Generator().manual_seed(1))
    assert out.y_hat.shape[-1] == vol_model.segment_size * vol_model.hop_length


def test_folded_weight_norm_gives_identical_audio() -> None:
    model, _, _ = load_release_synthesizer("c_dsconv_share")  # fresh: folding mutates
    case = _case("c_dsconv_share")
    fold_weight_norm(model)
    output = model.infer(
        case.tensor("in.c"),
        case.tensor("in.f0"),
        case.tensor("in.uv"),
        speaker=case.tensor("in.sid"),
        noise_scale=0.4,
    )
    assert_close(output.audio, case.arrays["infer_ns0.4.audio"], AUDIO, what="infer_ns0.4.audio")


# -------------------------------------------------------------------- segments


def test_sequence_mask() -> None:
    mask = sequence_mask(torch.tensor([3, 1, 0]), 4)
    expected = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert sequence_mask(torch.tensor([2, 5])).shape == (2, 5)


def test_random_segments_cut_the_same_window_of_latent_and_pitch() -> None:
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).view(2, 3, 12)
    pitch = torch.arange(2 * 12, dtype=torch.float32).view(2, 12) + 1000
    lengths = torch.tensor([12, 7])
    x_slice, pitch_slice, starts = rand_slice_segments_with_pitch(
        x, pitch, lengths, 5, torch.Generator().manual_seed(3)
    )
    uniform = torch.rand(2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(starts, (uniform * (lengths - 5 + 1)).long())
    for item in range(2):
        start = int(starts[item])
        assert start + 5 <= int(lengths[item])
        assert torch.equal(x_slice[item], x[item, :, start : start + 5])
        assert torch.equal(pitch_slice[item], pitch[item, start : start + 5])


def test_segment_longer_than_the_input_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        slice_segments(torch.zeros(1, 2, 4), torch.tensor([0]), 5)
