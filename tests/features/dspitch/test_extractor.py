"""The dspitch extractor end to end on fake banks of every export version
(../shared/design/dspitch.md section 4.5: the properties to assert)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sovits.errors import CheckpointError, InputError
from sovits.features.pitch.base import PitchExtractor
from sovits.features.pitch.dspitch import DsPitchExtractor
from sovits.features.pitch.dspitch.notes import midi_to_hz
from sovits.features.pitch.registry import create_pitch_extractor
from tests.features.dspitch._bank import (
    VARIANTS,
    VIBRATO,
    Variant,
    pitch_model,
    sine_wave,
    some_notes,
    write_bank,
)
from tests.tolerance import HZ, Tolerance, assert_close

SEMITONES = Tolerance("SEMITONES", rtol=0.0, atol=1e-4)
"""MIDI values: 0.01 cents."""
RATE, HOP = 44100, 512
EDGE_SECONDS = 0.05
"""Frames this close to a note boundary are not 'interior'."""


def _cents(f0: np.ndarray, reference_hz: np.ndarray) -> np.ndarray:
    return np.asarray(1200.0 * np.log2(np.asarray(f0, np.float64) / reference_hz))


def _note_at(folder: Path, wave: np.ndarray, times: np.ndarray):
    """(midi, rest, distance to the nearest boundary in s) of SOME's note at each time."""
    midi, rest, seconds = some_notes(folder, wave)
    ends = np.cumsum(seconds.astype(np.float64))
    index = np.minimum(np.searchsorted(ends, times, side="right"), len(ends) - 1)
    bounds = np.concatenate(([0.0], ends))
    distance = np.min(np.abs(times[:, None] - bounds[None, :]), axis=1)
    return midi[index], rest[index], distance


