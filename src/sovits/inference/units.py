"""Conversion stage 2: content units.

`UnitStage` resamples a wave at the model's rate to the content encoder's 16 kHz, runs
the encoder and stretches its units (one per 320 samples at 16 kHz) to the model's
frames with the config's `unit_interpolate_mode`. The offline converter calls it per
padded clip; the streaming converter per block window (left context + new audio).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sovits.dsp.alignment import AlignMode
from sovits.features.content.base import ContentEncoder

__all__ = ["UnitStage"]


class UnitStage:
    """Content units of waves at `sample_rate` Hz for a model with `interpolate_mode`.

    encoder: the loaded content encoder (shared with the converter, so wrapping its
    `encode` is seen here); device: where the units go.
    """

    def __init__(
        self,
        encoder: ContentEncoder,
        *,
        sample_rate: int,
        interpolate_mode: AlignMode,
        device: torch.device,
    ):
        self.encoder = encoder
        self.sample_rate = sample_rate
        self.interpolate_mode = interpolate_mode
        self.device = device

    def encode(self, wave: np.ndarray, n_frames: int) -> torch.Tensor:
        """Units of `wave` (float32 [N] at the model rate) stretched to the frames:
        float32 [1, C, n_frames] on the stage's device."""
        from sovits.audio.resample import resample
        from sovits.dsp.alignment import repeat_expand_2d
        from sovits.features.content.base import SAMPLE_RATE as ENCODER_RATE

        wave16k = resample(wave, self.sample_rate, ENCODER_RATE)
        units = self.encoder.encode(torch.from_numpy(wave16k).to(self.device))
        return repeat_expand_2d(units.T.to(torch.float32), n_frames, self.interpolate_mode)[None]

    def long_enough(self, wave: np.ndarray) -> bool:
        """Whether `wave` (model rate) gives at least one encoder frame."""
        from sovits.features.content.base import HOP_SIZE as ENCODER_HOP
        from sovits.features.content.base import SAMPLE_RATE as ENCODER_RATE

        # the length `resample` gives
        return math.ceil(wave.shape[0] * (float(ENCODER_RATE) / self.sample_rate)) >= ENCODER_HOP
