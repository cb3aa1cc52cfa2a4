"""The whole demo in one call: synthetic dataset -> model -> conversion -> metrics.

`run_demo` writes everything under one folder, with no download (the content encoder
is the download-free "spectral" one and f0 comes from WORLD):

    dataset_raw/<singer>/*.wav     the synthetic singers (`sovits.demo.singer`)
    dataset/44k/<singer>/*.wav     resampled and loudness-normalised clips, + features
    filelists/, configs/           the split and config.json (tiny model by default)
    logs/44k/                      the trained model (G_<step>.pth, config.json)

and the results in `out_dir`:

    source.wav                     a held-out melody sung by singer A
    <converted>.flac               that melody converted to singer B, per transpose
    target_<n>key.wav              the same melody sung by singer B, transposed by n
                                   semitones: the ideal conversion (only a synthetic
                                   demo has one)
    metrics.json                   `sovits.evaluation` measures of each conversion
    report.png                     F0 curves, spectrograms and measures (matplotlib)

Each conversion is measured against the source and against singer B's rendition of the
same melody (the target reference), so pitch and vowels are the same on all sides and
the timbre measures see the singer alone: the speaker similarity (cosine of
Resemblyzer embeddings) to the target and to the source, read against the similarity
of the two singers (`target_similarity_to_source`), and the mel-cepstral distances,
read against `target_to_source`. The F0 of both sides is measured with the most
accurate method installed (`sovits.evaluation.resolve_f0_method`), not the one the
conversion used. metrics.json says per conversion which targets are met
(`demo_checks`).

Every step runs in this process (no worker processes), with absolute paths in the
filelists, so it works from any current folder.

The demo recipe (`demo_model`, the default) is sized for a few minutes on a laptop CPU
while keeping the real pipeline (the same `Trainer`, checkpoint format and
`Converter`): the tiny template shrunk further (`_demo_model_config`), training clips
cut to random windows of `DEMO_CROP_FRAMES` frames, 10-frame generator segments, a
higher learning rate, `DEMO_TRAIN_STEPS` steps, and a discriminator with the scale
sub-discriminator only (`MultiPeriodDiscriminator(periods=())`), because the period
sub-discriminators cost about 90 % of a CPU step; its D_*.pth therefore holds the scale
sub-discriminator's weights only. It trains from scratch on every run unless `resume`
is set. With `train_steps=0` the model is saved untrained (G_0.pth, random weights):
the baseline that shows what the checks are worth.
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
    from torch import nn

    from sovits.config.svc import ModelConfig, SvcConfig
    from sovits.evaluation import FileAnalysis
    from sovits.training.trainer import Trainer, TrainProgress

__all__ = [
    "DEMO_CROP_FRAMES",
    "DEMO_DECODER_CHANNELS",
    "DEMO_LEARNING_RATE",
    "DEMO_TRAIN_STEPS",
    "F0_ERROR_LIMIT_CENTS",
    "DemoResult",
    "demo_checks",
    "run_demo",
]

DEMO_CROP_FRAMES = 64
"""Frames of the random window each training clip is cut to in the demo recipe (the
original crops to 790); the generator's segment is 10 frames of it."""
DEMO_LEARNING_RATE = 1e-3
"""Learning rate of the demo recipe (the template's 1e-4 needs far more steps)."""
DEMO_DECODER_CHANNELS = 192
"""Channels of the demo decoder before its first upsampling (see `_demo_model_config`)."""
DEMO_TRAIN_STEPS = 300
"""Training steps of the demo recipe: the melody is right after about 100 steps; at 300
the output is nearer singer B than singer A by the speaker embedding and within half
the singers' cepstral distance of B (seeds 0-3, transposes 0 and +3; at transpose 0 by
a margin of 0.006-0.047 in similarity)."""

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
    targets: Mapping[float, Path]
    """Singer B singing the source's melody, per transpose: the ideal conversion."""
    metrics_path: Path
    report_path: Path
    metrics: Mapping[float, EvaluationResult]

    def missed_checks(self) -> list[str]:
        """"<conversion>: <check>" for every demo target a conversion missed (the
        names metrics.json uses); empty when every target is met."""
        return [
            f"{_transpose_key(transpose)}: {check}"
            for transpose, result in self.metrics.items()
            for check, met in demo_checks(result).items()
            if not met
        ]


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
    train_steps: int = DEMO_TRAIN_STEPS,
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
    learning_rate: float | None = None,
    resume: bool = False,
) -> DemoResult:
    """Run the demo: intermediate work in `work_dir` (default `<out_dir>/../work`;
    files of an earlier run are replaced), results in `out_dir`: source.wav, per
    transpose one converted file and target_<n>key.wav, report.png and metrics.json
    ({"transpose_<n>": {f0_method, the measures of `sovits.evaluation.METRIC_KEYS`,
    checks}}, see the module doc).

    Training stops after `train_steps` steps or `minutes` of wall clock, whichever
    comes first; `train_progress(step, max_steps)` is told after every step.
    `train_steps=0` saves the untrained model instead of training.
    `demo_model` selects the demo recipe (see the module doc) instead of the template's
    training setup; `learning_rate` overrides the recipe's (None: DEMO_LEARNING_RATE
    with `demo_model`, else the template's). Training starts from scratch (G_/D_
    checkpoints of an earlier run in the work folder are deleted) unless `resume`.
    Raises SovitsError subclasses from the steps it calls.
    """
    from sovits.config.svc import save_svc_config
    from sovits.data.filelists import preprocess_config
    from sovits.data.prepare import ResampleSettings, resample_dataset
    from sovits.data.preprocess import PreprocessSettings, preprocess_dataset
    from sovits.demo.singer import SINGER_A, SINGER_B, make_dataset

    if train_steps < 0:
        raise InputError(f"train_steps must be 0 (untrained) or more, got {train_steps}")

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
    if learning_rate is None and demo_model:
        learning_rate = DEMO_LEARNING_RATE
    config = replace(
        config,
        train=replace(
            config.train,
            segment_size=10 * config.data.hop_length if demo_model else config.train.segment_size,
            batch_size=batch_size,
            learning_rate=learning_rate or config.train.learning_rate,
            log_interval=max(1, min(50, train_steps)),
            eval_interval=max(1, train_steps),
            keep_ckpts=1,
            all_in_mem=True,
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
    if not resume:
        _remove_checkpoints(model_dir)
    if train_steps == 0:
        stage("saving the untrained model (0 training steps)")
        _save_untrained(config, model_dir, demo_model=demo_model)
    else:
        budget = f" or {minutes:g} min" if minutes is not None else ""
        stage(f"training {train_steps} steps{budget}")
        _train(
            config,
            model_dir,
            train_steps=train_steps,
            minutes=minutes,
            train_progress=train_progress,
            demo_model=demo_model,
            accelerator=accelerator,
        )
    model_path = _newest_generator(model_dir)
    return _convert_and_measure(
        out, root, config_path, model_dir, model_path, transposes, seed, f0_method, stage
    )


def _train(
    config: SvcConfig,
    model_dir: Path,
    *,
    train_steps: int,
    minutes: float | None,
    train_progress: Callable[[int, int | None], None] | None,
    demo_model: bool,
    accelerator: str,
) -> None:
    from sovits.training.trainer import Trainer, TrainOptions, make_loaders

    started = time.monotonic()
    trainers: list[Trainer] = []

    def on_step(done: TrainProgress) -> None:
        if train_progress is not None:
            train_progress(done.step + 1, done.max_steps)
        if minutes is not None and time.monotonic() - started > 60.0 * minutes:
            for trainer in trainers:
                trainer.request_stop()

    trainer = Trainer(
        config,
        model_dir,
        TrainOptions(max_steps=train_steps, tensorboard=False, accelerator=accelerator),
        progress=on_step,
        discriminator_factory=_demo_discriminator if demo_model else None,
    )
    trainers.append(trainer)
    train_loader, _ = make_loaders(
        config, num_workers=0, crop_frames=DEMO_CROP_FRAMES if demo_model else None
    )
    trainer.fit(train_loader)


def _save_untrained(config: SvcConfig, model_dir: Path, *, demo_model: bool) -> None:
    """G_0.pth / D_0.pth with the freshly initialised weights (seeded as training
    would be) and config.json, as a training run leaves them."""
    import torch

    from sovits.config.svc import save_svc_config
    from sovits.models.build import build_discriminator, build_synthesizer
    from sovits.training.checkpointing import save_checkpoint_pair

    torch.manual_seed(config.train.seed)
    generator = build_synthesizer(config)
    discriminator = _demo_discriminator(config) if demo_model else build_discriminator(config)
    model_dir.mkdir(parents=True, exist_ok=True)
    save_svc_config(config, model_dir / "config.json")
    save_checkpoint_pair(
        model_dir,
        0,
        epoch=0,
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=torch.optim.AdamW(generator.parameters()),
        discriminator_optimizer=torch.optim.AdamW(discriminator.parameters()),
        learning_rate=config.train.learning_rate,
    )


def _convert_and_measure(
    out: Path,
    root: Path,
    config_path: Path,
    model_dir: Path,
    model_path: Path,
    transposes: tuple[float, ...],
    seed: int,
    f0_method: str,
    stage: StageCallback,
) -> DemoResult:
    stage("converting a held-out melody from singer A to singer B")
    from sovits.audio.io import save_audio
    from sovits.demo.singer import SINGER_A, SINGER_B, held_out_melody, transposed
    from sovits.demo.singer import synthesize_phrase as sing
    from sovits.evaluation import EvaluationSettings, Evaluator
    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions

    sample_rate = 44100
    out.mkdir(parents=True, exist_ok=True)
    melody = held_out_melody(SINGER_A)
    wave, _ = sing(SINGER_A, melody, sample_rate, np.random.default_rng([seed, 99]))
    source = save_audio(out / "source.wav", wave, sample_rate)
    converter = Converter(model_path, model_dir / "config.json")
    converted: dict[float, Path] = {}
    targets: dict[float, Path] = {}
    metrics: dict[float, EvaluationResult] = {}
    analyses: dict[str, FileAnalysis] = {}
    evaluator = Evaluator(EvaluationSettings())
    analyses["source"] = evaluator.analyse(source)
    for index, transpose in enumerate(transposes):
        wave, _ = sing(
            SINGER_B,
            transposed(melody, transpose),
            sample_rate,
            np.random.default_rng([seed, 98, index]),
        )
        targets[transpose] = save_audio(
            out / f"target_{transpose:g}key.wav", wave, sample_rate
        )
        options = ConvertOptions(speaker=SINGER_B.name, transpose=transpose, f0_method=f0_method)
        converted[transpose] = converter.convert_file(source, out, options)

    stage("measuring and drawing the report")
    for transpose in transposes:
        key = _transpose_key(transpose)
        # The reference is this transpose's rendition by singer B; the f0 network and
        # the speaker encoder are shared.
        judge = evaluator.with_references([targets[transpose]])
        analyses[key] = judge.analyse(converted[transpose])
        analyses[f"target_{transpose:g}"] = judge.targets()[0]
        metrics[transpose] = judge.compare(analyses["source"], analyses[key], transpose=transpose)
    metrics_path = out / "metrics.json"
    summary = {_transpose_key(t): _headline(m) for t, m in metrics.items()}
    metrics_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    from sovits.demo.report import draw_demo_report

    report_path = draw_demo_report(
        out / "report.png", analyses, metrics, evaluator.settings, conversion_f0=f0_method
    )
    return DemoResult(
        out_dir=out,
        work_dir=root,
        config_path=config_path,
        model_path=model_path,
        source=source,
        converted=converted,
        targets=targets,
        metrics_path=metrics_path,
        report_path=report_path,
        metrics=metrics,
    )


def _transpose_key(transpose: float) -> str:
    return f"transpose_{transpose:g}"


F0_ERROR_LIMIT_CENTS = 50.0
"""The demo's melody target: median f0 error of the conversion at most this."""
PITCH_ACCURACY_TARGET = 0.8
"""The demo's melody target: at least this share of the source's voiced frames within
50 cents of the transposed source (raw pitch accuracy)."""


def demo_checks(result: EvaluationResult) -> dict[str, bool]:
    """The demo's targets for one conversion, each True when met.

    Melody: "f0_error_at_most_50_cents" (median) and "raw_pitch_accuracy_at_least_80_
    percent". Voice, by the speaker embedding: "more_similar_to_target_than_to_source"
    (the output sounds more like singer B's rendition than like singer A's source).
    Voice, by the cepstral timbre distances: "closer_to_target_than_to_source" and the
    stricter "within_half_the_singers_distance_of_target" (the output sits nearer
    singer B's rendition than half the distance between the two singers).
    The F0 checks pass even with random weights (the decoder's harmonic source carries
    the F0) and so does the plain distance check (an untrained output is far from both
    singers, a little less from B); the speaker-embedding check and the half-distance
    check are what an untrained model misses.
    """
    error, accuracy = result.f0_error_cents_median, result.raw_pitch_accuracy
    to_target, to_source = result.distance_to_target, result.distance_to_source
    between = result.target_to_source
    similar_target = result.speaker_similarity_to_target
    similar_source = result.speaker_similarity_to_source
    return {
        "f0_error_at_most_50_cents": error is not None and error <= F0_ERROR_LIMIT_CENTS,
        "raw_pitch_accuracy_at_least_80_percent": accuracy is not None
        and accuracy >= PITCH_ACCURACY_TARGET,
        "more_similar_to_target_than_to_source": similar_target is not None
        and similar_source is not None
        and similar_target > similar_source,
        "closer_to_target_than_to_source": to_target is not None
        and to_source is not None
        and to_target < to_source,
        "within_half_the_singers_distance_of_target": to_target is not None
        and between is not None
        and to_target < 0.5 * between,
    }


def _headline(result: EvaluationResult) -> dict[str, object]:
    """The figures the demo reports (see METRIC_KEYS), its warnings and its checks."""
    return {
        "f0_method": result.f0_method,
        **result.metrics(),
        "warnings": list(result.warnings),
        "checks": demo_checks(result),
    }


def _demo_model_config(model: ModelConfig) -> ModelConfig:
    """The tiny template shrunk further (about 2 M parameters).

    The decoder keeps `DEMO_DECODER_CHANNELS` channels before its first upsampling:
    each upsampling halves them, and with 64 the last two stages carried 4 and 2
    channels, too few to pass the NSF source's harmonics on; such a model sang at its
    frame rate (86 Hz) instead of the melody for over a thousand steps. With 192 the
    melody is right from about a hundred steps on.
    """
    return replace(
        model,
        inter_channels=64,
        hidden_channels=64,
        filter_channels=128,
        n_layers=2,
        upsample_initial_channel=DEMO_DECODER_CHANNELS,
        resblock="2",
        resblock_kernel_sizes=(3,),
        resblock_dilation_sizes=((1, 3),),
        gin_channels=128,
    )


def _demo_discriminator(config: SvcConfig) -> nn.Module:
    """The scale sub-discriminator alone: the period ones cost ~90 % of a CPU step."""
    from sovits.models.discriminators import MultiPeriodDiscriminator

    return MultiPeriodDiscriminator(use_spectral_norm=config.model.use_spectral_norm, periods=())


def _remove_checkpoints(model_dir: Path) -> None:
    """Delete the G_/D_ checkpoints of an earlier run in `model_dir`."""
    from sovits.training.checkpointing import find_checkpoints

    for paths in find_checkpoints(model_dir).values():
        for path in paths.values():
            path.unlink(missing_ok=True)

