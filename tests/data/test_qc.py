"""The dataset QC report: what it flags, the f0 ranges, and the text and PNG it writes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits.data.qc import (
    QcSettings,
    analyse_dataset,
    encode_png,
    render_report_image,
    write_qc_report,
)
from sovits.errors import InputError

RATE = 16000


def _tone(seconds: float, frequency: float, amplitude: float = 0.3, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def make_dataset(root: Path) -> Path:
    """dataset/44k-like folder: alice sings 220 Hz, bob 110 Hz, with one problem each."""
    dataset = root / "44k"
    alice, bob = dataset / "alice", dataset / "bob"
    alice.mkdir(parents=True)
    bob.mkdir()
    soundfile.write(alice / "a0.wav", _tone(3.0, 220.0), RATE)
    soundfile.write(alice / "a1.wav", _tone(2.5, 220.0), RATE)
    soundfile.write(alice / "short.wav", _tone(0.5, 220.0), RATE)
    soundfile.write(alice / "clipped.wav", np.clip(_tone(3.0, 220.0, 3.0), -1, 1), RATE)
    soundfile.write(bob / "b0.wav", _tone(3.0, 110.0), RATE)
    mostly_quiet = np.concatenate([np.zeros(3 * RATE, np.float32), _tone(1.0, 110.0)])
    soundfile.write(bob / "quiet.wav", mostly_quiet, RATE)
    soundfile.write(bob / "stereo.wav", np.stack([_tone(3.0, 110.0)] * 2, axis=1), RATE)
    soundfile.write(bob / "other_rate.wav", _tone(3.0, 110.0, rate=22050), 22050)
    (bob / "broken.wav").write_bytes(b"RIFF junk")
    return dataset


def test_report_flags_each_problem(tmp_path: Path) -> None:
    report = analyse_dataset(make_dataset(tmp_path), QcSettings(f0_method=None, max_seconds=3.5))
    assert report.sample_rate == RATE
    assert [clip.path.name for clip in report.too_short] == ["short.wav"]
    assert [clip.path.name for clip in report.too_long] == ["quiet.wav"]
    assert [clip.path.name for clip in report.clipped] == ["clipped.wav"]
    assert [clip.path.name for clip in report.mostly_silent] == ["quiet.wav"]
    assert [clip.path.name for clip in report.other_rate] == ["other_rate.wav"]
    assert [clip.path.name for clip in report.multichannel] == ["stereo.wav"]
    assert [problem.path.name for problem in report.failed] == ["broken.wav"]
    assert [(s.name, s.clips) for s in report.speakers] == [("alice", 4), ("bob", 4)]
    loudness = {clip.path.name: clip.loudness_lufs for clip in report.clips}
    assert loudness["short.wav"] is not None  # 0.5 s is measurable
    assert report.speakers[0].f0_median is None
    edges, counts = report.histogram()
    assert counts.sum() == len(report.clips) == 8
    assert edges[0] == 0.0 and edges[-1] >= 4.0


def test_f0_range_per_speaker(tmp_path: Path) -> None:
    pytest.importorskip("pyworld")
    report = analyse_dataset(make_dataset(tmp_path), QcSettings(f0_method="dio"))
    alice, bob = report.speakers
    assert alice.f0_median == pytest.approx(220.0, rel=0.03)
    assert bob.f0_median == pytest.approx(110.0, rel=0.03)
    assert alice.f0_p5 is not None and alice.f0_p95 is not None
    assert 200 < alice.f0_p5 <= alice.f0_p95 < 240


def _read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit RGB PNG with filter type 0 rows, checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        position += 12 + length
    width, height, depth, color, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color) == (8, 2) and b"IEND" in chunks
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8)
    rows = rows.reshape(height, 1 + 3 * width)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(height, width, 3)


def test_written_report_text_and_png(tmp_path: Path) -> None:
    pytest.importorskip("pyworld")
    report = analyse_dataset(make_dataset(tmp_path), QcSettings(f0_method="dio"))
    text_path, image_path = write_qc_report(report, tmp_path / "qc")
    text = text_path.read_text()
    for heading in ("too short", "too long", "clipping", "mostly silent", "unreadable: 1"):
        assert heading in text
    assert "alice" in text and "bob" in text
    image = _read_png(image_path.read_bytes())
    np.testing.assert_array_equal(image, render_report_image(report))
    assert image.shape[1] == 800 and image.shape[0] > 300  # histogram + two f0 rows
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 4  # bars, axes, text were drawn


def test_png_encoder_round_trip_and_errors() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_read_png(encode_png(image)), image)
    with pytest.raises(InputError):
        encode_png(np.zeros((4, 4), dtype=np.uint8))


def test_missing_or_empty_dataset_raises(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        analyse_dataset(tmp_path / "nowhere")
    (tmp_path / "empty" / "alice").mkdir(parents=True)
    with pytest.raises(InputError, match="no audio"):
        analyse_dataset(tmp_path / "empty")
    with pytest.raises(InputError):
        QcSettings(min_seconds=5.0, max_seconds=2.0)
