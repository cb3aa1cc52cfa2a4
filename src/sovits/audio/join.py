"""Joining converted chunks with linear crossfades.

Conversion can split a long sound segment into chunks that overlap by `overlap`
samples (so-vits-svc's `-cl` clip length with `-lg` linear_gradient), convert each,
and join them here. Inside each overlap a linear crossfade of `int(overlap * retain)`
samples (`-lgr` linear_gradient_retain) replaces the end of the previous chunk with the
start of the next; the samples of the overlap before the fade come from the previous
chunk and those after it from the next one. This is so-vits-svc's
`Svc.slice_inference` join: weights `np.linspace(0, 1, fade)`, computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sovits.errors import InputError

__all__ = ["crossfade_join"]


def crossfade_join(
    chunks: Sequence[np.ndarray], overlap: int, *, retain: float = 1.0
) -> np.ndarray:
    """Join 1-D chunks where each one after the first repeats the previous one's last
    `overlap` samples.

    retain: fraction (0, 1] of the overlap that is cross-faded; the fade sits in the
        overlap with (overlap - fade) // 2 samples of the previous chunk before it.
    Returns float64 [sum(len(chunk)) - overlap * (len(chunks) - 1)]; an empty array for
    no chunks. Raises InputError for a negative overlap, a retain outside (0, 1], a
    chunk that is not 1-D, or (with two chunks or more) a chunk shorter than the overlap.
    """
    if overlap < 0:
        raise InputError(f"overlap must be zero or positive, got {overlap}")
    if not 0.0 < retain <= 1.0:
        raise InputError(f"retain must be in (0, 1], got {retain}")
    arrays = [np.asarray(chunk) for chunk in chunks]
    for index, array in enumerate(arrays):
        if array.ndim != 1:
            raise InputError(f"chunk {index} must be 1-D, got shape {array.shape}")
        if len(arrays) > 1 and array.shape[0] < overlap:
            raise InputError(
                f"chunk {index} has {array.shape[0]} samples, fewer than the overlap {overlap}"
            )
    if not arrays:
        return np.zeros(0, dtype=np.float64)
    if overlap == 0 or len(arrays) == 1:
        return np.concatenate(arrays).astype(np.float64, copy=False)
    fade = int(overlap * retain)
    before = (overlap - fade) // 2  # overlap samples kept from what is already joined
    after = overlap - fade - before  # overlap samples taken from the next chunk only
    weights = np.linspace(0.0, 1.0, fade)
    total = sum(array.shape[0] for array in arrays) - overlap * (len(arrays) - 1)
    output = np.empty(total, dtype=np.float64)
    end = arrays[0].shape[0]
    output[:end] = arrays[0]
    for chunk in arrays[1:]:
        cut = end - fade - after  # the fade starts here in the joined output
        incoming = chunk[before : before + fade].astype(np.float64)
        output[cut : cut + fade] = output[cut : cut + fade] * (1.0 - weights) + incoming * weights
        rest = chunk.shape[0] - before - fade
        output[cut + fade : cut + fade + rest] = chunk[before + fade :]
        end = cut + fade + rest
    return output
