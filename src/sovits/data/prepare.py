"""The dataset steps before feature extraction: resample (and normalise), and slice.

`resample_dataset` is so-vits-svc's resample.py over dataset_raw/<speaker>/ with the
same folder conventions (dataset_raw -> dataset/44k, one folder per speaker, file
names kept, written as 16-bit wav). Each file is read as mono, its leading and
trailing silence trimmed (top_db 40), its peak brought to 0.98 when it exceeds full
scale, and resampled with soxr. Then, unless loudness normalisation is off (the seed's
`--skip_loudnorm`), it is normalised to a target integrated loudness with a true-peak
ceiling (`sovits.audio.loudness`; the seed instead scaled every clip to 0 dBFS). With
loudness normalisation off the written samples are the seed's.

Differences from the seed, all on purpose: wav, flac, mp3 and ogg are read (the seed
reads .wav only); outputs that already exist are skipped, so an interrupted run can be
resumed; files are written atomically; a file that cannot be used (unreadable, empty,
silence only, two sources with the same output name) is reported in the returned
ResampleReport and the others are still processed; samples beyond full scale are
clipped instead of wrapping around.

`slice_audio` runs the audio-slicer algorithm (`sovits.audio.slicer`) over a file or a
folder tree with the same report-and-continue rule.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sovits.audio.loudness import (
    DEFAULT_TARGET_LUFS,
    DEFAULT_TRUE_PEAK_DBTP,
    amplitude_to_db,
    normalize_loudness,
)
from sovits.audio.slicer import SlicerSettings
from sovits.errors import InputError, SovitsError

__all__ = [
    "AUDIO_SUFFIXES",
    "DEFAULT_RAW_DIR",
    "DEFAULT_RESAMPLED_DIR",
    "DEFAULT_SAMPLE_RATE",
    "FileProblem",
    "ResampleReport",
    "ResampleSettings",
    "SliceReport",
    "default_process_count",
    "resample_dataset",
    "resample_file",
    "slice_audio",
]

logger = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
"""Input files the dataset steps read (case-insensitive)."""
DEFAULT_RAW_DIR = Path("dataset_raw")
"""The seed's folder of raw recordings, one sub-folder per speaker."""
DEFAULT_RESAMPLED_DIR = Path("dataset") / "44k"
"""The seed's folder of resampled clips."""
DEFAULT_SAMPLE_RATE = 44100
"""The seed's target rate (`--sr2`)."""

ProgressCallback = Callable[[int, int], None]
"""Called with (files done, files in total) after each file."""


@dataclass(frozen=True)
class ResampleSettings:
    """What the resample step does to each file.

    sample_rate: output rate, Hz.
    loudness_normalization: False is the seed's `--skip_loudnorm`.
    target_lufs, true_peak_ceiling: loudness target (LUFS) and true-peak ceiling (dBTP).
    trim_top_db: silence trimming threshold below the loudest frame, dB (seed: 40).
    silence_peak_db: a file whose peak after trimming is below this (dBFS) is reported
        as silent and not written.
    """

    sample_rate: int = DEFAULT_SAMPLE_RATE
    loudness_normalization: bool = True
    target_lufs: float = DEFAULT_TARGET_LUFS
    true_peak_ceiling: float = DEFAULT_TRUE_PEAK_DBTP
    trim_top_db: float = 40.0
    silence_peak_db: float = -60.0

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise InputError(f"sample rate must be positive, got {self.sample_rate}")
        if not (math.isfinite(self.target_lufs) and math.isfinite(self.true_peak_ceiling)):
            raise InputError("the loudness target and true-peak ceiling must be finite")
        if self.trim_top_db <= 0:
            raise InputError(f"trim_top_db must be positive, got {self.trim_top_db}")


@dataclass(frozen=True)
class FileProblem:
    """A file a step could not use (or used with a caveat), and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class ResampleReport:
    """What `resample_dataset` did.

    written: outputs written by this run. skipped: outputs that already existed.
    failed: sources that produced no output, with the reason. notes: caveats about
    written files (upsampled, limited by the true-peak ceiling, ...). ignored: files
    that are not audio or not inside a speaker folder.
    """

    written: tuple[Path, ...] = ()
    skipped: tuple[Path, ...] = ()
    failed: tuple[FileProblem, ...] = ()
    notes: tuple[FileProblem, ...] = ()
    ignored: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every audio file has an output."""
        return not self.failed

    def summary(self) -> str:
        """One line: counts of written, skipped, failed and ignored files."""
        return (
            f"{len(self.written)} written, {len(self.skipped)} already done, "
            f"{len(self.failed)} failed, {len(self.ignored)} ignored"
        )


