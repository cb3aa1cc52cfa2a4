"""Dynamic speaker mixing: so-vits-svc 4.1's `spkmix.py` track and `-usm` weights.

A track gives, for every speaker of the model, a chain of segments
`[t_begin, t_end, v_begin, v_end]`: over the fraction of the output from `t_begin` to
`t_end` (0 = start, 1 = end) the speaker's weight runs linearly from `v_begin` to
`v_end`. `frame_weights` turns a track into per-frame weights exactly as the
original's `Svc.slice_inference` does (float32, same torch operations), so the
weights are bit-identical; each synthesizer call then takes its frames with
`call_weights`.

The frame count `L` the track is spread over is not the output's frame count: it is
the original's sum over the slice plan (`mix_track_length`), which counts the padding
of every clip and one extra frame per slice.

Tracks are read from JSON or YAML (`{"0": [[0, 1, 1, 1]], ...}`) or, without running
it, from the original's `spkmix.py` (`spk_mix_map = {...}`, parsed as a literal).
Keys are speaker indices 0..n-1 or speaker names of the config.
"""

from __future__ import annotations

import ast
import itertools
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sovits.config._validation import parse_json, read_text_file
from sovits.errors import InputError

__all__ = [
    "MixSegment",
    "SpeakerMixTrack",
    "call_weights",
    "frame_weights",
    "load_speaker_mix_track",
    "mix_track_length",
    "model_rate_length",
]

logger = logging.getLogger(__name__)

_INDEX_KEY = re.compile(r"^\s*\d+\s*$")
_ORIGINAL_VARIABLE = "spk_mix_map"
"""The name `spkmix.py` binds its track to."""


@dataclass(frozen=True)
class MixSegment:
    """One linear piece of a speaker's weight.

    t_begin, t_end: fractions of the whole track length, 0 <= t_begin < t_end <= 1.
    v_begin, v_end: the weight at t_begin and (approached) at t_end, >= 0.
    """

    t_begin: float
    t_end: float
    v_begin: float
    v_end: float

    def as_list(self) -> list[float]:
        """[t_begin, t_end, v_begin, v_end], as the original writes a segment."""
        return [self.t_begin, self.t_end, self.v_begin, self.v_end]


