"""CPU speed of whole-synthesizer inference at the default so-vits-svc 4.1 dims.

Builds `Synthesizer` from the 4.1 config template (random weights, inter 192,
upsample_initial_channel 512, rates [8, 8, 2, 2, 2], resblock "1") and renders about
10 s of 44.1 kHz audio (861 frames) with `Synthesizer.infer`. For each thread count it
times four ways of running the same weights, interleaved run by run so that a busy
machine affects all of them alike:

* original: the original's operation order, weight norm recomputed on every call
* folded: original operation order, weight norm folded (`fold_weight_norm`)
* fast: the decoder's fast CPU path (`enable_fast_cpu_inference`), weight norm live
* fast+folded: both

(`Synthesizer.infer` already runs without autograd, so folding saves only the weight-norm
arithmetic; the fast path is what matters.)

It prints seconds of compute per second of audio (median wall time; process CPU time
beside it), where the time goes (enc_p / flow / dec and the NSF source inside dec), and
the largest difference from the `original` audio. With --profile it also lists the
decoder's heaviest operations per stage. Figures only: nothing passes or fails.

    python benchmarks/synth_infer.py [--frames 861] [--runs 3] [--threads 1 2] [--profile]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from sovits.config.svc import template_config
from sovits.models.build import build_synthesizer
from sovits.models.noise import NoiseSource
from sovits.models.synthesizer import Synthesizer
from sovits.models.vocoder import enable_fast_cpu_inference
from sovits.models.weight_norm import fold_weight_norm, unfold_weight_norm

SAMPLE_RATE = 44100
HOP = 512
VARIANTS = ("original", "folded", "fast", "fast+folded")
COMPONENTS = ("enc_p", "flow", "dec", "dec.m_source")


def build_model() -> Synthesizer:
    torch.manual_seed(0)
    model = build_synthesizer(template_config())
    return model.eval()


def make_inputs(frames: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    time_axis = torch.arange(frames) / (SAMPLE_RATE / HOP)
    f0 = 220.0 * 2 ** (torch.sin(2 * torch.pi * 5.5 * time_axis) * 0.5 / 12)
    return {
        "content": torch.randn(1, 768, frames, generator=generator),
        "f0": f0.unsqueeze(0),
        "uv": torch.ones(1, frames),
        "speaker": torch.tensor([[0]]),
    }


def variant_models(model: Synthesizer) -> dict[str, Synthesizer]:
    """The same weights set up four ways (copied while folded: live weight norm cannot be)."""
    fold_weight_norm(model)
    models = {variant: copy.deepcopy(model) for variant in VARIANTS}
    for variant, copied in models.items():
        if "folded" not in variant:
            unfold_weight_norm(copied)  # recompute g * v / |v| on every call again
        enable_fast_cpu_inference(copied, variant.startswith("fast"))
    return models


class ComponentTimer:
    """Wall time spent inside named submodules during one call (forward hooks)."""

    def __init__(self, model: nn.Module):
        self.seconds: dict[str, float] = defaultdict(float)
        self._started: dict[str, float] = {}
        for name in COMPONENTS:
            module = model.get_submodule(name)
            module.register_forward_pre_hook(self._pre(name))
            module.register_forward_hook(self._post(name))

    def _pre(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object) -> None:
            self._started[name] = time.perf_counter()

        return hook

    def _post(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            self.seconds[name] += time.perf_counter() - self._started.pop(name)

        return hook

    @contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        self.seconds.clear()
        yield self.seconds


def infer(model: Synthesizer, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    output = model.infer(
        inputs["content"],
        inputs["f0"],
        inputs["uv"],
        speaker=inputs["speaker"],
        noise_scale=0.4,
        noise=NoiseSource.from_seed(52468),
    )
    return output.audio


def benchmark_threads(
    models: dict[str, Synthesizer], inputs: dict[str, torch.Tensor], threads: int, runs: int
) -> None:
    torch.set_num_threads(threads)
    audio_seconds = inputs["f0"].shape[-1] * HOP / SAMPLE_RATE
    timers = {variant: ComponentTimer(model) for variant, model in models.items()}
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    outputs: dict[str, torch.Tensor] = {}
    for run in range(runs + 1):  # run 0 warms up
        for variant in VARIANTS:
            with timers[variant].measure() as seconds:
                started, started_cpu = time.perf_counter(), time.process_time()
                outputs[variant] = infer(models[variant], inputs)
                elapsed = time.perf_counter() - started
                elapsed_cpu = time.process_time() - started_cpu
            if run == 0:
                continue
            wall[variant].append(elapsed / audio_seconds)
            cpu[variant].append(elapsed_cpu / audio_seconds)
            for name in COMPONENTS:
                parts[variant][name].append(seconds[name] / audio_seconds)

    print(f"\n== {threads} thread(s): seconds of compute per second of audio "
          f"({audio_seconds:.2f} s of audio, median of {runs} runs after 1 warm-up)")
    header = f"{'variant':<13}{'wall':>7}{'cpu':>7}   " + "".join(f"{n:>14}" for n in COMPONENTS)
    print(header + f"{'vs original':>13}  runs (wall)")
    baseline = statistics.median(wall["original"])
    for variant in VARIANTS:
        median = statistics.median(wall[variant])
        row = f"{variant:<13}{median:7.3f}{statistics.median(cpu[variant]):7.3f}   "
        row += "".join(f"{statistics.median(parts[variant][n]):14.3f}" for n in COMPONENTS)
        row += f"{median / baseline:12.2f}x  " + ", ".join(f"{w:.3f}" for w in wall[variant])
        print(row)
    reference = outputs["original"]
    print(f"max |audio| {reference.abs().max().item():.4f}; max abs difference from original: "
          + ", ".join(
              f"{variant} {(outputs[variant] - reference).abs().max().item():.2e}"
              for variant in VARIANTS[1:]
          ))


def profile_decoder(
    models: dict[str, Synthesizer], inputs: dict[str, torch.Tensor], threads: int
) -> None:
    """Heaviest operations of one call, grouped by operation and input channels."""
    from torch.profiler import profile

    torch.set_num_threads(threads)
    for variant in ("folded", "fast+folded"):
        model = models[variant]
        infer(model, inputs)
        with profile(record_shapes=True) as profiler:
            infer(model, inputs)
        totals: dict[str, float] = defaultdict(float)
        overall = 0.0
        for event in profiler.key_averages(group_by_input_shape=True):
            overall += event.self_cpu_time_total
            shapes = event.input_shapes
            channels = shapes[0][1] if shapes and len(shapes[0]) >= 2 else "-"
            totals[f"{event.key} (C_in={channels})"] += event.self_cpu_time_total
        print(f"\n-- {variant}, {threads} thread(s): top operations by self time "
              f"(total {overall / 1e6:.2f} s)")
        for key, micros in sorted(totals.items(), key=lambda item: -item[1])[:12]:
            print(f"  {micros / 1e6:7.3f} s  {100 * micros / overall:5.1f} %  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=861, help="frames (861 = 10 s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", action="store_true", help="also profile the decoder")
    args = parser.parse_args()

    model = build_model()
    inputs = make_inputs(args.frames)
    parameters = sum(p.numel() for p in model.parameters())
    models = variant_models(model)
    print(f"torch {torch.__version__}, {parameters / 1e6:.1f} M parameters, "
          f"{args.frames} frames, oneDNN {torch.backends.mkldnn.is_available()}")
    for threads in args.threads:
        benchmark_threads(models, inputs, threads, args.runs)
    if args.profile:
        profile_decoder(models, inputs, args.threads[-1])


if __name__ == "__main__":
    main()
