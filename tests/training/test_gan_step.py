"""One GAN step on a tiny synthesizer: targets, updates, skipped steps, evaluation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sovits.config import template_config
from sovits.models.build import build_synthesizer
from sovits.models.discriminators import MultiPeriodDiscriminator
from sovits.models.segments import slice_segments
from sovits.training.gan_step import (
    PlainBackend,
    StepSettings,
    discriminator_step,
    evaluate,
    generator_pass,
    train_step,
)
from tests.training.tiny import TinyDiscriminator, synthetic_batches, tiny_config


def _parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def _adamw(module: torch.nn.Module) -> torch.optim.AdamW:
    return torch.optim.AdamW(module.parameters(), 1e-3, betas=(0.8, 0.99), eps=1e-9)


def test_step_settings_follow_the_config():
    settings = StepSettings.from_config(template_config())
    assert settings.segment_frames == 10240 // 512
    assert settings.segment_samples == 10240
    assert (settings.n_fft, settings.hop_length, settings.win_length) == (2048, 512, 2048)
    assert (settings.n_mels, settings.sample_rate, settings.mel_fmax) == (80, 44100, 22050)
    assert (settings.c_mel, settings.c_kl) == (45, 1.0)


def test_generator_pass_slices_the_targets_where_the_segment_is():
    torch.manual_seed(0)
    config = tiny_config()
    settings = StepSettings.from_config(config)
    synthesizer = build_synthesizer(config)
    batch = synthetic_batches(config, 1)[0]
    generated = generator_pass(
        synthesizer, batch, settings, PlainBackend(), torch.Generator().manual_seed(1)
    )
    starts = generated.output.ids_slice
    assert generated.output.y_hat.shape == (2, 1, settings.segment_samples)
    assert generated.mel.shape == (2, settings.n_mels, batch.spec.size(2))
    assert torch.equal(
        generated.mel_slice, slice_segments(generated.mel, starts, settings.segment_frames)
    )
    for item in range(2):
        start = int(starts[item]) * settings.hop_length
        expected = batch.wave[item, :, start : start + settings.segment_samples]
        assert torch.equal(generated.wave_slice[item], expected)
    # the mel of the generated segment is the synthesizer front end on y_hat
    assert generated.generated_mel.shape == generated.mel_slice.shape
    assert torch.allclose(
        generated.generated_mel, settings.wave_to_mel(generated.output.y_hat.squeeze(1))
    )


def test_train_step_with_the_real_discriminator_updates_both_models():
    torch.manual_seed(0)
    config = tiny_config()
    settings = StepSettings.from_config(config)
    synthesizer = build_synthesizer(config)
    # The real MultiPeriodDiscriminator, with one period to keep the CPU test quick.
    discriminator = MultiPeriodDiscriminator(periods=(2,))
    before_g, before_d = _parameters(synthesizer), _parameters(discriminator)
    named, _ = train_step(
        synthesizer,
        discriminator,
        _adamw(synthesizer),
        _adamw(discriminator),
        synthetic_batches(config, 1)[0],
        settings,
    )
    expected = {
        "loss/d/total", "loss/d/real/0", "loss/d/fake/1", "grad_norm_d", "skipped/d",
        "loss/g/total", "loss/g/gen", "loss/g/fm", "loss/g/mel", "loss/g/kl", "loss/g/lf0",
        "loss/g/0", "loss/g/1", "grad_norm_g", "skipped/g",
    }
    assert expected <= set(named)
    assert all(math.isfinite(value) for value in named.values())
    assert named["skipped/d"] == named["skipped/g"] == 0.0
    parts = ("loss/g/gen", "loss/g/fm", "loss/g/mel", "loss/g/kl", "loss/g/lf0")
    assert math.isclose(named["loss/g/total"], sum(named[p] for p in parts), rel_tol=1e-5)
    assert named["loss/g/lf0"] > 0.0
    assert named["grad_norm_d"] > 0.0 and named["grad_norm_g"] > 0.0
    assert _changed(before_g, synthesizer) and _changed(before_d, discriminator)


def test_discriminator_step_leaves_the_generator_alone():
    torch.manual_seed(0)
    config = tiny_config()
    settings = StepSettings.from_config(config)
    synthesizer, discriminator = build_synthesizer(config), TinyDiscriminator()
    generated = generator_pass(
        synthesizer, synthetic_batches(config, 1)[0], settings, PlainBackend()
    )
    before_g, before_d = _parameters(synthesizer), _parameters(discriminator)
    named = discriminator_step(discriminator, _adamw(discriminator), generated, PlainBackend())
    assert named["loss/d/total"].item() > 0.0
    assert _changed(before_d, discriminator)
    assert not _changed(before_g, synthesizer)
    assert all(p.grad is None for p in synthesizer.parameters())


def test_a_step_whose_loss_is_not_finite_changes_nothing():
    torch.manual_seed(0)
    config = tiny_config()
    synthesizer, discriminator = build_synthesizer(config), TinyDiscriminator()
    batch = synthetic_batches(config, 1)[0]
    batch = dataclasses.replace(batch, wave=torch.full_like(batch.wave, math.nan))
    before_g, before_d = _parameters(synthesizer), _parameters(discriminator)
    named, _ = train_step(
        synthesizer, discriminator, _adamw(synthesizer), _adamw(discriminator), batch,
        StepSettings.from_config(config),
    )
    assert named["skipped/d"] == named["skipped/g"] == 1.0
    assert math.isnan(named["loss/d/total"])
    assert not _changed(before_g, synthesizer) and not _changed(before_d, discriminator)


def test_without_f0_prediction_the_lf0_loss_is_zero():
    torch.manual_seed(0)
    config = tiny_config()
    model = dataclasses.replace(config.model, use_automatic_f0_prediction=False)
    config = dataclasses.replace(config, model=model)
    synthesizer, discriminator = build_synthesizer(config), TinyDiscriminator()
    named, _ = train_step(
        synthesizer, discriminator, _adamw(synthesizer), _adamw(discriminator),
        synthetic_batches(config, 1)[0], StepSettings.from_config(config),
    )
    assert named["loss/g/lf0"] == 0.0
    assert math.isfinite(named["loss/g/total"])


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_renders_the_first_clip_of_each_batch(training: bool):
    torch.manual_seed(0)
    config = tiny_config()
    settings = StepSettings.from_config(config)
    synthesizer = build_synthesizer(config).train(training)
    batches = synthetic_batches(config, 2)
    items = evaluate(synthesizer, batches, settings, "cpu")
    assert len(items) == 2
    frames = int(batches[0].lengths[0])
    for item in items:
        assert item.generated_audio.shape == (1, frames * settings.hop_length)
        assert item.reference_audio.shape == (1, frames * settings.hop_length)
        assert item.generated_mel.shape == (settings.n_mels, frames)
        assert item.reference_mel.shape == (settings.n_mels, frames)
        assert torch.isfinite(item.generated_audio).all()
    assert synthesizer.training is training
