"""Each inference precision against fp32 on the same input, in one run: speed and quality.

Builds the model `benchmarks/convert.py` builds (default 4.1 dims, random weights, the
download-free `spectral` encoder) and a synthetic sung melody of `--seconds` (singer A,
phrases with pauses, so the slicer cuts it as it would a song), and converts it with
`Converter.convert` (the path `sovits infer` takes, less the file io) in each precision:
one converter per precision, one untimed warm-up each, then `--runs` timed rounds in
which the precisions take turns, so a busy machine slows all of them alike.

Printed per precision:

* time: median wall seconds of compute per second of audio, process CPU seconds
  beside it, and the ratio to fp32 (wall and CPU; on a shared machine the CPU ratio is
  the steadier one);
* mel distance: mean absolute difference of the output's log-mel spectrogram
  (2048-point FFT, hop 512, 128 mels, 20 log10 of magnitudes floored at 1e-5) from
  fp32's, in dB;
* F0 error: the output's pitch (pm) against the source's shifted by `--transpose`, on
  frames voiced in both: median absolute error in cents; and its change from fp32's
  (the issue's bound: < 5 cents), and the output's pitch against fp32's output;
* max |sample difference| from the fp32 output.

Precisions the hardware lacks are reported as refused, with the converter's message.
Figures only: nothing passes or fails.

    python benchmarks/precision.py [--seconds 30] [--runs 3] [--threads N]
        [--precisions fp32 bf16 fp16] [--device cpu|cuda] [--transpose 2] [--f0 pm]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert import SAMPLE_RATE, sung_input, write_model

HOP = 512


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_line(device: torch.device) -> str:
    from sovits.checkpoints.precision import bf16_cpu_support

    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    native = bf16_cpu_support() or "none"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"CPU {cpu_name()} ({os.cpu_count()} logical CPUs, native bf16: {native}), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"load average {load}")


def log_mel_db(wave: np.ndarray) -> np.ndarray:
    """20 log10 mel magnitudes [128, frames] of a 44.1 kHz wave."""
    from sovits.dsp.spectrogram import mel_filterbank, spectrogram

    signal = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
    spec = spectrogram(signal, n_fft=2048, hop_length=HOP, win_length=2048)
    basis = mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=2048, n_mels=128, fmin=0.0,
                           fmax=None, device=spec.device, dtype=spec.dtype)
    mel = torch.matmul(basis, spec[0])
    return (20 * torch.log10(torch.clamp(mel, min=1e-5))).numpy()


def pitch(wave: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz, voiced) per hop of a 44.1 kHz wave."""
    from sovits.features.pitch.registry import create_pitch_extractor

    frames = wave.shape[0] // HOP
    track = create_pitch_extractor(method).extract(wave, SAMPLE_RATE, HOP, n_frames=frames)
    return np.asarray(track.f0, np.float64), np.asarray(track.voiced, bool)


