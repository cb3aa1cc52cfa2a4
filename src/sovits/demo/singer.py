"""A source-filter singing synthesizer and the demo's synthetic two-singer dataset.

A phrase is a list of `Note`s (MIDI pitch or a rest, duration, vowel). The source is a
band-limited harmonic series whose amplitudes fall by the voice's spectral tilt (a
glottal-pulse-like spectrum), driven by an f0 curve with legato glides between
consecutive notes, delayed vibrato, slow random jitter (cents) and shimmer (dB), plus
pulse-synchronous breath noise. It is shaped by a cascade of second-order resonators
(one per formant, `scipy.signal.sosfilt`) for each vowel; the vowel outputs are
cross-faded where the vowel changes. Each `SingerVoice` has its own formant sets, tilt,
vibrato and pitch range, so two voices differ in timbre the way two singers do.

Everything is a pure function of its arguments and the `numpy.random.Generator` passed
in: `make_dataset` derives one generator per clip from its seed, so a seed gives the
same files bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from scipy import signal

from sovits.errors import InputError

__all__ = [
    "SINGER_A",
    "SINGER_B",
    "Note",
    "SingerVoice",
    "held_out_melody",
    "make_dataset",
    "midi_to_hz",
    "random_melody",
    "synthesize_phrase",
    "transposed",
]

Formants = tuple[tuple[float, float], ...]
"""Formants of one vowel: (centre frequency Hz, bandwidth Hz), lowest first."""


def midi_to_hz(midi: float | np.ndarray) -> np.ndarray:
    """Frequency in Hz of MIDI note numbers (69 = A4 = 440 Hz), float64."""
    return 440.0 * np.power(2.0, (np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


@dataclass(frozen=True)
class Note:
    """One note of a melody: `pitch` as a MIDI number (None for a rest), `seconds`
    its duration, `vowel` a key of the singer's formant table (ignored for rests)."""

    pitch: float | None
    seconds: float
    vowel: str = "a"


@dataclass(frozen=True)
class SingerVoice:
    """The parameters of one synthetic singer.

    formants: vowel name -> ((centre Hz, bandwidth Hz), ...) of its resonators.
    tilt_db_per_octave: slope of the harmonic amplitudes of the source (negative).
    vibrato_cents, vibrato_rate_hz: vibrato depth (peak deviation, cents) and rate.
    midi_low, midi_high: the pitch range melodies are drawn from (MIDI numbers).
    jitter_cents: standard deviation of the slow random f0 wander, cents.
    shimmer_db: standard deviation of the slow random amplitude wander, dB.
    breath_level: amplitude of the breath noise relative to the harmonic source.
    glide_seconds: length of the legato glide between consecutive notes.
    """

    name: str
    formants: Mapping[str, Formants]
    tilt_db_per_octave: float
    vibrato_cents: float
    vibrato_rate_hz: float
    midi_low: int
    midi_high: int
    jitter_cents: float = 6.0
    shimmer_db: float = 0.8
    breath_level: float = 0.03
    glide_seconds: float = 0.08

    def __post_init__(self) -> None:
        if not self.formants:
            raise InputError(f"singer {self.name!r} has no vowels")
        if not 0 < self.midi_low < self.midi_high < 110:
            raise InputError(
                f"singer {self.name!r}: need 0 < midi_low < midi_high < 110, got "
                f"{self.midi_low}, {self.midi_high}"
            )
        for vowel, formants in self.formants.items():
            if not formants or any(f <= 0 or b <= 0 for f, b in formants):
                raise InputError(f"singer {self.name!r}: bad formants for vowel {vowel!r}")

    @property
    def f0_range_hz(self) -> tuple[float, float]:
        """(lowest, highest) note frequency of the voice's range, Hz."""
        return float(midi_to_hz(self.midi_low)), float(midi_to_hz(self.midi_high))


