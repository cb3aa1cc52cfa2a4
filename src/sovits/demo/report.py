"""The demo's picture: F0 curves and spectrograms drawn with numpy, saved as PNG.

`render_report_image` draws, top to bottom, one F0 panel (log-frequency axis from 50 to
1000 Hz, grey grid lines at 100, 200, 400 and 800 Hz; the input curve in black and each
output curve in its own colour, unvoiced frames left out) and one panel per
spectrogram (dB, the top 80 dB on a dark-blue to yellow colour scale, low frequencies
at the bottom). Every curve and spectrogram is stretched over the full width, so
inputs and outputs of one duration line up whatever their hop. There is no text:
outputs and spectrograms keep the order of the mappings given, and a coloured square
at the left of each spectrogram panel repeats the colour of the F0 curve with the
same position (the first spectrogram is the input's, with a black square). The PNG
encoder is `sovits.data.qc.encode_png`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sovits.errors import InputError

__all__ = ["CURVE_COLOURS", "render_report", "render_report_image"]

CURVE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (229, 57, 53),
    (30, 136, 229),
    (67, 160, 71),
    (251, 140, 0),
    (142, 36, 170),
    (0, 172, 193),
)
"""RGB colours of the output curves, in order (they repeat after the sixth)."""

_INPUT_COLOUR = (20, 20, 20)
_GRID = (215, 215, 215)
_FRAME = (120, 120, 120)
_F0_LOW, _F0_HIGH = 50.0, 1000.0
_MARGIN = 24
_COLOUR_SCALE = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
"""Anchors of the spectrogram colour scale, quiet to loud."""


def _curve_rows(f0: np.ndarray, columns: int, top: int, height: int) -> np.ndarray:
    """Pixel row of the curve in every column [columns]; -1 where unvoiced."""
    values = np.asarray(f0, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return np.full(columns, -1)
    index = np.minimum((np.arange(columns) * values.size) // columns, values.size - 1)
    picked = values[index]
    voiced = np.isfinite(picked) & (picked > 0)
    clamped = np.clip(np.where(voiced, picked, _F0_LOW), _F0_LOW, _F0_HIGH)
    share = np.log(clamped / _F0_LOW) / np.log(_F0_HIGH / _F0_LOW)
    rows = np.round(top + (1.0 - share) * (height - 1)).astype(np.int64)
    return np.where(voiced, rows, -1)


def _draw_curve(
    image: np.ndarray, rows: np.ndarray, left: int, colour: tuple[int, int, int], thickness: int
) -> None:
    for column in range(len(rows)):
        if rows[column] < 0:
            continue
        low = high = int(rows[column])
        if column + 1 < len(rows) and rows[column + 1] >= 0:
            low, high = min(low, int(rows[column + 1])), max(high, int(rows[column + 1]))
        x = left + column
        image[low - thickness // 2 : high + thickness - thickness // 2, x : x + thickness] = colour


def _spectrogram_pixels(spectrogram: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB uint8 [height, width, 3] of a magnitude spectrogram [F, T]."""
    values = np.asarray(spectrogram, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise InputError(f"a spectrogram must be [frequencies, frames], got {values.shape}")
    decibels = 20 * np.log10(np.maximum(np.nan_to_num(np.abs(values)), 1e-8))
    top = decibels.max()
    level = np.clip((decibels - (top - 80.0)) / 80.0, 0.0, 1.0)
    rows = np.minimum((np.arange(height) * values.shape[0]) // height, values.shape[0] - 1)
    columns = np.minimum((np.arange(width) * values.shape[1]) // width, values.shape[1] - 1)
    picked = level[rows[::-1]][:, columns]  # low frequencies at the bottom
    anchors = np.linspace(0.0, 1.0, len(_COLOUR_SCALE))
    channels = [np.interp(picked, anchors, _COLOUR_SCALE[:, c]) for c in range(3)]
    return np.round(np.stack(channels, axis=-1)).astype(np.uint8)


def render_report_image(
    input_f0: np.ndarray,
    output_f0s: Mapping[str, np.ndarray],
    spectrograms: Mapping[str, np.ndarray],
    *,
    width: int = 900,
    f0_height: int = 240,
    spectrogram_height: int = 160,
) -> np.ndarray:
    """The report as uint8 RGB [H, W, 3].

    input_f0: the input's f0 [T] in Hz, 0 (or NaN) where unvoiced.
    output_f0s: name -> an output's f0 [T'] in Hz, drawn in CURVE_COLOURS order.
    spectrograms: name -> a magnitude spectrogram [F, T''] (linear amplitude).
    Raises InputError for a spectrogram that is not 2-D or a width too small to draw.
    """
    if width < 4 * _MARGIN or f0_height < 40 or spectrogram_height < 20:
        raise InputError(f"the report is too small to draw: width {width}")
    inner = width - 2 * _MARGIN
    height = _MARGIN + f0_height + len(spectrograms) * (_MARGIN + spectrogram_height) + _MARGIN
    image = np.full((height, width, 3), 255, dtype=np.uint8)

    top = _MARGIN
    for grid in (100.0, 200.0, 400.0, 800.0):
        row = _curve_rows(np.array([grid]), 1, top, f0_height)[0]
        image[row, _MARGIN : _MARGIN + inner] = _GRID
    image[top - 1, _MARGIN - 1 : _MARGIN + inner + 1] = _FRAME
    image[top + f0_height, _MARGIN - 1 : _MARGIN + inner + 1] = _FRAME
    image[top - 1 : top + f0_height + 1, _MARGIN - 1] = _FRAME
    image[top - 1 : top + f0_height + 1, _MARGIN + inner] = _FRAME
    for index, f0 in enumerate(output_f0s.values()):
        colour = CURVE_COLOURS[index % len(CURVE_COLOURS)]
        _draw_curve(image, _curve_rows(f0, inner, top, f0_height), _MARGIN, colour, 2)
    _draw_curve(image, _curve_rows(input_f0, inner, top, f0_height), _MARGIN, _INPUT_COLOUR, 2)

    top += f0_height + _MARGIN
    for index, spectrogram in enumerate(spectrograms.values()):
        image[top : top + spectrogram_height, _MARGIN : _MARGIN + inner] = _spectrogram_pixels(
            spectrogram, spectrogram_height, inner
        )
        colour = _INPUT_COLOUR if index == 0 else CURVE_COLOURS[(index - 1) % len(CURVE_COLOURS)]
        image[top : top + 12, 6:18] = colour
        top += spectrogram_height + _MARGIN
    return image


def render_report(
    path: str | os.PathLike[str],
    input_f0: np.ndarray,
    output_f0s: Mapping[str, np.ndarray],
    spectrograms: Mapping[str, np.ndarray],
    *,
    width: int = 900,
) -> Path:
    """Draw `render_report_image` and write it as a PNG to `path` atomically (folders
    created); returns the path. Raises InputError when it cannot be written."""
    from sovits.data.qc import encode_png
    from sovits.files import atomic_write

    target = Path(path)
    data = encode_png(render_report_image(input_f0, output_f0s, spectrograms, width=width))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda handle: handle.write(data))
    except OSError as error:
        raise InputError(f"cannot write the report image: {error}", where=target) from None
    return target
