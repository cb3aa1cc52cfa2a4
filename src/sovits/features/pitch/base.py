"""The pitch-extractor protocol and its result type, shared by every f0 method.

A PitchExtractor turns a mono wave into a PitchTrack: one f0 value per hop of the input,
with unvoiced frames already filled by interpolation (as so-vits-svc's predictors return
them) and a separate voiced mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from sovits.dsp.f0 import post_process_f0
from sovits.errors import InputError


@dataclass(frozen=True)
class PitchTrack:
    """Frame-wise pitch of one mono signal.

    f0: float32 [T], Hz. Unvoiced frames hold values interpolated from the voiced
        neighbours (edges hold the first/last voiced value); all zeros when nothing is
        voiced.
    voiced: bool [T], True where the extractor found a pitch.
    sample_rate: rate of the wave the track was computed from, Hz.
    hop_length: samples between frames at `sample_rate`.
    """

    f0: np.ndarray
    voiced: np.ndarray
    sample_rate: int
    hop_length: int

    def __post_init__(self) -> None:
        if self.f0.ndim != 1 or self.voiced.shape != self.f0.shape:
            raise ValueError(
                f"f0 and voiced must be 1-D of equal length, got {self.f0.shape} and "
                f"{self.voiced.shape}"
            )

    def __len__(self) -> int:
        return int(self.f0.shape[0])

    @property
    def times(self) -> np.ndarray:
        """Start time of every frame in seconds, float64 [T]."""
        return np.arange(len(self), dtype=np.float64) * self.hop_length / self.sample_rate


@runtime_checkable
class PitchExtractor(Protocol):
    """Anything that estimates f0 from a mono wave.

    `extract` returns `n_frames` frames (default `len(wave) // hop_length`, the frame
    count so-vits-svc uses for its features).
    """

    name: str

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch of `wave` (mono float32 [N] at `sample_rate`) every `hop_length` samples."""
        ...


def check_extract_arguments(
    wave: np.ndarray, sample_rate: int, hop_length: int, n_frames: int | None
) -> tuple[np.ndarray, int]:
    """Validate the common `extract` arguments.

    Returns the wave as contiguous float32 [N] and the frame count to produce
    (`len(wave) // hop_length` unless `n_frames` is given). Raises InputError.
    """
    array = np.asarray(wave)
    if array.ndim != 1:
        raise InputError(
            f"pitch extraction needs a mono wave of shape [samples], got shape {array.shape}",
            hint="mix the channels down first",
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"pitch extraction needs a floating-point wave in [-1, 1], got dtype {array.dtype}"
        )
    if sample_rate <= 0 or hop_length <= 0:
        raise InputError(
            f"sample_rate and hop_length must be positive, got {sample_rate} and {hop_length}"
        )
    frames = array.shape[0] // hop_length if n_frames is None else n_frames
    if frames <= 0:
        raise InputError(
            f"the wave is too short for one frame: {array.shape[0]} samples, hop {hop_length}"
        )
    return np.ascontiguousarray(array, dtype=np.float32), int(frames)


def track_from_raw_f0(
    raw_f0: np.ndarray, n_frames: int, sample_rate: int, hop_length: int
) -> PitchTrack:
    """Turn a network's raw f0 [T'] (Hz, 0 = unvoiced) into a PitchTrack of `n_frames`.

    This is the post-processing of so-vits-svc's RMVPE and FCPE predictors
    (`sovits.dsp.f0.post_process_f0`): nearest resize to `n_frames`, voiced = f0 > 0,
    linear interpolation over the unvoiced frames with the edges held; all zeros when
    nothing is voiced.
    """
    f0, voiced = post_process_f0(
        raw_f0, n_frames, hop_length=hop_length, sampling_rate=sample_rate
    )
    return PitchTrack(
        np.asarray(f0, dtype=np.float32), np.asarray(voiced) > 0, sample_rate, hop_length
    )
