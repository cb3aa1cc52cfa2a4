"""Live conversion: latency, compute per block and quality against offline conversion.

For each model size (random weights, the download-free `spectral` content encoder):

* "demo": the demo recipe's model (`sovits.demo.pipeline._demo_model_config`, ~2 M
  parameters, decoder 192 channels, one residual block per stage);
* "default": so-vits-svc 4.1's default dims (inter 192, decoder 512 channels, three
  residual blocks per stage);

and for each f0 method (`--f0`, default pm and fcpe) and block size (`--blocks`, ms,
default 50 100 200 500), a synthetic sung input (the demo's singer A, phrases with
pauses) is streamed through `StreamingConverter` as fast as possible, one block per
call, as `sovits live --input-file` does. Printed per row:

* latency: the algorithmic latency, ms (block + FIFO + crossfade + search; the
  50 ms row uses the low-latency setting, others the defaults);
* compute per block, ms: mean, p95 and max, and the real-time factor (compute time /
  audio time); "keeps up" when p95 < block (a device needs every block in time);
* cpu per block, ms: the process's CPU time per block (all its threads). On a shared,
  loaded machine wall time runs several times the CPU time (each load average line
  says how busy it was); CPU time is what an idle machine of this kind would need;
* with --stages, the wall and CPU ms per block of each stage: f0 (the extractor call),
  units (content encoder and stretching), prior (prior encoder and flow), excitation
  (the harmonic source), decode (the decoder over the new frames and their margin);
* quality against offline conversion of the same input with the same model and
  options: mel, the mean log-mel distance (dB) over the mel frames where the input
  sings (and over those of them away from block joins, when blocks are long enough to
  have any), beside "seeds", the distance between two offline conversions that differ only
  by their seed (the floor of what random noise alone changes); f0 err, the median
  deviation in cents of the streaming output's f0 (pm) from the input's f0 +
  transpose, beside the offline output's (a random-weight decoder does not follow the
  f0 well; a trained model does: pass --model/--config); disc, block joins where the
  output jumps by more than its own largest step elsewhere.

The machine is shared: compare figures taken together. Nothing passes or fails.

    python benchmarks/live.py [--models demo default] [--f0 pm fcpe] [--blocks 50 100 200 500]
        [--seconds 8] [--threads N] [--device cpu|cuda] [--decoder-margin N]
        [--model G.pth --config config.json --speaker NAME] [--stages] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 44100


def write_model(folder: Path, size: str) -> tuple[Path, Path]:
    """A random-weight model of `size` ("demo" or "default") with the spectral encoder."""
    from sovits.checkpoints import write_training_checkpoint
    from sovits.config.svc import save_svc_config, template_config
    from sovits.demo.pipeline import _demo_model_config
    from sovits.models.build import build_synthesizer

    config = template_config()
    model = replace(config.model, speech_encoder="spectral", ssl_dim=64)
    if size == "demo":
        model = _demo_model_config(model)
    config = replace(config, model=model)
    torch.manual_seed(0)
    synthesizer = build_synthesizer(config)
    folder.mkdir(parents=True, exist_ok=True)
    model_path, config_path = folder / "G_1.pth", folder / "config.json"
    write_training_checkpoint(
        model_path, model_state=synthesizer.state_dict(), optimizer_state=None,
        learning_rate=config.train.learning_rate, iteration=1,
    )
    save_svc_config(config, config_path)
    return model_path, config_path


def sung_input(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(wave float32 [N], f0 Hz per 512-sample frame): singer A, phrases and pauses."""
    from sovits.demo.singer import SINGER_A, Note, random_melody, synthesize_phrase

    rng = np.random.default_rng(0)
    notes: list[Note] = []
    total = 0.0
    while total < seconds:
        phrase = float(max(0.5, min(rng.uniform(2.0, 4.0), seconds - total)))
        notes += random_melody(SINGER_A, rng, seconds=phrase)
        notes.append(Note(None, 0.5))
        total += phrase + 0.5
    wave, f0 = synthesize_phrase(SINGER_A, notes, SAMPLE_RATE, rng)
    count = int(seconds * SAMPLE_RATE)
    return wave[:count], f0[: count // 512]


def sung_frames(wave: np.ndarray) -> np.ndarray:
    """Mask of the log-mel frames (stream_quality.log_mel) where the input sings: RMS over
    the frame's window above -40 dBFS."""
    from sovits.inference.stream_quality import MEL_HOP, MEL_WINDOW

    count = wave.shape[0] // MEL_HOP
    padded = np.pad(wave.astype(np.float64), ((MEL_WINDOW - MEL_HOP) // 2, MEL_WINDOW))
    energy = np.array([np.mean(padded[f * MEL_HOP : f * MEL_HOP + MEL_WINDOW] ** 2)
                       for f in range(count)])
    return 10 * np.log10(energy + 1e-12) > -40.0


def settings_for(block_ms: int, margin: int | None) -> Any:
    from sovits.inference.streaming import LOW_LATENCY, StreamSettings

    base = LOW_LATENCY if block_ms <= 50 else StreamSettings()
    return replace(base, block_seconds=block_ms / 1000.0, decoder_margin=margin)


@contextmanager
def stage_timers(streamer: Any) -> Iterator[dict[str, float]]:
    """Wall and CPU seconds spent in each stage while the block is open: {"f0": s,
    "f0_cpu": s, ...}. Wraps the stage functions the streamer calls, then restores them."""
    from sovits.inference import streaming

    totals: dict[str, float] = collections.defaultdict(float)
    targets = [
        (streamer._extractor, "extract", "f0"),
        (streamer.converter.units, "encode", "units"),
        (streaming, "prior_latents", "prior"),
        (streamer, "_excitation", "excitation"),
        (streaming, "decode_frames", "decode"),
    ]
    saved = []
    for owner, name, label in targets:
        function = getattr(owner, name)
        saved.append((owner, name, function, name in vars(owner)))

        def timed(*args: Any, _f: Callable[..., Any] = function, _label: str = label,
                  **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return _f(*args, **kwargs)
            finally:
                totals[_label] += time.perf_counter() - wall
                totals[_label + "_cpu"] += time.process_time() - cpu

        setattr(owner, name, timed)
    try:
        yield totals
    finally:
        for owner, name, function, own in saved:
            if own:
                setattr(owner, name, function)
            else:  # a method: drop the instance attribute again
                delattr(owner, name)


def measure(
    converter: Any, options: Any, wave: np.ndarray, f0: np.ndarray, block_ms: int,
    margin: int | None, offline: np.ndarray, seeds: float, stages: bool = False,
) -> dict[str, Any]:
    from sovits.inference.stream_quality import (
        f0_cents_error,
        frames_away_from,
        join_discontinuities,
        log_mel_distance,
    )
    from sovits.inference.streaming import StreamingConverter, stream_wave

    streamer = StreamingConverter(converter, options, settings_for(block_ms, margin))
    timers: dict[str, float] = {}
    cpu = time.process_time()
    if stages:
        with stage_timers(streamer) as timers:
            streamed = stream_wave(streamer, wave)
    else:
        streamed = stream_wave(streamer, wave)
    cpu = time.process_time() - cpu
    summary = streamer.stats.summary()
    blocks = max(1.0, summary["blocks"])
    joins = [join - streamer.delay_samples for join in streamer.stats.joins]
    loud = sung_frames(wave)
    away = loud & frames_away_from(joins, wave.shape[0], streamer.fade + streamer.search)
    expected = f0 * 2 ** (options.transpose / 12)
    return {
        "block_ms": block_ms,
        "latency_ms": round(streamer.algorithmic_latency_ms, 1),
        "margin_frames": streamer.margin,
        "compute_ms_mean": round(summary["compute_ms_mean"], 1),
        "compute_ms_p95": round(summary["compute_ms_p95"], 1),
        "compute_ms_max": round(summary["compute_ms_max"], 1),
        "rtf": round(summary["rtf"], 3),
        "keeps_up": bool(summary["compute_ms_p95"] < block_ms),
        "cpu_ms_mean": round(1000.0 * cpu / blocks, 1),
        "stages_ms": {name: round(1000.0 * seconds / blocks, 1)
                      for name, seconds in timers.items()},
        "mel_db": round(log_mel_distance(streamed, offline, SAMPLE_RATE, frames=loud), 2),
        "mel_db_away_from_joins": round(
            log_mel_distance(streamed, offline, SAMPLE_RATE, frames=away), 2),
        "seeds_mel_db": round(seeds, 2),
        "f0_err_cents": round(f0_cents_error(streamed, SAMPLE_RATE, expected, 512), 1),
        "offline_f0_err_cents": round(f0_cents_error(offline, SAMPLE_RATE, expected, 512), 1),
        "discontinuities": join_discontinuities(streamed, joins),
        "joins": len(joins),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["demo", "default"],
                        choices=["demo", "default"])
    parser.add_argument("--f0", nargs="+", default=["pm", "fcpe"])
    parser.add_argument("--blocks", nargs="+", type=int, default=[50, 100, 200, 500])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--decoder-margin", type=int, default=None)
    parser.add_argument("--transpose", type=float, default=0.0)
    parser.add_argument("--model", type=Path, default=None, help="a real model instead")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--speaker", default=None)
    parser.add_argument("--stages", action="store_true",
                        help="time each stage per block (wall and CPU)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions
    from sovits.inference.stream_quality import log_mel_distance

    wave, f0 = sung_input(args.seconds)
    rows: list[dict[str, Any]] = []
    device_name = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                   else f"cpu, {torch.get_num_threads()} threads")
    print(f"# live benchmark: {args.seconds:g} s of singing, device {device_name}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        models = ([("given", args.model, args.config)] if args.model is not None else
                  [(size, *write_model(Path(folder) / size, size)) for size in args.models])
        for size, model_path, config_path in models:
            converter = Converter(model_path, config_path, device=args.device)
            speaker = args.speaker or next(iter(converter.config.spk))
            parameters = sum(p.numel() for p in converter.synthesizer.parameters())
            for method in args.f0:
                options = ConvertOptions(speaker=speaker, f0_method=method,
                                         transpose=args.transpose)
                offline = converter.convert(wave, SAMPLE_RATE, options=options)
                reseeded = converter.convert(wave, SAMPLE_RATE,
                                             options=replace(options, seed=options.seed + 1))
                seeds = log_mel_distance(reseeded, offline, SAMPLE_RATE,
                                         frames=sung_frames(wave))
                for block in args.blocks:
                    row = {"model": size, "parameters_m": round(parameters / 1e6, 1),
                           "f0": method, "device": device_name,
                           **measure(converter, options, wave, f0, block, args.decoder_margin,
                                     offline, seeds, args.stages),
                           "load_average": round(os.getloadavg()[0], 1)}
                    rows.append(row)
                    if not args.json:
                        print(
                            f"{size:8s} {row['parameters_m']:5.1f}M {method:6s} "
                            f"block {block:4d} ms  latency {row['latency_ms']:6.1f} ms  "
                            f"compute mean {row['compute_ms_mean']:7.1f} p95 "
                            f"{row['compute_ms_p95']:7.1f} max {row['compute_ms_max']:7.1f} ms  "
                            f"rtf {row['rtf']:5.2f} {'keeps up' if row['keeps_up'] else 'TOO SLOW'}"
                            f"  cpu {row['cpu_ms_mean']:6.1f} ms (load {row['load_average']:.1f})"
                            f"  mel {row['mel_db']:5.2f} dB (away from joins "
                            f"{row['mel_db_away_from_joins']:.2f}, "
                            f"seeds {row['seeds_mel_db']:.2f})  "
                            f"f0 err {row['f0_err_cents']:6.1f} c (offline "
                            f"{row['offline_f0_err_cents']:.1f})  disc {row['discontinuities']}"
                            f"/{row['joins']}",
                            flush=True,
                        )
                        if row["stages_ms"]:
                            print("    stages ms/block: " + " ".join(
                                f"{name} {value:.1f}" for name, value in row["stages_ms"].items()),
                                flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
