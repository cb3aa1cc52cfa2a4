"""Conversion stage 6: post-processing and joining.

Offline: the loudness-envelope adjustment (-lea) of a converted clip against its
input, cutting the padding off and centring the clip in its original length, and the
linear crossfade of forced clips (`sovits.audio.join.crossfade_join`).

Streaming: SOLA (synchronous overlap-add). Each block's new audio is rendered a little
longer than the block; `sola_offset` finds where its start best continues the tail
kept from the previous block (normalised cross-correlation over a short search range),
and `sola_join` crossfades the two there with raised-cosine weights,
so block joins have no clicks even though every block is rendered from its own window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sovits.inference.options import ConvertOptions
from sovits.inference.plan import center_fit

__all__ = [
    "adjust_loudness",
    "join_clips",
    "sola_join",
    "sola_offset",
    "trim_padding",
]


def adjust_loudness(
    source: np.ndarray, audio: np.ndarray, rate: int, options: ConvertOptions
) -> np.ndarray:
    """`audio` with its loudness envelope blended toward `source`'s (-lea); `audio`
    itself at the default 1.0."""
    if options.loudness_envelope_adjustment == 1.0:
        return audio
    from sovits.inference.loudness import match_loudness_envelope

    return match_loudness_envelope(source, audio, rate, options.loudness_envelope_adjustment)


def trim_padding(audio: np.ndarray, pad: int, length: int) -> np.ndarray:
    """A padded clip's audio without `pad` samples on each side, fit to `length`."""
    return center_fit(audio[pad : audio.shape[0] - pad], length)


def join_clips(pieces: Sequence[np.ndarray], overlap: int, options: ConvertOptions) -> np.ndarray:
    """A segment's converted clips joined with the -lg / -lgr crossfade."""
    if len(pieces) == 1:
        return pieces[0]
    from sovits.audio.join import crossfade_join

    return crossfade_join(pieces, overlap, retain=options.crossfade_retain)


def sola_offset(previous_tail: np.ndarray, rendered: np.ndarray, search: int) -> int:
    """Shift in [0, search] at which `rendered` best continues `previous_tail`.

    previous_tail: float32 [F], the end of the last block's audio kept for the join;
    rendered: float32 [>= F + search], the new audio. The shift maximises the
    normalised cross-correlation of rendered[k : k + F] with the tail. 0 when the
    tail is silent.
    """
    fade = previous_tail.shape[0]
    if search <= 0 or fade == 0 or not np.any(previous_tail):
        return 0
    window = rendered[: fade + search].astype(np.float64)
    tail = previous_tail.astype(np.float64)
    correlation = np.correlate(window, tail, mode="valid")  # [search + 1]
    energy = np.convolve(window**2, np.ones(fade), mode="valid")
    score = correlation / np.sqrt(energy + 1e-8)
    return int(np.argmax(score))


def sola_join(previous_tail: np.ndarray, rendered: np.ndarray, fade_in: np.ndarray) -> np.ndarray:
    """`rendered` (already shifted by `sola_offset`) with its first len(fade_in)
    samples crossfaded from `previous_tail`: weights fade_in [F] rising 0 -> 1."""
    out = rendered.copy()
    fade = fade_in.shape[0]
    if fade:
        out[:fade] = previous_tail * (1.0 - fade_in) + rendered[:fade] * fade_in
    return out
