"""End-to-end conversion speed per stage, and peak memory against input length.

Builds a so-vits-svc 4.1 model at the default config dims (random weights; inter 192,
upsample_initial_channel 512, resblock "1") whose content encoder is the download-free
`spectral` one (ssl_dim 64), writes it as a training checkpoint with its config.json,
and converts a synthetic sung melody (`sovits.demo.singer`, singer A: phrases of 3-9 s
separated by 0.4-1.2 s of silence, so the slicer cuts it as it would a song) with
`Converter.convert_file`, the path `sovits infer` takes.

Speed: for each `--f0` method, one untimed warm-up conversion of a short excerpt, then
`--runs` timed conversions of `--seconds` of audio. The stages are timed from outside,
by wrapping the converter's `content_encoder.encode`, its pitch extractor's `extract`
and `synthesizer.infer`, and the file work (`wrap_file_io`: decoding the song into its
temporary file, reading slices back, writing the result); "other" is
the rest of the wall time (slicing, per-clip resampling to 16 kHz, padding, f0 shift,
unit stretching, joining, loudness). Printed as seconds of compute per second of audio
(median over runs), with the pipeline overhead: (total - synthesizer) / synthesizer, the
issue's target being at most 25 % for pm / fcpe with the spectral encoder. With
--profile, the heaviest functions of one conversion (cProfile) are listed.

Memory: for each of `--memory-minutes` (default 1 and 10 minutes; the melody tiled),
two fresh child processes, so runs do not pollute each other: one converts the song
with every stage measured (file io as above, f0, units, synthesis with enhancer / diffusion when
on, loudness, joining: the peak resident set while in the stage, from VmHWM reset
around each call, its largest rise within one call, and the resident set left after
it); the other loads the same model and has the synthesizer alone render one slice as
long as the song's longest (padding included): the synthesizer's own peak. Printed side
by side with their ratio (the issue's target: conversion <= 1.2x the synthesizer's own),
glibc's heap in use after the conversion, and the ratio of the longest song's peak to
the shortest's (target: flat). `--onednn-cache N` runs the children with oneDNN's
primitive cache bounded to N (1024 is its own default; offline fp32 conversion asks
for 0, bf16 and live for 100: see sovits.inference.memory), --malloc-mmap-threshold
with glibc's MALLOC_MMAP_THRESHOLD_ set. `--precision` / `--device` apply to every conversion.

`--refine enhance` or `--refine shallow-diffusion` puts the NSF-HiFiGAN enhancer (-eh) or
shallow diffusion (-shd, default k_step and sampler) after the synthesizer, both with
random weights at their release dims (written beside the model; SOVITS_HOME points
there), timed and measured as the stage "refine"; the synthesizer-alone child then
renders with it too, so the ratio compares the conversion with its whole rendering.

Figures only: nothing passes or fails. On a shared machine the times move from run to
run; compare figures taken together.

    python benchmarks/convert.py [--seconds 60] [--f0 pm fcpe] [--threads N] [--runs 1]
        [--profile] [--skip-speed] [--skip-memory] [--memory-minutes 1 10]
        [--precision fp32|bf16|fp16] [--device cpu|cuda] [--onednn-cache N]
        [--malloc-mmap-threshold BYTES] [--refine none|enhance|shallow-diffusion]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 44100
DEVICE = os.environ.get("SOVITS_BENCH_DEVICE", "cpu")
STAGES = ("encoder", "f0", "synthesizer", "refine", "file io", "other")


# ------------------------------------------------------------------------ inputs


def write_model(folder: Path) -> tuple[Path, Path]:
    """A default-dims 4.1 model with the spectral encoder: (G_1.pth, config.json)."""
    from sovits.checkpoints import write_training_checkpoint
    from sovits.config.svc import save_svc_config, template_config
    from sovits.models.build import build_synthesizer

    config = template_config()
    config = replace(config, model=replace(config.model, speech_encoder="spectral", ssl_dim=64))
    torch.manual_seed(0)
    model = build_synthesizer(config)
    model_path, config_path = folder / "G_1.pth", folder / "config.json"
    write_training_checkpoint(
        model_path,
        model_state=model.state_dict(),
        optimizer_state=None,
        learning_rate=config.train.learning_rate,
        iteration=1,
    )
    save_svc_config(config, config_path)
    return model_path, config_path


def sung_input(seconds: float, seed: int = 0) -> np.ndarray:
    """float32 [seconds * 44100]: singer A singing phrases of 3-9 s, each followed by
    0.4-1.2 s of silence; the last phrase is cut to end with its pause at `seconds`
    (a phrase under 1 s is silence instead), so tiled copies join at an ordinary pause
    and slice as the first copy does."""
    from sovits.demo.singer import SINGER_A, Note, random_melody, synthesize_phrase

    rng = np.random.default_rng(seed)
    notes: list[Note] = []
    total = 0.0
    while total < seconds:
        phrase, gap = float(rng.uniform(3.0, 9.0)), float(rng.uniform(0.4, 1.2))
        left = seconds - total
        if phrase + gap > left:
            gap = min(gap, left)
            phrase = left - gap
            if phrase < 1.0:
                notes.append(Note(None, left))
                break
        notes += random_melody(SINGER_A, rng, seconds=phrase)
        notes.append(Note(None, gap))
        total += phrase + gap
    wave, _ = synthesize_phrase(SINGER_A, notes, SAMPLE_RATE, rng)
    return wave[: int(seconds * SAMPLE_RATE)]


REFINERS = ("none", "enhance", "shallow-diffusion")
"""What `--refine` puts after the synthesizer: nothing, the NSF-HiFiGAN enhancer (-eh) or
shallow diffusion (-shd, which renders with its own NSF-HiFiGAN)."""


def write_vocoder(folder: Path) -> Path:
    """A random-weight openvpi NSF-HiFiGAN at its 44.1 kHz release's dims (128 mels, hop
    512, upsample_initial_channel 512) as `folder/pretrain/nsf_hifigan/{model,config.json}`,
    where the enhancer looks when SOVITS_HOME is `folder`. Returns the model file."""
    from sovits.checkpoints.vocoder import parse_nsf_hifigan_config
    from sovits.models.vocoder import NsfHifiganGenerator

    settings = {
        "resblock": "1", "upsample_rates": [8, 8, 2, 2, 2],
        "upsample_kernel_sizes": [16, 16, 4, 4, 4], "upsample_initial_channel": 512,
        "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3,
        "num_mels": 128, "n_fft": 2048, "hop_size": 512, "win_size": 2048,
        "sampling_rate": SAMPLE_RATE, "fmin": 40, "fmax": 16000,
    }
    arguments, _ = parse_nsf_hifigan_config(settings)
    torch.manual_seed(1)
    generator = NsfHifiganGenerator(**arguments)
    vocoder = folder / "pretrain" / "nsf_hifigan"
    vocoder.mkdir(parents=True, exist_ok=True)
    (vocoder / "config.json").write_text(json.dumps(settings, indent=2))
    torch.save({"generator": generator.state_dict()}, vocoder / "model")
    return vocoder / "model"


def write_diffusion(folder: Path, config_path: Path, vocoder: Path) -> tuple[Path, Path]:
    """A random-weight shallow-diffusion model at the 4.1 template's dims (20 layers, 512
    channels) fitting the so-vits model of `config_path`: (model_0.pt, config.yaml)."""
    from sovits.checkpoints.diffusion import (
        build_unit2mel,
        vocoder_mel_bins,
        write_diffusion_checkpoint,
    )
    from sovits.config.diffusion import parse_diffusion_config
    from sovits.config.svc import load_svc_config
    from sovits.data.filelists import build_diffusion_config, save_diffusion_config

    svc = load_svc_config(config_path)
    settings = build_diffusion_config(dict(svc.spk), svc)
    settings["device"] = "cpu"
    settings["vocoder"]["ckpt"] = str(vocoder)
    diffusion = folder / "diffusion"
    diffusion.mkdir(exist_ok=True)
    config_file = save_diffusion_config(settings, diffusion / "config.yaml")
    torch.manual_seed(2)
    config = parse_diffusion_config(settings, source=config_file)
    model = build_unit2mel(config, n_mels=vocoder_mel_bins(vocoder.parent / "config.json"))
    write_diffusion_checkpoint(diffusion / "model_0.pt", model, step=0)
    return diffusion / "model_0.pt", config_file


def prepare_refiner(refine: str, folder: Path, config_path: Path) -> dict[str, Any]:
    """Write what `refine` needs into `folder` (SOVITS_HOME is pointed there, for this
    process and the memory children) and return its ConvertOptions fields."""
    if refine == "none":
        return {}
    os.environ["SOVITS_HOME"] = str(folder)
    vocoder = write_vocoder(folder)
    if refine == "enhance":
        return {"enhance": True}
    model, config = write_diffusion(folder, config_path, vocoder)
    return {"shallow_diffusion": True, "diffusion_model_path": str(model),
            "diffusion_config_path": str(config)}


def conversion_options(f0_method: str, precision: str, refiner: dict[str, Any]) -> Any:
    """The ConvertOptions of every conversion the benchmark runs."""
    from sovits.inference.options import ConvertOptions

    return ConvertOptions(speaker="nyaru", f0_method=f0_method, precision=precision,
                          **refiner)


def wrap_refiner(converter: Any, options: Any,
                 wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]]) -> None:
    """Measure the enhancer's or the diffusion renderer's work as the stage "refine"
    (loading it now, if it is not loaded yet)."""
    if options.uses_diffusion:
        renderer = converter.synthesis.diffusion(options)
        renderer.render = wrap("refine", renderer.render)
    elif options.enhance:
        enhancer = converter.synthesis.enhancer()
        enhancer.enhance = wrap("refine", enhancer.enhance)


# ------------------------------------------------------------------------ timing


class StageClock:
    """Wall seconds spent inside wrapped callables, per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function` timed under `stage` (a function wrapped before is unwrapped first).

        The original is kept under a name of our own: `__wrapped__` would not do, as a
        bound method forwards it to its function's (set by decorators such as
        `torch.no_grad`), which is unbound.
        """
        function = getattr(function, "_timed_original", function)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - started
                self.calls[stage] += 1

        timed._timed_original = function  # type: ignore[attr-defined]
        return timed

    @contextmanager
    def measure(self) -> Iterator[None]:
        self.seconds.clear()
        self.calls.clear()
        yield


def instrument(converter: Any, f0_method: str) -> StageClock:
    """Wrap the converter's stages (instance attributes and sovits.audio.io) in a clock."""
    clock = StageClock()
    encoder = converter.content_encoder
    encoder.encode = clock.wrap("encoder", encoder.encode)
    extractor = converter.pitch_extractor(f0_method)
    extractor.extract = clock.wrap("f0", extractor.extract)
    converter.synthesizer.infer = clock.wrap("synthesizer", converter.synthesizer.infer)
    wrap_file_io(clock.wrap)
    return clock


def wrap_file_io(wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]]) -> None:
    """Measure the file work of `convert_file` as the stage "file io": decoding the song
    into its temporary file (`sovits.audio.song.decode_song`), reading each slice back
    (`SongFile.read`, the slicer's RMS pass included) and writing the result's blocks
    (soundfile's `SoundFile.write`). Wrapping the same names again replaces the wraps."""
    import soundfile

    import sovits.audio.song as song

    real_decode = getattr(song.decode_song, "_real", song.decode_song)

    @contextmanager
    def decode(*args: Any, **kwargs: Any) -> Iterator[Any]:
        manager = real_decode(*args, **kwargs)
        samples = wrap("file io", manager.__enter__)()
        try:
            yield samples
        finally:
            manager.__exit__(*sys.exc_info())

    decode._real = real_decode  # type: ignore[attr-defined]
    song.decode_song = decode
    for owner, name in ((song.SongFile, "read"), (soundfile.SoundFile, "write")):
        real = getattr(owner, f"_real_{name}", getattr(owner, name))
        setattr(owner, name, wrap("file io", real))
        setattr(owner, f"_real_{name}", real)


def time_method(
    model: tuple[Path, Path], source: Path, warmup: Path, f0_method: str, runs: int,
    out_dir: Path, profile: bool, precision: str, refiner: dict[str, Any],
) -> None:
    from sovits.audio.io import audio_info
    from sovits.inference.converter import Converter

    converter = Converter(model[0], model[1], device=DEVICE, precision=precision)
    clock = instrument(converter, f0_method)
    options = conversion_options(f0_method, precision, refiner)
    wrap_refiner(converter, options, clock.wrap)
    converter.convert_file(warmup, out_dir, options)
    frames = audio_info(source)[0]
    audio_seconds = frames / SAMPLE_RATE
    per_stage: dict[str, list[float]] = defaultdict(list)
    cpu: list[float] = []
    calls: dict[str, int] = {}
    for _ in range(runs):
        with clock.measure():
            started, started_cpu = time.perf_counter(), time.process_time()
            converter.convert_file(source, out_dir, options)
            wall = time.perf_counter() - started
            cpu.append((time.process_time() - started_cpu) / audio_seconds)
        measured = dict(clock.seconds)
        calls = dict(clock.calls)
        measured["other"] = wall - sum(measured.values())
        measured["total"] = wall
        for name, value in measured.items():
            per_stage[name].append(value / audio_seconds)
    median = {name: statistics.median(values) for name, values in per_stage.items()}
    synth = median["synthesizer"] + median.get("refine", 0.0)
    overhead = (median["total"] - synth) / synth
    overhead_no_io = (median["total"] - median.get("file io", 0.0) - synth) / synth
    row = f"{f0_method:<6}{median['total']:8.3f}{statistics.median(cpu):8.3f}"
    row += "".join(f"{median.get(name, 0.0):>13.4f}" for name in STAGES)
    row += f"{100 * overhead:>10.1f}%{100 * overhead_no_io:>10.1f}%"
    print(row, flush=True)
    print("      calls per run: " + ", ".join(f"{k} {v}" for k, v in sorted(calls.items())))
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        converter.convert_file(source, out_dir, options)
        profiler.disable()
        print(f"\n-- cProfile of one {f0_method} conversion, top 20 by own time:")
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(20)


# ------------------------------------------------------------------------ memory

MEMORY_STAGES = ("file io", "f0", "units", "synthesis", "refine", "loudness", "joining")


def _proc_status_kib(field: str) -> int | None:
    """A memory field of /proc/self/status ("VmHWM", "VmRSS") in KiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset this process's peak resident set (VmHWM) to the current one (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _heap_mib() -> dict[str, float]:
    """glibc's heap in use (mallinfo2: small and mmapped blocks), MiB. Its free-block
    count is left out: malloc_trim hands free pages back without shrinking it."""
    import ctypes
    import ctypes.util

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    mallinfo2.restype = MallInfo2
    info = mallinfo2()
    return {"heap in use": (info.uordblks + info.hblkhd) / 2**20}


class StageMemory:
    """Peak resident memory per stage, from wrapped callables (Linux: VmHWM reset per call).

    Each wrapped call resets the process's peak before it starts and reads it when it
    ends; the peak of the time between stages is folded into `overall` at the next
    call, so `overall` is the whole run's peak. Stages must not nest.
    """

    def __init__(self) -> None:
        self.per_call = _reset_peak()
        self.start_kib = _proc_status_kib("VmRSS") or 0
        self.overall_kib = 0
        self.stages: dict[str, dict[str, float]] = {}

    def _fold_gap(self) -> None:
        self.overall_kib = max(self.overall_kib, _proc_status_kib("VmHWM") or 0)

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def measured(*args: Any, **kwargs: Any) -> Any:
            self._fold_gap()
            before = _proc_status_kib("VmRSS") or 0
            _reset_peak()
            try:
                return function(*args, **kwargs)
            finally:
                peak = _proc_status_kib("VmHWM") or 0
                self.overall_kib = max(self.overall_kib, peak)
                entry = self.stages.setdefault(
                    stage, {"calls": 0, "peak_kib": 0, "rise_kib": 0, "after_kib": 0})
                entry["calls"] += 1
                entry["peak_kib"] = max(entry["peak_kib"], peak)
                entry["rise_kib"] = max(entry["rise_kib"], peak - before)
                entry["after_kib"] = _proc_status_kib("VmRSS") or 0
                _reset_peak()

        return measured

    def finish(self) -> dict[str, Any]:
        self._fold_gap()
        peak = self.overall_kib if self.per_call else resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss
        return {"start_kib": self.start_kib, "peak_kib": peak, "stages": self.stages,
                "heap": _heap_mib(), "end_kib": _proc_status_kib("VmRSS")}


def memory_child(mode: str, model_path: Path, config_path: Path, source: Path,
                 f0_method: str, out_dir: Path, frames: int, precision: str,
                 refiner: dict[str, Any]) -> None:
    """One measurement in this fresh process, printed as one JSON line.

    mode "convert": `convert_file(source)` with every stage measured; mode "synth": the
    loaded synthesizer alone (with the enhancer or shallow diffusion after it when
    `refiner` asks: the whole rendering) rendering `frames` frames (random units, a
    steady 220 Hz), the synthesizer's own peak for a slice of that length.
    """
    import sovits.inference.converter as converter_module
    from sovits.inference.converter import Converter
    from sovits.inference.memory import bound_onednn_primitive_cache, offline_cache_capacity
    from sovits.inference.pitch import PitchFrames
    from sovits.models.noise import NoiseSource

    # The synthesizer alone runs under the bound offline conversion sets for itself.
    bound_onednn_primitive_cache(offline_cache_capacity(precision))
    converter = Converter(model_path, config_path, device=DEVICE, precision=precision)
    converter.pitch_extractor(f0_method)
    assert converter.synthesizer is not None
    options = conversion_options(f0_method, precision, refiner)
    # Loaded before measuring: the synthesizer-alone child must not count loading.
    converter.synthesis.check(options)
    tracker = StageMemory()
    if mode == "synth":
        generator = torch.Generator().manual_seed(0)
        content = torch.randn(1, converter.config.model.ssl_dim, frames, generator=generator)
        device = converter.device
        pitch = PitchFrames(torch.full((1, frames), 220.0, device=device),
                            torch.ones(1, frames, device=device))
        padded = np.zeros(frames * converter.synthesis.hop_length, dtype=np.float32)
        render = tracker.wrap("synthesis", converter.synthesis.render)
        with torch.inference_mode():
            render(padded, content.to(device), pitch, speaker=0, options=options,
                   noise=NoiseSource.from_seed(0, device))
    else:
        converter.pitch.track = tracker.wrap("f0", converter.pitch.track)
        converter.units.encode = tracker.wrap("units", converter.units.encode)
        synthesizer = converter.synthesizer
        synthesizer.infer = tracker.wrap("synthesis", synthesizer.infer)
        wrap_refiner(converter, options, tracker.wrap)
        for name, stage in (("adjust_loudness", "loudness"), ("join_clips", "joining")):
            setattr(converter_module, name, tracker.wrap(stage, getattr(converter_module, name)))
        wrap_file_io(tracker.wrap)
        converter.convert_file(source, out_dir, options)
    print(json.dumps(tracker.finish()))


def _run_child(arguments: list[str], threads: int | None,
               environment: dict[str, str]) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--memory-child", *arguments]
    if threads:
        command += ["--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            env=environment)
    if result.returncode != 0:
        print(f"  child failed:\n{result.stderr[-2000:]}")
        return None
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def measure_memory(model: tuple[Path, Path], melody: np.ndarray, minutes: list[float],
                   f0_method: str, threads: int | None, folder: Path,
                   mmap_threshold: int | None, onednn_cache: int | None,
                   precision: str, refine: str, refiner: dict[str, Any]) -> None:
    from sovits.audio.io import save_audio
    from sovits.audio.slicer import segments
    from sovits.config.svc import load_svc_config
    environment = dict(os.environ)
    notes = []
    if mmap_threshold is not None:
        environment["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
        notes.append(f"MALLOC_MMAP_THRESHOLD_={mmap_threshold}")
    if onednn_cache is not None:
        environment["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(onednn_cache)
        notes.append(f"ONEDNN_PRIMITIVE_CACHE_CAPACITY={onednn_cache}")
    hop = load_svc_config(model[1]).data.hop_length
    pad = int(conversion_options(f0_method, precision, {}).pad_seconds * SAMPLE_RATE)
    refined = "" if refine == "none" else f", {refine}"
    print(f"\n== peak resident memory, each figure from a fresh process ({f0_method} f0, "
          f"{precision}{refined}"
          + "".join(f", {note}" for note in notes) + ")")
    print("synthesizer alone: the loaded model rendering one slice as long as the "
          "conversion's longest (padding included"
          + ("" if refine == "none" else f"; with the {refine} after it") + "); "
          "conversion: convert_file of the song.")
    print(f"{'input':>7}{'longest':>9}{'loaded':>10}{'synth alone':>13}{'conversion':>12}"
          f"{'ratio':>8}{'RSS after':>11}{'heap in use':>13}")
    peaks: dict[float, float] = {}
    synth_peaks: dict[float, float] = {}
    details: dict[float, dict[str, Any]] = {}
    for length in minutes:
        samples = int(length * 60 * SAMPLE_RATE)
        repeats = -(-samples // melody.shape[0])
        wave = np.tile(melody, repeats)[:samples]
        longest = max(len(piece) for piece in segments(wave, SAMPLE_RATE) if not piece.silent)
        source = save_audio(folder / f"input_{length:g}min.wav", wave, SAMPLE_RATE)
        del wave
        frames = (longest + 2 * pad) // hop
        common = [str(model[0]), str(model[1]), str(source), f0_method,
                  str(folder / "out_memory"), str(frames), precision, json.dumps(refiner)]
        synth = _run_child(["synth", *common], threads, environment)
        whole = _run_child(["convert", *common], threads, environment)
        source.unlink()
        if synth is None or whole is None:
            continue
        mib = 1 / 1024
        peaks[length] = whole["peak_kib"] * mib
        synth_peaks[length] = synth["peak_kib"] * mib
        details[length] = whole
        heap = whole["heap"]
        heap_text = f"{heap['heap in use']:.0f} MiB" if heap else "n/a"
        print(f"{length:>5g} m{longest / SAMPLE_RATE:>7.1f} s{whole['start_kib'] * mib:>6.0f} MiB"
              f"{synth['peak_kib'] * mib:>9.0f} MiB{whole['peak_kib'] * mib:>8.0f} MiB"
              f"{whole['peak_kib'] / synth['peak_kib']:>7.2f}x"
              f"{(whole['end_kib'] or 0) * mib:>7.0f} MiB{heap_text:>13}", flush=True)
    for length, whole in details.items():
        print(f"\n-- {length:g} min, per stage: peak RSS while in it, largest rise within one "
              "call, and RSS after its last call minus RSS before converting")
        start = whole["start_kib"]
        for stage in MEMORY_STAGES:
            entry = whole["stages"].get(stage)
            if entry is None:
                continue
            rise, after = entry["rise_kib"] / 1024, (entry["after_kib"] - start) / 1024
            print(f"  {stage:<10}{entry['peak_kib'] / 1024:>8.0f} MiB  +{rise:>6.0f}"
                  f" MiB  retained {after:>6.0f} MiB"
                  f"  ({int(entry['calls'])} calls)")
    if len(peaks) >= 2:
        lengths = sorted(peaks)
        longest, shortest = lengths[-1], lengths[0]
        print(f"peak RSS {longest:g} min / {shortest:g} min: conversion "
              f"{peaks[longest] / peaks[shortest]:.2f}x, synthesizer alone "
              f"{synth_peaks[longest] / synth_peaks[shortest]:.2f}x")
    print("target: conversion <= 1.2x the synthesizer alone; long songs flat")


# ------------------------------------------------------------------------ main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        child = argparse.ArgumentParser()
        child.add_argument("--memory-child", nargs=9)
        child.add_argument("--threads", type=int, default=None)
        options = child.parse_args()
        if options.threads:
            torch.set_num_threads(options.threads)
        (mode, model_path, config_path, source, f0_method, out_dir, frames,
         precision, refiner) = options.memory_child
        memory_child(mode, Path(model_path), Path(config_path), Path(source), f0_method,
                     Path(out_dir), int(frames), precision, json.loads(refiner))
        return

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the timed input")
    parser.add_argument("--f0", nargs="+", default=["pm", "fcpe"],
                        help="f0 methods to time (pm, fcpe, dio, ...)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per method")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--profile", action="store_true", help="cProfile one conversion")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--malloc-mmap-threshold", type=int, default=None, metavar="BYTES",
                        help="run the memory children with glibc's MALLOC_MMAP_THRESHOLD_ "
                        "(a fixed threshold, e.g. 1048576, stops the heap keeping freed "
                        "tensors)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="synthesizer precision of every conversion")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (memory: CPU RSS only)")
    parser.add_argument("--refine", default="none", choices=REFINERS,
                        help="after the synthesizer: the NSF-HiFiGAN enhancer or shallow "
                        "diffusion (random weights at their release dims)")
    parser.add_argument("--onednn-cache", type=int, default=None, metavar="N",
                        help="run the memory children with ONEDNN_PRIMITIVE_CACHE_CAPACITY=N "
                        "(1024 is oneDNN's own default, which the converter otherwise "
                        "bounds: see sovits.inference.memory)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["SOVITS_BENCH_DEVICE"] = args.device  # the memory children inherit it
    global DEVICE
    DEVICE = args.device

    with tempfile.TemporaryDirectory(prefix="sovits-bench-convert-") as temporary:
        folder = Path(temporary)
        from sovits.audio.io import save_audio

        model = write_model(folder)
        refiner = prepare_refiner(args.refine, folder, model[1])
        started = time.perf_counter()
        melody_seconds = max(args.seconds, 60.0 if not args.skip_memory else 0.0)
        melody = sung_input(melody_seconds)
        print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, "
              f"os.cpu_count {os.cpu_count()}; {args.device} {args.precision}; "
              + ("" if args.refine == "none" else f"{args.refine} after the synthesizer; ")
              + "default 4.1 dims, spectral encoder; "
              f"{melody_seconds:g} s melody synthesized in {time.perf_counter() - started:.1f} s")
        source = save_audio(folder / "input.wav", melody[: int(args.seconds * SAMPLE_RATE)],
                            SAMPLE_RATE)
        warmup = save_audio(folder / "warmup.wav", melody[: 5 * SAMPLE_RATE], SAMPLE_RATE)

        if not args.skip_speed:
            print(f"\n== seconds of compute per second of audio ({args.seconds:g} s input, "
                  f"median of {args.runs} run(s) after a warm-up)")
            print(f"{'f0':<6}{'wall':>8}{'cpu':>8}" + "".join(f"{name:>13}" for name in STAGES)
                  + f"{'overhead':>11}{'(no io)':>11}")
            for f0_method in args.f0:
                time_method(model, source, warmup, f0_method, args.runs, folder / "out",
                            args.profile, args.precision, refiner)
            print("overhead = (total - synthesizer - refine) / (synthesizer + refine); "
                  "target <= 25 % (pm, fcpe)")

        if not args.skip_memory:
            measure_memory(model, melody[: 60 * SAMPLE_RATE], args.memory_minutes, args.f0[0],
                           args.threads, folder, args.malloc_mmap_threshold,
                           args.onednn_cache, args.precision, args.refine, refiner)


if __name__ == "__main__":
    main()
