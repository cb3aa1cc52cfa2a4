"""`dspitch`: an f0 curve drawn by a DiffSinger pitch model over SOME's notes.

This is the f0 method of the diffsinger-sovits fork (warma16/diffsinger-sovits), not of
upstream so-vits-svc 4.1, done as OpenUtau drives the models (dspitch.md section 4):

1. SOME turns the wave (resampled to its 44.1 kHz) into notes: MIDI, rest flag, seconds.
2. The notes go onto the pitch model's frame grid (dsconfig `hop_size / sample_rate`)
   by cumulative rounding; rests take the MIDI of their sung neighbours.
3. The linguistic and pitch graphs run with one vowel per sung note, SP on rests and
   8 frames of SP padding at both ends, `retake` all true, `expr`, the speaker
   embedding and `steps` / `speedup`, as each graph declares them.
4. The MIDI curve is interpolated in MIDI onto the caller's grid and turned into Hz.
5. Voicing follows the notes (frames in rest notes are unvoiced and filled by linear
   interpolation). The fork reports every frame voiced; sovits does not, because the
   SVC model embeds the voicing on every frame and saw real voicing in training.
6. Optionally the curve is blended with a source extractor's f0 (`blend.py`).

The result is untransposed; the conversion shifts it by `transpose` as for any method.
Real pitch models draw noise inside the graph, so the curve varies between runs.
"""

from __future__ import annotations

import inspect
import logging
import math
from pathlib import Path

import numpy as np

from sovits.errors import InputError
from sovits.features.pitch.base import PitchExtractor, PitchTrack, check_extract_arguments
from sovits.features.pitch.dspitch.blend import BLEND_MODES, blend_tracks
from sovits.features.pitch.dspitch.notes import (
    HEAD_FRAMES,
    fill_rests,
    fill_unvoiced,
    seconds_to_frames,
    to_target_grid,
    voiced_frames,
)

__all__ = [
    "DEFAULT_BLEND_SOURCE",
    "DEFAULT_STEPS",
    "DsPitchExtractor",
]

logger = logging.getLogger(__name__)

DEFAULT_STEPS = 10
"""Sampling steps of the pitch model (OpenUtau's DiffSingerStepsPitch default)."""
MAX_STEPS = 1000
DEFAULT_BLEND_SOURCE = "rmvpe"
"""The f0 method whose curve a blend keeps (so-vits-svc 4.1's recommended extractor)."""


