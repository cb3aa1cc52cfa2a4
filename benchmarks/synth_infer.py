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
the largest difference from the `original` audio, and the ceiling: the decoder's
convolution arithmetic per second of audio (counted from the layer shapes) against the
rate of a large matrix product on this machine, which is about the fastest any
convolution kernel here runs. With --breakdown it also times one fast+folded call layer
by layer: each convolution shape's seconds and GFLOP/s, the NSF source, and the rest.
Figures only: nothing passes or fails.

With --precisions NAME... it times only the fast+folded synthesizer cast to each
precision (fp32 / bf16 / fp16, where `--device` has it) in turns, with the ratio to fp32
and the largest audio difference from it.

With --reference-tree PATH (a checkout of the original so-vits-svc 4.1), it instead
writes the model as a training checkpoint G file with its config.json, and times
`infer` of that same file in child processes that take turns: sovits (`load_synthesizer`,
the path conversion takes: weight norm folded, fast decoder) and the original
(`models.SynthesizerTrn` built and loaded as its `Svc.load_model` does, seeded as its
`infer` seeds itself). Each child warms up once, times `--runs` calls and reports its
peak resident memory; it prints the ratio of the medians and the largest difference
between the two audios (both draw the same noise from seed 52468). The original's
`utils` imports faiss, librosa and scikit-learn; where they are missing the child
stands in empty modules for them (the model code does not use them).

    python benchmarks/synth_infer.py [--frames 861] [--runs 3] [--threads 1 2] [--breakdown]
    python benchmarks/synth_infer.py --precisions fp32 bf16 fp16 [--device cuda]
    python benchmarks/synth_infer.py --reference-tree ../so-vits-svc [--rounds 3]
        [--frames 861] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
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
        noise=NoiseSource.from_seed(52468, inputs["content"].device),
    )
    return output.audio


def decoder_gflop_per_second_of_audio(model: Synthesizer) -> float:
    """Floating-point operations of the decoder's convolutions per second of audio.

    Counted (2 per multiply-add) from the shapes each convolution sees in a call, on two
    input lengths: every layer's work grows linearly with the frames, so the difference
    is the exact cost per frame.
    """
    counted = [0.0]

    def count(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.ConvTranspose1d):  # each input value feeds k outputs
            taps = module.kernel_size[0] * module.out_channels // module.groups
            counted[0] += 2.0 * args[0].numel() * taps
        else:  # each output value sums k inputs
            assert isinstance(module, nn.Conv1d)
            taps = module.kernel_size[0] * module.in_channels // module.groups
            counted[0] += 2.0 * output.numel() * taps

    kinds = (nn.Conv1d, nn.ConvTranspose1d)
    handles = [m.register_forward_hook(count) for m in model.dec.modules() if isinstance(m, kinds)]
    totals = []
    try:
        for frames in (32, 64):
            counted[0] = 0.0
            infer(model, make_inputs(frames))
            totals.append(counted[0])
    finally:
        for handle in handles:
            handle.remove()
    per_frame = (totals[1] - totals[0]) / 32
    return per_frame * SAMPLE_RATE / HOP / 1e9


