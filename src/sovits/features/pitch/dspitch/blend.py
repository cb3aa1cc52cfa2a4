"""Blends of the DiffSinger curve with the source singer's own f0 (issue 19, item 3).

The DiffSinger curve is drawn over SOME's notes, so it loses what the notes do not
carry: the singer's own bends, scoops and timing inside a note. Users of DiffSinger
pitch ask for two ways back, and both are built:

* `"confident"`: keep the source f0 wherever the source extractor voices a frame (for
  crepe / rmvpe / fcpe that is where its confidence passes `threshold`) and use the
  DiffSinger curve elsewhere: DiffSinger fills the breathy, noisy or mis-tracked
  stretches, the singer's pitch survives where it was measured;
* `"mix"`: on frames the source voices, a weighted mean of the two curves in MIDI
  (log frequency), `ratio` being the source's share; elsewhere the DiffSinger curve.
  `ratio` 0 is the DiffSinger curve, 1 equals "confident".

`"off"` (the default) is the fork's behaviour: the DiffSinger curve alone.

The switch between curves is not a step: the source's weight is the voiced mask
averaged over a window of +-BLEND_RAMP_SECONDS, so a change of curve glides over about
60 ms instead of clicking. Voicing is the union of both tracks' voicing; the unvoiced
frames are re-filled by linear interpolation, as every pitch track is.
"""

from __future__ import annotations

import numpy as np

from sovits.errors import InputError
from sovits.features.pitch.base import PitchTrack
from sovits.features.pitch.dspitch.notes import fill_unvoiced, hz_to_midi, midi_to_hz

__all__ = ["BLEND_MODES", "BLEND_RAMP_SECONDS", "blend_tracks", "source_weight"]

BLEND_MODES = ("off", "confident", "mix")
"""How the DiffSinger curve is combined with the source f0 (see the module doc)."""
BLEND_RAMP_SECONDS = 0.03
"""Half-width of the window that smooths the source's weight, seconds."""


def source_weight(voiced: np.ndarray, ramp_frames: int) -> np.ndarray:
    """The source's weight per frame, float64 [T] in [0, 1]: the voiced mask averaged over
    +-ramp_frames frames (edges held), so a switch of curve is a short linear glide."""
    mask = np.asarray(voiced, dtype=np.float64).reshape(-1)
    if ramp_frames <= 0 or mask.size == 0:
        return mask
    width = 2 * ramp_frames + 1
    padded = np.pad(mask, ramp_frames, mode="edge")
    return np.convolve(padded, np.full(width, 1.0 / width), mode="valid")


def blend_tracks(
    diffsinger: PitchTrack, source: PitchTrack, mode: str, ratio: float = 0.5
) -> PitchTrack:
    """Combine the DiffSinger track with the source track of the same grid (see the module
    doc). Raises InputError for an unknown mode, a ratio outside [0, 1] or tracks on
    different grids."""
    if mode not in BLEND_MODES:
        raise InputError(f"unknown dspitch blend {mode!r}; use one of {', '.join(BLEND_MODES)}")
    if not 0.0 <= ratio <= 1.0:
        raise InputError(f"the dspitch blend ratio must be in [0, 1], got {ratio}")
    if mode == "off":
        return diffsinger
    if (len(diffsinger), diffsinger.sample_rate, diffsinger.hop_length) != (
        len(source), source.sample_rate, source.hop_length
    ):
        raise InputError("the DiffSinger and source pitch tracks are on different frame grids")
    share = 1.0 if mode == "confident" else ratio
    ramp = round(BLEND_RAMP_SECONDS * source.sample_rate / source.hop_length)
    weight = share * source_weight(source.voiced, ramp)
    ds_f0 = np.asarray(diffsinger.f0, dtype=np.float64)
    src_f0 = np.asarray(source.f0, dtype=np.float64)
    # A track with nothing voiced is all zeros: the other one then stands alone.
    weight = np.where(src_f0 > 0, weight, 0.0)
    weight = np.where(ds_f0 > 0, weight, 1.0)
    both = (ds_f0 > 0) & (src_f0 > 0)
    midi = np.zeros_like(ds_f0)
    midi[both] = (1.0 - weight[both]) * hz_to_midi(ds_f0[both]) + weight[both] * hz_to_midi(
        src_f0[both]
    )
    f0 = np.where(both, midi_to_hz(midi), np.where(ds_f0 > 0, ds_f0, src_f0))
    voiced = np.asarray(diffsinger.voiced, bool) | np.asarray(source.voiced, bool)
    return PitchTrack(
        fill_unvoiced(f0.astype(np.float32), voiced), voiced, source.sample_rate,
        source.hop_length,
    )
