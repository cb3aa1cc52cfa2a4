"""The two model stages: SOME (wave -> notes) and DiffSinger (notes -> MIDI curve).

`SomeRunner` resamples the wave to SOME's rate and reads its notes by output name.
`PitchPredictor` builds the token / duration / note sequences for the linguistic and
pitch graphs from the notes (one vowel per sung note, SP per rest, SP padding of
HEAD_FRAMES / TAIL_FRAMES at both ends) and feeds each graph exactly the inputs it
declares:

* linguistic: `tokens`, then `ph_dur` or (`word_div`, `word_dur`), and `languages`;
* pitch: `encoder_out`, `ph_dur`, `note_midi`, `note_rest`, `note_dur`, `note_glide`
  (0 = none), `pitch` (60 everywhere) with `retake` all true (so every frame is
  generated; the fork's all-false retake returns the given pitch), `expr` at [1, T],
  `spk_embed` at [1, T, H], and `steps` or DDPM `speedup`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sovits.errors import CheckpointError, ConfigError, InputError, MissingFileError
from sovits.features.pitch.dspitch.bank import DsBank, read_languages, read_speaker_embedding
from sovits.features.pitch.dspitch.graphs import OnnxGraph
from sovits.features.pitch.dspitch.notes import (
    HEAD_FRAMES,
    TAIL_FRAMES,
    FramedNotes,
    speedup_for_steps,
    word_division,
)

__all__ = [
    "LINGUISTIC_INPUTS",
    "PITCH_INPUTS",
    "PitchPredictor",
    "SomeNotes",
    "SomeRunner",
]

logger = logging.getLogger(__name__)

LINGUISTIC_INPUTS = frozenset({"tokens", "ph_dur", "word_div", "word_dur", "languages"})
"""Inputs of a DiffSinger linguistic graph that sovits can feed."""
PITCH_INPUTS = frozenset(
    {
        "encoder_out", "ph_dur", "note_midi", "note_rest", "note_dur", "note_glide",
        "pitch", "expr", "retake", "spk_embed", "steps", "speedup",
    }
)
"""Inputs of a DiffSinger pitch graph that sovits can feed."""
SOME_INPUTS = frozenset({"waveform"})
LONG_INPUT_SECONDS = 30.0
"""Longer waves are cut at silences before SOME (OpenUtau's long-chunk threshold)."""
_GIVEN_PITCH = 60.0
"""MIDI fed as `pitch`; with retake all true the model ignores it (OpenUtau's value)."""


@dataclass(frozen=True)
class SomeNotes:
    """SOME's notes: midi float32 [n] (0 on rests), rest bool [n], seconds float64 [n]."""

    midi: np.ndarray
    rest: np.ndarray
    seconds: np.ndarray


class SomeRunner:
    """SOME's ONNX export: a mono wave -> notes. The wave is resampled to `sample_rate`
    (SOME's training rate, 44.1 kHz) first."""

    def __init__(self, path: Path, sample_rate: int, *, device: str = "cpu") -> None:
        self.graph = OnnxGraph(
            path, "SOME model", accepted=SOME_INPUTS,
            required_outputs=("note_midi", "note_rest", "note_dur"), device=device,
        )
        if not self.graph.declares("waveform"):
            raise CheckpointError("the SOME model has no `waveform` input", where=path)
        self.sample_rate = sample_rate

    def notes(self, wave: np.ndarray, sample_rate: int) -> SomeNotes:
        """Notes of `wave` (float32 [N] at `sample_rate` Hz); their durations add up to
        the wave's length.

        Waves longer than LONG_INPUT_SECONDS are cut at silences first (as SOME's own
        infer.py and OpenUtau do, so attention memory stays bounded): silences become
        rest notes, each sound piece (at most LONG_INPUT_SECONDS, cut hard beyond that)
        goes through SOME alone.
        """
        if sample_rate != self.sample_rate:
            from sovits.audio.resample import resample

            wave = resample(wave, sample_rate, self.sample_rate)
        wave = np.ascontiguousarray(wave, dtype=np.float32)
        rate = self.sample_rate
        if wave.shape[0] <= LONG_INPUT_SECONDS * rate:
            return self._fit(self._run(wave), wave.shape[0] / rate)
        from sovits.audio.slicer import SlicerSettings, segments

        settings = SlicerSettings(min_length_ms=5000.0, max_silence_kept_ms=1000.0)
        limit = int(LONG_INPUT_SECONDS * rate)
        parts: list[SomeNotes] = []
        for segment in segments(wave, rate, settings):
            if segment.silent:
                parts.append(SomeNotes(np.zeros(1, np.float32), np.ones(1, bool),
                                       np.array([len(segment) / rate])))
                continue
            for start in range(segment.start, segment.end, limit):
                piece = wave[start : min(start + limit, segment.end)]
                parts.append(self._fit(self._run(piece), piece.shape[0] / rate))
        logger.debug("SOME ran on %d pieces of a %.1f s wave", len(parts), wave.shape[0] / rate)
        return SomeNotes(
            np.concatenate([part.midi for part in parts]),
            np.concatenate([part.rest for part in parts]),
            np.concatenate([part.seconds for part in parts]),
        )

    @staticmethod
    def _fit(notes: SomeNotes, total: float) -> SomeNotes:
        """`notes` cut or stretched at the end so their durations add up to `total` s
        (SOME's frames cover up to one hop more than the wave)."""
        ends = np.cumsum(notes.seconds)
        keep = int(np.searchsorted(ends, total, side="left")) + 1
        keep = min(keep, len(ends))
        if keep == 0:
            return SomeNotes(np.zeros(1, np.float32), np.ones(1, bool), np.array([total]))
        seconds = notes.seconds[:keep].copy()
        seconds[-1] = total - (ends[keep - 2] if keep > 1 else 0.0)
        return SomeNotes(notes.midi[:keep], notes.rest[:keep], seconds)

    def _run(self, wave: np.ndarray) -> SomeNotes:
        midi, rest, seconds = self.graph.run(
            ("note_midi", "note_rest", "note_dur"),
            {"waveform": wave[None]},
        )
        midi = midi.reshape(-1).astype(np.float32)
        rest = rest.reshape(-1).astype(bool)
        seconds = seconds.reshape(-1).astype(np.float64)
        if not midi.shape == rest.shape == seconds.shape:
            raise CheckpointError(
                f"SOME's outputs differ in length: note_midi {midi.shape}, note_rest "
                f"{rest.shape}, note_dur {seconds.shape}",
                where=self.graph.path,
            )
        return SomeNotes(midi, rest, seconds)


class PitchPredictor:
    """The bank's linguistic and pitch graphs: notes -> a MIDI curve on the model grid.

    vowel: the phoneme sung on every note (looked up as `<language>/<vowel>` first when
        a language is given, then `vowel`); language: a languages.json name, or None.
    Raises InputError when SP or the vowel is not in the phoneme list or the language
    is unknown, CheckpointError when a graph declares inputs sovits cannot feed.
    """

    def __init__(
        self, bank: DsBank, *, vowel: str = "a", language: str | None = None,
        device: str = "cpu",
    ) -> None:
        self.bank = bank
        self.linguistic = OnnxGraph(
            bank.linguistic, "DiffSinger linguistic model", accepted=LINGUISTIC_INPUTS,
            required_outputs=("encoder_out",), device=device,
        )
        self.pitch = OnnxGraph(
            bank.pitch, "DiffSinger pitch model", accepted=PITCH_INPUTS,
            required_outputs=("pitch_pred",), device=device,
        )
        for graph, needed in (
            (self.linguistic, ("tokens",)),
            (self.pitch, ("encoder_out", "note_midi", "note_dur", "retake")),
        ):
            absent = [name for name in needed if not graph.declares(name)]
            if absent:
                raise CheckpointError(
                    f"the {graph.what} has no input {', '.join(absent)}", where=graph.path
                )
        if not self.linguistic.declares("ph_dur") and not (
            self.linguistic.declares("word_div") and self.linguistic.declares("word_dur")
        ):
            raise CheckpointError(
                "the DiffSinger linguistic model takes neither ph_dur nor word_div + word_dur",
                where=bank.linguistic,
            )
        self._cross_check()
        phonemes = bank.phonemes
        if "SP" not in phonemes:
            raise InputError(
                f"the phoneme list has no SP (silence); first phonemes: {_sample(phonemes)}",
                where=bank.folder,
            )
        self.sp_token = phonemes["SP"]
        candidates = ([f"{language}/{vowel}"] if language else []) + [vowel]
        found = next((name for name in candidates if name in phonemes), None)
        if found is None:
            others = [name for name in phonemes if name.rsplit("/", 1)[-1] == vowel]
            hint = (
                f"this bank spells it {', '.join(others)}: pass its language"
                if others
                else "choose a vowel from the list"
            )
            raise InputError(
                f"the phoneme list has no vowel {' or '.join(candidates)}; first phonemes: "
                f"{_sample(phonemes)}",
                where=bank.folder,
                hint=hint,
            )
        self.vowel_token = phonemes[found]
        self.language_id = 0
        if self.linguistic.declares("languages"):
            self.language_id = self._language_id(language or _prefix(found))
        elif language:
            logger.info("the linguistic model has no languages input; %r only picks the vowel",
                        language)

    def _cross_check(self) -> None:
        """Log where dsconfig.yaml's flags disagree with the graphs' declared inputs (the
        inputs win: older dsconfigs were written by hand)."""
        raw = self.bank.config.raw or {}
        checks = (
            ("predict_dur", self.linguistic, "word_div"),
            ("use_lang_id", self.linguistic, "languages"),
            ("use_expr", self.pitch, "expr"),
            ("use_note_rest", self.pitch, "note_rest"),
            ("use_continuous_acceleration", self.pitch, "steps"),
        )
        for key, graph, name in checks:
            if key in raw and bool(raw[key]) != graph.declares(name):
                logger.warning(
                    "dsconfig.yaml says %s: %s but the %s %s %s; following the model",
                    key, raw[key], graph.what,
                    "takes" if graph.declares(name) else "does not take", name,
                )

    def _language_id(self, language: str | None) -> int:
        if language is None:
            return 0
        path = self.bank.languages_path
        if path is None:
            raise MissingFileError(
                "the linguistic model takes languages but languages.json is missing",
                where=self.bank.folder,
                hint="copy the voicebank's languages.json with its dsconfig.yaml",
            )
        languages = read_languages(path)
        if language not in languages:
            raise InputError(
                f"unknown DiffSinger language {language!r}; the bank's languages: "
                f"{', '.join(languages) or 'none'}",
                where=path,
            )
        return languages[language]

    @property
    def takes_speaker(self) -> bool:
        """Whether the pitch graph takes a speaker embedding (multi-speaker bank)."""
        return self.pitch.declares("spk_embed")

    @property
    def takes_expressiveness(self) -> bool:
        """Whether the pitch graph takes `expr` (else it was frozen at export)."""
        return self.pitch.declares("expr")

    def speaker_embedding(self, speaker: str | None) -> np.ndarray | None:
        """The embedding fed as spk_embed for `speaker` (default: the first dsconfig
        speaker); None when the graph takes none."""
        if not self.takes_speaker:
            if speaker is not None:
                logger.info("the DiffSinger pitch model is single-speaker; speaker %r ignored",
                            speaker)
            return None
        speakers = self.bank.config.speakers
        if speaker is None:
            if not speakers:
                raise ConfigError(
                    "the pitch model takes a speaker embedding but dsconfig.yaml lists no "
                    "speakers",
                    where=self.bank.folder / "dsconfig.yaml",
                )
            speaker = speakers[0]
        declared = self.pitch.inputs["spk_embed"].shape
        width = declared[-1] if declared and isinstance(declared[-1], int) else None
        return read_speaker_embedding(
            self.bank, speaker, width if width is not None else self.bank.config.hidden_size
        )

    def predict(
        self,
        notes: FramedNotes,
        *,
        steps: int,
        expressiveness: float,
        speaker_embedding: np.ndarray | None,
    ) -> np.ndarray:
        """MIDI curve float32 [HEAD_FRAMES + sum(notes.frames) + TAIL_FRAMES] for `notes`
        (rests already filled). Frame k is at (k - HEAD_FRAMES) model frames."""
        count = len(notes)
        if count == 0:
            raise InputError("no notes to draw a pitch curve over")
        phoneme_frames = np.concatenate(([HEAD_FRAMES], notes.frames, [TAIL_FRAMES])).astype(
            np.int64
        )
        tokens = np.where(notes.rest, self.sp_token, self.vowel_token)
        tokens = np.concatenate(([self.sp_token], tokens, [self.sp_token])).astype(np.int64)
        midi = np.concatenate(([notes.midi[0]], notes.midi, [notes.midi[-1]])).astype(np.float32)
        rest = np.concatenate(([True], notes.rest, [True]))
        total = int(phoneme_frames.sum())
        assert tokens.shape == phoneme_frames.shape == midi.shape == rest.shape

        linguistic_feeds: dict[str, np.ndarray] = {
            "tokens": tokens[None],
            "ph_dur": phoneme_frames[None],
            "languages": np.where(tokens == self.sp_token, 0, self.language_id)[None],
        }
        if self.linguistic.declares("word_div"):
            division, word_frames = word_division(phoneme_frames)
            assert division.sum() == tokens.shape[0] and word_frames.sum() == total
            linguistic_feeds.update(word_div=division[None], word_dur=word_frames[None])
        (encoder_out,) = self.linguistic.run(("encoder_out",), linguistic_feeds)

        feeds: dict[str, np.ndarray] = {
            "encoder_out": encoder_out,
            "ph_dur": phoneme_frames[None],
            "note_midi": midi[None],
            "note_rest": rest[None],
            "note_dur": phoneme_frames[None],
            "note_glide": np.zeros((1, tokens.shape[0]), np.int64),
            "pitch": np.full((1, total), _GIVEN_PITCH, np.float32),
            "retake": np.ones((1, total), bool),
            "expr": np.full((1, total), expressiveness, np.float32),
        }
        if "steps" in self.pitch.inputs:
            feeds["steps"] = self.pitch.scalar("steps", steps)
        if "speedup" in self.pitch.inputs:
            feeds["speedup"] = self.pitch.scalar("speedup", speedup_for_steps(steps))
        if speaker_embedding is not None:
            feeds["spk_embed"] = np.broadcast_to(
                speaker_embedding[None, None], (1, total, speaker_embedding.shape[0])
            ).copy()
        (curve,) = self.pitch.run(("pitch_pred",), feeds)
        curve = curve.reshape(-1).astype(np.float32)
        if curve.shape[0] != total:
            raise CheckpointError(
                f"the pitch model returned {curve.shape[0]} frames for {total}",
                where=self.pitch.path,
            )
        if not np.all(np.isfinite(curve)):
            raise CheckpointError("the pitch model returned non-finite values",
                                  where=self.pitch.path)
        return curve


def _sample(phonemes: Mapping[str, int]) -> str:
    names = list(phonemes)
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")


def _prefix(phoneme: str) -> str | None:
    return phoneme.split("/", 1)[0] if "/" in phoneme else None
