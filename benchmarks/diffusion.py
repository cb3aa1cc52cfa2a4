"""CPU speed of shallow diffusion per sampler at the default so-vits-svc 4.1 dims.

Builds `Unit2Mel` from the 4.1 diffusion template (random weights: 20 WaveNet layers,
512 residual channels, 256 hidden, 768-dimensional units, 128 mel bins, 1000 steps)
and refines about 10 s of 44.1 kHz audio (861 frames) from step k_step (default 100)
with each sampler: ddim, pndm, dpm-solver, dpm-solver++ and unipc at the template's
speedup 10 (10 denoiser calls; pndm makes one more), and plain DDPM (speedup 1, a call
per step). The NSF-HiFiGAN vocoder that renders the mel afterwards is timed by
`benchmarks/synth_infer.py` (the same decoder).

It prints seconds of compute per second of audio (median wall time over --runs).
Figures only: nothing passes or fails.

    python benchmarks/diffusion.py [--frames 861] [--k-step 100] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sovits.checkpoints.diffusion import build_unit2mel
from sovits.config.diffusion import parse_diffusion_config
from sovits.data.filelists import diffusion_template
from sovits.models.noise import NoiseSource

SAMPLE_RATE = 44100
HOP = 512
SAMPLERS = (
    ("ddim", 10),
    ("pndm", 10),
    ("dpm-solver", 10),
    ("dpm-solver++", 10),
    ("unipc", 10),
    ("ddpm", 1),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=861)
    parser.add_argument("--k-step", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    config = parse_diffusion_config(diffusion_template(), source="4.1 diffusion template")
    torch.manual_seed(0)
    model = build_unit2mel(config).eval()
    frames = arguments.frames
    generator = torch.Generator().manual_seed(1)
    units = torch.randn(1, frames, config.data.encoder_out_channels, generator=generator)
    f0 = torch.full((1, frames, 1), 220.0)
    volume = torch.rand(1, frames, 1, generator=generator) * 0.2
    mel = torch.randn(1, frames, model.n_mels, generator=generator) - 6.0
    seconds = frames * HOP / SAMPLE_RATE
    print(f"Unit2Mel, 4.1 template dims, {frames} frames = {seconds:.2f} s of audio, "
          f"k_step {arguments.k_step}, {arguments.threads} threads")
    print(f"{'sampler':<14}{'speedup':>8}{'s per s of audio':>20}")
    for method, speedup in SAMPLERS:
        times = []
        for run in range(arguments.runs):
            started = time.perf_counter()
            with torch.inference_mode():
                model.infer(
                    units, f0, volume, gt_spec=mel, k_step=arguments.k_step,
                    speedup=speedup, method=None if method == "ddpm" else method,
                    noise=NoiseSource.from_seed(run),
                )
            times.append(time.perf_counter() - started)
        print(f"{method:<14}{speedup:>8}{statistics.median(times) / seconds:>20.3f}")


if __name__ == "__main__":
    main()
