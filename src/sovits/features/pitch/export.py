"""F0 curve files: extract a pitch track from an audio file, write it for inspection or
editing, read an edited one back.

Two formats, chosen by the file suffix:

* `.csv`: a header line `time_s,f0_hz,voiced`, then one row per frame: the frame time in
  seconds, f0 in Hz and 1 / 0 for voiced / unvoiced (`true` / `false` are read too).
  Numbers are written in their shortest exact form, so a written track reads back
  bit for bit.
* `.npy`: a structured array with fields `time_s` (float64), `f0_hz` (float32) and
  `voiced` (bool); a plain numeric [T, 3] array in that column order is read too.
  Files are read without pickle.

Reading validates everything (header, row shape, at least two rows, finite numbers,
strictly increasing non-negative times, f0 >= 0 and > 0 where voiced) and raises
InputError naming the file and line. `F0Curve.to_track` puts a curve onto any frame
grid, so a curve edited at one hop can drive a conversion at another.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from sovits.audio.io import load_audio
from sovits.dsp.f0 import check_transpose, shift_f0
from sovits.errors import InputError
from sovits.features.pitch.base import PitchTrack
from sovits.features.pitch.registry import create_pitch_extractor
from sovits.files import atomic_write

__all__ = [
    "CSV_HEADER",
    "NPY_DTYPE",
    "F0Curve",
    "extract_f0_from_file",
    "f0_curve_format",
    "load_f0_curve",
    "save_f0_curve",
]

CSV_HEADER = ("time_s", "f0_hz", "voiced")
"""Column names of both formats, in order."""
NPY_DTYPE = np.dtype([("time_s", "<f8"), ("f0_hz", "<f4"), ("voiced", "?")])
"""Structured dtype of the `.npy` format."""

_TRUE = {"1", "true"}
_FALSE = {"0", "false"}


@dataclass(frozen=True)
class F0Curve:
    """An f0 curve sampled at arbitrary increasing times.

    times: float64 [T] seconds, strictly increasing, >= 0.
    f0: float32 [T] Hz, >= 0 (unvoiced frames may hold any fill value).
    voiced: bool [T].
    """

    times: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray

    def __post_init__(self) -> None:
        if not (self.times.ndim == 1 and self.times.shape == self.f0.shape == self.voiced.shape):
            raise ValueError(
                f"times, f0 and voiced must be 1-D of equal length, got {self.times.shape}, "
                f"{self.f0.shape} and {self.voiced.shape}"
            )

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @classmethod
    def from_track(cls, track: PitchTrack) -> F0Curve:
        """The curve of a PitchTrack (its frame times, f0 and voiced mask)."""
        return cls(
            track.times,
            np.asarray(track.f0, dtype=np.float32),
            np.asarray(track.voiced, dtype=bool),
        )

    def to_track(
        self, sample_rate: int, hop_length: int, n_frames: int | None = None
    ) -> PitchTrack:
        """Sample the curve on frames i * hop_length / sample_rate, i < n_frames.

        f0 is interpolated linearly in time (held beyond the ends); each frame takes the
        voicing of the nearest curve point. Frame times equal to curve times give the
        curve's values exactly. `n_frames` defaults to the frames up to the last time.
        """
        if sample_rate <= 0 or hop_length <= 0:
            raise InputError(
                f"sample_rate and hop_length must be positive, got {sample_rate}, {hop_length}"
            )
        if len(self) == 0:
            raise InputError("the f0 curve has no points")
        if n_frames is None:
            n_frames = int(np.floor(self.times[-1] * sample_rate / hop_length + 1e-6)) + 1
        times = np.arange(n_frames, dtype=np.float64) * hop_length / sample_rate
        f0 = np.interp(times, self.times, self.f0.astype(np.float64)).astype(np.float32)
        if len(self) == 1:
            nearest = np.zeros(n_frames, dtype=np.int64)
        else:
            midpoints = (self.times[1:] + self.times[:-1]) / 2
            nearest = np.searchsorted(midpoints, times, side="right")
        return PitchTrack(f0, self.voiced[nearest].copy(), sample_rate, hop_length)


def _curve_of(data: PitchTrack | F0Curve) -> F0Curve:
    return F0Curve.from_track(data) if isinstance(data, PitchTrack) else data


def f0_curve_format(path: str | Path) -> str:
    """"csv" or "npy" from the file name's suffix; InputError for anything else."""
    return _suffix(Path(path))[1:]


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npy"):
        raise InputError(
            f"unsupported f0 curve format {path.suffix or '(no suffix)'!r}",
            where=path,
            hint="use a .csv or .npy file name",
        )
    return suffix


