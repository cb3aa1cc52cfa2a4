"""Conversion stage 1: input preparation and the slicing plan.

The offline converter turns the input into one mono float32 wave at the model's rate
(`mono_wave`), cuts it at silences (`sovits.audio.slicer.segments`, threshold -sd) and
splits long sound segments into overlapping clips (`slicing_plan`). Each planned
segment says where it lies in the input, whether it is silent, and the clips it is
converted in. `center_fit` puts a converted clip back into its original length.
The streaming converter prepares its blocks with `mono_wave` too; it has no slices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from sovits.audio.slicer import SVC_INFERENCE_SLICER, AudioSegment, segments
from sovits.audio.song import Samples
from sovits.errors import InputError
from sovits.inference.options import ConvertOptions

__all__ = [
    "AUTO_CROSSFADE_SECONDS",
    "PlannedSegment",
    "center_fit",
    "clip_ranges",
    "mono_wave",
    "slicing_plan",
]

logger = logging.getLogger(__name__)

AUTO_CROSSFADE_SECONDS = 1.0
"""Crossfade of the clips that `max_segment_seconds` forces."""


@dataclass(frozen=True)
class PlannedSegment:
    """One segment of the slicer and the clips it is converted in.

    segment: where it lies in the input (samples at the model rate) and whether it is
    silent. ranges: [start, end) of each clip within the segment (the first starts at
    0; later ones start `overlap` samples before the previous one ends). overlap: the
    clips' overlap in samples, joined by a crossfade.
    """

    segment: AudioSegment
    ranges: list[tuple[int, int]]
    overlap: int


def mono_wave(wave: np.ndarray) -> np.ndarray:
    """`wave` (float [N] or [C, N]) as contiguous float32 mono [N], channels averaged.

    Raises InputError for integer samples, other shapes, no samples, NaN or infinity.
    """
    array = np.asarray(wave)
    if array.ndim == 2:
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"expected float samples, got dtype {array.dtype}")
        array = array.mean(axis=0)
    if array.ndim != 1:
        raise InputError(f"expected a wave of shape [N] or [C, N], got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"expected float samples in [-1, 1], got dtype {array.dtype}",
            hint="convert integer PCM to float (int16: divide by 32768)",
        )
    if array.shape[0] == 0:
        raise InputError("the audio holds no samples")
    if not np.all(np.isfinite(array)):
        raise InputError("the audio contains NaN or infinite samples")
    return np.ascontiguousarray(array, dtype=np.float32)


def center_fit(audio: np.ndarray, length: int) -> np.ndarray:
    """`audio` zero-padded evenly (left gets the smaller half) or cut to `length`."""
    if audio.shape[0] >= length:
        return audio[:length]
    missing = length - audio.shape[0]
    left = missing // 2
    return np.pad(audio, (left, missing - left))


def clip_ranges(length: int, clip: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) ranges of a segment of `length` samples cut every `clip` samples;
    each range after the first starts `overlap` samples early (the original's
    split_list_by_n with lg_size)."""
    if clip <= 0 or length <= clip:
        return [(0, length)]
    return [
        (start - overlap if start else 0, min(length, start + clip))
        for start in range(0, length, clip)
    ]


def segment_clips(
    length: int, rate: int, options: ConvertOptions
) -> tuple[list[tuple[int, int]], int]:
    """The clips a sound segment of `length` samples is converted in, as (start, end)
    ranges within it, and their overlap in samples (at `rate` Hz)."""
    clip, overlap = int(options.clip_seconds * rate), int(options.crossfade_seconds * rate)
    limit = options.max_segment_seconds
    if clip == 0 and limit is not None and length > int(limit * rate):
        clip, overlap = int(limit * rate), int(AUTO_CROSSFADE_SECONDS * rate)
        logger.info("a %.1f s sound slice is converted in %.0f s clips", length / rate, limit)
    return clip_ranges(length, clip, overlap), overlap


def slicing_plan(samples: Samples, rate: int, options: ConvertOptions) -> list[PlannedSegment]:
    """The slicer's segments of `samples` (mono float32 at `rate` Hz) with their clips."""
    settings = replace(SVC_INFERENCE_SLICER, threshold_db=options.slice_db)
    plan = []
    for segment in segments(samples, rate, settings):
        ranges, overlap = segment_clips(len(segment), rate, options)
        plan.append(PlannedSegment(segment, ranges, overlap))
    return plan
