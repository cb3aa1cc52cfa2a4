"""Reading and writing audio files: one loader and one writer for all of sovits.

`load_audio` reads wav, flac, ogg and mp3 (mp3 needs libsndfile >= 1.1) through
soundfile as float32, mixes the channels down by averaging (librosa's `to_mono`, which
so-vits-svc uses) and resamples with soxr when asked. `save_audio` writes through
`sovits.files.atomic_write`, so a reader never sees half a file; the default 16-bit
PCM conversion is so-vits-svc's (`(wave * 32767).astype(int16)`, which truncates
toward zero), with samples clipped to [-1, 1] first instead of wrapping around.
Every problem a user can cause (missing, unreadable, empty or NaN-holding files,
unwritable folders) is an InputError that names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np

from sovits.errors import InputError
from sovits.files import atomic_write

__all__ = [
    "INT16_SCALE",
    "audio_info",
    "load_audio",
    "read_error",
    "require_audio_file",
    "save_audio",
    "save_audio_blocks",
]

INT16_SCALE = 32767
"""Full scale of so-vits-svc's float -> int16 conversion (`np.iinfo(np.int16).max`)."""

_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def read_error(path: Path, error: Exception) -> InputError:
    """The InputError for a file soundfile cannot read (with a hint for mp3)."""
    hint = None
    if path.suffix.lower() == ".mp3":
        hint = "reading mp3 needs libsndfile 1.1 or newer; or convert the file to wav or flac"
    return InputError(f"cannot read the audio: {error}", where=path, hint=hint)


def require_audio_file(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path when it is an existing file; InputError naming it otherwise
    ("is a folder, expected an audio file" for a folder, "not found" when absent)."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, expected an audio file", where=path)
    if not path.is_file():
        raise InputError("audio file not found", where=path)
    return path


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int, str]:
    """(frames, sample rate in Hz, channels, soundfile subtype such as "PCM_16") of a file.

    Reads the header only. Raises InputError for a missing or unreadable file.
    """
    import soundfile

    path = Path(path)
    require_audio_file(path)
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, ValueError, TypeError, OSError) as error:
        raise read_error(path, error) from None
    return int(info.frames), int(info.samplerate), int(info.channels), str(info.subtype)


