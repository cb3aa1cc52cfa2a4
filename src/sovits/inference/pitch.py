"""Conversion stage 3: pitch.

`PitchStage` builds the f0 extractors a model's conversions ask for (once each), reads
an exported f0 curve (--f0-file) and turns a wave's pitch into the model's per-frame
inputs: f0 shifted by the transpose and the voiced mask (`PitchFrames`). The offline
converter asks for the frames of each padded clip; the streaming converter extracts
over the new audio plus a little left context and keeps the frames it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sovits.features.pitch.base import PitchExtractor, PitchTrack
from sovits.features.pitch.export import F0Curve
from sovits.inference.options import ConvertOptions

__all__ = ["THRESHOLD_METHODS", "PitchFrames", "PitchStage", "shifted_frames"]

THRESHOLD_METHODS = ("crepe", "rmvpe", "fcpe")
"""f0 methods that take a voicing threshold (-ft) and a device."""


@dataclass(frozen=True)
class PitchFrames:
    """The synthesizer's pitch inputs for T frames.

    f0: float32 [1, T] Hz after the transpose (unvoiced frames interpolated);
    uv: float32 [1, T], 1 where voiced.
    """

    f0: torch.Tensor
    uv: torch.Tensor


def shifted_frames(
    f0_hz: np.ndarray, voiced: np.ndarray, transpose: float, device: torch.device
) -> PitchFrames:
    """`PitchFrames` of a track's f0 [T] (Hz) and voiced mask [T], shifted by `transpose`
    semitones."""
    from sovits.dsp.f0 import shift_f0

    shifted = np.asarray(shift_f0(np.asarray(f0_hz, np.float32), transpose))
    f0 = torch.from_numpy(shifted.astype(np.float32))[None].to(device)
    uv = torch.from_numpy(np.asarray(voiced).astype(np.float32))[None].to(device)
    return PitchFrames(f0, uv)


class PitchStage:
    """f0 for one model: its rate, hop and device."""

    def __init__(self, *, sample_rate: int, hop_length: int, device: torch.device):
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.device = device
        self._extractors: dict[tuple[Any, ...], PitchExtractor] = {}

    def extractor(
        self, method: str, threshold: float = 0.05, **settings: Any
    ) -> PitchExtractor:
        """The extractor of `method`, built on first use and kept; `settings` are further
        constructor options (the dspitch_* options for dspitch)."""
        key = (
            method,
            threshold if method in THRESHOLD_METHODS or settings else 0.0,
            tuple(sorted(settings.items())),
        )
        if key not in self._extractors:
            from sovits.features.pitch.registry import create_pitch_extractor

            if method in THRESHOLD_METHODS:
                extractor = create_pitch_extractor(
                    method, device=self.device, threshold=threshold
                )
            elif settings:
                extractor = create_pitch_extractor(
                    method, device=str(self.device), threshold=threshold, **settings
                )
            else:
                extractor = create_pitch_extractor(method)
            self._extractors[key] = extractor
        return self._extractors[key]

    def extractor_for(self, options: ConvertOptions) -> PitchExtractor:
        """The extractor `options` ask for: f0_method with its threshold and, for
        dspitch, the dspitch_* options."""
        settings: dict[str, Any] = {}
        if options.f0_method == "dspitch":
            settings = {
                "folder": options.dspitch_folder,
                "steps": options.dspitch_steps,
                "expressiveness": options.dspitch_expressiveness,
                "speaker": options.dspitch_speaker,
                "vowel": options.dspitch_vowel,
                "language": options.dspitch_language,
                "blend": options.dspitch_blend,
                "blend_ratio": options.dspitch_blend_ratio,
                "blend_source": options.dspitch_blend_source,
            }
        return self.extractor(options.f0_method, options.f0_filter_threshold, **settings)

    @staticmethod
    def load_curve(options: ConvertOptions) -> F0Curve | None:
        """The exported f0 curve of --f0-file, or None without one."""
        if options.f0_file is None:
            return None
        from sovits.features.pitch.export import load_f0_curve

        return load_f0_curve(options.f0_file)

    def curve_track(self, curve: F0Curve, offset: int, n_frames: int) -> PitchTrack:
        """Frames of the f0 curve starting `offset` samples into the input (which may be
        negative inside the padding): unvoiced points are filled by interpolation
        between the voiced ones, edges held, as extractors return them."""
        rate, hop = self.sample_rate, self.hop_length
        times = curve.times - offset / rate
        voicing = F0Curve(times, curve.f0, curve.voiced).to_track(rate, hop, n_frames)
        voiced = curve.voiced
        if not voiced.any():
            return PitchTrack(np.zeros(n_frames, np.float32), voicing.voiced, rate, hop)
        filled = F0Curve(times[voiced], curve.f0[voiced], voiced[voiced]).to_track(
            rate, hop, n_frames
        )
        return PitchTrack(filled.f0, voicing.voiced, rate, hop)

    def track(
        self,
        wave: np.ndarray,
        offset: int,
        n_frames: int,
        *,
        extractor: PitchExtractor | None,
        curve: F0Curve | None,
    ) -> PitchTrack:
        """Pitch of `wave` (float32 [N], model rate), which starts `offset` samples into
        the input: from the curve when there is one, else from `extractor`."""
        if curve is not None:
            return self.curve_track(curve, offset, n_frames)
        assert extractor is not None
        return extractor.extract(wave, self.sample_rate, self.hop_length, n_frames=n_frames)

    def frames(self, track: PitchTrack, transpose: float) -> PitchFrames:
        """The synthesizer's inputs of `track`, shifted by `transpose` semitones."""
        return shifted_frames(track.f0, track.voiced, transpose, self.device)