SINGER_A = SingerVoice(
    name="singer_a",
    formants=MappingProxyType(
        {
            "a": ((657.0, 72.0), (981.0, 81.0), (2196.0, 108.0), (2970.0, 144.0)),
            "e": ((477.0, 63.0), (1656.0, 81.0), (2232.0, 108.0), (2970.0, 144.0)),
            "i": ((261.0, 54.0), (2061.0, 90.0), (2709.0, 108.0), (3150.0, 144.0)),
            "o": ((513.0, 63.0), (756.0, 72.0), (2169.0, 108.0), (2970.0, 144.0)),
            "u": ((288.0, 54.0), (783.0, 72.0), (2016.0, 108.0), (2970.0, 144.0)),
        }
    ),
    tilt_db_per_octave=-15.0,
    vibrato_cents=30.0,
    vibrato_rate_hz=5.2,
    midi_low=47,
    midi_high=65,
    breath_level=0.0,
)
"""A low, dark ("bass-baritone-ish") voice: B2-F4, adult male vowel formants lowered by
10 % (a long vocal tract), a steep -15 dB/octave tilt, no breath noise."""

SINGER_B = SingerVoice(
    name="singer_b",
    formants=MappingProxyType(
        {
            "a": ((1078.0, 110.0), (1650.0, 121.0), (3465.0, 165.0), (4840.0, 242.0)),
            "e": ((770.0, 99.0), (2805.0, 132.0), (3740.0, 165.0), (4840.0, 242.0)),
            "i": ((418.0, 88.0), (3300.0, 143.0), (4290.0, 176.0), (5060.0, 242.0)),
            "o": ((792.0, 99.0), (1265.0, 110.0), (3410.0, 165.0), (4730.0, 242.0)),
            "u": ((473.0, 88.0), (1320.0, 110.0), (3300.0, 165.0), (4730.0, 242.0)),
        }
    ),
    tilt_db_per_octave=-3.0,
    vibrato_cents=45.0,
    vibrato_rate_hz=6.0,
    midi_low=52,
    midi_high=72,
    breath_level=0.12,
)
"""A high, bright, breathy ("soprano-ish") voice: E3-C5, child-like formants (about
1.5x singer A's), a flat -3 dB/octave tilt, strong breath noise.

The two voices differ in every cue a speaker encoder hears (formant scale, spectral
tilt, breathiness), not only in one: with the earlier, closer pair (formants 1.3x apart,
tilts -12 / -6 dB) Resemblyzer rated the two singers 0.78 alike and the demo model's
output about equally similar to both; now the singers are 0.65 alike and the trained
output is nearer singer B by the embedding as well as by the cepstral distance.
Singer B's range overlaps singer A's (E3-F4), where `held_out_melody(SINGER_A)` lies
with a transpose of 0 to +3 semitones: the target singer has sung at the pitches the
demo converts to, so a model trained for minutes can render them."""


def _smooth_steps(
    values: np.ndarray, starts: np.ndarray, ramps: np.ndarray, length: int
) -> np.ndarray:
    """A curve [length] that is values[0] before starts[1] and moves to values[i] over
    `ramps[i]` samples (raised cosine) from starts[i]; values [K] or [K, D]."""
    values = np.asarray(values, dtype=np.float64)
    curve = np.broadcast_to(values[0], (length, *values.shape[1:])).copy()
    positions = np.arange(length, dtype=np.float64)
    for index in range(1, len(values)):
        change = values[index] - values[index - 1]
        if not np.any(change):
            continue
        ramp = max(float(ramps[index]), 1.0)
        progress = np.clip((positions - starts[index]) / ramp, 0.0, 1.0)
        shape = 0.5 - 0.5 * np.cos(np.pi * progress)
        curve += shape.reshape(-1, *([1] * (values.ndim - 1))) * change
    return curve


def _slow_noise(
    rng: np.random.Generator, length: int, sample_rate: int, rate_hz: float
) -> np.ndarray:
    """Unit-variance random wander [length]: Gaussian values `rate_hz` times a second,
    linearly interpolated."""
    points = int(np.ceil(length * rate_hz / sample_rate)) + 2
    knots = rng.standard_normal(points)
    times = np.arange(length, dtype=np.float64) * rate_hz / sample_rate
    return np.interp(times, np.arange(points, dtype=np.float64), knots)