@dataclass(frozen=True)
class _Outcome:
    source: Path
    output: Path
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def default_process_count() -> int:
    """The seed's worker count: CPUs - 2 when there are more than 4 (at most 30), else 1."""
    cpus = os.cpu_count() or 1
    return min(30, cpus - 2) if cpus > 4 else 1


def resample_file(source: Path, destination: Path, settings: ResampleSettings) -> list[str]:
    """Resample (and normalise) one file into `destination`; returns notes about it.

    Raises InputError when the file cannot be read, holds no samples, or is silent.
    """
    from sovits.audio.io import load_audio, save_audio
    from sovits.audio.resample import resample
    from sovits.audio.slicer import trim_silence

    notes: list[str] = []
    wave, rate = load_audio(source)
    start, end = trim_silence(wave, top_db=settings.trim_top_db)
    wave = wave[start:end]
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    peak_db = amplitude_to_db(peak)
    if peak_db < settings.silence_peak_db:
        raise InputError(
            f"silence only (peak {peak_db:.1f} dBFS, below {settings.silence_peak_db} dBFS)",
            where=source,
        )
    if peak > 1.0:
        wave = 0.98 * wave / np.float32(peak)
    if rate < settings.sample_rate:
        notes.append(f"upsampled from {rate} Hz: nothing above {rate // 2} Hz")
    wave = resample(wave, rate, settings.sample_rate)
    if settings.loudness_normalization:
        result = normalize_loudness(
            wave,
            settings.sample_rate,
            target_lufs=settings.target_lufs,
            true_peak_ceiling=settings.true_peak_ceiling,
        )
        wave = result.wave
        if result.loudness_lufs is None:
            notes.append("shorter than 0.4 s: loudness not measured, only the peak capped")
        elif result.limited and result.output_lufs is not None:
            notes.append(
                f"true-peak ceiling reached at {result.output_lufs:.1f} LUFS "
                f"(target {settings.target_lufs} LUFS)"
            )
    clipped = int(np.count_nonzero(np.abs(wave) > 1.0))
    if clipped:
        notes.append(f"{clipped} samples beyond full scale were clipped")
    save_audio(destination, wave, settings.sample_rate)
    return notes


def _describe(error: SovitsError, source: Path) -> str:
    """The error's text without the source's own path (the report names it)."""
    text = error.message
    if error.where and error.where != str(source):
        text += f" ({error.where})"
    if error.hint:
        text += f"; {error.hint}"
    return text


def _resample_job(job: tuple[Path, Path, ResampleSettings]) -> _Outcome:
    source, destination, settings = job
    try:
        notes = resample_file(source, destination, settings)
    except InputError as error:
        return _Outcome(source, destination, error=_describe(error, source))
    except OSError as error:
        return _Outcome(source, destination, error=f"{type(error).__name__}: {error}")
    return _Outcome(source, destination, notes=tuple(notes))


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _visible(entries: Iterable[Path]) -> list[Path]:
    return sorted(entry for entry in entries if not entry.name.startswith("."))


def _run_jobs(
    jobs: list[tuple[Path, Path, ResampleSettings]],
    num_processes: int,
    progress: ProgressCallback | None,
) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    if num_processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            outcomes.append(_resample_job(job))
            if progress:
                progress(len(outcomes), len(jobs))
        return outcomes
    # spawn: workers start clean (no forked torch / thread state), on every platform
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=num_processes, mp_context=context) as executor:
        futures = [executor.submit(_resample_job, job) for job in jobs]
        for future in as_completed(futures):
            outcomes.append(future.result())
            if progress:
                progress(len(outcomes), len(jobs))
    return outcomes