def _number(value: np.floating) -> str:
    return np.format_float_positional(value, unique=True, trim="-")


def save_f0_curve(data: PitchTrack | F0Curve, path: str | Path) -> Path:
    """Write a track or curve to `path` (.csv or .npy, by suffix), creating missing
    parent folders. Returns the path."""
    path = Path(path)
    suffix = _suffix(path)
    curve = _curve_of(data)
    if suffix == ".npy":
        table = np.empty(len(curve), dtype=NPY_DTYPE)
        table["time_s"] = curve.times
        table["f0_hz"] = curve.f0
        table["voiced"] = curve.voiced

        def write(handle: IO[bytes]) -> None:
            np.save(handle, table, allow_pickle=False)

    else:
        lines = [",".join(CSV_HEADER)]
        times = curve.times.astype(np.float64)
        f0 = curve.f0.astype(np.float32)
        for time, value, voiced in zip(times, f0, curve.voiced, strict=True):
            lines.append(f"{_number(time)},{_number(value)},{int(bool(voiced))}")
        text = ("\n".join(lines) + "\n").encode("utf-8")

        def write(handle: IO[bytes]) -> None:
            handle.write(text)

    try:
        atomic_write(path, write)
    except OSError as error:
        raise InputError(f"cannot write the f0 curve: {error}", where=path) from None
    return path


