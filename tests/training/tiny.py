"""Tiny training setups for the training tests (and a script entry for subprocess runs).

* `tiny_config()`: the 4.1 tiny template shrunk to a few thousand parameters
  (hop 32, 8-frame segments, 8 hidden channels).
* `synthetic_batches()`: `Batch`es of sine tones with their real spectrogram.
* `TinyDiscriminator`: two small 1-D conv stacks with MultiPeriodDiscriminator's
  interface (the real one has 47 M parameters: too slow for a CPU test).

    python -m tests.training.tiny MODEL_DIR --max-steps N [--eval-interval K]

trains the tiny setup in a fresh process (used by the kill-and-resume test).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.config import SvcConfig, parse_svc_config, template_config
from sovits.data.batch import Batch
from sovits.dsp.spectrogram import spectrogram
from sovits.models.discriminators import DiscriminatorOutput

FRAMES = 24


def tiny_config(**train_overrides: Any) -> SvcConfig:
    """A config small enough to train tens of steps on one CPU core in seconds."""
    data = template_config(tiny=True).to_dict()
    data["train"].update(
        log_interval=5,
        eval_interval=10,
        seed=1234,
        epochs=1000,
        learning_rate=2e-3,
        batch_size=2,
        segment_size=8 * 32,
        keep_ckpts=2,
    )
    data["train"].update(train_overrides)
    data["data"].update(
        sampling_rate=8000,
        filter_length=128,
        hop_length=32,
        win_length=128,
        n_mel_channels=20,
        mel_fmax=4000,
    )
    data["model"].update(
        inter_channels=8,
        hidden_channels=8,
        filter_channels=16,
        n_heads=2,
        n_layers=1,
        p_dropout=0.0,
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3, 5]],
        upsample_rates=[4, 4, 2],
        upsample_initial_channel=16,
        upsample_kernel_sizes=[8, 8, 4],
        gin_channels=8,
        ssl_dim=16,
        n_speakers=2,
    )
    data["spk"] = {"alto": 0, "tenor": 1}
    return parse_svc_config(data, source="tiny")


def synthetic_batches(
    config: SvcConfig, count: int, *, seed: int = 0, batch_size: int = 2, frames: int = FRAMES
) -> list[Batch]:
    """`count` batches of sine tones (random pitch per item) with matching spectrograms.

    The second item of each batch is 4 frames shorter (zero padded), so masks matter.
    """
    generator = torch.Generator().manual_seed(seed)
    hop = config.data.hop_length
    rate = config.data.sampling_rate
    batches = []
    for _ in range(count):
        f0_hz = 150.0 + 250.0 * torch.rand(batch_size, 1, generator=generator)
        f0 = f0_hz.expand(batch_size, frames).clone()
        uv = torch.ones(batch_size, frames)
        uv[:, :2] = 0.0
        f0 = f0 * uv
        time_axis = torch.arange(frames * hop) / rate
        wave = 0.4 * torch.sin(2 * math.pi * f0_hz * time_axis)
        lengths = torch.full((batch_size,), frames, dtype=torch.long)
        if batch_size > 1:
            lengths[1] = frames - 4
            wave[1, (frames - 4) * hop :] = 0.0
        spec = spectrogram(
            wave,
            n_fft=config.data.filter_length,
            hop_length=hop,
            win_length=config.data.win_length,
        )
        content = torch.randn(batch_size, config.model.ssl_dim, frames, generator=generator)
        for index, length in enumerate(lengths.tolist()):
            content[index, :, length:] = 0.0
            spec[index, :, length:] = 0.0
            f0[index, length:] = 0.0
            uv[index, length:] = 0.0
        batches.append(
            Batch(
                content=content,
                f0=f0,
                uv=uv,
                spec=spec,
                wave=wave.unsqueeze(1),
                speaker=torch.arange(batch_size) % config.model.n_speakers,
                lengths=lengths,
                volume=None,
            )
        )
    return batches


class _ConvStack(nn.Module):
    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(1, 4, kernel_size, stride=2, padding=kernel_size // 2),
                nn.Conv1d(4, 8, kernel_size, stride=2, padding=kernel_size // 2),
            ]
        )
        self.post = nn.Conv1d(8, 1, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return torch.flatten(x, 1), features


class TinyDiscriminator(nn.Module):
    """MultiPeriodDiscriminator's interface with two tiny sub-discriminators."""

    def __init__(self) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList([_ConvStack(5), _ConvStack(9)])

    def forward(self, real: Tensor, fake: Tensor) -> DiscriminatorOutput:
        output = DiscriminatorOutput([], [], [], [])
        for discriminator in self.discriminators:
            real_score, real_maps = discriminator(real)
            fake_score, fake_maps = discriminator(fake)
            output.real_scores.append(real_score)
            output.fake_scores.append(fake_score)
            output.real_features.append(real_maps)
            output.fake_features.append(fake_maps)
        return output


def tiny_discriminator(config: SvcConfig) -> nn.Module:
    return TinyDiscriminator()


@dataclass
class RepeatingLoader:
    """Cycles through fixed batches; one epoch = `epoch_length` batches."""

    batches: list[Batch]
    epoch_length: int

    def __iter__(self) -> Iterator[Batch]:
        for index in range(self.epoch_length):
            yield self.batches[index % len(self.batches)]

    def __len__(self) -> int:
        return self.epoch_length


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--eval-interval", type=int, default=5)
    parser.add_argument("--devices", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    from sovits.training.trainer import Trainer, TrainOptions, TrainProgress

    def report(progress: TrainProgress) -> None:
        print(f"step {progress.step} g {progress.losses['loss/g/total']:.6f}", flush=True)

    config = tiny_config(eval_interval=args.eval_interval, log_interval=1000)
    trainer = Trainer(
        config,
        args.model_dir,
        TrainOptions(
            accelerator="cpu", devices=args.devices, max_steps=args.max_steps, tensorboard=False
        ),
        progress=report,
        discriminator_factory=tiny_discriminator,
    )
    loader = RepeatingLoader(synthetic_batches(config, 3), epoch_length=7)
    result = trainer.fit(loader)
    print(f"done {result.last_step} rank {os.environ.get('LOCAL_RANK', '0')}", flush=True)


if __name__ == "__main__":
    main()
