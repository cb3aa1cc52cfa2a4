"""Opt-in: a real `ds_enhance` folder (an OpenUtau voicebank's dspitch files + SOME.onnx).

Set SOVITS_TEST_DS_ENHANCE to the folder to run it; skipped otherwise. Real pitch models
draw noise inside the graph, so only robust properties are checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sovits.features.pitch.dspitch import DsPitchExtractor
from sovits.features.pitch.dspitch.notes import midi_to_hz, seconds_to_frames

VARIABLE = "SOVITS_TEST_DS_ENHANCE"
FOLDER = os.environ.get(VARIABLE)

pytestmark = [
    pytest.mark.skipif(not FOLDER, reason=f"set {VARIABLE} to a real ds_enhance folder"),
    pytest.mark.timeout(600),
]


def _sung_notes(rate: int = 44100) -> np.ndarray:
    """Four harmonic notes (A3, B3, C#4, A3; 0.6 s each, with a 0.4 s rest before the
    last), a little vibrato, float32."""
    pieces = []
    for hz, seconds in ((220.0, 0.6), (246.94, 0.6), (277.18, 0.6), (0.0, 0.4), (220.0, 0.6)):
        time = np.arange(int(seconds * rate)) / rate
        if hz == 0.0:
            pieces.append(np.zeros_like(time))
            continue
        phase = 2 * np.pi * np.cumsum(hz * (1 + 0.003 * np.sin(2 * np.pi * 5 * time))) / rate
        tone = sum(0.25 / k * np.sin(k * phase) for k in range(1, 8))
        fade = np.minimum(1.0, np.minimum(time, time[-1] - time) / 0.02)
        pieces.append(tone * fade)
    return np.concatenate(pieces).astype(np.float32)


def test_real_bank_draws_a_curve_over_the_notes() -> None:
    assert FOLDER is not None
    extractor = DsPitchExtractor(folder=Path(FOLDER))
    wave = _sung_notes()
    track = extractor.extract(wave, 44100, 512)
    assert len(track) == len(wave) // 512
    assert np.isfinite(track.f0).all()
    assert track.voiced.any() and (track.f0[track.voiced] > 0).all()

    notes = extractor.some.notes(wave, 44100)
    frame = 512 / 44100
    ends = np.cumsum(seconds_to_frames(notes.seconds, frame)) * frame
    times = np.arange(len(track)) * frame
    index = np.minimum(np.searchsorted(ends, times, side="right"), len(ends) - 1)
    sung = ~notes.rest[index]
    assert track.voiced.tolist() == sung.tolist()
    distance = np.min(np.abs(times[:, None] - np.concatenate(([0.0], ends))[None]), axis=1)
    interior = sung & (distance >= 0.05)
    cents = 1200 * np.log2(track.f0[interior] / midi_to_hz(notes.midi[index][interior]))
    assert np.median(np.abs(cents)) < 100