@dataclass(frozen=True)
class SpeakerMixTrack:
    """A speaker-mix track: `segments[i]` is the chain of speaker index i (emb_g row i).

    `names[i]` is speaker i's name in the config's speaker map, or "" when unknown
    (used in messages only). Construction checks what does not depend on the frame
    count (InputError); `frame_weights` checks the rest.
    """

    segments: tuple[tuple[MixSegment, ...], ...]
    names: tuple[str, ...] = ()
    source: str = "<speaker mix track>"

    def __post_init__(self) -> None:
        if not self.segments:
            raise InputError("the speaker mix track has no speakers", where=self.source)
        if self.names and len(self.names) != len(self.segments):
            raise ValueError("names must have one entry per speaker")
        for index, chain in enumerate(self.segments):
            if not chain:
                raise InputError(
                    f"{self.speaker_label(index)} has no segments",
                    where=self.source,
                    hint="give at least one [t_begin, t_end, v_begin, v_end]",
                )
            for number, segment in enumerate(chain):
                self._check_segment(index, number, segment)
        self._check_some_weight()

    @property
    def n_speakers(self) -> int:
        """How many speakers the track mixes (rows of `frame_weights`)."""
        return len(self.segments)

    def speaker_label(self, index: int) -> str:
        """"speaker 1 ('alto')" or "speaker 1", for messages."""
        name = self.names[index] if self.names else ""
        return f"speaker {index} ({name!r})" if name else f"speaker {index}"

    def segment_label(self, index: int, number: int) -> str:
        """Names a segment in messages: "speaker 1 ('alto') segment 2 [0.35, 0.75, 0.75, 1]"."""
        values = ", ".join(f"{value:g}" for value in self.segments[index][number].as_list())
        return f"{self.speaker_label(index)} segment {number} [{values}]"

    def _check_segment(self, index: int, number: int, segment: MixSegment) -> None:
        label = self.segment_label(index, number)
        values = segment.as_list()
        if not all(math.isfinite(value) for value in values):
            raise InputError(f"{label}: values must be finite numbers", where=self.source)
        if segment.v_begin < 0 or segment.v_end < 0:
            raise InputError(
                f"{label}: mix values must not be negative", where=self.source
            )
        if segment.t_begin < 0 or segment.t_end > 1:
            raise InputError(
                f"{label}: times are fractions of the output and must lie in [0, 1]",
                where=self.source,
            )
        if segment.t_begin >= segment.t_end:
            raise InputError(
                f"{label}: t_begin must be below t_end", where=self.source
            )

    def weight_at(self, index: int, time: float) -> float:
        """Speaker `index`'s (unnormalised) weight at `time` (a fraction of the output),
        or 0 where none of its segments covers `time`."""
        for segment in self.segments[index]:
            if segment.t_begin <= time < segment.t_end:
                share = (time - segment.t_begin) / (segment.t_end - segment.t_begin)
                return segment.v_begin + (segment.v_end - segment.v_begin) * share
        return 0.0

    def _check_some_weight(self) -> None:
        """InputError when every weight of every speaker is 0 (nobody would be heard;
        the original silently mixes all speakers equally). A stretch where all weights
        are 0 is mixed equally too, as the original does; it is logged as a warning.

        The weights are linear between the segments' time points and never negative,
        so a stretch between two neighbouring points is all zero exactly when the sum
        at its midpoint is 0.
        """
        points = sorted(
            {0.0, 1.0}
            | {segment.t_begin for chain in self.segments for segment in chain}
            | {segment.t_end for chain in self.segments for segment in chain}
        )
        silent = [
            (begin, end)
            for begin, end in itertools.pairwise(points)
            if all(
                self.weight_at(index, (begin + end) / 2) == 0 for index in range(self.n_speakers)
            )
        ]
        if len(silent) == len(points) - 1:
            raise InputError(
                "every mix weight is 0, so no speaker would be heard",
                where=self.source,
                hint="give at least one speaker a positive weight, e.g. [0, 1, 1, 1]",
            )
        for begin, end in silent:
            logger.warning(
                "%s: from t = %g to t = %g every speaker's weight is 0; all speakers are "
                "mixed equally there", self.source, begin, end,
            )

    def to_dict(self) -> dict[str, list[list[float]]]:
        """The JSON form: {"0": [[t_begin, t_end, v_begin, v_end], ...], ...}."""
        return {
            str(index): [segment.as_list() for segment in chain]
            for index, chain in enumerate(self.segments)
        }

    @classmethod
    def from_mapping(
        cls,
        data: Any,
        *,
        speakers: Mapping[str, int] | int,
        source: str = "<speaker mix track>",
    ) -> SpeakerMixTrack:
        """A track from `{key: [[t_begin, t_end, v_begin, v_end], ...]}`.

        speakers: the config's speaker map (name -> id; the track must then have
            `len(speakers)` entries, as the original asserts) or a speaker count.
        Keys are indices (ints, or strings of digits as JSON writes them) or names
        of `speakers`. Every index 0..n-1 must appear exactly once. Raises InputError
        naming the key or segment at fault.
        """
        if isinstance(speakers, int):
            count, names_by_index = speakers, {}
        else:
            count = len(speakers)
            names_by_index = {index: name for name, index in speakers.items()}
        if count < 1:
            raise InputError("the model has no speakers to mix", where=source)
        if not isinstance(data, Mapping):
            raise InputError(
                "a speaker mix track must be an object of speaker -> segments, got "
                f"{type(data).__name__}",
                where=source,
            )
        chains: dict[int, tuple[MixSegment, ...]] = {}
        keys_of: dict[int, object] = {}
        for key, value in data.items():
            index = _speaker_index(key, speakers, count, source)
            if index in chains:
                raise InputError(
                    f"speaker {index} is given twice (keys {keys_of[index]!r} and {key!r})",
                    where=source,
                )
            keys_of[index] = key
            chains[index] = _segments(value, key, source)
        absent = [index for index in range(count) if index not in chains]
        if absent:
            listed = ", ".join(
                f"{index} ({names_by_index[index]!r})" if index in names_by_index else str(index)
                for index in absent
            )
            raise InputError(
                f"the track gives {len(chains)} speakers but the model has {count}; "
                f"missing: {listed}",
                where=source,
                hint="give a segment list for every speaker (a zero weight is [0, 1, 0, 0])",
            )
        names = tuple(names_by_index.get(index, "") for index in range(count))
        return cls(
            segments=tuple(chains[index] for index in range(count)),
            names=names if any(names) else (),
            source=source,
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, speakers: Mapping[str, int] | int
    ) -> SpeakerMixTrack:
        """Read a track file: .json, .yaml/.yml, or the original's spkmix.py.

        A .py file is parsed, never run: it must bind `spk_mix_map` to a literal dict.
        """
        path = Path(path)
        text = read_text_file(path, "speaker mix file", error=InputError)
        suffix = path.suffix.lower()
        if suffix == ".py":
            data = _python_literal_track(text, path)
        elif suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as error:
                raise InputError(f"not valid YAML ({error})", where=path) from None
        else:
            data = parse_json(
                text,
                path,
                error=InputError,
                hint="a track is JSON (or .yaml/.yml) like "
                '{"0": [[0, 1, 1, 0]], "1": [[0, 1, 0, 1]]}',
            )
        return cls.from_mapping(data, speakers=speakers, source=str(path))


