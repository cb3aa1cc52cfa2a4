"""Pure note and frame arithmetic of the DiffSinger pitch source (no onnxruntime).

SOME gives notes in seconds; the DiffSinger pitch model works on its own frame grid
(`hop_size / sample_rate` of its dsconfig) with head and tail padding; the caller wants
f0 on the SVC model's grid. These functions turn one into the other:

* `seconds_to_frames`: note durations (s) -> frames by cumulative rounding, so the sum
  is preserved (as OpenUtau and DiffSinger do);
* `fill_rests`: rest notes take the MIDI of the neighbouring sung notes (OpenUtau's
  rule: leading rests the first sung note, trailing rests the last, inner rests split
  halfway), because SOME reports MIDI 0 for rests and the model smooths across notes;
* `word_division`: the `word_div` / `word_dur` of the linguistic model's word mode;
* `speedup_for_steps`: the DDPM `speedup` of older exports for a number of steps;
* `to_target_grid`: MIDI on the padded model grid -> f0 in Hz on the target grid
  (linear interpolation in MIDI, edges held);
* `voiced_frames` / `fill_unvoiced`: note-based voicing and the linear fill of the
  unvoiced frames that every sovits pitch extractor applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sovits.errors import InputError

__all__ = [
    "FALLBACK_MIDI",
    "HEAD_FRAMES",
    "TAIL_FRAMES",
    "FramedNotes",
    "fill_rests",
    "fill_unvoiced",
    "hz_to_midi",
    "midi_to_hz",
    "seconds_to_frames",
    "speedup_for_steps",
    "to_target_grid",
    "voiced_frames",
    "word_division",
]

HEAD_FRAMES = 8
"""Frames of SP padding before the notes (OpenUtau `headFrames`)."""
TAIL_FRAMES = 8
"""Frames of SP padding after the notes (OpenUtau `tailFrames`)."""
FALLBACK_MIDI = 60.0
"""MIDI of rests when no note is sung at all (OpenUtau, DiffSinger)."""
_DIFFUSION_STEPS = 1000
"""Training steps of DiffSinger's DDPM; `speedup` must divide it."""


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """MIDI note numbers (any shape, float) -> Hz: 440 * 2**((m - 69) / 12), float64."""
    return np.asarray(440.0 * np.exp2((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0))


def hz_to_midi(hz: np.ndarray) -> np.ndarray:
    """Hz (> 0, any shape) -> MIDI note numbers, float64."""
    return np.asarray(69.0 + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / 440.0))


@dataclass(frozen=True)
class FramedNotes:
    """Notes on the pitch model's frame grid.

    midi: float32 [n], MIDI per note (rests hold a fill value).
    rest: bool [n], True for rest notes.
    frames: int64 [n], frames per note, all > 0.
    """

    midi: np.ndarray
    rest: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def ends(self) -> np.ndarray:
        """Frame index just after each note, int64 [n] (cumulative frames)."""
        return np.cumsum(self.frames)


def seconds_to_frames(durations: np.ndarray, frame_seconds: float) -> np.ndarray:
    """Note durations in seconds [n] -> whole frames of `frame_seconds` [n] int64.

    Rounds the cumulative end times, so the total equals round(sum / frame_seconds)
    and no note gets a negative count (a note shorter than a frame may get 0).
    Raises InputError for negative or non-finite durations.
    """
    seconds = np.asarray(durations, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(seconds)) or np.any(seconds < 0):
        raise InputError("SOME returned a negative or non-finite note duration")
    if frame_seconds <= 0:
        raise InputError(f"the frame length must be positive, got {frame_seconds}")
    ends = np.rint(np.cumsum(seconds) / frame_seconds).astype(np.int64)
    return np.diff(ends, prepend=0)


