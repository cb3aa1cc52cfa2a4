"""The typed batch that flows from the dataset to the training step."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """One padded training batch (the original TextAudioCollate's eight tensors).

    Shapes: content [B, ssl_dim, T] (units already expanded to the F0 frame rate);
    f0 [B, T] Hz; uv [B, T] (1 voiced, 0 unvoiced); spec [B, n_fft//2+1, T] linear
    magnitude; wave [B, 1, T * hop] in [-1, 1]; speaker [B] int64; lengths [B] int64
    (valid frames per item; content, f0 and spec share the frame axis); volume [B, T]
    or None when the model has no volume embedding.
    """

    content: Tensor
    f0: Tensor
    uv: Tensor
    spec: Tensor
    wave: Tensor
    speaker: Tensor
    lengths: Tensor
    volume: Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor moved to `device`."""
        moved = {
            field.name: (value.to(device) if isinstance(value, Tensor) else value)
            for field in fields(self)
            for value in [getattr(self, field.name)]
        }
        return Batch(**moved)
