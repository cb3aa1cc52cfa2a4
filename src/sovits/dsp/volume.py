"""Frame-level volume (RMS) envelope, the `vol` input of volume-embedding models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import InputError

__all__ = ["volume_envelope"]


def volume_envelope(wave: Tensor, hop: int) -> Tensor:
    """RMS per hop of a waveform [N] or [1, N] -> [N // hop] (same dtype as `wave`).

    As so-vits-svc 4.1's `Volume_Extractor(hop).extract`: the squared signal is
    reflect-padded by (hop // 2, (hop + 1) // 2) samples, frame f averages padded
    samples [f * hop, (f + 1) * hop), and the square root is taken. Trailing samples
    that do not fill a hop are dropped from the frame count.
    """
    if hop < 1:
        raise InputError(f"hop must be a positive number of samples, got {hop}")
    if wave.dim() == 2 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.dim() != 1:
        raise InputError(f"expected a mono waveform [N] or [1, N], got shape {list(wave.shape)}")
    frames = wave.shape[-1] // hop
    if frames == 0:
        return wave.new_zeros(0)
    power = F.pad((wave**2)[None], (hop // 2, (hop + 1) // 2), mode="reflect")[0]
    # [hop, frames], laid out as F.unfold lays it out, so the mean sums in the same order.
    windows = power[: frames * hop].reshape(frames, hop).t().contiguous()
    return torch.sqrt(windows.mean(dim=0))
