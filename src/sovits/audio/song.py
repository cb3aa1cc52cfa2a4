"""A song read range by range, so converting it holds one slice, not the whole song.

Offline conversion reads its input twice at the model's rate: the silence slicer's
RMS pass over everything, then one range per slice. `Samples` is what both need: a
mono float32 signal of known length read by [start, stop) range. `ArraySamples`
gives an array in memory that interface; `decode_song` decodes an audio file block
by block (successive libsndfile reads, see `_sequential_blocks`), mixes each block to
mono (the channel mean, as `load_audio`), resamples it with soxr's streaming
resampler and appends it to an anonymous temporary file, so memory does not grow
with the song's length (a ten-minute song at 44.1 kHz is 106 MB of float32). The
streaming resampler gives the same samples as the one-shot `sovits.audio.resample`
(tested), and the length is fixed the same way, so a song read from its file
converts exactly as the loaded array would.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from sovits.errors import InputError

if TYPE_CHECKING:
    from soundfile import SoundFile

__all__ = ["ArraySamples", "Samples", "SongFile", "decode_song"]

_DECODE_BLOCK = 1 << 16
"""Frames decoded at once (about 1.5 s at 44.1 kHz)."""

_SAMPLE = np.dtype("<f4")


@runtime_checkable
class Samples(Protocol):
    """A mono float32 signal read by range."""

    @property
    def length(self) -> int:
        """Number of samples."""
        ...

    def read(self, start: int, stop: int) -> np.ndarray:
        """float32 [stop - start], for 0 <= start <= stop <= length."""
        ...


def _check_range(start: int, stop: int, length: int) -> None:
    if not 0 <= start <= stop <= length:
        raise IndexError(f"range {start}..{stop} is outside the {length} samples")


@dataclass(frozen=True)
class ArraySamples:
    """A float32 [N] array as `Samples` (reads are views, not copies)."""

    wave: np.ndarray

    @property
    def length(self) -> int:
        return int(self.wave.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        _check_range(start, stop, self.length)
        return self.wave[start:stop]


class SongFile:
    """`Samples` held in an open binary file of little-endian float32 samples."""

    def __init__(self, handle: IO[bytes], length: int) -> None:
        self._handle = handle
        self._length = length

    @property
    def length(self) -> int:
        return self._length

    def read(self, start: int, stop: int) -> np.ndarray:
        _check_range(start, stop, self._length)
        wave = np.empty(stop - start, dtype=_SAMPLE)
        self._handle.seek(start * _SAMPLE.itemsize)
        wanted = wave.nbytes
        got = self._handle.readinto(wave.data.cast("B"))  # type: ignore[attr-defined]
        if got != wanted:
            raise OSError(f"the song's temporary file ended early ({got} of {wanted} bytes)")
        return wave


def _sequential_blocks(audio: SoundFile, frames: int) -> Iterator[np.ndarray]:
    """float32 [<= frames, C] blocks of the open file, read one after another with
    libsndfile's `sf_readf_float` and nothing in between.

    `SoundFile.blocks` (and every `SoundFile.read`) seeks to where the last read ended
    after each read. For mp3 that seek restarts libsndfile's mpg123 decoder, which then
    returns wrong samples for a few mp3 frames (up to 0.6 off on a gated sine, soundfile
    0.14 with libsndfile 1.2.2). Plain successive reads are exact for every format, so
    they are made here through soundfile's own cffi binding (`_snd`, `_ffi`, stable
    since soundfile 0.9; without them the file is read whole and split).
    """
    import soundfile

    lib = getattr(soundfile, "_snd", None)
    ffi = getattr(soundfile, "_ffi", None)
    handle = getattr(audio, "_file", None)
    if lib is None or ffi is None or handle is None:
        whole = audio.read(dtype="float32", always_2d=True)
        for start in range(0, whole.shape[0], frames):
            yield whole[start : start + frames]
        return
    while True:
        block = np.empty((frames, audio.channels), dtype=np.float32)
        got = int(lib.sf_readf_float(handle, ffi.cast("float *", block.ctypes.data), frames))
        if lib.sf_error(handle) != 0:
            raise RuntimeError(ffi.string(lib.sf_strerror(handle)).decode(errors="replace"))
        if got <= 0:
            return
        yield block[:got]


def _mono_blocks(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    """(mono float32 block, file rate) pairs of the audio file, checked as load_audio
    checks the whole file (unreadable, NaN or infinite samples: InputError)."""
    import soundfile

    from sovits.audio.io import read_error

    try:
        with soundfile.SoundFile(str(path)) as audio:
            rate = int(audio.samplerate)
            for block in _sequential_blocks(audio, _DECODE_BLOCK):
                if not np.all(np.isfinite(block)):
                    raise InputError("the audio contains NaN or infinite samples", where=path)
                yield block.mean(axis=1, dtype=np.float32), rate
    except (RuntimeError, ValueError, TypeError, OSError) as error:
        raise read_error(path, error) from None


def _write_samples(handle: IO[bytes], wave: np.ndarray) -> int:
    """Append `wave` to `handle` as float32; returns the number of samples."""
    handle.write(np.ascontiguousarray(wave, dtype=_SAMPLE).tobytes())
    return int(wave.shape[0])


@contextmanager
def decode_song(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    scratch_dir: str | os.PathLike[str] | None = None,
) -> Iterator[SongFile]:
    """The audio file `path` as mono float32 `Samples` at `sample_rate` Hz, equal to
    `load_audio(path, sample_rate=sample_rate)` but kept in an anonymous temporary
    file in `scratch_dir` (the system's temporary folder when None), which is gone when
    the block ends, also after a crash.

    Raises InputError naming the file when it is missing, unreadable, empty or holds NaN
    or infinite samples, and naming the folder when the temporary file cannot be made.
    """
    import soxr

    from sovits.audio.io import require_audio_file

    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    source = require_audio_file(path)
    where = Path(scratch_dir) if scratch_dir is not None else None
    try:
        handle = tempfile.TemporaryFile(dir=scratch_dir)  # noqa: SIM115 (closed below)
    except OSError as error:
        raise InputError(f"cannot make a temporary file: {error}", where=where) from None
    with handle:
        stream: soxr.ResampleStream | None = None
        frames = written = 0
        rate = sample_rate
        try:
            for block, rate in _mono_blocks(source):
                frames += block.shape[0]
                if rate != sample_rate and stream is None:
                    stream = soxr.ResampleStream(
                        rate, sample_rate, 1, dtype="float32", quality="soxr_hq"
                    )
                out = block if stream is None else stream.resample_chunk(block)
                written += _write_samples(handle, out)
            if frames == 0:
                raise InputError("the audio file holds no samples", where=source)
            if stream is not None:
                tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
                written += _write_samples(handle, tail)
            # the length `sovits.audio.resample` fixes: ceil(N * to / from), zero-padded
            length = frames if rate == sample_rate else math.ceil(frames * (sample_rate / rate))
            if written < length:
                _write_samples(handle, np.zeros(length - written, np.float32))
            handle.flush()
        except OSError as error:  # the scratch folder is full or gone
            raise InputError(f"cannot write a temporary file: {error}", where=where) from None
        yield SongFile(handle, length)
