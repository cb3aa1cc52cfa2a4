"""The volume feature of volume-embedding models (so-vits-svc's `Volume_Extractor`).

A thin extractor object over `sovits.dsp.volume.volume_envelope`, so the data and
inference stages hold a volume extractor next to their pitch extractor and hand it
waves in either NumPy or torch form.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from sovits.dsp.volume import volume_envelope
from sovits.errors import InputError

__all__ = ["VolumeExtractor"]


class VolumeExtractor:
    """RMS volume per hop of a mono wave, as so-vits-svc 4.1's `Volume_Extractor`.

    hop_length: samples per frame (the model's hop, 512 for 44.1 kHz models).
    """

    name = "volume"

    def __init__(self, hop_length: int = 512):
        if hop_length < 1:
            raise InputError(f"hop_length must be a positive number of samples, got {hop_length}")
        self.hop_length = hop_length

    def extract(self, wave: np.ndarray | Tensor) -> Tensor:
        """Volume of `wave` ([N] or [1, N], NumPy or torch) -> [N // hop_length].

        NumPy input is converted to a float32 tensor (the original's `torch.Tensor(...)`);
        a tensor keeps its dtype and device. Raises InputError for a wave that is not
        floating point, not mono, or contains NaN / infinity.
        """
        if isinstance(wave, np.ndarray):
            if not np.issubdtype(wave.dtype, np.floating):
                raise InputError(f"volume needs a floating-point wave, got dtype {wave.dtype}")
            tensor = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        else:
            if not wave.is_floating_point():
                raise InputError(f"volume needs a floating-point wave, got dtype {wave.dtype}")
            tensor = wave
        if not bool(torch.isfinite(tensor).all()):
            raise InputError("the wave contains NaN or infinite samples")
        return volume_envelope(tensor, self.hop_length)
