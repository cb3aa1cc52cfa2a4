"""The synthetic singers: deterministic, singing the notes asked for, distinct timbres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits.demo.singer import (
    SINGER_A,
    SINGER_B,
    Note,
    SingerVoice,
    held_out_melody,
    make_dataset,
    midi_to_hz,
    random_melody,
    synthesize_phrase,
    transposed,
)
from sovits.errors import InputError
from sovits.features.pitch.registry import create_pitch_extractor

RATE, HOP = 16000, 160


def test_a_seed_gives_the_same_phrase() -> None:
    first = synthesize_phrase(
        SINGER_A,
        random_melody(SINGER_A, np.random.default_rng(3), seconds=1.5),
        RATE,
        np.random.default_rng(4),
        hop_length=HOP,
    )
    second = synthesize_phrase(
        SINGER_A,
        random_melody(SINGER_A, np.random.default_rng(3), seconds=1.5),
        RATE,
        np.random.default_rng(4),
        hop_length=HOP,
    )
    other = synthesize_phrase(
        SINGER_A,
        random_melody(SINGER_A, np.random.default_rng(3), seconds=1.5),
        RATE,
        np.random.default_rng(5),
        hop_length=HOP,
    )
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])
    wave, f0 = first
    assert wave.dtype == np.float32 and wave.shape == (1.5 * RATE,)
    assert f0.dtype == np.float32 and f0.shape == (len(wave) // HOP,)
    assert np.isclose(np.abs(wave).max(), 0.6)


def test_random_melody_fills_the_time_inside_the_range() -> None:
    for seed in range(5):
        notes = random_melody(SINGER_B, np.random.default_rng(seed), seconds=4.0)
        assert sum(note.seconds for note in notes) == pytest.approx(4.0)
        assert notes[0].pitch is None and notes[-1].pitch is None
        pitches = [note.pitch for note in notes if note.pitch is not None]
        assert all(SINGER_B.midi_low <= p <= SINGER_B.midi_high for p in pitches)
        assert all(note.seconds >= 0 for note in notes)


@pytest.mark.parametrize("voice", [SINGER_A, SINGER_B], ids=lambda v: v.name)
def test_harvest_hears_the_requested_notes(voice: SingerVoice) -> None:
    notes = held_out_melody(voice, note_seconds=0.2)
    wave, sung = synthesize_phrase(voice, notes, RATE, np.random.default_rng(0), hop_length=HOP)
    # the note asked for at every frame, 0 in rests
    requested = np.zeros(len(sung))
    start = 0.0
    for note in notes:
        first, last = round(start * RATE / HOP), round((start + note.seconds) * RATE / HOP)
        requested[first:last] = 0 if note.pitch is None else midi_to_hz(note.pitch)
        start += note.seconds
    track = create_pitch_extractor("harvest").extract(wave, RATE, HOP)
    voiced = track.voiced & (sung > 0) & (requested[: len(sung)] > 0)
    assert voiced.mean() > 0.6
    cents = 1200 * np.abs(np.log2(track.f0[voiced] / requested[voiced]))
    assert np.median(cents) < 20
    # and the returned curve is what was sung: vibrato and glides included
    assert np.median(1200 * np.abs(np.log2(track.f0[voiced] / sung[voiced]))) < 10
    # silent at the rests of both ends (0.1 s and 0.15 s)
    assert np.all(sung[:8] == 0) and np.all(sung[-12:] == 0)


def _envelope_db(wave: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Long-term average spectrum in dB [bins] and its frequencies, 1/3-octave smoothed."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, 2048)[::512] * np.hanning(2048)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(2048, 1 / rate)
    smooth = np.array(
        [
            power[(freqs > f / 1.12) & (freqs < f * 1.12)].mean() if f > 0 else power[0]
            for f in freqs
        ]
    )
    return freqs, 10 * np.log10(smooth + 1e-12)


def test_singers_differ_in_their_formants() -> None:
    # the same vowel held on the same pitch: singer B's first formant is higher
    notes = [Note(None, 0.05), Note(57.0, 1.0, "a"), Note(None, 0.05)]
    freqs, low = _envelope_db(
        synthesize_phrase(SINGER_A, notes, RATE, np.random.default_rng(1))[0], RATE
    )
    _, high = _envelope_db(
        synthesize_phrase(SINGER_B, notes, RATE, np.random.default_rng(1))[0], RATE
    )
    band = (freqs > 500) & (freqs < 1300)
    peak_a, peak_b = freqs[band][np.argmax(low[band])], freqs[band][np.argmax(high[band])]
    assert 600 < peak_a < 850 < peak_b < 1150
    # and B's flatter tilt leaves more energy high up (relative to its level at F1)
    top = (freqs > 2500) & (freqs < 4500)
    assert high[top].mean() - high[band].max() > low[top].mean() - low[band].max() + 6


def test_bad_phrases_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="only rests"):
        synthesize_phrase(SINGER_A, [Note(None, 1.0)], RATE, rng)
    with pytest.raises(InputError, match="vowel 'y'"):
        synthesize_phrase(SINGER_A, [Note(50.0, 1.0, "y")], RATE, rng)
    with pytest.raises(InputError):
        synthesize_phrase(SINGER_A, [], RATE, rng)


def test_make_dataset_writes_the_same_files_for_a_seed(tmp_path: Path) -> None:
    written = make_dataset(
        tmp_path / "one", n_clips_per_singer=2, seconds=1.0, sample_rate=RATE, seed=7
    )
    again = make_dataset(
        tmp_path / "two", n_clips_per_singer=2, seconds=1.0, sample_rate=RATE, seed=7
    )
    assert sorted(written) == ["singer_a", "singer_b"]
    for name, paths in written.items():
        assert [p.relative_to(tmp_path / "one") for p in paths] == [
            Path("dataset_raw") / name / f"{name}_{k:03d}.wav" for k in range(2)
        ]
        for path, twin in zip(paths, again[name], strict=True):
            assert path.read_bytes() == twin.read_bytes()
            info = soundfile.info(str(path))
            assert info.samplerate == RATE and info.frames == RATE and info.subtype == "PCM_16"
    assert written["singer_a"][0].read_bytes() != written["singer_a"][1].read_bytes()


def test_transposed_moves_sung_notes_only() -> None:
    notes = [Note(None, 0.1), Note(50.0, 0.4, "e"), Note(52.5, 0.2, "o")]
    assert transposed(notes, 3.0) == [Note(None, 0.1), Note(53.0, 0.4, "e"), Note(55.5, 0.2, "o")]


def test_the_held_out_melody_lies_in_both_ranges_up_to_three_semitones_up() -> None:
    # The demo converts it to singer B at transposes 0 and +3: B has sung those pitches.
    pitches = [note.pitch for note in held_out_melody(SINGER_A) if note.pitch is not None]
    for shift in (0.0, 3.0):
        assert all(SINGER_B.midi_low <= p + shift <= SINGER_B.midi_high for p in pitches)
    assert all(SINGER_A.midi_low <= p <= SINGER_A.midi_high for p in pitches)
