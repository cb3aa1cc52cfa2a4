"""Dataset quality check: measure every clip of a prepared dataset and report problems.

For each clip of `<dataset>/<speaker>/*.wav` (files directly in `<dataset>` count as
one speaker named after the folder): length, sample rate, channels, sample peak,
clipping (runs of consecutive samples at full scale), the share of silent 10 ms frames,
integrated loudness, and the f0 of its voiced frames (a so-vits-svc f0 method, "dio" by
default as the seed's preprocessing; None skips it). The report lists clips that are
too short or too long (the seed's README recommends 5-15 s clips; whisper-ppg fails
beyond 30 s), clipped, mostly silent, at another rate than the rest, or multichannel,
and sums up each speaker (clips, minutes, loudness, f0 range).

`write_qc_report` writes it as text and as a PNG (a clip-length histogram and the f0
range of each speaker). The PNG is drawn with numpy and encoded with zlib + struct
(no plotting library): bars, axes and a small built-in digit font for the tick labels;
speakers are numbered as in the text report.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from sovits.audio.loudness import LOUDNESS_BLOCK_SECONDS, amplitude_to_db, integrated_loudness
from sovits.data.prepare import AUDIO_SUFFIXES, FileProblem, ProgressCallback
from sovits.errors import InputError

if TYPE_CHECKING:
    from sovits.features.pitch.base import PitchExtractor

__all__ = [
    "ClipStats",
    "QcReport",
    "QcSettings",
    "SpeakerStats",
    "analyse_dataset",
    "default_report_folder",
    "encode_png",
    "render_report_image",
    "write_qc_report",
]

_FRAME_SECONDS = 0.01
"""Hop of the silence and f0 frames, seconds."""


@dataclass(frozen=True)
class QcSettings:
    """Thresholds of the dataset check.

    min_seconds, max_seconds: clips outside [min, max] are listed as too short / long.
    silence_db: a 10 ms frame (40 ms window) with RMS below this (dBFS) is silent.
    mostly_silent: clips with a larger share of silent frames are listed.
    clipping_level, clipping_run: `clipping_run` or more consecutive samples with
        |x| >= clipping_level count as one clipped run.
    f0_method: so-vits-svc f0 method for the f0 ranges, or None to skip them.
    sample_rate: the expected rate, Hz; None takes the most common one.
    bin_seconds: width of the clip-length histogram's bins, s.
    """

    min_seconds: float = 2.0
    max_seconds: float = 20.0
    silence_db: float = -40.0
    mostly_silent: float = 0.5
    clipping_level: float = 0.999
    clipping_run: int = 3
    f0_method: str | None = "dio"
    sample_rate: int | None = None
    bin_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_seconds < self.max_seconds:
            raise InputError(
                f"need 0 <= min_seconds < max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )
        if self.bin_seconds <= 0 or self.clipping_run < 1 or not 0 < self.clipping_level <= 1:
            raise InputError("bin_seconds, clipping_run and clipping_level must be positive")


@dataclass(frozen=True)
class ClipStats:
    """Measurements of one clip.

    seconds: length, s. peak_db: sample peak, dBFS. clipped_runs: runs of clipped
    samples. silence_ratio: share of silent frames. loudness_lufs: integrated loudness
    (None below 0.4 s, -inf for silence). f0_low, f0_high: 5th and 95th percentile of
    the voiced f0, Hz (None when nothing is voiced or f0 was skipped).
    """

    path: Path
    speaker: str
    sample_rate: int
    channels: int
    seconds: float
    peak_db: float
    clipped_runs: int
    silence_ratio: float
    loudness_lufs: float | None
    f0_low: float | None
    f0_high: float | None


@dataclass(frozen=True)
class SpeakerStats:
    """A speaker's totals; f0 values (Hz) pool the voiced frames of all its clips."""

    name: str
    clips: int
    seconds: float
    loudness_median: float | None
    f0_min: float | None
    f0_p5: float | None
    f0_median: float | None
    f0_p95: float | None
    f0_max: float | None


