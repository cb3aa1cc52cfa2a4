"""Seconds per GAN training step at the so-vits-svc 4.1 default and tiny configs.

Builds the synthesizer and the real multi-period discriminator from the 4.1 config
templates (random weights), sets them up with Lightning Fabric exactly as the
Trainer does (device, precision, AdamW), and times `gan_step.train_step` on a
synthetic batch: content units, an f0 contour, a sine-tone waveform and its
spectrogram, `--frames` frames per clip (the dataset crops clips to 790 frames;
400 frames is about 4.6 s at 44.1 kHz / hop 512). Each configuration runs
`--warmup` untimed steps, then `--steps` timed ones; the median is printed, with
the slowest and fastest. No data loading, logging or checkpointing is included.
Figures only: nothing passes or fails.

    python benchmarks/train_step.py [--configs default tiny] [--accelerator auto]
        [--precision 32 16-mixed] [--batch-size N] [--frames 400] [--steps 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from sovits.config import SvcConfig, template_config
from sovits.data.batch import Batch
from sovits.dsp.spectrogram import spectrogram
from sovits.models.build import build_discriminator, build_synthesizer
from sovits.training.gan_step import StepSettings, train_step
from sovits.training.trainer import FabricBackend, forward_module, parse_precision


def synthetic_batch(config: SvcConfig, batch_size: int, frames: int) -> Batch:
    generator = torch.Generator().manual_seed(0)
    hop, rate = config.data.hop_length, config.data.sampling_rate
    time_axis = torch.arange(frames * hop) / rate
    f0_hz = 180.0 + 200.0 * torch.rand(batch_size, 1, generator=generator)
    vibrato = 2 ** (0.3 / 12 * torch.sin(2 * math.pi * 5.5 * time_axis))
    wave = 0.3 * torch.sin(2 * math.pi * torch.cumsum(f0_hz * vibrato / rate, dim=1))
    spec = spectrogram(
        wave, n_fft=config.data.filter_length, hop_length=hop, win_length=config.data.win_length
    )
    f0 = (f0_hz * vibrato[::hop][:frames]).contiguous()
    return Batch(
        content=torch.randn(batch_size, config.model.ssl_dim, frames, generator=generator),
        f0=f0,
        uv=torch.ones(batch_size, frames),
        spec=spec[:, :, :frames],
        wave=wave.unsqueeze(1),
        speaker=torch.arange(batch_size) % config.model.n_speakers,
        lengths=torch.full((batch_size,), frames, dtype=torch.long),
        volume=torch.rand(batch_size, frames, generator=generator)
        if config.model.vol_embedding
        else None,
    )


def time_steps(
    config: SvcConfig,
    *,
    accelerator: str,
    precision: str,
    batch_size: int,
    frames: int,
    warmup: int,
    steps: int,
) -> list[float]:
    from lightning_fabric import Fabric

    fabric = Fabric(accelerator=accelerator, devices=1, precision=parse_precision(precision))
    fabric.launch()
    torch.manual_seed(config.train.seed)
    generator, discriminator = build_synthesizer(config), build_discriminator(config)
    train = config.train
    optimizers = [
        torch.optim.AdamW(module.parameters(), train.learning_rate, betas=train.betas,
                          eps=train.eps)
        for module in (generator, discriminator)
    ]
    generator_module, generator_optimizer = fabric.setup(generator, optimizers[0])
    discriminator_module, discriminator_optimizer = fabric.setup(discriminator, optimizers[1])
    batch = synthetic_batch(config, batch_size, frames).to(fabric.device)
    settings = StepSettings.from_config(config)
    backend = FabricBackend(fabric)
    timings = []
    for index in range(warmup + steps):
        if fabric.device.type == "cuda":
            torch.cuda.synchronize(fabric.device)
        started = time.perf_counter()
        train_step(
            forward_module(generator_module),
            forward_module(discriminator_module),
            generator_optimizer,
            discriminator_optimizer,
            batch,
            settings,
            backend,
        )  # returns floats: the device is synchronised
        if index >= warmup:
            timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["default", "tiny"],
                        choices=["default", "tiny"])
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--precision", nargs="+", default=["32"])
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: the config's train.batch_size (6)")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = "cpu"
    if args.accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    print(f"device: {device}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}")
    print(f"{'config':8} {'precision':10} {'batch':>5} {'frames':>6} "
          f"{'s/step':>8} {'min':>8} {'max':>8} {'clips/s':>8}")
    for name in args.configs:
        config = template_config(tiny=(name == "tiny"))
        batch_size = args.batch_size or config.train.batch_size
        for precision in args.precision:
            timings = time_steps(
                config,
                accelerator=args.accelerator,
                precision=precision,
                batch_size=batch_size,
                frames=args.frames,
                warmup=args.warmup,
                steps=args.steps,
            )
            median = statistics.median(timings)
            print(f"{name:8} {precision:10} {batch_size:>5} {args.frames:>6} "
                  f"{median:>8.3f} {min(timings):>8.3f} {max(timings):>8.3f} "
                  f"{batch_size / median:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
