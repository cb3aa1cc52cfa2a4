"""Length masks and random training segments over the time axis.

Owns `sequence_mask` and the (vectorised) segment slicing the synthesizer's
training forward uses to cut a random window of the latent and its pitch.
Random start positions come from an optional `torch.Generator`, never from a
seeded global RNG.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sequence_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """lengths: [B] -> bool [B, max_length], True where the frame index < length."""
    if max_length is None:
        max_length = int(lengths.max())
    positions = torch.arange(max_length, dtype=lengths.dtype, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def _window_index(starts: Tensor, segment_size: int) -> Tensor:
    """starts: [B] int64 -> [B, segment_size] frame indices."""
    return starts.unsqueeze(1) + torch.arange(segment_size, device=starts.device)


def slice_segments(x: Tensor, starts: Tensor, segment_size: int) -> Tensor:
    """Per-batch windows of the last axis. x: [B, C, T]; starts: [B] -> [B, C, segment_size].

    Every window must lie inside [0, T).
    """
    index = _window_index(starts.to(device=x.device, dtype=torch.long), segment_size)
    if x.size(-1) < segment_size or int(index.min()) < 0 or int(index.max()) >= x.size(-1):
        raise ValueError(
            f"segment of {segment_size} frames starting at {starts.tolist()} "
            f"does not fit in {x.size(-1)} frames"
        )
    return torch.gather(x, 2, index.unsqueeze(1).expand(-1, x.size(1), -1))


def slice_pitch_segments(pitch: Tensor, starts: Tensor, segment_size: int) -> Tensor:
    """pitch: [B, T]; starts: [B] -> [B, segment_size]."""
    return slice_segments(pitch.unsqueeze(1), starts, segment_size).squeeze(1)


def random_segment_starts(
    lengths: Tensor, segment_size: int, generator: torch.Generator | None = None
) -> Tensor:
    """Uniform random window starts in [0, length - segment_size]: [B] int64.

    Draws one uniform number per item (the original's `torch.rand([B])`), on the
    generator's device, then truncates `u * (length - segment_size + 1)`.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    uniform = torch.rand([lengths.size(0)], generator=generator, device=device)
    highest = (lengths - segment_size + 1).to(uniform.device)
    return (uniform * highest).to(dtype=torch.long).clamp_min(0).to(lengths.device)


def rand_slice_segments(
    x: Tensor,
    lengths: Tensor | None,
    segment_size: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Random window of each item. x: [B, C, T]; lengths: [B] frames (None = T)
    -> (x window [B, C, segment_size], starts [B])."""
    if lengths is None:
        lengths = torch.full((x.size(0),), x.size(2), device=x.device)
    starts = random_segment_starts(lengths, segment_size, generator)
    return slice_segments(x, starts, segment_size), starts


def rand_slice_segments_with_pitch(
    x: Tensor,
    pitch: Tensor,
    lengths: Tensor | None,
    segment_size: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The same random window of x [B, C, T] and pitch [B, T]
    -> (x window [B, C, S], pitch window [B, S], starts [B])."""
    x_slice, starts = rand_slice_segments(x, lengths, segment_size, generator)
    return x_slice, slice_pitch_segments(pitch, starts, segment_size), starts