def load_speaker_mix_track(
    path: str | os.PathLike[str], *, speakers: Mapping[str, int] | int
) -> SpeakerMixTrack:
    """`SpeakerMixTrack.load`: read a .json / .yaml / spkmix.py track."""
    return SpeakerMixTrack.load(path, speakers=speakers)


def _speaker_index(
    key: object, speakers: Mapping[str, int] | int, count: int, source: str
) -> int:
    if isinstance(key, bool):
        raise InputError(f"speaker key {key!r} is not an index or a name", where=source)
    if isinstance(key, int):
        index = key
    elif isinstance(key, str) and _INDEX_KEY.match(key):
        index = int(key)
    elif isinstance(key, str) and not isinstance(speakers, int) and key in speakers:
        index = speakers[key]
    else:
        known = (
            "" if isinstance(speakers, int) else "; names: " + ", ".join(map(repr, speakers))
        )
        raise InputError(
            f"speaker key {key!r} is neither an index 0..{count - 1} nor a speaker name"
            f"{known}",
            where=source,
        )
    if not 0 <= index < count:
        raise InputError(
            f"speaker key {key!r}: index {index} is outside 0..{count - 1}", where=source
        )
    return index


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _segments(value: object, key: object, source: str) -> tuple[MixSegment, ...]:
    if not isinstance(value, list | tuple):
        raise InputError(
            f"speaker {key!r}: expected a list of [t_begin, t_end, v_begin, v_end] "
            f"segments, got {type(value).__name__}",
            where=source,
        )
    segments = []
    for number, item in enumerate(value):
        numbers = [_number(part) for part in item] if isinstance(item, list | tuple) else []
        values = [part for part in numbers if part is not None]
        if len(values) != 4 or len(numbers) != 4:
            raise InputError(
                f"speaker {key!r} segment {number}: expected 4 numbers "
                f"[t_begin, t_end, v_begin, v_end], got {item!r}",
                where=source,
            )
        segments.append(MixSegment(*values))
    return tuple(segments)


def _python_literal_track(text: str, path: Path) -> Any:
    """The literal bound to `spk_mix_map` in a spkmix.py, without running the file."""
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        raise InputError(f"not valid Python ({error.msg}, line {error.lineno})",
                         where=path) from None
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        if any(isinstance(t, ast.Name) and t.id == _ORIGINAL_VARIABLE for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                raise InputError(
                    f"{_ORIGINAL_VARIABLE} is not a plain literal (sovits never runs the file)",
                    where=path,
                    hint="write the track as JSON instead",
                ) from None
    raise InputError(f"no `{_ORIGINAL_VARIABLE} = {{...}}` assignment found", where=path)


# --------------------------------------------------------------------------- length


def model_rate_length(n_samples: int, input_rate: int, model_rate: int) -> int:
    """Samples at the model rate the original counts for `n_samples` at `input_rate`:
    int(ceil(n_samples / input_rate * model_rate)) in float64, as `slice_inference`."""
    return int(np.ceil(n_samples / input_rate * model_rate))


def mix_track_length(
    slices: Sequence[tuple[int | Sequence[int], bool]],
    *,
    pad_samples: int,
    hop_length: int,
) -> int:
    """The frame count `L` the original spreads a track over (so-vits-svc 4.1 rule).

    slices: the slicer's segments in order, each `(lengths, silent)`:
        * silent: `lengths` is the segment's length in model-rate samples
          (`model_rate_length(len, input_rate, model_rate)` in the original);
        * sound: `lengths` is the model-rate length of each clip the segment is
          converted in (one int, or a list when it is cut in clips; each clip's
          length includes its crossfade overlap, as `split_list_by_n` cuts it).
    pad_samples: the padding added on each side of a clip, **in input-rate samples**
        as the original counts it: `int(input_rate * pad_seconds)` (its quirk; pass
        the model-rate pad when the input is at the model rate).
    hop_length: the model's hop in samples.

    L = sum over silent slices of `length // hop`
      + sum over clips of `(length + 2 * pad_samples) // hop`
      + the number of slices.
    """
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}")
    total = 0
    for lengths, silent in slices:
        if silent:
            if not isinstance(lengths, int):
                raise ValueError("a silent slice has one length")
            total += lengths // hop_length
            continue
        clips = [lengths] if isinstance(lengths, int) else list(lengths)
        for clip in clips:
            total += (clip + 2 * pad_samples) // hop_length
    return total + len(slices)


# --------------------------------------------------------------------------- weights


def _segment_frames(
    track: SpeakerMixTrack, index: int, number: int, n_frames: int
) -> tuple[int, int]:
    segment = track.segments[index][number]
    return int(n_frames * segment.t_begin), int(n_frames * segment.t_end)