def matrix_product_gflops(size: int = 2048, repeats: int = 3) -> float:
    """Best rate of a float32 [size, size] matrix product with the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def print_ceiling(decoder_gflop: float, decoder_seconds: list[float], rates: list[float]) -> None:
    """How far the fast decoder is from what this machine's arithmetic allows.

    The matrix-product rate is taken between the timed runs, because on a shared machine
    it changes from minute to minute; medians are compared with medians.
    """
    rate, best_rate = statistics.median(rates), max(rates)
    seconds, best_seconds = statistics.median(decoder_seconds), min(decoder_seconds)
    achieved = decoder_gflop / seconds
    print(f"ceiling: the decoder's convolutions are {decoder_gflop:.1f} GFLOP per s of audio. "
          f"A 2048x2048 matrix product, timed between the runs, reached {min(rates):.0f}-"
          f"{best_rate:.0f} GFLOP/s (median {rate:.0f}); at the best rate the decoder alone "
          f"would need {decoder_gflop / best_rate:.3f} s per s of audio, at the median "
          f"{decoder_gflop / rate:.3f}. The fast+folded decoder took {seconds:.3f} (median, "
          f"{achieved:.0f} GFLOP/s = {100 * achieved / rate:.0f} % of the median rate), "
          f"best run {best_seconds:.3f}.")


def benchmark_threads(
    models: dict[str, Synthesizer],
    timers: dict[str, ComponentTimer],
    inputs: dict[str, torch.Tensor],
    threads: int,
    runs: int,
) -> tuple[list[float], list[float]]:
    """Print the figures for one thread count.

    Returns the fast+folded decoder's seconds per second of audio in each run, and the
    matrix-product rate (GFLOP/s) measured after each run.
    """
    torch.set_num_threads(threads)
    audio_seconds = inputs["f0"].shape[-1] * HOP / SAMPLE_RATE
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    outputs: dict[str, torch.Tensor] = {}
    rates: list[float] = []
    for run in range(runs + 1):  # run 0 warms up
        if run > 0:
            rates.append(matrix_product_gflops())
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
    return parts["fast+folded"]["dec"], rates


LAYER_KINDS = {
    "resblocks": "residual-block convolution",
    "ups": "upsampling (polyphase)",
    "noise_convs": "NSF source into the stage",
    "conv_pre": "conv_pre",
    "conv_post": "conv_post",
}


@contextmanager
def timed_decoder_convolutions(model: Synthesizer) -> Iterator[dict[str, list[float]]]:
    """Wall time and arithmetic of the fast decoder's convolutions, by layer kind and shape.

    The fast decoder runs each convolution as a channels-last `F.conv2d` with a converted
    weight it keeps (the rest of the synthesizer uses 1-D convolutions), so wrapping that
    one function sees exactly the decoder's layers, and the converted weight tells which
    layer called. Call the model once before, so that the converted weights exist.
    Wall-clock timing is used rather than torch.profiler, whose per-call overhead makes the
    thin 16- and 32-channel layers look about twice as slow as they are.
    """
    layer_of_weight = {
        id(packed.weight): LAYER_KINDS.get(name.split(".")[0], name)
        for name, (_, packed) in model.dec._pack_cache.items()
    }
    original = F.conv2d
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])

    def timed(x: torch.Tensor, weight: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        started = time.perf_counter()
        output = original(x, weight, *args, **kwargs)
        elapsed = time.perf_counter() - started
        out_channels, in_channels, _, taps = weight.shape
        kind = layer_of_weight.get(id(weight), "other")
        entry = totals[f"{kind}, {in_channels}->{out_channels} channels, {taps} taps"]
        entry[0] += elapsed
        entry[1] += 2.0 * output.numel() * in_channels * taps
        return output

    F.conv2d = timed  # type: ignore[assignment]
    try:
        yield totals
    finally:
        F.conv2d = original


def print_decoder_breakdown(
    model: Synthesizer, timer: ComponentTimer, inputs: dict[str, torch.Tensor], threads: int
) -> None:
    """Where one fast+folded call's decoder time goes: convolutions by shape, and the rest."""
    torch.set_num_threads(threads)
    audio_seconds = inputs["f0"].shape[-1] * HOP / SAMPLE_RATE
    infer(model, inputs)  # warm-up
    with timed_decoder_convolutions(model) as layers, timer.measure() as parts:
        infer(model, inputs)
    print(f"\n-- fast+folded decoder, {threads} thread(s), one call: seconds per s of audio, "
          "and the rate each layer shape reached")
    convolutions = 0.0
    for name, (seconds, flop) in sorted(layers.items(), key=lambda item: -item[1][0]):
        convolutions += seconds
        print(f"  {seconds / audio_seconds:7.3f}  {flop / seconds / 1e9:5.0f} GFLOP/s  {name}")
    source = parts["dec.m_source"]
    rest = parts["dec"] - source - convolutions
    print(f"  {source / audio_seconds:7.3f}                 NSF source (sine generator)")
    print(f"  {rest / audio_seconds:7.3f}                 the rest: activations, residual "
          "sums, layout")
    print(f"  {parts['dec'] / audio_seconds:7.3f}                 decoder in all")


# ------------------------------------------------------------------- precisions


