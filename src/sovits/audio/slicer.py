"""The silence slicer of openvpi/audio-slicer (slicer2) and so-vits-svc's inference.

A frame is silent when its RMS (window min(min_interval, 4 * hop), hop `hop_size`,
librosa's centred framing with zero padding) is below `threshold_db` dBFS. A run of
silent frames becomes a cut when it is at the start of the audio and longer than
`max_silence_kept`, or when it lasts `min_interval` and the clip before it is at least
`min_length` long. At a cut, up to `max_silence_kept` of silence is kept on each side
and the cut points sit at the quietest frames; silence at the end of the audio is
dropped when it lasts `min_interval`. The sample positions are exactly the original's.

`slice_ranges` gives the kept clips (audio-slicer's output); `segments` gives the
alternating sound / silence segments that cover the whole signal (so-vits-svc's
`inference.slicer.cut`, which conversion uses: its silences are replaced by zeros).
`trim_silence` is librosa.effects.trim, which so-vits-svc's resample.py runs.

The per-frame work is vectorised; only the runs of silence are walked in Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sovits.audio.song import ArraySamples, Samples
from sovits.errors import InputError

__all__ = [
    "SVC_INFERENCE_SLICER",
    "AudioSegment",
    "SlicerFrames",
    "SlicerSettings",
    "frame_rms",
    "samples_frame_rms",
    "segments",
    "silence_tags",
    "slice_file",
    "slice_ranges",
    "trim_silence",
    "write_slices",
]

_FRAMES_PER_CHUNK = 1 << 10
"""Frames of RMS computed at once: bounds the temporary [frames, window] array (about
14 MB for so-vits-svc's 80 ms windows at 44.1 kHz)."""

_KEEP_SUBTYPES = ("PCM_24", "PCM_32", "FLOAT", "DOUBLE")
"""Source subtypes that slices keep; everything else is written as 16-bit PCM."""


def frame_rms(wave: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of centred frames: float32 [1 + N // hop] for an even frame length.

    The wave (float [N]) is zero-padded by frame_length // 2 on both sides and framed
    every `hop_length` samples; each value is sqrt(mean(x ** 2)) over `frame_length`
    samples, computed in float32 as `librosa.feature.rms` (librosa >= 0.10, which pads
    with zeros) does.
    """
    samples = np.asarray(wave, dtype=np.float32)
    if samples.ndim != 1:
        raise InputError(f"frame_rms needs a mono wave [N], got shape {samples.shape}")
    return samples_frame_rms(ArraySamples(samples), frame_length, hop_length)


def _padded_read(samples: Samples, start: int, stop: int) -> np.ndarray:
    """samples[start:stop] with zeros where the range reaches outside the signal."""
    low = min(max(start, 0), samples.length)
    high = min(max(stop, low), samples.length)
    inside = samples.read(low, high)
    before, after = low - start, stop - high
    if before or after:
        return np.pad(inside, (before, after))
    return inside


def samples_frame_rms(samples: Samples, frame_length: int, hop_length: int) -> np.ndarray:
    """`frame_rms` of a signal read range by range (a song on disk), a few thousand
    frames at a time: memory stays bounded whatever the signal's length."""
    if frame_length <= 0 or hop_length <= 0:
        raise InputError(
            f"frame and hop lengths must be positive, got {frame_length} and {hop_length}"
        )
    half = frame_length // 2
    padded_length = samples.length + 2 * half
    if padded_length < frame_length:
        raise InputError(
            f"{samples.length} samples are too few for one frame of {frame_length}"
        )
    n_frames = 1 + (padded_length - frame_length) // hop_length
    rms = np.empty(n_frames, dtype=np.float32)
    for first in range(0, n_frames, _FRAMES_PER_CHUNK):
        last = min(n_frames, first + _FRAMES_PER_CHUNK)
        # padded positions [first * hop, (last - 1) * hop + frame) in signal positions
        begin = first * hop_length - half
        segment = _padded_read(samples, begin, begin + (last - 1 - first) * hop_length
                               + frame_length)
        windows = sliding_window_view(segment, frame_length)[::hop_length]
        rms[first:last] = np.sqrt(np.mean(np.square(windows), axis=-1))
    return rms


def trim_silence(
    wave: np.ndarray,
    *,
    top_db: float = 40.0,
    frame_length: int = 2048,
    hop_length: int = 512,
) -> tuple[int, int]:
    """[start, end) sample range of `wave` (float [N]) without its leading and trailing
    silence, as `librosa.effects.trim` (so-vits-svc's resample.py uses top_db=40).

    A frame (`frame_rms`) is kept when it is louder than `top_db` dB below the loudest
    frame; the range runs from the first kept frame's start to the end of the last kept
    frame (at most N). (0, 0) when no frame is kept. An all-zero wave is kept whole
    (every frame equals the loudest), as in librosa.
    """
    samples = np.asarray(wave, dtype=np.float32)
    if samples.ndim != 1:
        raise InputError(f"trim_silence needs a mono wave [N], got shape {samples.shape}")
    if samples.shape[0] == 0:
        return 0, 0
    rms = frame_rms(samples, frame_length, hop_length)
    # librosa.amplitude_to_db(rms, ref=np.max, top_db=None): power in float32, amin 1e-10
    power = np.square(rms)
    reference = np.square(np.max(rms))
    level = 10.0 * np.log10(np.maximum(np.float32(1e-10), power))
    level -= 10.0 * np.log10(np.maximum(np.float32(1e-10), reference))
    loud = np.flatnonzero(level > -top_db)
    if loud.size == 0:
        return 0, 0
    start = int(loud[0]) * hop_length
    end = min(samples.shape[0], (int(loud[-1]) + 1) * hop_length)
    return start, end


@dataclass(frozen=True)
class SlicerFrames:
    """Slicer settings converted to frames at one sample rate (the original's rounding).

    hop: samples per frame; window: RMS window, samples; min_length, min_interval,
    max_silence_kept: frames; threshold: linear RMS threshold.
    """

    hop: int
    window: int
    min_length: int
    min_interval: int
    max_silence_kept: int
    threshold: float


@dataclass(frozen=True)
class SlicerSettings:
    """Slicer parameters in the units users set them in (dB and milliseconds).

    The defaults are audio-slicer's command-line defaults, meant for cutting a
    dataset into clips; `SVC_INFERENCE_SLICER` holds so-vits-svc's inference ones.
    Needs min_length >= min_interval >= hop_size > 0 and max_silence_kept >= hop_size.
    """

    threshold_db: float = -40.0
    min_length_ms: float = 5000.0
    min_interval_ms: float = 300.0
    hop_size_ms: float = 10.0
    max_silence_kept_ms: float = 500.0

    def __post_init__(self) -> None:
        if not self.hop_size_ms > 0:
            raise InputError(f"hop size must be positive, got {self.hop_size_ms} ms")
        if not self.min_length_ms >= self.min_interval_ms >= self.hop_size_ms:
            raise InputError(
                "slicer settings need min_length >= min_interval >= hop_size, got "
                f"{self.min_length_ms}, {self.min_interval_ms} and {self.hop_size_ms} ms"
            )
        if not self.max_silence_kept_ms >= self.hop_size_ms:
            raise InputError(
                "slicer settings need max_silence_kept >= hop_size, got "
                f"{self.max_silence_kept_ms} and {self.hop_size_ms} ms"
            )

    def frames(self, sample_rate: int) -> SlicerFrames:
        """These settings in frames at `sample_rate` Hz (rounded as the original does)."""
        if sample_rate <= 0:
            raise InputError(f"sample rate must be positive, got {sample_rate}")
        interval_samples = sample_rate * self.min_interval_ms / 1000
        hop = round(sample_rate * self.hop_size_ms / 1000)
        if hop <= 0:
            raise InputError(
                f"a hop of {self.hop_size_ms} ms is shorter than one sample at {sample_rate} Hz"
            )
        return SlicerFrames(
            hop=hop,
            window=min(round(interval_samples), 4 * hop),
            min_length=round(sample_rate * self.min_length_ms / 1000 / hop),
            min_interval=round(interval_samples / hop),
            max_silence_kept=round(sample_rate * self.max_silence_kept_ms / 1000 / hop),
            threshold=10 ** (self.threshold_db / 20.0),
        )


SVC_INFERENCE_SLICER = SlicerSettings(hop_size_ms=20.0, max_silence_kept_ms=5000.0)
"""so-vits-svc's inference slicer (`Slicer` class defaults; its threshold is `-sd`)."""


def _quietest(rms: np.ndarray, start: int, stop: int) -> int:
    """Index of the smallest RMS in frames [start, stop) (the first one on ties)."""
    return start + int(np.argmin(rms[start:stop]))


def silence_tags(rms: np.ndarray, frames: SlicerFrames) -> list[tuple[int, int]]:
    """The silences to cut, as [begin, end) frame ranges, from the frame RMS [T].

    This is the decision logic of audio-slicer's `Slicer.slice`: each run of frames
    below the threshold is judged once, at its end; a silence that reaches the end of
    the audio ends with the tag (pos, T + 1).
    """
    total = int(rms.shape[0])
    silent = np.asarray(rms, dtype=np.float64) < frames.threshold
    edges = np.diff(silent.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1)  # first loud frame after each run (or T)
    keep = frames.max_silence_kept
    tags: list[tuple[int, int]] = []
    clip_start = 0
    for start, end in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
        if end == total:  # silence that runs to the end of the audio
            if total - start >= frames.min_interval:
                stop = min(total, start + keep)
                tags.append((_quietest(rms, start, stop + 1), total + 1))
            break
        leading = start == 0 and end > keep
        long_enough = end - start >= frames.min_interval and end - clip_start >= frames.min_length
        if not (leading or long_enough):
            continue
        if end - start <= keep:
            position = _quietest(rms, start, end + 1)
            tags.append((0, position) if start == 0 else (position, position))
            clip_start = position
            continue
        left = _quietest(rms, start, start + keep + 1)
        right = _quietest(rms, end - keep, end + 1)
        if end - start <= 2 * keep:
            middle = _quietest(rms, end - keep, start + keep + 1)
            if start == 0:
                tags.append((0, right))
                clip_start = right
            else:
                tags.append((min(left, middle), max(right, middle)))
                clip_start = max(right, middle)
        else:
            tags.append((0, right) if start == 0 else (left, right))
            clip_start = right
    return tags


def _detection_signal(wave: np.ndarray | Samples) -> Samples:
    """The mono signal silence is detected on (the channel mean of [C, N])."""
    if isinstance(wave, Samples):
        return wave
    array = np.asarray(wave)
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"the slicer needs a float wave of shape [N] or [C, N], got {array.dtype} "
            f"{array.shape}"
        )
    if array.ndim == 2:
        return ArraySamples(np.asarray(array.mean(axis=0), dtype=np.float32))
    return ArraySamples(np.asarray(array, dtype=np.float32))


def _tags_for(
    wave: np.ndarray | Samples, sample_rate: int, settings: SlicerSettings
) -> tuple[SlicerFrames, list[tuple[int, int]], int] | None:
    """Frames, silence tags and frame count; None when the audio is never sliced."""
    samples = _detection_signal(wave)
    frames = settings.frames(sample_rate)
    # The original compares the sample count with min_length in frames (kept as is).
    if samples.length <= frames.min_length:
        return None
    rms = samples_frame_rms(samples, frames.window, frames.hop)
    return frames, silence_tags(rms, frames), int(rms.shape[0])


def slice_ranges(
    wave: np.ndarray, sample_rate: int, settings: SlicerSettings | None = None
) -> list[tuple[int, int]]:
    """The clips audio-slicer keeps from `wave` ([N] or [C, N] float at `sample_rate`).

    Returns [start, end) sample ranges in order; the whole wave when nothing is cut,
    and an empty list when the wave is all silence from its first frame. (audio-slicer
    can also return an empty clip between two adjacent cuts; those are left out.)
    """
    settings = settings or SlicerSettings()
    length = int(np.asarray(wave).shape[-1])
    found = _tags_for(wave, sample_rate, settings)
    if found is None or not found[1]:
        return [(0, length)] if length else []
    frames, tags, total = found
    hop = frames.hop
    bounds = []
    if tags[0][0] > 0:
        bounds.append((0, tags[0][0]))
    bounds.extend((tags[i][1], tags[i + 1][0]) for i in range(len(tags) - 1))
    if tags[-1][1] < total:
        bounds.append((tags[-1][1], total))
    ranges = [(begin * hop, min(length, end * hop)) for begin, end in bounds]
    return [(start, end) for start, end in ranges if end > start]


@dataclass(frozen=True)
class AudioSegment:
    """A [start, end) sample range of a signal; `silent` marks a cut-out silence."""

    start: int
    end: int
    silent: bool

    def __len__(self) -> int:
        return self.end - self.start


def segments(
    wave: np.ndarray | Samples,
    sample_rate: int,
    settings: SlicerSettings = SVC_INFERENCE_SLICER,
) -> list[AudioSegment]:
    """Sound and silence segments covering `wave` (float [N] or [C, N], or a mono song
    read range by range), as so-vits-svc's `slicer.cut` + `chunks2audio` give them to
    conversion (empty segments dropped)."""
    signal = _detection_signal(wave)
    length = signal.length
    found = _tags_for(signal, sample_rate, settings)
    if found is None or not found[1]:
        return [AudioSegment(0, length, False)] if length else []
    frames, tags, _ = found
    hop = frames.hop
    pieces = []
    if tags[0][0]:
        pieces.append(AudioSegment(0, min(length, tags[0][0] * hop), False))
    for index, (begin, end) in enumerate(tags):
        if index:
            previous_end = tags[index - 1][1]
            pieces.append(AudioSegment(previous_end * hop, min(length, begin * hop), False))
        pieces.append(AudioSegment(begin * hop, min(length, end * hop), True))
    if tags[-1][1] * hop < length:
        pieces.append(AudioSegment(tags[-1][1] * hop, length, False))
    return [piece for piece in pieces if piece.end > piece.start]


def write_slices(
    wave: np.ndarray,
    sample_rate: int,
    ranges: list[tuple[int, int]],
    out_dir: str | os.PathLike[str],
    stem: str,
    *,
    subtype: str = "PCM_16",
) -> list[Path]:
    """Write `wave[..., start:end]` for each range as `<out_dir>/<stem>_<i>.wav`.

    The wave is [N] or [C, N] float; files are written atomically (`save_audio`).
    Returns the paths in order.
    """
    from sovits.audio.io import save_audio

    array = np.asarray(wave)
    out = Path(out_dir)
    return [
        save_audio(out / f"{stem}_{index}.wav", array[..., start:end], sample_rate, subtype=subtype)
        for index, (start, end) in enumerate(ranges)
    ]


def slice_file(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    settings: SlicerSettings | None = None,
) -> list[Path]:
    """Slice one audio file into `<out_dir>/<stem>_<i>.wav` clips at its own rate.

    Channels are kept (silence is detected on their mean); 24-bit, 32-bit and float
    sources keep their sample format, the rest are written as 16-bit PCM. Returns the
    written paths (none for a file that is silence throughout). Raises InputError for
    an unreadable or empty file.
    """
    from sovits.audio.io import audio_info, load_audio

    source = Path(path)
    _, _, _, source_subtype = audio_info(source)
    wave, rate = load_audio(source, mono=False)
    subtype = source_subtype if source_subtype in _KEEP_SUBTYPES else "PCM_16"
    ranges = slice_ranges(wave, rate, settings)
    return write_slices(wave, rate, ranges, out_dir, source.stem, subtype=subtype)