def load_f0_curve(path: str | Path) -> F0Curve:
    """Read and validate an f0 curve written by `save_f0_curve` (or edited by hand)."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise InputError("f0 curve file not found", where=path)
    if suffix == ".npy":
        times, f0, voiced = _read_npy(path)
        labels = [f"row {index}" for index in range(times.size)]
    else:
        times, f0, voiced, lines = _read_csv(path)
        labels = [f"line {line}" for line in lines]
    with np.errstate(over="ignore"):
        f0_single = f0.astype(np.float32)
    _validate(path, times, f0_single, voiced, labels)
    return F0Curve(times, f0_single, voiced)


def _read_npy(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"cannot read the f0 curve: {error}", where=path) from None
    if not isinstance(array, np.ndarray):
        raise InputError("expected one array, found an archive of several", where=path)
    names = array.dtype.names
    if names is not None:
        if array.ndim != 1 or set(CSV_HEADER) - set(names):
            raise InputError(
                f"expected a 1-D structured array with fields {', '.join(CSV_HEADER)}, got "
                f"fields {', '.join(names)} and shape {array.shape}",
                where=path,
            )
        times = np.asarray(array["time_s"], dtype=np.float64)
        f0 = np.asarray(array["f0_hz"], dtype=np.float64)
        voiced_column = np.asarray(array["voiced"])
    else:
        if array.ndim != 2 or array.shape[1] != 3 or not np.issubdtype(array.dtype, np.number):
            raise InputError(
                f"expected a structured array or a numeric [T, 3] array (time_s, f0_hz, "
                f"voiced), got {array.dtype} of shape {array.shape}",
                where=path,
            )
        times = array[:, 0].astype(np.float64)
        f0 = array[:, 1].astype(np.float64)
        voiced_column = array[:, 2]
    if voiced_column.dtype != np.bool_:
        numeric = np.asarray(voiced_column, dtype=np.float64)
        bad = np.flatnonzero((numeric != 0) & (numeric != 1))
        if bad.size:
            raise InputError(
                f"row {bad[0]}: voiced must be 0 or 1, found {numeric[bad[0]]!r}", where=path
            )
        voiced_column = numeric == 1
    return times, f0, np.asarray(voiced_column, dtype=bool)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the f0 curve: {error}", where=path) from None
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(cell.strip().lower() for cell in header) != CSV_HEADER:
        found = ",".join(header) if header else "an empty file"
        raise InputError(
            f"expected the header {','.join(CSV_HEADER)!r}, found {found!r}", where=path
        )
    times: list[float] = []
    f0: list[float] = []
    voiced: list[bool] = []
    lines: list[int] = []
    for row in rows:
        line = rows.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise InputError(f"line {line}: expected 3 values, found {len(row)}", where=path)
        try:
            time, value = float(row[0]), float(row[1])
        except ValueError:
            raise InputError(
                f"line {line}: time_s and f0_hz must be numbers, found {row[0]!r}, {row[1]!r}",
                where=path,
            ) from None
        flag = row[2].strip().lower()
        if flag not in _TRUE | _FALSE:
            raise InputError(
                f"line {line}: voiced must be 1 or 0 (or true / false), found {row[2]!r}",
                where=path,
            )
        times.append(time)
        f0.append(value)
        voiced.append(flag in _TRUE)
        lines.append(line)
    return (
        np.asarray(times, dtype=np.float64),
        np.asarray(f0, dtype=np.float64),
        np.asarray(voiced, dtype=bool),
        lines,
    )


def _validate(
    path: Path, times: np.ndarray, f0: np.ndarray, voiced: np.ndarray, labels: list[str]
) -> None:
    """Raise InputError at the first bad row; `labels` name the rows ("line 3", "row 0")."""
    if times.size == 0:
        raise InputError("the f0 curve has no rows", where=path)
    if times.size == 1:
        raise InputError(
            f"{labels[0]}: the f0 curve has only one row; it needs at least two",
            where=path,
            hint="export a whole curve with `sovits f0` and edit that",
        )

    def at(mask: np.ndarray) -> str:
        return labels[int(np.flatnonzero(mask)[0])]

    finite = np.isfinite(times) & np.isfinite(f0)
    if not finite.all():
        raise InputError(f"{at(~finite)}: time_s and f0_hz must be finite numbers", where=path)
    if np.any(times < 0):
        raise InputError(f"{at(times < 0)}: time_s is negative", where=path)
    decreasing = np.concatenate(([False], np.diff(times) <= 0))
    if decreasing.any():
        raise InputError(f"{at(decreasing)}: time_s must increase strictly", where=path)
    if np.any(f0 < 0):
        raise InputError(f"{at(f0 < 0)}: f0_hz is negative", where=path)
    if np.any(voiced & (f0 <= 0)):
        raise InputError(f"{at(voiced & (f0 <= 0))}: a voiced frame needs f0_hz > 0", where=path)


def extract_f0_from_file(
    path: str | Path,
    method: str,
    *,
    sample_rate: int = 44100,
    hop_length: int = 512,
    transpose: float = 0.0,
    **options: Any,
) -> PitchTrack:
    """Pitch track of an audio file with f0 method `method` (see the pitch registry).

    The file is read as mono at `sample_rate` (`sovits.audio.io.load_audio`), the track has one
    frame per `hop_length` samples, and f0 is transposed by `transpose` semitones
    (`shift_f0`). `options` go to the extractor. Raises InputError, also for a
    transpose beyond +-MAX_TRANSPOSE semitones or a rate or hop that is not positive.
    """
    check_transpose(transpose)
    if sample_rate <= 0 or hop_length <= 0:
        raise InputError(
            f"the sample rate and hop must be positive, got {sample_rate} Hz, hop {hop_length}"
        )
    extractor = create_pitch_extractor(method, **options)
    wave, _ = load_audio(path, sample_rate=sample_rate)
    track = extractor.extract(wave, sample_rate, hop_length)
    if transpose:
        track = PitchTrack(
            np.asarray(shift_f0(track.f0, transpose), dtype=np.float32),
            track.voiced,
            track.sample_rate,
            track.hop_length,
        )
    return track