def compare_precisions(frames: int, runs: int, threads: int, precisions: list[str],
                       device: torch.device) -> None:
    """The fast+folded synthesizer cast to each precision (as `load_synthesizer` casts:
    folded in float32, then rounded), timed in turns on `device`, against fp32."""
    from sovits.checkpoints.precision import check_precision
    from sovits.errors import SovitsError

    torch.set_num_threads(threads)
    base = build_model()
    fold_weight_norm(base)
    enable_fast_cpu_inference(base)
    models: dict[str, Synthesizer] = {}
    for name in ["fp32", *(p for p in precisions if p != "fp32")]:
        try:
            dtype = check_precision(name, device)
        except SovitsError as error:
            print(f"{name}: refused: {error}")
            continue
        models[name] = copy.deepcopy(base).to(device=device, dtype=dtype)
    inputs = {key: value.to(device) for key, value in make_inputs(frames).items()}
    audio_seconds = frames * HOP / SAMPLE_RATE
    seconds: dict[str, list[float]] = defaultdict(list)
    outputs: dict[str, torch.Tensor] = {}
    for run in range(runs + 1):  # run 0 warms up
        for name, model in models.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            outputs[name] = infer(model, inputs).float()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if run > 0:
                seconds[name].append((time.perf_counter() - started) / audio_seconds)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n== precisions on {name}, {threads} thread(s), {audio_seconds:.2f} s of audio: "
          f"s per s of audio (median of {runs})")
    base_time = statistics.median(seconds["fp32"])
    for name, values in seconds.items():
        difference = (outputs[name] - outputs["fp32"]).abs().max().item()
        median = statistics.median(values)
        print(f"{name:<6}{median:8.3f}{median / base_time:8.2f}x"
              f"   max |audio - fp32| {difference:.2e}   runs "
              + ", ".join(f"{value:.3f}" for value in values))


# ------------------------------------------------------------- original comparison

SEED = 52468


