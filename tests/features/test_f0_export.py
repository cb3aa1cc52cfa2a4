"""F0 curve files (.csv / .npy): exact round trips, regridding, and clear errors on bad files;
plus reading audio files for extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits.errors import InputError
from sovits.features.pitch.base import PitchTrack
from sovits.features.pitch.export import (
    NPY_DTYPE,
    F0Curve,
    extract_f0_from_file,
    f0_curve_format,
    load_f0_curve,
    save_f0_curve,
)


def _track(frames: int = 50) -> PitchTrack:
    rng = np.random.default_rng(1)
    f0 = rng.uniform(80, 900, frames).astype(np.float32)
    voiced = rng.random(frames) > 0.3
    return PitchTrack(f0, voiced, 44100, 512)


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".CSV"])
def test_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    track = _track()
    path = save_f0_curve(track, tmp_path / f"curve{suffix}")
    curve = load_f0_curve(path)
    np.testing.assert_array_equal(curve.times, track.times)
    np.testing.assert_array_equal(curve.f0, track.f0)
    np.testing.assert_array_equal(curve.voiced, track.voiced)
    again = curve.to_track(44100, 512)
    assert len(again) == len(track)
    np.testing.assert_array_equal(again.f0, track.f0)
    np.testing.assert_array_equal(again.voiced, track.voiced)


def test_csv_layout(tmp_path: Path) -> None:
    track = PitchTrack(
        np.array([0.0, 220.5, 221.25], dtype=np.float32), np.array([False, True, True]), 100, 1
    )
    path = save_f0_curve(track, tmp_path / "curve.csv")
    assert path.read_text().splitlines() == [
        "time_s,f0_hz,voiced",
        "0,0,0",
        "0.01,220.5,1",
        "0.02,221.25,1",
    ]
    npy = save_f0_curve(track, tmp_path / "curve.npy")
    table = np.load(npy, allow_pickle=False)
    assert table.dtype == NPY_DTYPE
    assert table["voiced"].tolist() == [False, True, True]


def test_hand_edited_csv_and_plain_npy(tmp_path: Path) -> None:
    csv = tmp_path / "edited.csv"
    csv.write_text(" Time_s , f0_hz ,VOICED\n0.0,0,false\n\n0.5, 200 ,TRUE\r\n1.0,400,1\n")
    curve = load_f0_curve(csv)
    assert curve.times.tolist() == [0.0, 0.5, 1.0]
    assert curve.f0.tolist() == [0.0, 200.0, 400.0]
    assert curve.voiced.tolist() == [False, True, True]
    plain = tmp_path / "plain.npy"
    np.save(plain, np.array([[0.0, 0.0, 0.0], [0.5, 200.0, 1.0], [1.0, 400.0, 1.0]]))
    other = load_f0_curve(plain)
    np.testing.assert_array_equal(other.f0, curve.f0)
    np.testing.assert_array_equal(other.voiced, curve.voiced)


def test_regridding_to_another_hop() -> None:
    curve = F0Curve(
        np.array([0.0, 0.1, 0.2]),
        np.array([100.0, 200.0, 300.0], dtype=np.float32),
        np.array([True, False, True]),
    )
    track = curve.to_track(sample_rate=1000, hop_length=40)
    assert len(track) == 6
    np.testing.assert_allclose(track.f0, [100, 140, 180, 220, 260, 300], rtol=1e-6)
    # each frame takes the voicing of the nearest point: 0 and 0.04 s -> 0 s, ...
    assert track.voiced.tolist() == [True, True, False, False, True, True]
    longer = curve.to_track(1000, 40, n_frames=8)
    assert longer.f0[-1] == 300 and longer.voiced[-1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header"),
        ("time,f0,voiced\n0,100,1\n", "header"),
        ("time_s,f0_hz,voiced\n", "no rows"),
        ("time_s,f0_hz,voiced\n0,100\n", "line 2: expected 3"),
        ("time_s,f0_hz,voiced\n0,100,1\n0.01,abc,1\n", "line 3: .*numbers"),
        ("time_s,f0_hz,voiced\n0,100,1\n", "line 2: .*only one row"),
        ("time_s,f0_hz,voiced\n0,100,1\n0.01,nan,1\n", "line 3: .*finite"),
        ("time_s,f0_hz,voiced\n0,nan,0\n0.01,100,1\n", "line 2: .*finite"),
        ("time_s,f0_hz,voiced\n0,1e40,1\n0.01,100,1\n", "line 2: .*finite"),
        ("time_s,f0_hz,voiced\n0,100,1\n0,100,1\n", "line 3: .*increase"),
        ("time_s,f0_hz,voiced\n0,100,1\n0.02,100,1\n0.01,100,1\n", "line 4: .*increase"),
        ("time_s,f0_hz,voiced\n-1,100,1\n0,100,1\n", "line 2: .*negative"),
        ("time_s,f0_hz,voiced\n0,100,1\n0.01,-5,0\n", "line 3: f0_hz is negative"),
        ("time_s,f0_hz,voiced\n0,0,1\n0.01,100,1\n", "voiced frame needs"),
        ("time_s,f0_hz,voiced\n0,100,yes\n", "voiced must be"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        load_f0_curve(path)
    assert str(path) in str(caught.value)


def test_bad_npy(tmp_path: Path) -> None:
    cases = {
        "object.npy": np.array([{"a": 1}], dtype=object),
        "shape.npy": np.zeros((4, 2)),
        "text.npy": np.array([["0", "1", "1"]]),
        "fields.npy": np.zeros(3, dtype=[("time_s", "f8"), ("f0", "f4")]),
        "flag.npy": np.array([[0.0, 100.0, 2.0]]),
        "order.npy": np.array([[0.5, 100.0, 1.0], [0.1, 100.0, 1.0]]),
    }
    for name, array in cases.items():
        path = tmp_path / name
        np.save(path, array, allow_pickle=True)
        with pytest.raises(InputError):
            load_f0_curve(path)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="cannot read"):
        load_f0_curve(junk)


def test_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_f0_curve(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="unsupported"):
        save_f0_curve(_track(), tmp_path / "curve.txt")
    with pytest.raises(InputError, match="unsupported"):
        f0_curve_format("curve")
    assert f0_curve_format("a/b.NPY") == "npy"
    nested = save_f0_curve(_track(), tmp_path / "new" / "folder" / "curve.csv")
    assert load_f0_curve(nested).times.size == len(_track())  # missing folders are made
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with pytest.raises(InputError, match="cannot write") as caught:
        save_f0_curve(_track(), blocker / "curve.csv")
    assert ".tmp" not in str(caught.value) and str(blocker) in str(caught.value)
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InputError, match="cannot write") as caught:
        save_f0_curve(_track(), tmp_path / "folder.csv")
    assert ".tmp" not in str(caught.value)


def _tone(seconds: float, sample_rate: int, channels: int = 1) -> np.ndarray:
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = sum(0.2 / k * np.sin(2 * np.pi * 200 * k * time) for k in range(1, 6))
    return np.stack([wave] * channels, axis=1).astype(np.float32)


def test_unusable_audio(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros((0, 1), dtype=np.float32), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full((1600, 1), np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    for path, message in [
        (empty, "no samples"),
        (corrupt, "cannot read"),
        (nan, "NaN"),
        (tmp_path / "absent.wav", "not found"),
        (tmp_path, "is a folder, expected an audio file"),
    ]:
        with pytest.raises(InputError, match=message):
            extract_f0_from_file(path, "pm", sample_rate=16000, hop_length=160)


def test_extract_from_file_with_transpose(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    soundfile.write(path, _tone(0.5, 16000), 16000)
    plain = extract_f0_from_file(path, "dio", sample_rate=16000, hop_length=160)
    up = extract_f0_from_file(path, "dio", sample_rate=16000, hop_length=160, transpose=12)
    assert len(plain) == 50
    np.testing.assert_allclose(up.f0, plain.f0 * 2, rtol=1e-6)
    np.testing.assert_array_equal(up.voiced, plain.voiced)
    assert 195 < np.median(plain.f0[plain.voiced]) < 205
    with pytest.raises(InputError, match="unknown f0 method"):
        extract_f0_from_file(path, "yin")


@pytest.mark.parametrize("transpose", [100.0, -48.5, float("nan")])
def test_transpose_out_of_range_is_refused_before_reading(
    tmp_path: Path, transpose: float
) -> None:
    with pytest.raises(InputError, match=r"transpose \(-t\) .* -48 to 48 semitones"):
        extract_f0_from_file(tmp_path / "absent.wav", "pm", transpose=transpose)


def test_max_transpose_is_the_conversion_limit() -> None:
    from sovits.dsp.f0 import MAX_TRANSPOSE
    from sovits.inference.options import MAX_TRANSPOSE as CONVERT_MAX

    assert MAX_TRANSPOSE == CONVERT_MAX
