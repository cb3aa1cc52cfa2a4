"""Pure note / frame arithmetic and the blends (no onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

from sovits.errors import InputError
from sovits.features.pitch.base import PitchTrack
from sovits.features.pitch.dspitch.blend import BLEND_MODES, blend_tracks, source_weight
from sovits.features.pitch.dspitch.notes import (
    FALLBACK_MIDI,
    fill_rests,
    fill_unvoiced,
    hz_to_midi,
    midi_to_hz,
    seconds_to_frames,
    speedup_for_steps,
    to_target_grid,
    voiced_frames,
    word_division,
)
from tests.tolerance import HZ, Tolerance, assert_close

SEMITONES = Tolerance("SEMITONES", rtol=0.0, atol=1e-4)
"""MIDI values: 0.01 cents."""


def test_seconds_to_frames_keeps_the_sum_and_never_goes_negative() -> None:
    frame = 512 / 44100
    rng = np.random.default_rng(1)
    durations = rng.uniform(0.0, 0.3, size=200)
    durations[::7] = 0.001  # shorter than a frame
    frames = seconds_to_frames(durations, frame)
    assert frames.dtype == np.int64 and frames.min() >= 0
    assert frames.sum() == round(durations.sum() / frame)
    exact = np.array([3, 16, 1]) * frame
    assert seconds_to_frames(exact, frame).tolist() == [3, 16, 1]
    with pytest.raises(InputError):
        seconds_to_frames(np.array([0.1, -0.1]), frame)


def test_rest_filling_leading_trailing_inner_and_all() -> None:
    midi = np.array([0, 0, 60, 0, 0, 64, 0], np.float32)
    rest = np.array([1, 1, 0, 1, 1, 0, 1], bool)
    frames = np.array([2, 3, 4, 3, 2, 5, 6])
    notes = fill_rests(midi, rest, frames)
    # leading rests take 60, the inner group of 5 frames splits 2 (60) + 3 (64), the
    # first inner rest note (3 frames) is cut in two, trailing rests take 64
    assert notes.midi.tolist() == [60, 60, 60, 60, 64, 64, 64, 64]
    assert notes.rest.tolist() == [True, True, False, True, True, True, False, True]
    assert notes.frames.tolist() == [2, 3, 4, 2, 1, 2, 5, 6]
    assert notes.frames.sum() == frames.sum()
    assert notes.ends.tolist() == np.cumsum(notes.frames).tolist()

    silent = fill_rests(np.zeros(3), np.ones(3, bool), np.array([1, 0, 2]))
    assert silent.midi.tolist() == [FALLBACK_MIDI] * 2 and silent.frames.tolist() == [1, 2]
    dropped = fill_rests(np.array([61, 0, 62]), np.array([0, 1, 0], bool), np.array([2, 0, 3]))
    assert dropped.midi.tolist() == [61, 62] and not dropped.rest.any()


def test_word_division_covers_every_token_and_frame() -> None:
    for durations in ([8, 8], [8, 5, 8], [8, 3, 4, 5, 9, 8]):
        division, word_frames = word_division(np.array(durations))
        assert division.sum() == len(durations)
        assert word_frames.sum() == sum(durations)
        assert division[-1] == 2 and (division[:-1] == 1).all()
        assert word_frames[-1] == durations[-2] + durations[-1]
    with pytest.raises(InputError):
        word_division(np.array([8]))


@pytest.mark.parametrize(("steps", "speedup"), [(10, 100), (20, 50), (3, 250), (7, 125),
                                                 (1, 1000), (1000, 1), (2000, 1)])
def test_speedup_for_steps(steps: int, speedup: int) -> None:
    assert speedup_for_steps(steps) == speedup


def test_target_grid_maps_with_the_head_offset() -> None:
    frame = 512 / 44100
    midi = np.array([50.0] * 8 + [60.0, 61.0, 62.0, 63.0] + [70.0] * 8)  # 8 head frames
    f0 = to_target_grid(midi, model_frame_seconds=frame, head_frames=8, n_frames=4,
                        frame_seconds=frame)
    assert f0.dtype == np.float32
    assert_close(hz_to_midi(f0), [60.0, 61.0, 62.0, 63.0], SEMITONES, what="same grid")
    half = to_target_grid(midi, model_frame_seconds=frame, head_frames=8, n_frames=7,
                          frame_seconds=frame / 2)
    assert_close(hz_to_midi(half), [60, 60.5, 61, 61.5, 62, 62.5, 63], SEMITONES,
                 what="half hop interpolates in MIDI")
    assert_close(midi_to_hz(np.array([69.0, 57.0])), [440.0, 220.0], HZ, what="A4, A3")


def test_voicing_follows_the_notes_and_fill_interpolates() -> None:
    voiced = voiced_frames(np.array([True, False, True]), np.array([2, 5, 6]),
                           model_frame_seconds=0.01, n_frames=8, frame_seconds=0.01)
    assert voiced.tolist() == [False, False, True, True, True, False, False, False]
    f0 = np.array([0, 100, 0, 0, 200, 0], np.float32)
    filled = fill_unvoiced(f0, f0 > 0)
    assert_close(filled, [100, 100, 133.33333, 166.66667, 200, 200], HZ, what="fill")
    assert not fill_unvoiced(f0, np.zeros(6, bool)).any()


def _track(f0: np.ndarray, voiced: np.ndarray) -> PitchTrack:
    return PitchTrack(f0.astype(np.float32), voiced, 44100, 512)


def test_blends() -> None:
    count = 100
    ds = _track(np.full(count, 440.0), np.ones(count, bool))
    src_voiced = np.zeros(count, bool)
    src_voiced[40:80] = True
    source = _track(np.full(count, 220.0), src_voiced)
    assert blend_tracks(ds, source, "off") is ds

    kept = blend_tracks(ds, source, "confident")
    assert_close(kept.f0[45:75], np.full(30, 220.0), HZ, what="source kept where voiced")
    assert_close(kept.f0[:35], np.full(35, 440.0), HZ, what="DiffSinger elsewhere")
    ramp = hz_to_midi(kept.f0[36:44])
    assert np.all(np.diff(ramp) < 0), "the switch glides"
    assert kept.voiced.all()

    mixed = blend_tracks(ds, source, "mix", 0.25)
    assert_close(hz_to_midi(mixed.f0[45:75]), np.full(30, 69.0 - 3.0), SEMITONES,
                 what="a quarter of an octave down, in MIDI")
    nothing = _track(np.zeros(count), np.zeros(count, bool))
    alone = blend_tracks(nothing, source, "confident")
    assert_close(alone.f0, source.f0, HZ, what="no DiffSinger voicing: the source alone")
    assert alone.voiced.tolist() == src_voiced.tolist()

    with pytest.raises(InputError, match="off, confident, mix"):
        blend_tracks(ds, source, "median")
    with pytest.raises(InputError):
        blend_tracks(ds, source, "mix", 1.5)
    assert BLEND_MODES == ("off", "confident", "mix")
    weight = source_weight(np.array([0, 0, 0, 1, 1, 1, 1], bool), 1)
    exact = Tolerance("EXACT_WEIGHT", 0.0, 1e-12)
    assert_close(weight, [0, 0, 1 / 3, 2 / 3, 1, 1, 1], exact, what="ramp")