def test_registered_and_built_through_the_registry(banks: dict[str, Path]) -> None:
    extractor = create_pitch_extractor("dspitch", folder=banks["v2023"], steps=4)
    assert isinstance(extractor, DsPitchExtractor) and isinstance(extractor, PitchExtractor)
    assert extractor.name == "dspitch"
    with pytest.raises(InputError, match="accepts: folder, steps"):
        create_pitch_extractor("dspitch", hop=3)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_export_version_follows_the_notes(
    banks: dict[str, Path], wave: np.ndarray, variant: str
) -> None:
    folder = banks[variant]
    times = np.arange(len(wave) // HOP) * HOP / RATE
    midi, rest, distance = _note_at(folder, wave, times)
    interior = ~rest & (distance >= EDGE_SECONDS)
    assert interior.sum() > 90
    for expressiveness in (0.0, 1.0):
        track = DsPitchExtractor(folder=folder, expressiveness=expressiveness).extract(
            wave, RATE, HOP
        )
        # shape and type
        assert len(track) == len(wave) // HOP == 258
        assert track.f0.dtype == np.float32 and track.voiced.dtype == np.bool_
        assert (track.sample_rate, track.hop_length) == (RATE, HOP)
        # never the fork's retake=False / pitch=0 result (MIDI 0 = 8.18 Hz)
        assert track.f0.min() > 30.0
        cents = _cents(track.f0[interior], midi_to_hz(midi[interior]))
        frozen = not VARIANTS[variant].expr
        if expressiveness == 0.0 and not frozen:
            assert_close(cents / 100, np.zeros(interior.sum()), SEMITONES,
                         what=f"{variant}: f0 = the note pitch with expr 0")
        else:  # the fake's vibrato of 0.3 semitones (expr frozen at 1 without an input)
            assert np.abs(cents).max() <= 100 * VIBRATO + 0.01
            assert np.abs(cents).max() >= 100 * VIBRATO - 1.0


def test_voicing_rests_and_boundaries(banks: dict[str, Path], wave: np.ndarray) -> None:
    folder = banks["v2023"]
    track = DsPitchExtractor(folder=folder, expressiveness=0.0).extract(wave, RATE, HOP)
    times = np.arange(len(track)) * HOP / RATE
    _, rest, _ = _note_at(folder, wave, times)
    assert track.voiced.tolist() == (~rest).tolist()
    assert rest.sum() == 32  # two silent blocks of 16 frames
    index = np.arange(len(track))
    filled = np.interp(index[rest], index[~rest], track.f0[~rest].astype(np.float64))
    assert_close(track.f0[rest], filled, HZ, what="rest frames interpolate the voiced ones")
    # every voiced frame lies within the pitch range of the notes within +-3 frames
    # (smoothing and time interpolation are convex combinations)
    notes_midi, notes_rest, seconds = some_notes(folder, wave)
    ends = np.cumsum(seconds.astype(np.float64))
    filled_midi = notes_midi.copy()
    for k in np.flatnonzero(notes_rest):  # the inner rest group borrows its neighbours
        filled_midi[k] = notes_midi[k - 1] if k < len(notes_midi) - 1 else notes_midi[-1]
    for frame in np.flatnonzero(track.voiced):
        near = times[max(frame - 3, 0) : frame + 4]
        notes = np.minimum(np.searchsorted(ends, near, side="right"), len(ends) - 1)
        candidates = np.concatenate(
            [filled_midi[notes], notes_midi[notes[~notes_rest[notes]]]]
        )
        low, high = midi_to_hz(candidates.min()), midi_to_hz(candidates.max())
        assert low * (1 - 1e-6) <= track.f0[frame] <= high * (1 + 1e-6), frame


def test_silence_gives_an_unvoiced_zero_track(banks: dict[str, Path]) -> None:
    track = DsPitchExtractor(folder=banks["v2023"]).extract(np.zeros(RATE, np.float32), RATE, HOP)
    assert len(track) == RATE // HOP
    assert not track.voiced.any() and not track.f0.any()


def test_n_frames_and_other_grids(tmp_path: Path, wave: np.ndarray, banks: dict[str, Path]) -> None:
    """A 48 kHz / 480 pitch-model grid serves hops 512 and 256; a 16 kHz input (resampled
    for SOME) lines up in time with the 44.1 kHz one."""
    folder = write_bank(tmp_path / "b48k", "v2023", sample_rate=48000, hop_size=480)
    extractor = DsPitchExtractor(folder=folder, expressiveness=0.0)
    for hop in (512, 256):
        track = extractor.extract(wave, RATE, hop)
        assert len(track) == len(wave) // hop
        times = np.arange(len(track)) * hop / RATE
        midi, rest, distance = _note_at(folder, wave, times)
        interior = ~rest & (distance >= EDGE_SECONDS)
        assert_close(_cents(track.f0[interior], midi_to_hz(midi[interior])) / 100,
                     np.zeros(interior.sum()), SEMITONES, what=f"48k/480 grid to hop {hop}")
    assert len(extractor.extract(wave, RATE, HOP, n_frames=300)) == 300

    low = sine_wave(16000)
    track = DsPitchExtractor(folder=banks["v2023"], expressiveness=0.0).extract(low, 16000, 160)
    assert len(track) == len(low) // 160
    times = np.arange(len(track)) * 160 / 16000
    midi, rest, distance = _note_at(banks["v2023"], wave, times)
    interior = ~rest & (distance >= EDGE_SECONDS)
    assert_close(_cents(track.f0[interior], midi_to_hz(midi[interior])) / 100,
                 np.zeros(interior.sum()), SEMITONES, what="16 kHz input")
    assert track.voiced[(distance >= EDGE_SECONDS)].tolist() == (~rest)[
        distance >= EDGE_SECONDS
    ].tolist()


def test_speaker_embedding_shifts_the_curve(banks: dict[str, Path], wave: np.ndarray) -> None:
    folder = banks["v2025"]
    alto = DsPitchExtractor(folder=folder, speaker="spk.alto").extract(wave, RATE, HOP)
    tenor = DsPitchExtractor(folder=folder, speaker="tenor").extract(wave, RATE, HOP)
    default = DsPitchExtractor(folder=folder).extract(wave, RATE, HOP)
    assert_close(_cents(tenor.f0, alto.f0.astype(np.float64)) / 100, np.ones(len(alto)),
                 SEMITONES, what="tenor = alto + 1 semitone")
    assert_close(default.f0, alto.f0, HZ, what="the first speaker by default")
    with pytest.raises(InputError, match=r"spk\.alto, spk\.tenor"):
        DsPitchExtractor(folder=folder, speaker="bass")


def test_language_and_vowel(tmp_path: Path, banks: dict[str, Path], wave: np.ndarray) -> None:
    folder = banks["v2025"]
    plain = DsPitchExtractor(folder=folder).extract(wave, RATE, HOP)
    chinese = DsPitchExtractor(folder=folder, language="zh").extract(wave, RATE, HOP)
    assert_close(chinese.f0, plain.f0, HZ, what="the fake ignores the vowel's language")
    with pytest.raises(InputError, match="unknown DiffSinger language 'ko'"):
        DsPitchExtractor(folder=folder, language="ko")
    only_prefixed = write_bank(
        tmp_path / "zh", "v2025", phonemes=["<PAD>", "AP", "SP", "zh/a", "ja/a"]
    )
    with pytest.raises(InputError, match="zh/a, ja/a: pass its language"):
        DsPitchExtractor(folder=only_prefixed)
    assert DsPitchExtractor(folder=only_prefixed, language="ja").predictor.language_id == 2
    no_sp = write_bank(tmp_path / "nosp", "v2023", phonemes=["<PAD>", "AP", "a"])
    with pytest.raises(InputError, match="no SP"):
        DsPitchExtractor(folder=no_sp)
    with pytest.raises(InputError, match="no vowel o"):
        DsPitchExtractor(folder=banks["v2023"], vowel="o")


def test_the_graph_inputs_decide_the_feeds(tmp_path: Path, wave: np.ndarray) -> None:
    """A rank-1 `steps`, and models that lack inputs the runner could send."""
    variant = Variant(word_mode=False, note_rest=False, expr=False, speaker=False,
                      acceleration="steps")
    model = pitch_model(note_rest=False, expr=False, speaker=False, acceleration="steps",
                        acceleration_rank=1)
    folder = write_bank(tmp_path / "lean", variant, pitch=model)
    extractor = DsPitchExtractor(folder=folder)
    assert set(extractor.predictor.pitch.inputs) == {
        "encoder_out", "ph_dur", "note_midi", "note_dur", "pitch", "retake", "steps"
    }
    assert extractor.predictor.pitch.scalar("steps", 10).shape == (1,)
    track = extractor.extract(wave, RATE, HOP)
    assert track.f0.min() > 30.0 and track.voiced.sum() == 226


def test_unusable_graphs_are_named(tmp_path: Path) -> None:
    variant = VARIANTS["v2023"]
    extra = pitch_model(note_rest=True, expr=True, speaker=False, acceleration="speedup",
                        extra_input="foo")
    folder = write_bank(tmp_path / "foo", variant, pitch=extra)
    with pytest.raises(CheckpointError, match=r"declares the input\(s\) foo") as error:
        DsPitchExtractor(folder=folder)
    assert "ds_pitch.onnx" in str(error.value) and "spk_embed" in str(error.value)
    renamed = pitch_model(note_rest=True, expr=True, speaker=False, acceleration="speedup",
                          output_name="f0_pred")
    folder = write_bank(tmp_path / "out", variant, pitch=renamed)
    with pytest.raises(CheckpointError, match="no output pitch_pred"):
        DsPitchExtractor(folder=folder)
    (folder / "ds_pitch.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="cannot load the DiffSinger pitch model"):
        DsPitchExtractor(folder=folder)


def test_bad_speaker_embedding(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "emb", "v2025")
    np.zeros(5, "<f4").tofile(folder / "spk.alto.emb")
    with pytest.raises(CheckpointError, match="5 values but the pitch model needs 16"):
        DsPitchExtractor(folder=folder)
    (folder / "spk.tenor.emb").unlink()
    with pytest.raises(Exception, match=r"spk\.tenor\.emb"):
        DsPitchExtractor(folder=folder, speaker="tenor")


def test_mismatched_durations_fail_inside_onnxruntime(banks: dict[str, Path]) -> None:
    """As with the real models: the graphs combine tensors made from each length."""
    extractor = DsPitchExtractor(folder=banks["v2023"])
    pitch = extractor.predictor.pitch
    encoder = np.zeros((1, 3, 16), np.float32)
    feeds = {
        "encoder_out": encoder, "ph_dur": np.array([[8, 10, 8]]),
        "note_midi": np.array([[60.0, 60.0, 60.0]], np.float32),
        "note_rest": np.array([[True, False, True]]), "note_dur": np.array([[8, 11, 8]]),
        "pitch": np.full((1, 26), 60.0, np.float32), "expr": np.ones((1, 26), np.float32),
        "retake": np.ones((1, 26), bool), "speedup": np.array(100),
    }
    with pytest.raises(CheckpointError, match="pitch model failed"):
        pitch.run(("pitch_pred",), feeds)
    (curve,) = pitch.run(("pitch_pred",), {**feeds, "note_dur": np.array([[8, 10, 8]])})
    assert curve.shape == (1, 26)
    word = DsPitchExtractor(folder=banks["v2024"]).predictor.linguistic
    tokens = {"tokens": np.array([[2, 3, 2]]), "word_dur": np.array([[8, 18]])}
    with pytest.raises(CheckpointError, match="linguistic model failed"):
        word.run(("encoder_out",), {**tokens, "word_div": np.array([[1, 1]])})
    (encoded,) = word.run(("encoder_out",), {**tokens, "word_div": np.array([[1, 2]])})
    assert encoded.shape == (1, 3, 16)


def test_blend_with_the_source_f0(banks: dict[str, Path], wave: np.ndarray) -> None:
    folder = banks["v2023"]
    plain = DsPitchExtractor(folder=folder, expressiveness=0.0).extract(wave, RATE, HOP)
    source = create_pitch_extractor("dio").extract(wave, RATE, HOP)
    kept = DsPitchExtractor(folder=folder, expressiveness=0.0, blend="confident",
                            blend_source="dio").extract(wave, RATE, HOP)
    mixed = DsPitchExtractor(folder=folder, expressiveness=0.0, blend="mix", blend_ratio=0.5,
                             blend_source="dio").extract(wave, RATE, HOP)
    # frames whose +-3 neighbours are all voiced by dio carry dio's f0 exactly
    steady = np.convolve(source.voiced.astype(float), np.ones(7), mode="same") == 7
    assert steady.sum() > 150
    assert_close(kept.f0[steady], source.f0[steady], HZ, what="confident keeps dio")
    halfway = (np.log2(plain.f0[steady].astype(np.float64))
               + np.log2(source.f0[steady].astype(np.float64))) / 2
    assert_close(np.log2(mixed.f0[steady]), halfway, SEMITONES, what="mix halfway in MIDI")
    assert (kept.voiced == (plain.voiced | source.voiced)).all()
    with pytest.raises(InputError, match="another f0 method"):
        DsPitchExtractor(folder=folder, blend="mix", blend_source="dspitch")
    with pytest.raises(InputError, match="off, confident, mix"):
        DsPitchExtractor(folder=folder, blend="average")


def test_option_ranges(banks: dict[str, Path]) -> None:
    for options in ({"steps": 0}, {"steps": 1001}, {"expressiveness": 1.5},
                    {"blend_ratio": -0.1}, {"expressiveness": float("nan")}):
        with pytest.raises(InputError):
            DsPitchExtractor(folder=banks["v2023"], **options)  # type: ignore[arg-type]


def test_long_inputs_are_cut_at_silences_for_some(banks: dict[str, Path]) -> None:
    """Over 30 s SOME runs per sound piece; the notes still add up to the wave and the
    voicing still follows the silences."""
    wave = np.tile(sine_wave(), 12)  # 36 s, a 0.6 s silence every 3 s
    extractor = DsPitchExtractor(folder=banks["v2023"], expressiveness=0.0)
    runs: list[int] = []
    run = extractor.some._run

    def counted(piece: np.ndarray):  # type: ignore[no-untyped-def]
        runs.append(len(piece))
        return run(piece)

    extractor.some._run = counted  # type: ignore[method-assign]
    notes = extractor.some.notes(wave, RATE)
    assert notes.seconds.sum() == pytest.approx(len(wave) / RATE, abs=1e-9)
    assert len(runs) > 1 and sum(runs) == len(wave) and max(runs) <= 30 * RATE
    track = extractor.extract(wave, RATE, HOP)
    assert len(track) == len(wave) // HOP and track.f0.min() > 30.0
    times = np.arange(len(track)) * HOP / RATE
    phase = times % 3.0
    period = (times // 3.0).astype(int)
    for gap in range(12):  # the fake's 0.19 s rest blocks fall inside every silence
        silent = (period == gap) & (phase > 1.2) & (phase < 1.8)
        assert (~track.voiced[silent]).sum() >= 10, gap
    assert track.voiced[(phase > 0.2) & (phase < 1.0)].all()
