"""One GAN training step of the so-vits-svc 4.1 synthesizer, and its evaluation pass.

The step follows the original's `train_and_evaluate` body:

1. `generator_pass`: the synthesizer's training forward on a `Batch` (random segment),
   the target log-mel of the whole batch and of the segment, the generated segment's
   log-mel, and the matching slice of the real waveform.
2. `discriminator_step`: D on (real slice, detached generated slice), least-squares
   loss, backward, gradient norm, optimizer step.
3. `generator_step`: D on (real slice, generated slice) again, then
   adversarial + feature matching + c_mel · mel + c_kl · KL (+ log-f0 MSE when the
   model predicts f0), backward, gradient norm, optimizer step.

Each step function returns a flat dict of named scalars (the original's TensorBoard
names: "loss/d/total", "loss/g/mel", "grad_norm_g", ...). Device placement, mixed
precision, gradient scaling and DDP are the business of a `StepBackend` (the
Trainer's Lightning Fabric backend, or `PlainBackend` for plain float32 on one
device); these functions never decide them.

A step whose loss is not finite does not update the weights (the optimizer step is
skipped and the dict reports "skipped/d" or "skipped/g" = 1), as a gradient scaler
does for overflowing fp16 gradients; the Trainer decides when that becomes an error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from sovits.config import SvcConfig
from sovits.data.batch import Batch
from sovits.dsp.spectrogram import mel_filterbank, mel_spectrogram, spec_to_mel
from sovits.models.discriminators import DiscriminatorOutput
from sovits.models.segments import slice_segments
from sovits.models.synthesizer import Synthesizer, TrainingOutput
from sovits.training import losses

LossDict = dict[str, float]


@dataclass(frozen=True)
class StepSettings:
    """What a training step needs from the config.

    segment_frames: training segment in frames (train.segment_size // hop_length);
    hop_length, n_fft, win_length in samples; sample_rate, mel_fmin, mel_fmax in Hz
    (mel_fmax None = sample_rate / 2); c_mel, c_kl: loss weights.
    """

    segment_frames: int
    hop_length: int
    sample_rate: int
    n_fft: int
    win_length: int
    n_mels: int
    mel_fmin: float
    mel_fmax: float | None
    c_mel: float
    c_kl: float

    @classmethod
    def from_config(cls, config: SvcConfig) -> StepSettings:
        """The settings train.py reads from `hps` for `config`."""
        data = config.data
        return cls(
            segment_frames=config.segment_frames,
            hop_length=data.hop_length,
            sample_rate=data.sampling_rate,
            n_fft=data.filter_length,
            win_length=data.win_length,
            n_mels=data.n_mel_channels,
            mel_fmin=data.mel_fmin,
            mel_fmax=data.mel_fmax,
            c_mel=config.train.c_mel,
            c_kl=config.train.c_kl,
        )

    @property
    def segment_samples(self) -> int:
        """Training segment in samples."""
        return self.segment_frames * self.hop_length

    def spec_to_mel(self, spec: Tensor) -> Tensor:
        """Linear spectrogram [B, n_fft // 2 + 1, T] -> log-mel [B, n_mels, T] (float32)."""
        basis = mel_filterbank(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            fmin=self.mel_fmin,
            fmax=self.mel_fmax,
            device=spec.device,
            dtype=torch.float32,
        )
        return spec_to_mel(spec.float(), basis)

    def wave_to_mel(self, wave: Tensor) -> Tensor:
        """Waveforms [B, N] -> log-mel [B, n_mels, N // hop] (float32)."""
        return mel_spectrogram(
            wave.float(),
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            hop_length=self.hop_length,
            win_length=self.win_length,
            fmin=self.mel_fmin,
            fmax=self.mel_fmax,
        )


class StepBackend(Protocol):
    """How a step runs on its hardware: autocast, backward, gradient norm, optimizer step."""

    def autocast(self) -> AbstractContextManager[Any]:
        """Context for forward passes (mixed precision, or nothing)."""
        ...

    def backward(self, loss: Tensor, module: nn.Module) -> None:
        """Backpropagate `loss` (scaled when a gradient scaler is in use)."""
        ...

    def gradient_norm(self, module: nn.Module, optimizer: Optimizer) -> Tensor:
        """Total 2-norm of `module`'s unscaled gradients (scalar tensor); nothing is clipped."""
        ...

    def optimizer_step(self, optimizer: Optimizer) -> None:
        """Apply `optimizer` (skipped by a gradient scaler on overflow)."""
        ...


class PlainBackend:
    """float32 on whatever device the modules are: no autocast, no scaling, no DDP."""

    def autocast(self) -> AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def backward(self, loss: Tensor, module: nn.Module) -> None:
        loss.backward()

    def gradient_norm(self, module: nn.Module, optimizer: Optimizer) -> Tensor:
        return total_gradient_norm(module.parameters())

    def optimizer_step(self, optimizer: Optimizer) -> None:
        optimizer.step()


def total_gradient_norm(parameters: Iterable[nn.Parameter]) -> Tensor:
    """2-norm of all gradients together (the original's clip_grad_value_(…, None))."""
    norms = [p.grad.detach().float().norm(2) for p in parameters if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.stack(norms).norm(2)


@dataclass
class GeneratorPass:
    """The synthesizer's training forward with everything the losses compare."""

    output: TrainingOutput
    mel: Tensor
    """[B, n_mels, T] target log-mel of the whole batch (from its spectrogram)."""
    mel_slice: Tensor
    """[B, n_mels, segment_frames] target log-mel of the training segment."""
    generated_mel: Tensor
    """[B, n_mels, segment_frames] log-mel of the generated segment."""
    wave_slice: Tensor
    """[B, 1, segment_samples] real waveform of the training segment."""


def generator_pass(
    generator: Callable[..., TrainingOutput],
    batch: Batch,
    settings: StepSettings,
    backend: StepBackend,
    rng: torch.Generator | None = None,
) -> GeneratorPass:
    """Run the synthesizer's training forward on `batch` and slice the targets.

    `generator` is the Synthesizer (or a DDP wrapper around it); `rng` feeds its
    random draws (None: torch's global generators, as the original).
    """
    mel = settings.spec_to_mel(batch.spec)
    with backend.autocast():
        output = generator(
            batch.content,
            batch.f0,
            batch.uv,
            batch.spec,
            batch.speaker,
            batch.lengths,
            batch.lengths,
            batch.volume,
            generator=rng,
        )
    if output.y_hat.size(-1) != settings.segment_samples:
        raise ValueError(
            f"the generator made {output.y_hat.size(-1)} samples, the settings expect "
            f"{settings.segment_samples} (segment_frames × hop_length)"
        )
    mel_slice = slice_segments(mel, output.ids_slice, settings.segment_frames)
    generated_mel = settings.wave_to_mel(output.y_hat.squeeze(1))
    wave_slice = slice_segments(
        batch.wave, output.ids_slice * settings.hop_length, settings.segment_samples
    )
    return GeneratorPass(
        output=output,
        mel=mel,
        mel_slice=mel_slice,
        generated_mel=generated_mel,
        wave_slice=wave_slice,
    )


def _is_finite(value: Tensor) -> bool:
    return bool(torch.isfinite(value.detach()).all())


def discriminator_step(
    discriminator: nn.Module,
    optimizer: Optimizer,
    generated: GeneratorPass,
    backend: StepBackend,
) -> dict[str, Tensor]:
    """Update the discriminator on the real segment and the (detached) generated one.

    Returns detached scalars: "loss/d/total", "loss/d/real/<k>", "loss/d/fake/<k>" per
    sub-discriminator, "grad_norm_d", and "skipped/d" (1 when the loss was not finite
    and the update was skipped).
    """
    with backend.autocast():
        scores: DiscriminatorOutput = discriminator(
            generated.wave_slice, generated.output.y_hat.detach()
        )
    total, real_terms, fake_terms = losses.discriminator_loss(
        scores.real_scores, scores.fake_scores
    )
    optimizer.zero_grad()
    finite = _is_finite(total)
    if finite:
        backend.backward(total, discriminator)
        grad_norm = backend.gradient_norm(discriminator, optimizer)
        backend.optimizer_step(optimizer)
    else:
        grad_norm = torch.full((), math.nan)
    result = {"loss/d/total": total.detach(), "grad_norm_d": grad_norm.detach()}
    for index, (real, fake) in enumerate(zip(real_terms, fake_terms, strict=True)):
        result[f"loss/d/real/{index}"] = real.detach()
        result[f"loss/d/fake/{index}"] = fake.detach()
    result["skipped/d"] = torch.tensor(0.0 if finite else 1.0)
    return result


def generator_losses(
    discriminator: nn.Module,
    generated: GeneratorPass,
    settings: StepSettings,
    backend: StepBackend,
) -> dict[str, Tensor]:
    """The generator's losses (with graph): "loss/g/total" and its parts.

    Parts: "loss/g/gen" (adversarial), "loss/g/fm" (feature matching), "loss/g/mel"
    (× c_mel), "loss/g/kl" (× c_kl), "loss/g/lf0" (log-f0 MSE; 0 without an F0
    decoder), and "loss/g/<k>" per sub-discriminator.
    """
    with backend.autocast():
        scores: DiscriminatorOutput = discriminator(generated.wave_slice, generated.output.y_hat)
    output = generated.output
    mel = losses.mel_loss(generated.mel_slice, generated.generated_mel) * settings.c_mel
    kl = (
        losses.kl_loss(output.z_p, output.logs_q, output.m_p, output.logs_p, output.z_mask)
        * settings.c_kl
    )
    feature_matching = losses.feature_matching_loss(scores.real_features, scores.fake_features)
    adversarial, adversarial_terms = losses.adversarial_loss(scores.fake_scores)
    if output.pred_lf0 is not None and output.lf0 is not None:
        lf0 = losses.f0_prediction_loss(output.pred_lf0, output.lf0)
    else:
        lf0 = torch.zeros((), device=mel.device)
    total = adversarial + feature_matching + mel + kl + lf0
    result = {
        "loss/g/total": total,
        "loss/g/gen": adversarial,
        "loss/g/fm": feature_matching,
        "loss/g/mel": mel,
        "loss/g/kl": kl,
        "loss/g/lf0": lf0,
    }
    for index, term in enumerate(adversarial_terms):
        result[f"loss/g/{index}"] = term
    return result


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: Optimizer,
    generated: GeneratorPass,
    settings: StepSettings,
    backend: StepBackend,
) -> dict[str, Tensor]:
    """Update the generator: `generator_losses`, backward, gradient norm, optimizer step.

    Returns the detached losses plus "grad_norm_g" and "skipped/g".
    """
    named = generator_losses(discriminator, generated, settings, backend)
    total = named["loss/g/total"]
    optimizer.zero_grad()
    finite = _is_finite(total)
    if finite:
        backend.backward(total, generator)
        grad_norm = backend.gradient_norm(generator, optimizer)
        backend.optimizer_step(optimizer)
    else:
        grad_norm = torch.full((), math.nan)
    result = {name: value.detach() for name, value in named.items()}
    result["grad_norm_g"] = grad_norm.detach()
    result["skipped/g"] = torch.tensor(0.0 if finite else 1.0)
    return result


def train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    generator_optimizer: Optimizer,
    discriminator_optimizer: Optimizer,
    batch: Batch,
    settings: StepSettings,
    backend: StepBackend | None = None,
    rng: torch.Generator | None = None,
) -> tuple[LossDict, GeneratorPass]:
    """One full GAN step (discriminator, then generator) on `batch`.

    `generator` / `discriminator` may be wrapped (DDP); both must be in train mode.
    Returns every named scalar as a float (one device sync) and the generator pass
    (for logging its mels). `backend` defaults to `PlainBackend`.
    """
    backend = backend or PlainBackend()
    generated = generator_pass(generator, batch, settings, backend, rng)
    named = discriminator_step(discriminator, discriminator_optimizer, generated, backend)
    named.update(
        generator_step(
            generator, discriminator, generator_optimizer, generated, settings, backend
        )
    )
    return _to_floats(named), generated


def _to_floats(named: dict[str, Tensor]) -> LossDict:
    names = list(named)
    values = torch.stack([named[name].float().reshape(()).cpu() for name in names]).tolist()
    return dict(zip(names, values, strict=True))


@dataclass
class EvaluationItem:
    """One validation clip rendered by the synthesizer."""

    generated_audio: Tensor
    """[1, N] generated waveform (float32, CPU)."""
    reference_audio: Tensor
    """[1, N] the clip's real waveform (float32, CPU)."""
    generated_mel: Tensor
    """[n_mels, T] log-mel of the generated audio (CPU)."""
    reference_mel: Tensor
    """[n_mels, T] log-mel of the clip's spectrogram (CPU)."""


@torch.no_grad()
def evaluate(
    synthesizer: Synthesizer,
    batches: Iterable[Batch],
    settings: StepSettings,
    device: torch.device | str,
) -> list[EvaluationItem]:
    """Render the first clip of every batch with `Synthesizer.infer` (the original's evaluate).

    Inference uses the recorded f0 (no prediction) and the default noise scale, as
    the original's `generator.module.infer(c, f0, uv, g=g, vol=volume)`. The model is
    put in eval mode and restored to its previous mode afterwards.
    """
    was_training = synthesizer.training
    synthesizer.eval()
    items = []
    try:
        for batch in batches:
            first = batch.to(device)
            frames = int(first.lengths[0])
            volume = first.volume[:1, :frames] if first.volume is not None else None
            result = synthesizer.infer(
                first.content[:1, :, :frames],
                first.f0[:1, :frames],
                first.uv[:1, :frames],
                speaker=first.speaker[:1],
                volume=volume,
            )
            audio = result.audio[0].float()
            items.append(
                EvaluationItem(
                    generated_audio=audio.cpu(),
                    reference_audio=first.wave[0, :, : frames * settings.hop_length]
                    .float()
                    .cpu(),
                    generated_mel=settings.wave_to_mel(audio)[0].cpu(),
                    reference_mel=settings.spec_to_mel(first.spec[:1, :, :frames])[0].cpu(),
                )
            )
    finally:
        synthesizer.train(was_training)
    return items
