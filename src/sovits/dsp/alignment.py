"""Aligning content units to f0 frames.

Speech encoders give units at their own frame rate (e.g. 50 Hz at 16 kHz); the
synthesizer works at the f0 frame rate (hop 512 at 44.1 kHz). `repeat_expand_2d`
stretches or squeezes the unit sequence along time, exactly as so-vits-svc 4.1 did.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import InputError

__all__ = ["AlignMode", "repeat_expand_2d"]

AlignMode = Literal["left", "nearest", "linear"]
"""`left`: the original's repeat loop; `nearest` / `linear`: F.interpolate."""


def _left_source_indices(source_len: int, target_len: int) -> Tensor:
    """Source frame [target_len] int64 that the original's "left" loop picks per target frame.

    The loop walks target frames i = 0, 1, ... keeping a source position p, and moves
    p on by one (never more) whenever i >= t[p + 1], with thresholds
    t[k] = k * target_len / source_len in float32. Writing c(i) for the number of
    thresholds t[1..] that are <= i, the walk is p(i) = min(p(i - 1) + 1, c(i)), p(0) = 0,
    whose closed form is p(i) = i + min over j <= i of (c(j) - j).
    """
    thresholds = torch.arange(1, source_len + 1) * target_len / source_len
    frames = torch.arange(target_len)
    crossed = torch.searchsorted(thresholds, frames.to(thresholds.dtype), right=True)
    return frames + torch.cummin(crossed - frames, dim=0).values


def repeat_expand_2d(content: Tensor, target_len: int, mode: AlignMode = "left") -> Tensor:
    """Resize units [D, T] along time to [D, target_len].

    * "left": each target frame i copies one source frame; the source frame advances by
      at most one per target frame, once i reaches k * target_len / T. Upsampling
      repeats frames (earlier frames first); downsampling keeps the first target_len
      frames. Vectorised, but frame for frame what the original's loop gives.
    * "nearest" / "linear": `F.interpolate` (align_corners=False), as the templates use.

    The result keeps `content`'s dtype and device (the original's "left" mode always
    returned float32).
    """
    if mode not in get_args(AlignMode):
        raise InputError(
            f"unknown unit interpolation mode {mode!r}",
            hint="use one of " + ", ".join(get_args(AlignMode)),
        )
    if content.dim() != 2:
        raise InputError(f"expected units [D, T], got shape {list(content.shape)}")
    source_len = content.shape[-1]
    if source_len < 1 or target_len < 1:
        raise InputError(f"cannot resize {source_len} frames to {target_len} frames")
    if mode == "left":
        indices = _left_source_indices(source_len, target_len).to(content.device)
        return content.index_select(1, indices)
    return F.interpolate(content[None], size=target_len, mode=mode)[0]