def cents(estimate: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray],
          factor: float = 1.0) -> float:
    """Median |1200 log2(estimate / (reference * factor))| over frames voiced in both."""
    both = estimate[1] & reference[1] & (estimate[0] > 0) & (reference[0] > 0)
    if not both.any():
        return float("nan")
    error = 1200 * np.log2(estimate[0][both] / (reference[0][both] * factor))
    return float(np.median(np.abs(error)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the input")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds after a warm-up")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--precisions", nargs="+", default=None,
                        help="default: fp32 and every other precision this device offers")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--transpose", type=float, default=2.0, help="semitones")
    parser.add_argument("--f0", default="pm", help="f0 method of the conversion")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sovits.checkpoints.precision import PRECISIONS
    from sovits.errors import SovitsError
    from sovits.inference.converter import Converter
    from sovits.inference.memory import REUSE_CACHE_CAPACITY, bound_onednn_primitive_cache
    from sovits.inference.options import ConvertOptions

    # The precisions share this process, and oneDNN's cache bound is per process: all
    # run with the bound a bf16 conversion takes (an fp32 one takes none, for memory;
    # its speed is the same within the noise: see sovits.inference.memory).
    bound_onednn_primitive_cache(REUSE_CACHE_CAPACITY)
    device = torch.device(args.device)
    wanted = args.precisions or list(PRECISIONS)
    if "fp32" not in wanted:
        wanted = ["fp32", *wanted]
    with tempfile.TemporaryDirectory(prefix="sovits-bench-precision-") as temporary:
        model_path, config_path = write_model(Path(temporary))
        melody = sung_input(args.seconds)
        audio_seconds = melody.shape[0] / SAMPLE_RATE
        print(hardware_line(device))
        print(f"default 4.1 dims, spectral encoder, {audio_seconds:g} s sung melody, "
              f"f0 {args.f0}, transpose {args.transpose:+g}")
        converters: dict[str, Converter] = {}
        options: dict[str, ConvertOptions] = {}
        for name in wanted:
            try:
                converters[name] = Converter(model_path, config_path, device=device,
                                             precision=name)
            except SovitsError as error:
                print(f"  {name}: refused: {error}")
                continue
            options[name] = ConvertOptions(speaker="nyaru", f0_method=args.f0,
                                           transpose=args.transpose, precision=name)
            converters[name].convert(melody[: 3 * SAMPLE_RATE], SAMPLE_RATE,
                                     options=options[name])  # warm-up
        wall: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        outputs: dict[str, np.ndarray] = {}
        for _ in range(args.runs):
            for name, converter in converters.items():
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                started, started_cpu = time.perf_counter(), time.process_time()
                outputs[name] = converter.convert(melody, SAMPLE_RATE, options=options[name])
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                wall[name].append((time.perf_counter() - started) / audio_seconds)
                cpu[name].append((time.process_time() - started_cpu) / audio_seconds)
        if "fp32" not in outputs:
            return
        print("load average after the runs: "
              + ", ".join(f"{value:.1f}" for value in os.getloadavg()))
        factor = 2 ** (args.transpose / 12)
        source_pitch = pitch(melody, "pm")
        reference = outputs["fp32"]
        reference_mel = log_mel_db(reference)
        reference_pitch = pitch(reference, "pm")
        base_error = cents(reference_pitch, source_pitch, factor)
        base_wall, base_cpu = statistics.median(wall["fp32"]), statistics.median(cpu["fp32"])
        print(f"\n{'precision':<10}{'wall s/s':>9}{'cpu s/s':>9}{'wall ratio':>11}"
              f"{'cpu ratio':>10}{'mel dist':>10}{'F0 err':>9}{'change':>8}{'vs fp32':>9}"
              f"{'max |diff|':>11}   wall runs")
        rows: list[dict[str, Any]] = []
        for name, output in outputs.items():
            output_pitch = pitch(output, "pm")
            error = cents(output_pitch, source_pitch, factor)
            row = {
                "wall": statistics.median(wall[name]), "cpu": statistics.median(cpu[name]),
                "mel": float(np.mean(np.abs(log_mel_db(output) - reference_mel))),
                "f0": error, "change": error - base_error,
                "vs": cents(output_pitch, reference_pitch),
                "diff": float(np.max(np.abs(output - reference))),
            }
            rows.append(row)
            print(f"{name:<10}{row['wall']:>9.3f}{row['cpu']:>9.3f}"
                  f"{row['wall'] / base_wall:>10.2f}x{row['cpu'] / base_cpu:>9.2f}x"
                  f"{row['mel']:>7.2f} dB{row['f0']:>6.1f} ct{row['change']:>+6.1f} ct"
                  f"{row['vs']:>6.1f} ct{row['diff']:>11.4f}   "
                  + ", ".join(f"{value:.3f}" for value in wall[name]))
        print("F0 err: median |cents| of the output's pm pitch against the source's shifted by "
              "the transpose; change: minus fp32's; vs fp32: against fp32's output. "
              "Target on a CPU with native bf16: bf16 <= 0.6x fp32 time, F0 change < 5 cents.")


if __name__ == "__main__":
    main()