def fill_rests(midi: np.ndarray, rest: np.ndarray, frames: np.ndarray) -> FramedNotes:
    """Give rest notes the MIDI of their sung neighbours; drop notes of 0 frames.

    A leading rest group takes the first sung note's MIDI, a trailing group the last
    one's; an inner group's first half (by frames, rounded down) takes the note before,
    the second half the note after, splitting a rest note in two where the halfway
    point falls inside it. With no sung note every rest gets FALLBACK_MIDI. Notes of
    equal rest flag and MIDI are not merged, so sung notes keep their boundaries.
    """
    midi = np.asarray(midi, dtype=np.float32).reshape(-1)
    rest = np.asarray(rest, dtype=bool).reshape(-1)
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    if not midi.shape == rest.shape == frames.shape:
        raise InputError(
            f"note arrays differ in length: midi {midi.shape}, rest {rest.shape}, "
            f"frames {frames.shape}"
        )
    keep = frames > 0
    midi, rest, frames = midi[keep], rest[keep], frames[keep]
    sung = np.flatnonzero(~rest)
    if sung.size == 0:
        return FramedNotes(np.full(midi.shape, FALLBACK_MIDI, np.float32), rest, frames)
    out_midi: list[float] = []
    out_rest: list[bool] = []
    out_frames: list[int] = []
    index = 0
    count = len(frames)
    while index < count:
        if not rest[index]:
            out_midi.append(float(midi[index]))
            out_rest.append(False)
            out_frames.append(int(frames[index]))
            index += 1
            continue
        end = index
        while end < count and rest[end]:
            end += 1
        group = frames[index:end]
        if index == 0 or end == count:  # leading or trailing group
            value = float(midi[sung[0]] if index == 0 else midi[sung[-1]])
            for size in group:
                out_midi.append(value)
                out_rest.append(True)
                out_frames.append(int(size))
        else:
            before, after = float(midi[index - 1]), float(midi[end])
            half = int(group.sum()) // 2
            position = 0
            for size in group:
                size = int(size)
                left = min(max(half - position, 0), size)
                for value, part in ((before, left), (after, size - left)):
                    if part > 0:
                        out_midi.append(value)
                        out_rest.append(True)
                        out_frames.append(part)
                position += size
        index = end
    return FramedNotes(
        np.asarray(out_midi, np.float32),
        np.asarray(out_rest, bool),
        np.asarray(out_frames, np.int64),
    )


def word_division(phoneme_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`word_div` and `word_dur` (int64) for tokens SP + one vowel per note + SP.

    Every token starts a word except the tail SP, which joins the last word (OpenUtau's
    `PaddedWordDivAndDur` with SP counted as a vowel). Invariants: sum(word_div) equals
    the token count and sum(word_dur) equals sum(phoneme_frames). Needs >= 2 tokens.
    """
    durations = np.asarray(phoneme_frames, dtype=np.int64).reshape(-1)
    tokens = durations.shape[0]
    if tokens < 2:
        raise InputError(f"word division needs at least 2 tokens, got {tokens}")
    division = np.ones(tokens - 1, dtype=np.int64)
    division[-1] = 2
    starts = np.concatenate(([0], np.cumsum(division)[:-1]))
    return division, np.add.reduceat(durations, starts).astype(np.int64)


def speedup_for_steps(steps: int) -> int:
    """DDPM `speedup` for about `steps` sampling steps: the largest divisor of 1000 that is
    at most max(1, 1000 // steps) (OpenUtau's rule). 10 -> 100, 20 -> 50, 3 -> 250."""
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}")
    limit = max(1, _DIFFUSION_STEPS // steps)
    return max(d for d in range(1, limit + 1) if _DIFFUSION_STEPS % d == 0)


def to_target_grid(
    model_midi: np.ndarray,
    *,
    model_frame_seconds: float,
    head_frames: int,
    n_frames: int,
    frame_seconds: float,
) -> np.ndarray:
    """MIDI on the padded model grid [T'] -> f0 in Hz on the target grid, float32 [n_frames].

    Model frame k is at time (k - head_frames) * model_frame_seconds; target frame j at
    j * frame_seconds. Interpolates linearly in MIDI (edges held), then converts to Hz.
    """
    midi = np.asarray(model_midi, dtype=np.float64).reshape(-1)
    model_times = (np.arange(midi.shape[0]) - head_frames) * model_frame_seconds
    times = np.arange(n_frames) * frame_seconds
    return midi_to_hz(np.interp(times, model_times, midi)).astype(np.float32)


def voiced_frames(
    rest: np.ndarray, ends: np.ndarray, *, model_frame_seconds: float, n_frames: int,
    frame_seconds: float,
) -> np.ndarray:
    """Voicing on the target grid, bool [n_frames]: True where the frame's time falls in a
    sung note. `rest` [n] and `ends` [n] (end frame of each note on the unpadded model
    grid) describe the notes; times past the last note take the last note's flag."""
    rest = np.asarray(rest, dtype=bool).reshape(-1)
    if rest.size == 0:
        return np.zeros(n_frames, dtype=bool)
    end_times = np.asarray(ends, dtype=np.float64) * model_frame_seconds
    times = np.arange(n_frames) * frame_seconds
    note = np.minimum(np.searchsorted(end_times, times, side="right"), rest.size - 1)
    return ~rest[note]


def fill_unvoiced(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """f0 [T] Hz with the unvoiced frames replaced by linear interpolation (over frame
    indices) between the voiced ones, edges held; all zeros when nothing is voiced."""
    values = np.asarray(f0, dtype=np.float32).reshape(-1)
    mask = np.asarray(voiced, dtype=bool).reshape(-1)
    if not mask.any():
        return np.zeros_like(values)
    index = np.arange(values.shape[0])
    filled = np.interp(index, index[mask], values[mask].astype(np.float64))
    return filled.astype(np.float32)