def load_audio(
    path: str | os.PathLike[str], *, sample_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 samples in [-1, 1].

    Returns (wave, rate): wave is [N] when `mono` (channels averaged) and [C, N]
    otherwise; rate is `sample_rate` when given (soxr resamples when the file's rate
    differs) and the file's own rate when None.

    Raises InputError naming the file when it is missing, unreadable (corrupt, or a
    format libsndfile cannot decode), holds no samples, or holds NaN or infinite values.
    """
    import soundfile

    path = Path(path)
    if sample_rate is not None and sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}")
    require_audio_file(path)
    try:
        data, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, OSError) as error:
        raise read_error(path, error) from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError("the audio file holds no samples", where=path)
    if not np.all(np.isfinite(data)):
        raise InputError("the audio contains NaN or infinite samples", where=path)
    # [N, C] -> mono [N] (the mean of float32 channels, as librosa.to_mono) or [C, N]
    wave = data.mean(axis=1, dtype=np.float32) if mono else np.ascontiguousarray(data.T)
    rate = int(file_rate)
    if sample_rate is not None and sample_rate != rate:
        from sovits.audio.resample import resample

        wave = resample(wave, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(wave, dtype=np.float32), rate


def _container_format(path: Path) -> str:
    import soundfile

    name = path.suffix.lstrip(".").upper()
    formats = soundfile.available_formats()
    if name == "OGA":
        name = "OGG"
    if name not in formats:
        raise InputError(
            f"cannot write audio with the suffix {path.suffix!r}",
            where=path,
            hint="use .wav (or another suffix libsndfile knows: .flac, .ogg)",
        )
    return name


_CONVERT_BLOCK = 1 << 18
"""Samples converted to int16 at once: the float temporaries stay a few MB whatever
the length of the wave."""


def _to_int16(wave: np.ndarray) -> np.ndarray:
    """so-vits-svc's float -> int16: scale by 32767 and truncate, after clipping to [-1, 1].

    Converted in blocks along the first axis, so a long wave costs its int16 copy and
    no full-length float temporaries.
    """
    result = np.empty(wave.shape, dtype=np.int16)
    for first in range(0, wave.shape[0], _CONVERT_BLOCK):
        block = np.clip(wave[first : first + _CONVERT_BLOCK], -1.0, 1.0)
        block *= INT16_SCALE
        result[first : first + _CONVERT_BLOCK] = block  # float -> int16 truncates
    return result


def save_audio(
    path: str | os.PathLike[str],
    wave: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
) -> Path:
    """Write `wave` (float [N] or [C, N], nominally in [-1, 1]) to `path` atomically.

    The container comes from the suffix (.wav, .flac, .ogg, ...); `subtype` is a
    soundfile subtype. "PCM_16" (the default, as so-vits-svc's resample.py writes)
    clips to [-1, 1], scales by 32767 and truncates toward zero; other subtypes are
    converted by libsndfile. Missing parent folders are created. Returns the path.

    Raises InputError for NaN / infinite samples, a bad shape or rate, an unknown
    suffix or subtype, or a file that cannot be written.
    """
    return save_audio_blocks(path, [wave], sample_rate, subtype=subtype)


def save_audio_blocks(
    path: str | os.PathLike[str],
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
) -> Path:
    """`save_audio` of the concatenation of `blocks` (each float [n] or [C, n], the same
    C), written as they come: a long result is never held whole (the converter streams
    its output this way). Nothing is at `path` until the last block is written; an
    exception raised while producing the blocks removes the partial file and
    propagates. Raises InputError as `save_audio` does (for an empty total too).
    """
    import soundfile

    path = Path(path)
    if sample_rate <= 0:
        raise InputError(f"sample rate must be positive, got {sample_rate}", where=path)
    container = _container_format(path)
    if not soundfile.check_format(container, subtype):
        raise InputError(f"the {container} format cannot hold subtype {subtype!r}", where=path)

    def write(handle: IO[bytes]) -> None:
        output: soundfile.SoundFile | None = None
        shape: tuple[int, ...] = ()
        try:
            for block in blocks:
                array = np.asarray(block)
                if array.ndim not in (1, 2) or (output is not None and array.shape[:-1] != shape):
                    raise InputError(f"cannot write audio of shape {array.shape}", where=path)
                if not np.issubdtype(array.dtype, np.floating):
                    raise InputError(
                        f"save_audio needs float samples, got dtype {array.dtype}", where=path
                    )
                if not np.all(np.isfinite(array)):
                    raise InputError("refusing to write NaN or infinite samples", where=path)
                if output is None:
                    shape = array.shape[:-1]
                    channels = 1 if array.ndim == 1 else array.shape[0]
                    output = soundfile.SoundFile(
                        handle, "w", samplerate=sample_rate, channels=channels,
                        format=container, subtype=subtype,
                    )
                if array.shape[-1]:
                    output.write(_frames_for(array, subtype))
            if output is None or output.frames == 0:
                raise InputError("cannot write audio of no samples", where=path)
        finally:
            if output is not None:
                output.close()

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except (OSError, RuntimeError) as error:
        raise InputError(f"cannot write the audio: {error}", where=path) from None
    return path


def _frames_for(array: np.ndarray, subtype: str) -> np.ndarray:
    """float [n] or [C, n] as soundfile takes it ([n] or [n, C]) in `subtype`'s range."""
    frames = array if array.ndim == 1 else array.T
    if subtype == "PCM_16":
        return _to_int16(frames)
    if subtype not in _FLOAT_SUBTYPES:
        return np.clip(frames, -1.0, 1.0)
    return frames
