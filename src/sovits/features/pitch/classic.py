"""Signal-processing pitch extractors: Praat autocorrelation (pm), WORLD DIO and Harvest.

Each reproduces the matching so-vits-svc 4.1 predictor (PMF0Predictor, DioF0Predictor,
HarvestF0Predictor) through the same libraries: praat-parselmouth for pm and pyworld for
dio / harvest. The parameters, the f0 range (50-1100 Hz by default), the StoneMask
refinement, the padding / resizing to the wanted frame count and the interpolation of
unvoiced frames (`sovits.dsp.f0.interpolate_f0`) are the original's.

The libraries are imported when a track is extracted, so importing this module is cheap
and works without them.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

from sovits.dsp.f0 import interpolate_f0, resize_f0
from sovits.errors import InputError
from sovits.features.pitch.base import PitchTrack, check_extract_arguments

__all__ = ["DEFAULT_F0_MAX", "DEFAULT_F0_MIN", "DioExtractor", "HarvestExtractor", "PmExtractor"]

DEFAULT_F0_MIN = 50.0
"""Lowest f0 (Hz) the so-vits-svc predictors search for."""
DEFAULT_F0_MAX = 1100.0
"""Highest f0 (Hz) the so-vits-svc predictors search for."""
PM_VOICING_THRESHOLD = 0.6
"""Praat voicing threshold so-vits-svc passes to `to_pitch_ac` (Praat's default is 0.45)."""


def _check_range(f0_min: float, f0_max: float) -> None:
    if not 0 < f0_min < f0_max:
        raise InputError(f"need 0 < f0_min < f0_max, got f0_min={f0_min}, f0_max={f0_max}")


def _import_pyworld() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # pyworld imports pkg_resources, which warns about its own deprecation
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            import pyworld
    except ImportError as error:
        raise InputError(
            "the dio and harvest pitch methods need the pyworld package",
            hint="pip install pyworld",
        ) from error
    return pyworld


def _track_from_filled(
    filled: np.ndarray, vuv: np.ndarray, sample_rate: int, hop_length: int
) -> PitchTrack:
    return PitchTrack(
        np.asarray(filled, dtype=np.float32),
        np.asarray(vuv) > 0,
        sample_rate,
        hop_length,
    )


class PmExtractor:
    """Praat's autocorrelation pitch (`Sound.to_pitch_ac`), as so-vits-svc's "pm".

    Praat analyses frames every hop_length / sample_rate seconds with voicing threshold
    0.6 and the f0 range [f0_min, f0_max]. Praat's frames are centred in the signal and
    fewer than wanted, so the track is zero-padded on both sides (the extra frame on the
    left) to `n_frames`, then unvoiced frames are filled by interpolation.
    """

    name = "pm"

    def __init__(self, *, f0_min: float = DEFAULT_F0_MIN, f0_max: float = DEFAULT_F0_MAX):
        _check_range(f0_min, f0_max)
        self.f0_min = f0_min
        self.f0_max = f0_max

    def raw_f0(self, wave: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
        """Praat's f0 per analysis frame: float64 [frames] Hz, 0 where unvoiced.

        A wave shorter than Praat's analysis window (3 periods of f0_min) has no frame
        (the original stops with Praat's error there).
        """
        if len(wave) * self.f0_min < 3 * sample_rate:
            return np.zeros(0, dtype=np.float64)
        try:
            import parselmouth
        except ImportError as error:
            raise InputError(
                "the pm pitch method needs the praat-parselmouth package",
                hint="pip install praat-parselmouth",
            ) from error
        sound = parselmouth.Sound(np.asarray(wave, dtype=np.float64), sample_rate)
        pitch = sound.to_pitch_ac(
            time_step=hop_length / sample_rate,
            voicing_threshold=PM_VOICING_THRESHOLD,
            pitch_floor=self.f0_min,
            pitch_ceiling=self.f0_max,
        )
        return np.asarray(pitch.selected_array["frequency"], dtype=np.float64)

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch every `hop_length` samples of `wave` (mono float [N] at `sample_rate`)."""
        audio, frames = check_extract_arguments(wave, sample_rate, hop_length, n_frames)
        f0 = self.raw_f0(audio, sample_rate, hop_length)
        left = (frames - len(f0) + 1) // 2
        right = frames - len(f0) - left
        if left > 0 or right > 0:
            f0 = np.pad(f0, (max(left, 0), max(right, 0)))
        # The original returns Praat's longer track unchanged when it has more frames than
        # asked for (only possible with a hop close to the 3 / f0_min analysis window);
        # a PitchTrack has exactly n_frames, so the end is cut.
        f0 = f0[:frames]
        filled, vuv = interpolate_f0(f0, hop_length=hop_length, sampling_rate=sample_rate)
        return _track_from_filled(filled, vuv, sample_rate, hop_length)


class DioExtractor:
    """WORLD's DIO with StoneMask refinement, as so-vits-svc's "dio".

    DIO runs with frame period 1000 * hop_length / sample_rate ms and the f0 range
    [f0_min, f0_max]; StoneMask refines the estimates; values are rounded to 0.1 Hz
    (`np.round`, as the original's per-element `round` of numpy floats); the track is
    resized linearly to `n_frames` (`resize_f0`: a frame next to an unvoiced one
    becomes unvoiced) and unvoiced frames are filled by interpolation.
    """

    name = "dio"

    def __init__(self, *, f0_min: float = DEFAULT_F0_MIN, f0_max: float = DEFAULT_F0_MAX):
        _check_range(f0_min, f0_max)
        self.f0_min = f0_min
        self.f0_max = f0_max

    def raw_f0(self, wave: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
        """DIO + StoneMask f0 rounded to 0.1 Hz: float64 [N / hop + 1] Hz, 0 = unvoiced."""
        pyworld = _import_pyworld()
        audio = np.ascontiguousarray(wave, dtype=np.float64)
        f0, times = pyworld.dio(
            audio,
            fs=sample_rate,
            f0_floor=self.f0_min,
            f0_ceil=self.f0_max,
            frame_period=1000 * hop_length / sample_rate,
        )
        f0 = pyworld.stonemask(audio, f0, times, sample_rate)
        return np.round(f0, 1)

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch every `hop_length` samples of `wave` (mono float [N] at `sample_rate`)."""
        audio, frames = check_extract_arguments(wave, sample_rate, hop_length, n_frames)
        resized = resize_f0(self.raw_f0(audio, sample_rate, hop_length), frames)
        filled, vuv = interpolate_f0(resized, hop_length=hop_length, sampling_rate=sample_rate)
        return _track_from_filled(filled, vuv, sample_rate, hop_length)


class HarvestExtractor:
    """WORLD's Harvest with StoneMask refinement, as so-vits-svc's "harvest".

    As DioExtractor, with Harvest instead of DIO and no rounding (the original's
    `compute_f0_uv`, the path its preprocessing and inference use).
    """

    name = "harvest"

    def __init__(self, *, f0_min: float = DEFAULT_F0_MIN, f0_max: float = DEFAULT_F0_MAX):
        _check_range(f0_min, f0_max)
        self.f0_min = f0_min
        self.f0_max = f0_max

    def raw_f0(self, wave: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
        """Harvest + StoneMask f0: float64 [N / hop + 1] Hz, 0 where unvoiced."""
        pyworld = _import_pyworld()
        audio = np.ascontiguousarray(wave, dtype=np.float64)
        f0, times = pyworld.harvest(
            audio,
            fs=sample_rate,
            f0_floor=self.f0_min,
            f0_ceil=self.f0_max,
            frame_period=1000 * hop_length / sample_rate,
        )
        return np.asarray(pyworld.stonemask(audio, f0, times, sample_rate))

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch every `hop_length` samples of `wave` (mono float [N] at `sample_rate`)."""
        audio, frames = check_extract_arguments(wave, sample_rate, hop_length, n_frames)
        resized = resize_f0(self.raw_f0(audio, sample_rate, hop_length), frames)
        filled, vuv = interpolate_f0(resized, hop_length=hop_length, sampling_rate=sample_rate)
        return _track_from_filled(filled, vuv, sample_rate, hop_length)
