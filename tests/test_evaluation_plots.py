"""The matplotlib pictures of `sovits evaluate --plot` and the demo: labelled axes, a
legend, a table, a PNG written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sovits.errors import InputError
from sovits.evaluation.plots import (
    F0Curve,
    SpectrogramPanel,
    build_figure,
    render_report,
)


def _inputs() -> tuple[list[F0Curve], list[SpectrogramPanel]]:
    f0 = np.concatenate([np.zeros(10), np.full(40, 220.0), np.zeros(10)])
    curves = [F0Curve("source", f0, 0.01), F0Curve("converted", f0 * 1.5, 0.01, ":")]
    magnitude = np.abs(np.random.default_rng(0).standard_normal((65, 30))) + 1e-3
    return curves, [SpectrogramPanel("source", magnitude, 16000, 160)]


def test_the_figure_has_units_a_legend_and_a_table() -> None:
    curves, panels = _inputs()
    figure = build_figure(
        title="pair", curves=curves, spectrograms=panels,
        table=[["pair", "99.0 %"]], table_header=["", "pitch acc."],
    )  # fmt: skip
    f0_axis, spectrogram_axis = figure.axes[0], figure.axes[1]
    assert (f0_axis.get_xlabel(), f0_axis.get_ylabel()) == ("time (s)", "F0 (Hz)")
    assert f0_axis.get_yscale() == "log"
    legend = f0_axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["source", "converted"]
    assert spectrogram_axis.get_ylabel() == "frequency (kHz)"
    assert spectrogram_axis.get_ylim() == (0.0, 8.0)  # up to Nyquist of 16 kHz
    # unvoiced frames are gaps (NaN), not zeros on the log axis
    line = f0_axis.get_lines()[0]
    assert np.isnan(line.get_ydata()[:10]).all() and not np.isnan(line.get_ydata()[10:50]).any()
    tables = [axis for axis in figure.axes if axis.tables]
    assert len(tables) == 1


def test_render_report_writes_a_png(tmp_path: Path) -> None:
    curves, panels = _inputs()
    path = render_report(tmp_path / "deep" / "report.png", title="t", curves=curves,
                         spectrograms=panels)  # fmt: skip
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["report.png"]  # no temporary left


def test_bad_pictures_are_input_errors() -> None:
    with pytest.raises(InputError, match="nothing to draw"):
        build_figure(title="t", curves=[])
    flat = SpectrogramPanel("flat", np.ones(5), 16000, 160)
    with pytest.raises(InputError, match="frequencies, frames"):
        build_figure(title="t", curves=[], spectrograms=[flat])