def _check_frames(track: SpeakerMixTrack, n_frames: int) -> None:
    """The original's checks on integer frames, plus full coverage of 0..L."""
    for index, chain in enumerate(track.segments):
        last_end: int | None = None
        for number in range(len(chain)):
            begin, end = _segment_frames(track, index, number, n_frames)
            label = track.segment_label(index, number)
            if end - begin <= 0:
                raise InputError(
                    f"{label}: covers no frame of the {n_frames}-frame track "
                    f"(frames {begin}..{end})",
                    where=track.source,
                    hint="make the segment longer",
                )
            if last_end is None and begin != 0:
                raise InputError(
                    f"{label}: the first segment must start at t = 0 "
                    f"(it starts at frame {begin} of {n_frames})",
                    where=track.source,
                )
            if last_end is not None and begin != last_end:
                raise InputError(
                    f"{label}: must start where the previous segment ends "
                    f"(frame {begin} vs {last_end} of {n_frames})",
                    where=track.source,
                    hint="segments chain: each t_begin equals the previous t_end",
                )
            last_end = end
        if last_end != n_frames:
            raise InputError(
                f"{track.segment_label(index, len(chain) - 1)}: the last segment must end "
                f"at t = 1 (it ends at frame {last_end} of {n_frames})",
                where=track.source,
            )


def _ramp(segment: MixSegment, length: int) -> torch.Tensor:
    """float32 [length]: the segment's values, as the original builds them."""
    step = (segment.v_end - segment.v_begin) / length
    if step == 0.0:
        values = torch.zeros(length, dtype=torch.float32) + segment.v_begin
    else:
        values = torch.arange(segment.v_begin, segment.v_end, step, dtype=torch.float32)
    if values.shape[0] < length:
        # arange comes out shorter only through rounding, by a frame. The original
        # asks for a reflect pad of the 1-D tensor there, which torch refuses; this
        # is the padding it means.
        missing = length - values.shape[0]
        mode = "reflect" if missing < values.shape[0] else "replicate"
        values = F.pad(values[None], [0, missing], mode=mode)[0]
    return values[:length]


def frame_weights(track: SpeakerMixTrack, n_frames: int) -> np.ndarray:
    """Per-frame mixing weights: float32 [n_speakers, n_frames], columns summing to 1.

    n_frames is the track length L (`mix_track_length`). Each segment covers frames
    [int(L*t_begin), int(L*t_end)) with `arange(v_begin, v_end, step)` in float32
    (constant v_begin when v_begin == v_end), truncated to the segment; frames no
    segment covers stay 0; columns that sum to 0 become 1/n for every speaker; then
    each column is divided by its sum. Bit-identical to so-vits-svc 4.1.

    Raises InputError (naming the segment) when a segment covers no frame, segments
    do not chain on integer frames, or the chain does not run from frame 0 to L.
    """
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    _check_frames(track, n_frames)
    n_speakers = track.n_speakers
    weights = torch.zeros((n_speakers, n_frames), dtype=torch.float32)
    for index, chain in enumerate(track.segments):
        for number, segment in enumerate(chain):
            begin, end = _segment_frames(track, index, number, n_frames)
            weights[index, begin:end] = _ramp(segment, end - begin)
    totals = torch.sum(weights, dim=0).unsqueeze(0)  # [1, L]
    empty = totals[0] == 0.0
    totals[0, empty] = 1.0
    weights[:, empty] = 1.0 / n_speakers
    normalised = weights / totals
    return normalised.numpy()


def call_weights(
    weights: np.ndarray,
    start_frame: int,
    n_frames: int,
    n_model_speakers: int | None = None,
) -> np.ndarray:
    """The weights one synthesizer call gets: float32 [n_frames, n_model_speakers].

    weights: `frame_weights` output [n_speakers, L]; start_frame: the running frame
    offset (advanced by each call's frame count, and by `length // hop` for each
    silent slice); n_frames: the call's frame count. Rows are speakers 0..n-1 of the
    track; with `n_model_speakers` larger than n (a model whose emb_g has more rows
    than the config names speakers), the extra speakers get weight 0.
    """
    n_speakers, total = weights.shape
    if start_frame < 0 or n_frames < 0 or start_frame + n_frames > total:
        raise ValueError(
            f"frames {start_frame}..{start_frame + n_frames} lie outside the "
            f"{total}-frame mix track"
        )
    window = np.ascontiguousarray(weights[:, start_frame : start_frame + n_frames].T)
    if n_model_speakers is None or n_model_speakers == n_speakers:
        return window
    if n_model_speakers < n_speakers:
        raise ValueError(
            f"the track mixes {n_speakers} speakers but the model has {n_model_speakers}"
        )
    padded = np.zeros((n_frames, n_model_speakers), dtype=np.float32)
    padded[:, :n_speakers] = window
    return padded