def _resonator_sections(formants: Formants, sample_rate: int) -> np.ndarray:
    """Second-order sections [F, 6] of a cascade of resonators, each of unit gain at DC."""
    sections = []
    for frequency, bandwidth in formants:
        if frequency >= 0.48 * sample_rate:
            continue  # above the band this rate can carry
        radius = np.exp(-np.pi * bandwidth / sample_rate)
        theta = 2 * np.pi * frequency / sample_rate
        a1, a2 = -2 * radius * np.cos(theta), radius * radius
        sections.append([1.0 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.asarray(sections, dtype=np.float64).reshape(-1, 6)


def synthesize_phrase(
    voice: SingerVoice,
    notes: Sequence[Note],
    sample_rate: int,
    rng: np.random.Generator,
    *,
    hop_length: int = 512,
    peak: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Sing `notes` with `voice`.

    Returns (wave, f0): wave float32 [N] at `sample_rate` (N = total note time, peak
    normalised to `peak`) and the f0 that was sung, float32 [N // hop_length] in Hz,
    sampled at sample t * hop_length (the frame times of sovits' pitch extractors),
    vibrato and jitter included, 0 where the voice is silent or fading (rests, attacks,
    releases). Raises InputError for an empty phrase, unknown vowels or a bad rate.
    """
    if sample_rate < 8000 or hop_length <= 0:
        raise InputError(f"need sample_rate >= 8000 and hop_length > 0, got {sample_rate}")
    lengths = np.array([round(note.seconds * sample_rate) for note in notes], dtype=np.int64)
    if len(notes) == 0 or np.any(lengths < 0) or lengths.sum() < hop_length:
        raise InputError("the phrase needs notes of non-negative length, longer than one hop")
    if all(note.pitch is None for note in notes):
        raise InputError("the phrase has only rests")
    for note in notes:
        if note.pitch is not None and note.vowel not in voice.formants:
            raise InputError(
                f"vowel {note.vowel!r} is not in singer {voice.name!r}'s formant table",
                hint=f"use one of {', '.join(voice.formants)}",
            )
    total = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = starts + lengths
    voiced_notes = [note.pitch is not None for note in notes]

    # Rests take the pitch and vowel of the next sung note (or the last one at the end),
    # so the pitch jumps while the voice is silent; sung notes follow each other legato.
    pitches: list[float] = []
    vowels: list[str] = []
    for index in range(len(notes)):
        sung = next(n for n in list(notes[index:]) + list(notes[::-1]) if n.pitch is not None)
        assert sung.pitch is not None
        pitches.append(float(sung.pitch))
        vowels.append(sung.vowel)
    glide = voice.glide_seconds * sample_rate
    ramps = np.array(
        [
            glide if index > 0 and voiced_notes[index - 1] and voiced_notes[index] else 1.0
            for index in range(len(notes))
        ]
    )
    pitch = _smooth_steps(np.array(pitches), starts, ramps, total)

    vowel_names = sorted(set(vowels))
    one_hot = np.array([[float(v == name) for name in vowel_names] for v in vowels])
    vowel_ramps = np.full(len(notes), 0.06 * sample_rate)
    weights = _smooth_steps(one_hot, starts, vowel_ramps, total)  # [N, V]

    # Amplitude: per-note dynamics, attacks after rests, releases before rests.
    level = np.where(voiced_notes, rng.uniform(0.7, 1.0, len(notes)), 0.0)
    amplitude = np.zeros(total)
    attack, release = int(0.03 * sample_rate), int(0.05 * sample_rate)
    for index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if not voiced_notes[index]:
            continue
        segment = np.full(end - start, level[index])
        if index == 0 or not voiced_notes[index - 1]:
            count = min(attack, len(segment))
            segment[:count] *= np.linspace(0.0, 1.0, count, endpoint=False)
        if index == len(notes) - 1 or not voiced_notes[index + 1]:
            count = min(release, len(segment))
            segment[len(segment) - count :] *= np.linspace(1.0, 0.0, count)
        amplitude[start:end] = segment
    amplitude = np.convolve(amplitude, np.ones(65) / 65, mode="same")  # soften the corners
    amplitude *= 10 ** (voice.shimmer_db * _slow_noise(rng, total, sample_rate, 12.0) / 20)

    # f0: glides + vibrato growing after each onset + slow jitter.
    onsets = np.zeros(total, dtype=np.int64)
    onsets[starts[starts < total]] = starts[starts < total]
    since_onset = (np.arange(total) - np.maximum.accumulate(onsets)) / sample_rate
    times = np.arange(total) / sample_rate
    vibrato_phase = rng.uniform(0, 2 * np.pi)
    vibrato = voice.vibrato_cents * np.sin(
        2 * np.pi * voice.vibrato_rate_hz * times + vibrato_phase
    )
    vibrato *= 1.0 - np.exp(-since_onset / 0.25)
    jitter = voice.jitter_cents * _slow_noise(rng, total, sample_rate, 20.0)
    f0 = midi_to_hz(pitch + (vibrato + jitter) / 100.0)

    # Source: band-limited harmonics with the voice's tilt, plus breath noise.
    phase = np.mod(rng.uniform(0, 2 * np.pi) + np.cumsum(2 * np.pi * f0 / sample_rate), 2 * np.pi)
    nyquist = sample_rate / 2
    exponent = voice.tilt_db_per_octave / (20 * np.log10(2.0))
    top, fade_width = 0.95 * nyquist, 0.1 * nyquist
    source = np.zeros(total)
    # sin(k phase) by the recurrence sin((k+1) x) = 2 cos(x) sin(k x) - sin((k-1) x)
    two_cos, previous, current = 2 * np.cos(phase), np.zeros(total), np.sin(phase)
    for harmonic in range(1, int(top / f0.min()) + 1):
        weight: float | np.ndarray = float(harmonic) ** exponent
        if harmonic * f0.max() > top - fade_width:  # fade out towards Nyquist
            weight = weight * np.clip((top - harmonic * f0) / fade_width, 0.0, 1.0)
        source += weight * current
        previous, current = current, two_cos * current - previous
    breath = signal.sosfilt(
        signal.butter(2, 1500.0, btype="highpass", fs=sample_rate, output="sos"),
        rng.standard_normal(total),
    )
    source += voice.breath_level * breath * (0.6 + 0.4 * np.cos(phase))
    source *= amplitude

    wave = np.zeros(total)
    for column, name in enumerate(vowel_names):
        sections = _resonator_sections(voice.formants[name], sample_rate)
        wave += weights[:, column] * signal.sosfilt(sections, source)
    largest = float(np.max(np.abs(wave)))
    if largest > 0:
        wave *= peak / largest

    frames = total // hop_length
    positions = np.arange(frames) * hop_length
    f0_curve = np.where(amplitude[positions] > 0.5 * level.max(), f0[positions], 0.0)
    return wave.astype(np.float32), f0_curve.astype(np.float32)


_PENTATONIC = (0, 2, 4, 7, 9)
_DURATIONS = (0.25, 0.375, 0.5, 0.75)


def random_melody(voice: SingerVoice, rng: np.random.Generator, *, seconds: float) -> list[Note]:
    """A random melody of exactly `seconds`: a walk on a major pentatonic scale inside
    the voice's range, note lengths of 0.25-0.75 s, occasional rests, one vowel per
    note cycling through a random order of all the voice's vowels (so every clip has
    a balanced mix of them); short rests at both ends."""
    if seconds < 0.5:
        raise InputError(f"a melody needs at least 0.5 s, got {seconds}")
    scale = [
        midi
        for midi in range(voice.midi_low, voice.midi_high + 1)
        if (midi - 60) % 12 in _PENTATONIC
    ]
    names = [str(name) for name in rng.permutation(sorted(voice.formants))]
    position = int(rng.integers(len(scale)))
    sung = 0
    notes = [Note(None, 0.1)]
    elapsed, end = 0.1, seconds - 0.15
    while elapsed < end:
        if notes[-1].pitch is not None and rng.random() < 0.12:
            length = float(rng.uniform(0.15, 0.3))
            notes.append(Note(None, min(length, end - elapsed)))
        else:
            position = int(np.clip(position + rng.integers(-2, 3), 0, len(scale) - 1))
            length = _DURATIONS[int(rng.integers(len(_DURATIONS)))]
            vowel = names[sung % len(names)]
            notes.append(Note(float(scale[position]), min(length, end - elapsed), vowel))
            sung += 1
        elapsed += notes[-1].seconds
    notes.append(Note(None, seconds - sum(note.seconds for note in notes)))
    return notes


_HELD_OUT_DEGREES = (4, 4, 5, 7, 7, 5, 4, 2, 0, 0, 2, 4, 4, 2, 2)
_HELD_OUT_VOWELS = ("a", "o", "e", "i", "u")


def held_out_melody(voice: SingerVoice, *, note_seconds: float = 0.4) -> list[Note]:
    """A fixed tune never produced by `random_melody` (a major-scale line, the opening
    of the "Ode to Joy", with a dotted rhythm at its end) centred in the voice's range,
    vowels cycling through a, o, e, i, u (those the voice has); rests at both ends."""
    tonic = (voice.midi_low + voice.midi_high) // 2 - 4
    vowels = [v for v in _HELD_OUT_VOWELS if v in voice.formants] or sorted(voice.formants)
    notes = [Note(None, 0.1)]
    for index, degree in enumerate(_HELD_OUT_DEGREES):
        length = note_seconds
        if index == len(_HELD_OUT_DEGREES) - 3:
            length *= 1.5
        elif index == len(_HELD_OUT_DEGREES) - 2:
            length *= 0.5
        elif index == len(_HELD_OUT_DEGREES) - 1:
            length *= 2
        notes.append(Note(float(tonic + degree), length, vowels[index % len(vowels)]))
    notes.append(Note(None, 0.15))
    return notes


def transposed(notes: Sequence[Note], semitones: float) -> list[Note]:
    """`notes` with every sung pitch moved by `semitones` (rests unchanged)."""
    return [
        note if note.pitch is None else Note(note.pitch + semitones, note.seconds, note.vowel)
        for note in notes
    ]


def make_dataset(
    root: str | os.PathLike[str],
    *,
    n_clips_per_singer: int = 8,
    seconds: float = 6.0,
    sample_rate: int = 44100,
    seed: int = 0,
    voices: Sequence[SingerVoice] = (SINGER_A, SINGER_B),
) -> dict[str, list[Path]]:
    """Write `root/dataset_raw/<voice name>/<voice name>_<k>.wav` (16-bit PCM) for
    `n_clips_per_singer` random melodies of `seconds` per voice.

    Clip k of voice v uses the generator `np.random.default_rng([seed, v, k])`, so the
    files depend only on the arguments. Returns voice name -> written paths.
    """
    from sovits.audio.io import save_audio

    if n_clips_per_singer < 1:
        raise InputError(f"n_clips_per_singer must be positive, got {n_clips_per_singer}")
    written: dict[str, list[Path]] = {}
    for voice_index, voice in enumerate(voices):
        folder = Path(root) / "dataset_raw" / voice.name
        paths = []
        for clip in range(n_clips_per_singer):
            rng = np.random.default_rng([seed, voice_index, clip])
            notes = random_melody(voice, rng, seconds=seconds)
            wave, _ = synthesize_phrase(voice, notes, sample_rate, rng)
            paths.append(save_audio(folder / f"{voice.name}_{clip:03d}.wav", wave, sample_rate))
        written[voice.name] = paths
    return written