@dataclass(frozen=True)
class QcReport:
    """The dataset check: every clip, every speaker, and the files that could not be read."""

    dataset: Path
    settings: QcSettings
    sample_rate: int | None
    clips: tuple[ClipStats, ...]
    speakers: tuple[SpeakerStats, ...]
    failed: tuple[FileProblem, ...]

    @property
    def too_short(self) -> list[ClipStats]:
        return [clip for clip in self.clips if clip.seconds < self.settings.min_seconds]

    @property
    def too_long(self) -> list[ClipStats]:
        return [clip for clip in self.clips if clip.seconds > self.settings.max_seconds]

    @property
    def clipped(self) -> list[ClipStats]:
        return [clip for clip in self.clips if clip.clipped_runs > 0]

    @property
    def mostly_silent(self) -> list[ClipStats]:
        return [c for c in self.clips if c.silence_ratio > self.settings.mostly_silent]

    @property
    def other_rate(self) -> list[ClipStats]:
        return [clip for clip in self.clips if clip.sample_rate != self.sample_rate]

    @property
    def multichannel(self) -> list[ClipStats]:
        return [clip for clip in self.clips if clip.channels > 1]

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Clip-length histogram: (bin edges in s, float64 [B + 1]; counts, int64 [B])."""
        width = self.settings.bin_seconds
        longest = max((clip.seconds for clip in self.clips), default=0.0)
        bins = max(1, math.ceil(longest / width + 1e-9))
        edges = np.arange(bins + 1, dtype=np.float64) * width
        seconds = np.array([clip.seconds for clip in self.clips], dtype=np.float64)
        index = np.minimum((seconds // width).astype(np.int64), bins - 1)
        counts = np.bincount(index, minlength=bins)
        return edges, counts.astype(np.int64)

    def to_text(self) -> str:
        """The report as plain text."""
        return _report_text(self)


def _clipped_runs(samples: np.ndarray, level: float, run: int) -> int:
    hot = (np.abs(samples) >= level).astype(np.int8)
    if not hot.any():
        return 0
    edges = np.diff(hot, prepend=np.int8(0), append=np.int8(0))
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(np.count_nonzero(lengths >= run))


def _silence_ratio(wave: np.ndarray, sample_rate: int, silence_db: float) -> float:
    from sovits.audio.slicer import frame_rms

    hop = max(1, round(sample_rate * _FRAME_SECONDS))
    rms = frame_rms(wave, 4 * hop, hop)
    return float(np.mean(rms.astype(np.float64) < 10.0 ** (silence_db / 20.0)))


def _voiced_f0(
    extractor: PitchExtractor | None, wave: np.ndarray, sample_rate: int
) -> np.ndarray:
    hop = max(1, round(sample_rate * _FRAME_SECONDS))
    if extractor is None or wave.shape[0] < 2 * hop:
        return np.zeros(0, dtype=np.float64)
    track = extractor.extract(wave, sample_rate, hop)
    return np.asarray(track.f0[track.voiced], dtype=np.float64)


def _percentiles(values: np.ndarray, points: tuple[float, ...]) -> list[float | None]:
    if values.size == 0:
        return [None for _ in points]
    return [float(value) for value in np.percentile(values, points)]


def _measure(
    path: Path, speaker: str, settings: QcSettings, extractor: PitchExtractor | None
) -> tuple[ClipStats, np.ndarray]:
    from sovits.audio.io import load_audio

    channels_wave, rate = load_audio(path, mono=False)
    wave = channels_wave.mean(axis=0, dtype=np.float32)
    seconds = wave.shape[0] / rate
    loudness = None
    if wave.shape[0] >= LOUDNESS_BLOCK_SECONDS * rate:
        loudness = integrated_loudness(wave, rate)
    f0 = _voiced_f0(extractor, wave, rate)
    low, high = _percentiles(f0, (5.0, 95.0))
    stats = ClipStats(
        path=path,
        speaker=speaker,
        sample_rate=rate,
        channels=int(channels_wave.shape[0]),
        seconds=seconds,
        peak_db=amplitude_to_db(float(np.max(np.abs(channels_wave)))),
        clipped_runs=_clipped_runs(channels_wave, settings.clipping_level, settings.clipping_run),
        silence_ratio=_silence_ratio(wave, rate, settings.silence_db),
        loudness_lufs=loudness,
        f0_low=low,
        f0_high=high,
    )
    return stats, f0


def _dataset_files(root: Path) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files.extend(
                (entry.name, path)
                for path in sorted(entry.iterdir())
                if path.is_file()
                and path.suffix.lower() in AUDIO_SUFFIXES
                and not path.name.startswith(".")
            )
        elif entry.suffix.lower() in AUDIO_SUFFIXES:
            files.append((root.name, entry))
    return files


def _speaker_stats(name: str, clips: list[ClipStats], f0: list[np.ndarray]) -> SpeakerStats:
    pooled = np.concatenate(f0) if f0 else np.zeros(0)
    low, p5, median, p95, high = _percentiles(pooled, (0.0, 5.0, 50.0, 95.0, 100.0))
    loudness = [clip.loudness_lufs for clip in clips if clip.loudness_lufs is not None]
    finite = [value for value in loudness if math.isfinite(value)]
    return SpeakerStats(
        name=name,
        clips=len(clips),
        seconds=float(sum(clip.seconds for clip in clips)),
        loudness_median=float(np.median(finite)) if finite else None,
        f0_min=low,
        f0_p5=p5,
        f0_median=median,
        f0_p95=p95,
        f0_max=high,
    )


def analyse_dataset(
    dataset: str | os.PathLike[str],
    settings: QcSettings | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> QcReport:
    """Measure every audio clip of `dataset` (`<dataset>/<speaker>/*.wav`).

    Unreadable clips are listed in the report's `failed`. Raises InputError when the
    folder does not exist or holds no audio, or for an unknown f0 method (and, from the
    f0 method, when its package or weights are missing).
    """
    settings = settings or QcSettings()
    root = Path(dataset)
    if not root.is_dir():
        raise InputError("dataset folder not found", where=root)
    files = _dataset_files(root)
    if not files:
        raise InputError(
            "no audio files found", where=root, hint="expected <folder>/<speaker>/*.wav"
        )
    extractor: PitchExtractor | None = None
    if settings.f0_method is not None:
        from sovits.features.pitch.registry import create_pitch_extractor

        extractor = create_pitch_extractor(settings.f0_method)
    clips: list[ClipStats] = []
    f0_by_speaker: dict[str, list[np.ndarray]] = {}
    failed: list[FileProblem] = []
    for done, (speaker, path) in enumerate(files, start=1):
        try:
            stats, f0 = _measure(path, speaker, settings, extractor)
        except InputError as error:
            failed.append(FileProblem(path, error.message))
        else:
            clips.append(stats)
            f0_by_speaker.setdefault(speaker, []).append(f0)
        if progress:
            progress(done, len(files))
    rate = settings.sample_rate
    if rate is None and clips:
        rate = Counter(clip.sample_rate for clip in clips).most_common(1)[0][0]
    speakers = tuple(
        _speaker_stats(name, [clip for clip in clips if clip.speaker == name], f0_list)
        for name, f0_list in f0_by_speaker.items()
    )
    return QcReport(root, settings, rate, tuple(clips), speakers, tuple(failed))


def _value(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    return f"{value:.{digits}f}{unit}"


def _clip_lines(title: str, clips: list[ClipStats], describe: str) -> list[str]:
    lines = [f"{title}: {len(clips)}"]
    for clip in clips:
        lines.append(f"  {clip.path}  " + describe.format(clip=clip))
    return lines


def _report_text(report: QcReport) -> str:
    settings = report.settings
    total = sum(clip.seconds for clip in report.clips)
    rate = f"{report.sample_rate} Hz" if report.sample_rate else "-"
    lines = [
        f"sovits dataset QC: {report.dataset}",
        f"{len(report.clips)} clips from {len(report.speakers)} speakers, "
        f"{total / 60:.1f} minutes in all; sample rate {rate}",
        "",
        f"unreadable: {len(report.failed)}",
        *(f"  {problem}" for problem in report.failed),
        "",
        f"clip lengths ({settings.bin_seconds:g} s bins):",
    ]
    edges, counts = report.histogram()
    scale = 40 / max(1, int(counts.max()) if counts.size else 1)
    for index, count in enumerate(counts.tolist()):
        bar = "#" * math.ceil(count * scale)
        span = f"{edges[index]:.1f}-{edges[index + 1]:.1f} s"
        lines.append(f"  {span:>14} |{bar:<40} {count}")
    lines.append("")
    lines += _clip_lines(
        f"too short (< {settings.min_seconds:g} s)", report.too_short, "{clip.seconds:.2f} s"
    )
    lines += _clip_lines(
        f"too long (> {settings.max_seconds:g} s)", report.too_long, "{clip.seconds:.2f} s"
    )
    lines += _clip_lines(
        f"clipping (runs of >= {settings.clipping_run} samples at >= "
        f"{settings.clipping_level:g} of full scale)",
        report.clipped,
        "{clip.clipped_runs} runs",
    )
    lines += _clip_lines(
        f"mostly silent (> {settings.mostly_silent:.0%} of frames below "
        f"{settings.silence_db:g} dBFS)",
        report.mostly_silent,
        "{clip.silence_ratio:.0%} silent",
    )
    lines += _clip_lines(
        f"other sample rate than {rate}", report.other_rate, "{clip.sample_rate} Hz"
    )
    lines += _clip_lines("more than one channel", report.multichannel, "{clip.channels} channels")
    method = settings.f0_method or "not measured"
    lines += [
        "",
        f"speakers (f0 over voiced frames, method {method}; numbers as in the PNG):",
        f"  {'#':>3}  {'speaker':<20} {'clips':>6} {'minutes':>8} {'LUFS':>6}  "
        f"{'f0 p5':>6} {'median':>6} {'p95':>6}  {'min-max Hz':<12}",
    ]
    for number, speaker in enumerate(report.speakers, start=1):
        lines.append(
            f"  {number:>3}  {speaker.name:<20} {speaker.clips:>6} {speaker.seconds / 60:>8.1f} "
            f"{_value(speaker.loudness_median, digits=1):>6}  {_value(speaker.f0_p5):>6} "
            f"{_value(speaker.f0_median):>6} {_value(speaker.f0_p95):>6}  "
            f"{_value(speaker.f0_min)}-{_value(speaker.f0_max)}"
        )
    return "\n".join(lines) + "\n"


# ---- PNG drawing ------------------------------------------------------------------------

_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001010010",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    "-": "000000111000000",
    "s": "000111110011111",
    "H": "101101111101101",
    "z": "000111011110111",
    " ": "000000000000000",
}
"""A 3 x 5 pixel font (rows top to bottom) for tick labels."""

_WHITE = (255, 255, 255)
_INK = (40, 40, 40)
_GRID = (200, 200, 200)
_IN_RANGE = (66, 133, 244)
_TOO_SHORT = (251, 140, 0)
_TOO_LONG = (229, 57, 53)
_F0_SPAN = (160, 160, 160)
_F0_BODY = (67, 160, 71)


def _fill(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: tuple[int, ...]) -> None:
    height, width = image.shape[:2]
    x0, x1 = max(0, min(x0, x1)), min(width, max(x0, x1))
    y0, y1 = max(0, min(y0, y1)), min(height, max(y0, y1))
    image[y0:y1, x0:x1] = color


def _text(image: np.ndarray, x: int, y: int, text: str, scale: int = 2) -> None:
    """Draw `text` with its top-left corner at (x, y); unknown characters are blank."""
    for index, character in enumerate(text):
        bits = np.array([int(b) for b in _GLYPHS.get(character, _GLYPHS[" "])], dtype=bool)
        glyph = np.kron(bits.reshape(5, 3), np.ones((scale, scale), dtype=bool))
        left = x + index * 4 * scale
        region = image[y : y + glyph.shape[0], left : left + glyph.shape[1]]
        region[glyph[: region.shape[0], : region.shape[1]]] = _INK


def _label(value: float) -> str:
    return f"{value:g}" if value < 100 else f"{value:.0f}"


def _draw_histogram(image: np.ndarray, report: QcReport, top: int, height: int) -> None:
    left, right = 60, image.shape[1] - 20
    bottom = top + height
    edges, counts = report.histogram()
    peak = max(1, int(counts.max()) if counts.size else 1)
    span = edges[-1] if edges[-1] > 0 else 1.0

    def x_of(seconds: float) -> int:
        return left + round((right - left) * seconds / span)

    for index, count in enumerate(counts.tolist()):
        centre = (edges[index] + edges[index + 1]) / 2
        color = _IN_RANGE
        if centre < report.settings.min_seconds:
            color = _TOO_SHORT
        elif centre > report.settings.max_seconds:
            color = _TOO_LONG
        bar_top = bottom - round(height * count / peak)
        _fill(image, x_of(edges[index]) + 1, bar_top, x_of(edges[index + 1]), bottom, color)
    for limit in (report.settings.min_seconds, report.settings.max_seconds):
        if 0 < limit < span:
            for y in range(top, bottom, 6):
                _fill(image, x_of(limit), y, x_of(limit) + 1, y + 3, _INK)
    _fill(image, left - 1, top, left, bottom + 1, _INK)
    _fill(image, left - 1, bottom, right, bottom + 1, _INK)
    _text(image, 8, top, str(peak))
    _text(image, 8, bottom - 10, "0")
    step = max(1, math.ceil(len(counts) / 12))
    for index in range(0, len(edges), step):
        x = x_of(edges[index])
        _fill(image, x, bottom, x + 1, bottom + 4, _INK)
        _text(image, x - 4, bottom + 8, _label(float(edges[index])))
    _text(image, right - 8, bottom + 22, "s")


def _draw_f0_ranges(image: np.ndarray, report: QcReport, top: int, row: int) -> None:
    left, right = 60, image.shape[1] - 20
    low, high = math.log(40.0), math.log(1200.0)

    def x_of(hertz: float) -> int:
        clamped = min(max(hertz, 40.0), 1200.0)
        return left + round((right - left) * (math.log(clamped) - low) / (high - low))

    rows = len(report.speakers)
    bottom = top + rows * row
    for tick in (50, 100, 200, 400, 800):
        x = x_of(tick)
        _fill(image, x, top, x + 1, bottom, _GRID)
        _text(image, x - 6, bottom + 8, str(tick))
    _text(image, right - 16, bottom + 22, "Hz")
    for number, speaker in enumerate(report.speakers, start=1):
        y = top + (number - 1) * row
        _text(image, 8, y + row // 2 - 5, str(number))
        if speaker.f0_min is None or speaker.f0_max is None:
            continue
        middle = y + row // 2
        span = (x_of(speaker.f0_min), x_of(speaker.f0_max) + 1)
        _fill(image, span[0], middle - 1, span[1], middle + 1, _F0_SPAN)
        if speaker.f0_p5 is not None and speaker.f0_p95 is not None:
            body = (x_of(speaker.f0_p5), x_of(speaker.f0_p95) + 1)
            _fill(image, body[0], middle - 5, body[1], middle + 5, _F0_BODY)
        if speaker.f0_median is not None:
            x = x_of(speaker.f0_median)
            _fill(image, x, middle - 5, x + 2, middle + 5, _WHITE)
    _fill(image, left - 1, top, left, bottom + 1, _INK)
    _fill(image, left - 1, bottom, right, bottom + 1, _INK)


def render_report_image(report: QcReport, *, width: int = 800) -> np.ndarray:
    """The report's picture as uint8 RGB [H, W, 3]: the clip-length histogram (blue in
    range, orange too short, red too long, dashed lines at the limits) and, when f0 was
    measured, each speaker's f0 range on a log axis (thin: min-max, thick: 5th-95th
    percentile, white: median), rows numbered as in the text report."""
    histogram_height, row = 240, 22
    show_f0 = report.settings.f0_method is not None and len(report.speakers) > 0
    height = 20 + histogram_height + 40
    if show_f0:
        height += 20 + row * len(report.speakers) + 40
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    _draw_histogram(image, report, 20, histogram_height)
    if show_f0:
        _draw_f0_ranges(image, report, 20 + histogram_height + 60, row)
    return image


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image [H, W, 3] (8-bit truecolour, no filtering)."""
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise InputError(f"encode_png needs uint8 [H, W, 3], got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), pixels.reshape(height, width * 3)], axis=1
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def _writer(data: bytes) -> Callable[[IO[bytes]], None]:
    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write


def default_report_folder(dataset: str | os.PathLike[str]) -> Path:
    """Where the report goes by default: `<dataset>_qc` beside the dataset folder (not
    inside it, where the seed's preprocessing would take it for a speaker)."""
    resolved = Path(dataset).resolve()
    return resolved.with_name(f"{resolved.name}_qc")


def write_qc_report(
    report: QcReport, out_dir: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """Write `report.txt` and `report.png` atomically into `out_dir` (default:
    `default_report_folder(report.dataset)`); returns both paths."""
    from sovits.files import atomic_write

    folder = Path(out_dir) if out_dir is not None else default_report_folder(report.dataset)
    text_path, image_path = folder / "report.txt", folder / "report.png"
    text = report.to_text().encode("utf-8")
    image = encode_png(render_report_image(report))

    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(text_path, _writer(text))
        atomic_write(image_path, _writer(image))
    except OSError as error:
        raise InputError(f"cannot write the QC report: {error}", where=folder) from None
    return text_path, image_path