class DsPitchExtractor:
    """The `dspitch` f0 method (see the module doc).

    folder: the bank folder; default: `$SOVITS_HOME/pretrain/ds_enhance`, then
        `./pretrain/ds_enhance`, then the user cache (`bank.find_bank_folder`).
    steps: sampling steps of the pitch model (1..1000; DDPM exports get the matching
        `speedup`). expressiveness: `expr` in [0, 1]; 0 sings the notes flat, 1 is the
        bank's full style (ignored by models exported with a frozen expr).
    speaker: a dsconfig speaker of a multi-speaker bank (default: the first).
    vowel, language: the phoneme sung on every note (`<language>/<vowel>` tried first).
    blend, blend_ratio, blend_source: combine with the f0 of method `blend_source`
        ("off", "confident" or "mix"; see `blend.py`).
    threshold: voicing threshold passed to the blend source (crepe, rmvpe, fcpe).
    device: "cpu" or "cuda" (onnxruntime's CUDA provider when installed).
    some_model: a SOME .onnx file to use instead of the bank's.
    Builds the onnxruntime sessions now, so missing or unusable files fail here.
    """

    name = "dspitch"

    def __init__(
        self,
        *,
        folder: str | Path | None = None,
        steps: int = DEFAULT_STEPS,
        expressiveness: float = 1.0,
        speaker: str | None = None,
        vowel: str = "a",
        language: str | None = None,
        blend: str = "off",
        blend_ratio: float = 0.5,
        blend_source: str = DEFAULT_BLEND_SOURCE,
        threshold: float = 0.05,
        device: str = "cpu",
        some_model: str | Path | None = None,
    ) -> None:
        from sovits.features.pitch.dspitch.bank import find_bank_folder, read_bank
        from sovits.features.pitch.dspitch.models import PitchPredictor, SomeRunner

        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise InputError(f"dspitch steps must be an integer in 1..{MAX_STEPS}, got {steps!r}")
        if not (math.isfinite(expressiveness) and 0.0 <= expressiveness <= 1.0):
            raise InputError(f"dspitch expressiveness must be in [0, 1], got {expressiveness}")
        if blend not in BLEND_MODES:
            raise InputError(
                f"unknown dspitch blend {blend!r}; use one of {', '.join(BLEND_MODES)}"
            )
        if not (math.isfinite(blend_ratio) and 0.0 <= blend_ratio <= 1.0):
            raise InputError(f"the dspitch blend ratio must be in [0, 1], got {blend_ratio}")
        if blend_source == self.name:
            raise InputError("the dspitch blend source must be another f0 method")
        self.steps = steps
        self.expressiveness = float(expressiveness)
        self.blend = blend
        self.blend_ratio = float(blend_ratio)
        self.device = str(device)
        self.source: PitchExtractor | None = None
        if blend != "off":
            self.source = _source_extractor(blend_source, self.device, threshold)
        self.bank = read_bank(
            find_bank_folder(folder),
            some_model=Path(some_model) if some_model is not None else None,
        )
        logger.info("DiffSinger pitch bank: %s", self.bank.folder)
        self.some = SomeRunner(self.bank.some, self.bank.some_sample_rate, device=self.device)
        self.predictor = PitchPredictor(
            self.bank, vowel=vowel, language=language, device=self.device
        )
        self.speaker_embedding = self.predictor.speaker_embedding(speaker)
        if not self.predictor.takes_expressiveness and expressiveness != 1.0:
            logger.info("the pitch model was exported with a frozen expr; expressiveness "
                        "%g has no effect", expressiveness)

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch of `wave` (mono float32 [N] at `sample_rate`) every `hop_length` samples:
        f0 float32 [n_frames] Hz (default N // hop_length frames)."""
        samples, count = check_extract_arguments(wave, sample_rate, hop_length, n_frames)
        track = self._diffsinger_track(samples, sample_rate, hop_length, count)
        if self.source is None:
            return track
        source = self.source.extract(samples, sample_rate, hop_length, n_frames=count)
        return blend_tracks(track, source, self.blend, self.blend_ratio)

    def _diffsinger_track(
        self, samples: np.ndarray, sample_rate: int, hop_length: int, count: int
    ) -> PitchTrack:
        config = self.bank.config
        notes = self.some.notes(samples, sample_rate)
        frames = seconds_to_frames(notes.seconds, config.frame_seconds)
        framed = fill_rests(notes.midi, notes.rest, frames)
        silent = PitchTrack(
            np.zeros(count, np.float32), np.zeros(count, bool), sample_rate, hop_length
        )
        if len(framed) == 0 or framed.rest.all():
            return silent
        curve = self.predictor.predict(
            framed,
            steps=self.steps,
            expressiveness=self.expressiveness,
            speaker_embedding=self.speaker_embedding,
        )
        frame_seconds = hop_length / sample_rate
        f0 = to_target_grid(
            curve, model_frame_seconds=config.frame_seconds, head_frames=HEAD_FRAMES,
            n_frames=count, frame_seconds=frame_seconds,
        )
        voiced = voiced_frames(
            framed.rest, framed.ends, model_frame_seconds=config.frame_seconds,
            n_frames=count, frame_seconds=frame_seconds,
        )
        if not voiced.any():
            return silent
        return PitchTrack(fill_unvoiced(f0, voiced), voiced, sample_rate, hop_length)


def _source_extractor(method: str, device: str, threshold: float) -> PitchExtractor:
    """The blend source: method `method` with the device and threshold it accepts."""
    from sovits.features.pitch.registry import create_pitch_extractor, pitch_extractor_class

    accepted = inspect.signature(pitch_extractor_class(method)).parameters
    options: dict[str, object] = {}
    if "device" in accepted:
        options["device"] = device
    if "threshold" in accepted:
        options["threshold"] = threshold
    return create_pitch_extractor(method, **options)