def reference_child(kind: str, folder: Path, tree: Path | None, runs: int) -> None:
    """Time `runs` infer calls of folder/G_1.pth on folder/inputs.pt in this process and
    write the audio to folder/<kind>.npy; print one JSON line (seconds, peak RSS)."""
    inputs = torch.load(folder / "inputs.pt", weights_only=True)
    if kind == "sovits":
        from sovits.checkpoints import load_synthesizer

        model, _ = load_synthesizer(folder / "G_1.pth", folder / "config.json")

        def call() -> torch.Tensor:
            return model.infer(
                inputs["content"], inputs["f0"], inputs["uv"], speaker=inputs["speaker"],
                noise_scale=0.4, noise=NoiseSource.from_seed(SEED),
            ).audio
    else:
        assert tree is not None
        original = load_original(tree, folder)

        def call() -> torch.Tensor:
            with torch.no_grad():
                audio, _ = original.infer(
                    inputs["content"], f0=inputs["f0"], uv=inputs["uv"],
                    g=inputs["speaker"], noice_scale=0.4, seed=SEED,
                )
            return audio

    call()  # warm-up
    seconds = []
    audio = None
    for _ in range(runs):
        started = time.perf_counter()
        audio = call()
        seconds.append(time.perf_counter() - started)
    assert audio is not None
    np.save(folder / f"{kind}.npy", audio.detach().float().numpy().reshape(-1))
    print(json.dumps({"seconds": seconds,
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def load_original(tree: Path, folder: Path) -> nn.Module:
    """The original's SynthesizerTrn, built and loaded from folder's G file as so-vits-svc's
    `Svc.load_model` does (CPU, float32)."""
    import importlib
    import types

    for name in ("faiss", "librosa", "sklearn", "sklearn.cluster"):
        try:
            importlib.import_module(name)
        except ImportError:  # utils imports them; the model code never uses them
            stand_in = types.ModuleType(name)
            stand_in.MiniBatchKMeans = object  # type: ignore[attr-defined]
            sys.modules[name] = stand_in
    sys.path.insert(0, str(tree))
    os.chdir(tree)  # the original resolves some paths from its own folder
    utils = importlib.import_module("utils")
    models = importlib.import_module("models")
    hps = utils.get_hparams_from_file(str(folder / "config.json"))
    net = models.SynthesizerTrn(
        hps.data.filter_length // 2 + 1,
        hps.train.segment_size // hps.data.hop_length,
        **hps.model,
    )
    with contextlib.redirect_stdout(sys.stderr):  # its loader prints
        utils.load_checkpoint(str(folder / "G_1.pth"), net, None)
    module: nn.Module = net.eval()
    return module


def compare_with_reference(tree: Path, frames: int, runs: int, rounds: int,
                           threads: int) -> None:
    """Time sovits and the original on the same G file in alternating child processes."""
    from sovits.checkpoints import write_training_checkpoint
    from sovits.config.svc import save_svc_config

    if not (tree / "models.py").is_file():
        raise SystemExit(f"{tree} does not look like a so-vits-svc checkout (no models.py)")
    config = template_config()
    model = build_model()
    audio_seconds = frames * HOP / SAMPLE_RATE
    with tempfile.TemporaryDirectory(prefix="sovits-bench-reference-") as temporary:
        folder = Path(temporary)
        write_training_checkpoint(folder / "G_1.pth", model_state=model.state_dict(),
                                  optimizer_state=None,
                                  learning_rate=config.train.learning_rate, iteration=1)
        save_svc_config(config, folder / "config.json")
        torch.save(make_inputs(frames), folder / "inputs.pt")
        print(f"same G file (default 4.1 dims, random weights), {frames} frames = "
              f"{audio_seconds:.2f} s, {threads} thread(s), {rounds} rounds of "
              f"{runs} timed calls per child; original tree {tree}")
        medians: dict[str, list[float]] = defaultdict(list)
        peaks: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for kind in ("sovits", "original"):
                command = [sys.executable, os.path.abspath(__file__), "--reference-child",
                           kind, str(folder), str(tree), str(runs), str(threads)]
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise SystemExit(f"the {kind} child failed:\n{result.stderr[-3000:]}")
                figures = json.loads(result.stdout.strip().splitlines()[-1])
                medians[kind].append(statistics.median(figures["seconds"]) / audio_seconds)
                peaks[kind].append(figures["peak_mib"])
        ours, theirs = np.load(folder / "sovits.npy"), np.load(folder / "original.npy")
    print(f"{'':<10}{'s per s of audio (median per round)':>38}{'peak RSS':>12}")
    for kind in ("sovits", "original"):
        print(f"{kind:<10}{statistics.median(medians[kind]):>10.3f}   "
              + ", ".join(f"{value:.3f}" for value in medians[kind])
              + f"{max(peaks[kind]):>10.0f} MiB")
    ratio = statistics.median(medians["sovits"]) / statistics.median(medians["original"])
    length = min(ours.shape[0], theirs.shape[0])
    print(f"sovits / original time: {ratio:.2f}x; audio lengths {ours.shape[0]} / "
          f"{theirs.shape[0]}; largest |difference| "
          f"{np.abs(ours[:length] - theirs[:length]).max():.2e} "
          f"(max |audio| {np.abs(theirs).max():.3f}); load average "
          + ", ".join(f"{value:.1f}" for value in os.getloadavg()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--reference-child":
        kind, folder, tree, runs, threads = sys.argv[2:7]
        torch.set_num_threads(int(threads))
        reference_child(kind, Path(folder), Path(tree), int(runs))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=861, help="frames (861 = 10 s)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the fast decoder layer by layer"
    )
    parser.add_argument("--reference-tree", type=Path, default=None, metavar="PATH",
                        help="compare with the original so-vits-svc 4.1 checked out at PATH")
    parser.add_argument("--rounds", type=int, default=3,
                        help="with --reference-tree: alternating child-process rounds")
    parser.add_argument("--precisions", nargs="+", default=None, metavar="NAME",
                        help="instead: time the fast+folded synthesizer in each precision "
                        "(fp32 bf16 fp16) against fp32 on --device")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.precisions is not None:
        compare_precisions(args.frames, args.runs, args.threads[-1], args.precisions,
                           torch.device(args.device))
        return
    if args.reference_tree is not None:
        compare_with_reference(args.reference_tree.resolve(), args.frames, args.runs,
                               args.rounds, args.threads[-1])
        return

    model = build_model()
    inputs = make_inputs(args.frames)
    parameters = sum(p.numel() for p in model.parameters())
    models = variant_models(model)
    print(f"torch {torch.__version__}, {parameters / 1e6:.1f} M parameters, "
          f"{args.frames} frames, oneDNN {torch.backends.mkldnn.is_available()}")
    decoder_gflop = decoder_gflop_per_second_of_audio(models["folded"])
    timers = {variant: ComponentTimer(model) for variant, model in models.items()}
    for threads in args.threads:
        decoder_seconds, rates = benchmark_threads(models, timers, inputs, threads, args.runs)
        print_ceiling(decoder_gflop, decoder_seconds, rates)
    if args.breakdown:
        variant = "fast+folded"
        print_decoder_breakdown(models[variant], timers[variant], inputs, args.threads[-1])


if __name__ == "__main__":
    main()
