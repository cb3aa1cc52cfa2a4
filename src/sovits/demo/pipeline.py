"""The whole demo in one call: synthetic dataset -> model -> conversion -> metrics.

`run_demo` writes everything under one folder, with no download (the content encoder
is the download-free "spectral" one and f0 comes from WORLD):

    dataset_raw/<singer>/*.wav     the synthetic singers (`sovits.demo.singer`)
    dataset/44k/<singer>/*.wav     resampled and loudness-normalised clips, + features
    filelists/, configs/           the split and config.json (tiny model by default)
    logs/44k/                      the trained model (G_<step>.pth, config.json)
    results/source.wav             a held-out melody sung by the source singer
    results/<converted>.flac       that melody converted to the target singer
    results/metrics.json           `sovits.evaluation` metrics of the conversion
    results/report.png             F0 curves and spectrograms (`sovits.demo.report`)

Every step runs in this process (no worker processes), with absolute paths in the
filelists, so it works from any current folder.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sovits.errors import InputError
from sovits.evaluation import EvaluationResult

if TYPE_CHECKING:
    from sovits.config.svc import ModelConfig
    from sovits.training.trainer import Trainer, TrainProgress

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)

StageCallback = Callable[[str], None]
"""Receives a one-line description of each stage as it starts."""


@dataclass(frozen=True)
class DemoResult:
    """What `run_demo` produced (all paths under its out_dir)."""

    out_dir: Path
    work_dir: Path
    config_path: Path
    model_path: Path
    source: Path
    converted: Mapping[float, Path]
    """Converted file per transpose (semitones)."""
    metrics_path: Path
    report_path: Path
    metrics: Mapping[float, EvaluationResult]


def _newest_generator(model_dir: Path) -> Path:
    from sovits.training.checkpointing import find_checkpoints

    generators = find_checkpoints(model_dir)["G"]
    if not generators:
        raise InputError("training wrote no generator checkpoint", where=model_dir)
    return generators[max(generators)]


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    train_steps: int = 2000,
    minutes: float | None = None,
    train_progress: Callable[[int, int | None], None] | None = None,
    demo_model: bool = True,
    transposes: tuple[float, ...] = (0.0, 3.0),
    progress: StageCallback | None = None,
    n_clips_per_singer: int = 12,
    seconds: float = 6.0,
    seed: int = 0,
    tiny: bool = True,
    batch_size: int = 4,
    accelerator: str = "auto",
    f0_method: str = "dio",
) -> DemoResult:
    """Run the demo: intermediate work in `work_dir` (default `<out_dir>/../work`;
    files of an earlier run are replaced or, for the model, resumed from), results in
    `out_dir`: source.wav, one converted file per transpose, report.png and
    metrics.json ({"transpose_<n>": {f0_error_cents_median, distance_to_target,
    distance_to_source}}). Training stops after `train_steps` steps or `minutes` of
    wall clock, whichever comes first; `train_progress(step, max_steps)` is told after
    every step. `demo_model` shrinks the tiny template further so CPU steps take
    about a second. Raises SovitsError subclasses from the steps it calls.
    """
    from sovits.config.svc import save_svc_config
    from sovits.data.filelists import preprocess_config
    from sovits.data.prepare import ResampleSettings, resample_dataset
    from sovits.data.preprocess import PreprocessSettings, preprocess_dataset
    from sovits.demo.singer import SINGER_A, SINGER_B, held_out_melody, make_dataset
    from sovits.demo.singer import synthesize_phrase as sing
    from sovits.training.trainer import TrainOptions, train

    if train_steps < 1:
        raise InputError(f"train_steps must be positive, got {train_steps}")

    def stage(message: str) -> None:
        logger.info("demo: %s", message)
        if progress is not None:
            progress(message)

    out = Path(out_dir).resolve()
    root = Path(work_dir).resolve() if work_dir is not None else out.parent / "work"
    sample_rate = 44100
    stage(f"synthesizing {n_clips_per_singer} clips of {seconds:g} s per singer")
    make_dataset(
        root,
        n_clips_per_singer=n_clips_per_singer,
        seconds=seconds,
        sample_rate=sample_rate,
        seed=seed,
        voices=(SINGER_A, SINGER_B),
    )
    resampled = root / "dataset" / "44k"
    stage("resampling and normalising loudness")
    report = resample_dataset(
        root / "dataset_raw",
        resampled,
        ResampleSettings(sample_rate=sample_rate),
        num_processes=1,
        overwrite=True,
    )
    if not report.ok:
        raise InputError(f"resampling failed: {report.summary()}", where=root / "dataset_raw")

    stage("writing filelists and config (spectral encoder)")
    config_path = root / "configs" / "config.json"
    written = preprocess_config(
        resampled,
        train_list=root / "filelists" / "train.txt",
        val_list=root / "filelists" / "val.txt",
        config_path=config_path,
        speech_encoder="spectral",
        tiny=tiny,
        seed=seed,
        val_per_speaker=1,
    )
    config = written.config
    if demo_model:
        config = replace(config, model=_demo_model_config(config.model))
    config = replace(
        config,
        train=replace(
            config.train,
            segment_size=5120 if demo_model else config.train.segment_size,
            batch_size=batch_size,
            log_interval=max(1, train_steps // 20),
            eval_interval=train_steps,
            keep_ckpts=1,
        ),
    )
    save_svc_config(config, config_path)

    stage(f"extracting features ({f0_method} f0)")
    features = preprocess_dataset(
        resampled, config, PreprocessSettings(f0_method=f0_method, num_processes=1)
    )
    if not features.ok:
        raise InputError(f"preprocessing failed: {features.summary()}", where=resampled)

    model_dir = root / "logs" / "44k"
    budget = f" or {minutes:g} min" if minutes is not None else ""
    stage(f"training {train_steps} steps{budget}")
    started = time.monotonic()
    trainers: list[Trainer] = []

    def on_step(done: TrainProgress) -> None:
        if train_progress is not None:
            train_progress(done.step + 1, done.max_steps)
        if minutes is not None and time.monotonic() - started > 60.0 * minutes:
            for trainer in trainers:
                trainer.request_stop()

    train(
        config,
        model_dir,
        TrainOptions(max_steps=train_steps, tensorboard=False, accelerator=accelerator),
        num_workers=0,
        progress=on_step,
        trainer_hook=trainers.append,
    )
    model_path = _newest_generator(model_dir)

    stage("converting a held-out melody from singer A to singer B")
    from sovits.audio.io import save_audio
    from sovits.evaluation import EvaluationSettings, evaluate_conversion
    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions

    out.mkdir(parents=True, exist_ok=True)
    wave, _ = sing(
        SINGER_A, held_out_melody(SINGER_A), sample_rate, np.random.default_rng([seed, 99])
    )
    source = save_audio(out / "source.wav", wave, sample_rate)
    converter = Converter(model_path, model_dir / "config.json")
    references = sorted((resampled / SINGER_B.name).glob("*.wav"))
    converted: dict[float, Path] = {}
    metrics: dict[float, EvaluationResult] = {}
    for transpose in transposes:
        options = ConvertOptions(speaker=SINGER_B.name, transpose=transpose, f0_method=f0_method)
        converted[transpose] = converter.convert_file(source, out, options)
        metrics[transpose] = evaluate_conversion(
            source,
            converted[transpose],
            target_references=references,
            transpose=transpose,
            settings=EvaluationSettings(f0_method=f0_method),
        )

    stage("measuring and drawing the report")
    metrics_path = out / "metrics.json"
    summary = {_transpose_key(t): _headline(m) for t, m in metrics.items()}
    metrics_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    report_path = _draw_report(out / "report.png", source, converted, f0_method)
    return DemoResult(
        out_dir=out,
        work_dir=root,
        config_path=config_path,
        model_path=model_path,
        source=source,
        converted=converted,
        metrics_path=metrics_path,
        report_path=report_path,
        metrics=metrics,
    )


def _transpose_key(transpose: float) -> str:
    return f"transpose_{transpose:g}"


def _headline(result: EvaluationResult) -> dict[str, float | None]:
    """The three figures the demo reports (cents and dB)."""
    return {
        "f0_error_cents_median": result.f0_error_cents,
        "distance_to_target": result.distance_to_target,
        "distance_to_source": result.distance_to_source,
    }


def _demo_model_config(model: ModelConfig) -> ModelConfig:
    """The tiny template shrunk further, so a CPU step takes about a second."""
    return replace(
        model,
        inter_channels=64,
        hidden_channels=64,
        filter_channels=128,
        n_layers=2,
        upsample_initial_channel=64,
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 3),),
    )


def _draw_report(
    path: Path, source: Path, converted: Mapping[float, Path], f0_method: str
) -> Path:
    import torch

    from sovits.audio.io import load_audio
    from sovits.demo.report import render_report
    from sovits.dsp.spectrogram import spectrogram
    from sovits.features.pitch.registry import create_pitch_extractor

    rate, hop = 16000, 160
    extractor = create_pitch_extractor(f0_method)
    files = {"source": source} | {f"{_transpose_key(t)}": p for t, p in converted.items()}
    f0s, spectra = {}, {}
    for name, file in files.items():
        wave, _ = load_audio(file, sample_rate=rate)
        track = extractor.extract(wave, rate, hop)
        f0s[name] = np.where(track.voiced, track.f0, 0.0)
        audio = torch.from_numpy(wave).unsqueeze(0)
        spectra[name] = spectrogram(audio, n_fft=1024, hop_length=hop, win_length=1024)[0].numpy()
    source_f0 = f0s.pop("source")
    return render_report(path, source_f0, f0s, spectra)