def resample_dataset(
    in_dir: str | os.PathLike[str] = DEFAULT_RAW_DIR,
    out_dir: str | os.PathLike[str] = DEFAULT_RESAMPLED_DIR,
    settings: ResampleSettings | None = None,
    *,
    num_processes: int | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> ResampleReport:
    """Resample every audio file of `in_dir/<speaker>/` into `out_dir/<speaker>/<stem>.wav`.

    Runs `num_processes` worker processes (default `default_process_count()`; 1 runs
    in this process). An output that already exists is skipped unless `overwrite`.
    Files that cannot be used are listed in the report's `failed` and the rest are
    processed. Raises InputError only when `in_dir` is missing, has no speaker folder,
    or is `out_dir` itself.

    Worker processes are spawned (a fresh interpreter each, on every platform), so a
    script that calls this with more than one process needs the usual
    `if __name__ == "__main__":` guard around its top-level code.
    """
    settings = settings or ResampleSettings()
    source_root = Path(in_dir)
    target_root = Path(out_dir)
    if not source_root.is_dir():
        raise InputError(
            "dataset folder not found",
            where=source_root,
            hint="put the recordings in <folder>/<speaker>/*.wav",
        )
    if target_root.resolve() == source_root.resolve():
        raise InputError(
            "the output folder is the input folder: outputs would replace the recordings",
            where=target_root,
            hint="write to another folder (the default is dataset/44k)",
        )
    entries = _visible(source_root.iterdir())
    speakers = [entry for entry in entries if entry.is_dir()]
    ignored = [entry for entry in entries if not entry.is_dir()]
    if not speakers:
        raise InputError(
            "no speaker folders found",
            where=source_root,
            hint="put each speaker's recordings in their own folder: <folder>/<speaker>/*.wav",
        )
    jobs: list[tuple[Path, Path, ResampleSettings]] = []
    skipped: list[Path] = []
    failed: list[FileProblem] = []
    claimed: dict[Path, Path] = {}
    for speaker in speakers:
        for source in _visible(speaker.iterdir()):
            if not (source.is_file() and _is_audio(source)):
                ignored.append(source)
                continue
            destination = target_root / speaker.name / f"{source.stem}.wav"
            if destination in claimed:
                failed.append(
                    FileProblem(source, f"same output name as {claimed[destination].name}")
                )
                continue
            claimed[destination] = source
            if destination.exists() and not overwrite:
                skipped.append(destination)
            else:
                jobs.append((source, destination, settings))
    workers = default_process_count() if num_processes is None else num_processes
    outcomes = _run_jobs(jobs, min(workers, len(jobs)), progress)
    outcomes.sort(key=lambda outcome: outcome.source)
    written = [outcome.output for outcome in outcomes if outcome.error is None]
    for outcome in outcomes:
        if outcome.error is not None:
            logger.info("%s: not resampled: %s", outcome.source, outcome.error)
            failed.append(FileProblem(outcome.source, outcome.error))
    notes = [
        FileProblem(outcome.output, note)
        for outcome in outcomes
        if outcome.error is None
        for note in outcome.notes
    ]
    return ResampleReport(
        written=tuple(written),
        skipped=tuple(skipped),
        failed=tuple(sorted(failed, key=lambda problem: problem.path)),
        notes=tuple(notes),
        ignored=tuple(ignored),
    )


@dataclass(frozen=True)
class SliceReport:
    """What `slice_audio` did: clips written per source, sources with no clip, failures."""

    written: tuple[Path, ...] = ()
    sources: int = 0
    empty: tuple[Path, ...] = ()
    failed: tuple[FileProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every source could be read."""
        return not self.failed

    def summary(self) -> str:
        """One line: clips written from how many files, and the files left out."""
        return (
            f"{len(self.written)} clips from {self.sources} files, "
            f"{len(self.empty)} without sound above the threshold, {len(self.failed)} failed"
        )


def slice_audio(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: SlicerSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> SliceReport:
    """Slice an audio file, or every audio file under a folder, at silences.

    A file's clips are `out_dir/<stem>_<i>.wav`; for a folder the sub-folders are
    mirrored (`source/<speaker>/a.wav` -> `out_dir/<speaker>/a_0.wav`, ...).
    `settings` default to audio-slicer's command-line defaults.
    Files that cannot be read are reported in `failed` and the rest are sliced.
    Raises InputError when `source` does not exist or `out_dir` is inside a source
    folder.
    """
    from sovits.audio.slicer import slice_file

    root = Path(source)
    target = Path(out_dir)
    if root.is_file():
        files = [(root, target)]
    elif root.is_dir():
        if target.resolve().is_relative_to(root.resolve()):
            raise InputError(
                "the output folder is inside the folder being sliced",
                where=target,
                hint="write the clips somewhere else, or a second run would slice them again",
            )
        files = [
            (path, target / path.parent.relative_to(root))
            for path in sorted(root.rglob("*"))
            if path.is_file() and _is_audio(path)
        ]
    else:
        raise InputError("audio file or folder not found", where=root)
    written: list[Path] = []
    empty: list[Path] = []
    failed: list[FileProblem] = []
    for done, (path, destination) in enumerate(files, start=1):
        try:
            clips = slice_file(path, destination, settings)
        except InputError as error:
            failed.append(FileProblem(path, _describe(error, path)))
        else:
            written.extend(clips)
            if not clips:
                empty.append(path)
        if progress:
            progress(done, len(files))
    return SliceReport(tuple(written), len(files), tuple(empty), tuple(failed))
