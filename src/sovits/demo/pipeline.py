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

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sovits.errors import InputError
from sovits.evaluation import EvaluationResult

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)

StageCallback = Callable[[str], None]
"""Receives a one-line description of each stage as it starts."""


@dataclass(frozen=True)
class DemoResult:
    """What `run_demo` produced (all paths under its out_dir)."""

    out_dir: Path
    config_path: Path
    model_path: Path
    source: Path
    converted: Path
    metrics_path: Path
    report_path: Path
    metrics: EvaluationResult


def _newest_generator(model_dir: Path) -> Path:
    from sovits.training.checkpointing import find_checkpoints

    generators = find_checkpoints(model_dir)["G"]
    if not generators:
        raise InputError("training wrote no generator checkpoint", where=model_dir)
    return generators[max(generators)]


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    train_steps: int = 2000,
    progress: StageCallback | None = None,
    n_clips_per_singer: int = 12,
    seconds: float = 6.0,
    seed: int = 0,
    tiny: bool = True,
    batch_size: int = 4,
    transpose: float = 12.0,
    accelerator: str = "auto",
    f0_method: str = "dio",
) -> DemoResult:
    """Run the demo into `out_dir` (created; files of an earlier run are replaced or,
    for the model, resumed from). Singer A (low) is converted to singer B (high),
    `transpose` semitones up. Raises SovitsError subclasses from the steps it calls.
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

    root = Path(out_dir).resolve()
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
    config = replace(
        config,
        train=replace(
            config.train,
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
    stage(f"training {train_steps} steps")
    train(
        config,
        model_dir,
        TrainOptions(max_steps=train_steps, tensorboard=False, accelerator=accelerator),
        num_workers=0,
    )
    model_path = _newest_generator(model_dir)

    stage("converting a held-out melody from singer A to singer B")
    from sovits.audio.io import save_audio
    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions

    results = root / "results"
    wave, _ = sing(
        SINGER_A, held_out_melody(SINGER_A), sample_rate, np.random.default_rng([seed, 99])
    )
    source = save_audio(results / "source.wav", wave, sample_rate)
    converter = Converter(model_path, model_dir / "config.json")
    options = ConvertOptions(speaker=SINGER_B.name, transpose=transpose, f0_method=f0_method)
    converted = converter.convert_file(source, results, options)

    stage("measuring and drawing the report")
    from sovits.evaluation import EvaluationSettings, evaluate_conversion

    references = sorted((resampled / SINGER_B.name).glob("*.wav"))
    metrics = evaluate_conversion(
        source,
        converted,
        target_references=references,
        transpose=transpose,
        settings=EvaluationSettings(f0_method=f0_method),
    )
    metrics_path = metrics.write_json(results / "metrics.json")
    report_path = _draw_report(results / "report.png", source, converted, f0_method)
    return DemoResult(
        out_dir=root,
        config_path=config_path,
        model_path=model_path,
        source=source,
        converted=converted,
        metrics_path=metrics_path,
        report_path=report_path,
        metrics=metrics,
    )


def _draw_report(path: Path, source: Path, converted: Path, f0_method: str) -> Path:
    import torch

    from sovits.audio.io import load_audio
    from sovits.demo.report import render_report
    from sovits.dsp.spectrogram import spectrogram
    from sovits.features.pitch.registry import create_pitch_extractor

    rate, hop = 16000, 160
    extractor = create_pitch_extractor(f0_method)
    f0s, spectra = [], []
    for file in (source, converted):
        wave, _ = load_audio(file, sample_rate=rate)
        track = extractor.extract(wave, rate, hop)
        f0s.append(np.where(track.voiced, track.f0, 0.0))
        audio = torch.from_numpy(wave).unsqueeze(0)
        spectra.append(spectrogram(audio, n_fft=1024, hop_length=hop, win_length=1024)[0].numpy())
    return render_report(
        path, f0s[0], {"converted": f0s[1]}, {"source": spectra[0], "converted": spectra[1]}
    )
