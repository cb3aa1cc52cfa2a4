"""The demo's report picture: curves where their f0 says, spectrograms, a valid PNG."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from sovits.demo.report import CURVE_COLOURS, render_report, render_report_image
from sovits.errors import InputError


def _decode_png(data: bytes) -> np.ndarray:
    """RGB [H, W, 3] of an 8-bit truecolour PNG without filtering (what encode_png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks[kind] = chunks.get(kind, b"") + data[position + 8 : position + 8 + length]
        position += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8)
    return rows.reshape(height, 1 + 3 * width)[:, 1:].reshape(height, width, 3)


def _rows_with(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.nonzero(np.all(image == np.array(colour, dtype=np.uint8), axis=-1).any(axis=1))[0]


def test_curves_sit_at_their_frequencies_and_spectrograms_below() -> None:
    frames = 100
    input_f0 = np.full(frames, 200.0)
    input_f0[:10] = 0  # unvoiced start: nothing drawn there
    output = np.full(frames * 2, 400.0)  # another hop: still spans the full width
    tone = np.full((64, 50), 1e-4)
    tone[16] = 1.0  # one loud frequency bin
    image = render_report_image(
        input_f0, {"converted": output}, {"input": tone, "converted": tone}, width=400
    )
    assert image.dtype == np.uint8 and image.shape == (24 + 240 + 2 * (24 + 160) + 24, 400, 3)
    black = _rows_with(image[:, 24:-24], (20, 20, 20))
    red = _rows_with(image[:, 24:-24], CURVE_COLOURS[0])
    assert black.size and red.size
    # one octave is the same height anywhere on the log axis: 200 -> 400 Hz
    octave = 239 * np.log(2) / np.log(20)
    assert abs((black.mean() - red.mean()) - octave) < 3
    assert black.max() < 24 + 240 and red.min() > 24
    # the input curve starts a tenth of the way in
    columns = np.nonzero(np.all(image[24:264] == (20, 20, 20), axis=-1).any(axis=0))[0]
    assert abs(columns.min() - (24 + 352 // 10)) <= 1
    # the loud bin is a bright line a quarter of the way up the first spectrogram panel
    panel = image[288 : 288 + 160, 24:-24].astype(int)
    brightest = int(np.argmax(panel.sum(axis=(1, 2))))
    assert abs(brightest - (160 - 160 * 16 / 64)) <= 3
    assert np.all(image[288:300, 6:18] == (20, 20, 20))
    assert np.all(image[472:484, 6:18] == CURVE_COLOURS[0])


def test_render_report_writes_the_same_picture_as_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    f0 = 150 + 20 * rng.standard_normal(80)
    spectrogram = rng.random((33, 80))
    path = render_report(tmp_path / "demo" / "report.png", f0, {"a": f0 * 2}, {"in": spectrogram})
    assert path == tmp_path / "demo" / "report.png"
    expected = render_report_image(f0, {"a": f0 * 2}, {"in": spectrogram})
    np.testing.assert_array_equal(_decode_png(path.read_bytes()), expected)


def test_bad_spectrograms_are_refused() -> None:
    with pytest.raises(InputError, match="spectrogram"):
        render_report_image(np.ones(5), {}, {"flat": np.ones(5)})
    with pytest.raises(InputError, match="too small"):
        render_report_image(np.ones(5), {}, {}, width=10)
