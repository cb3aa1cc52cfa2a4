"""Pictures of conversions drawn with matplotlib: F0 curves, spectrograms, a table.

`build_figure` lays out, top to bottom, one F0 panel (time in s against f0 in Hz on a
log axis, one labelled curve per track, unvoiced frames left as gaps, a legend), one
spectrogram panel per wave (time in s against frequency in kHz, level in dB relative
to the panel's loudest bin over an 80 dB range, with a colour bar) and, when given, a
table of measures. `save_figure` writes it as PNG atomically. The figure is built on
matplotlib's object API with the Agg canvas (no pyplot state), so it is safe in
servers and threads; matplotlib is imported only when a picture is drawn
(`pip install "sovits[eval]"`).

`draw_evaluation` is the picture of `sovits evaluate --plot`; the demo's report.png
uses `render_report` as well.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sovits.errors import InputError, MissingFileError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sovits.evaluation.conversion import EvaluationResult, EvaluationSettings, FileAnalysis

__all__ = [
    "F0Curve",
    "SpectrogramPanel",
    "build_figure",
    "draw_evaluation",
    "render_report",
    "save_figure",
    "spectrogram_panel",
]

DYNAMIC_RANGE_DB = 80.0
"""Levels shown below each spectrogram's loudest bin, dB."""


@dataclass(frozen=True)
class F0Curve:
    """One f0 track: `f0` [T] in Hz (0 or NaN where unvoiced), frame t at time
    t * frame_seconds; `style` a matplotlib line style ("-", "--", ":")."""

    label: str
    f0: np.ndarray
    frame_seconds: float
    style: str = "-"


@dataclass(frozen=True)
class SpectrogramPanel:
    """A magnitude spectrogram [F, T] (linear amplitude, bins 0..sample_rate / 2) whose
    frame t is at time t * hop_length / sample_rate."""

    label: str
    magnitude: np.ndarray
    sample_rate: int
    hop_length: int


def spectrogram_panel(
    label: str, wave: np.ndarray, sample_rate: int, *, n_fft: int = 1024, hop_length: int = 256
) -> SpectrogramPanel:
    """The SpectrogramPanel of a mono float wave [N] (Hann window of n_fft samples)."""
    import torch

    from sovits.dsp.spectrogram import spectrogram

    audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).unsqueeze(0)
    if audio.shape[1] < n_fft:
        audio = torch.nn.functional.pad(audio, (0, n_fft - audio.shape[1]))
    magnitude = spectrogram(audio, n_fft=n_fft, hop_length=hop_length, win_length=n_fft)
    return SpectrogramPanel(label, magnitude[0].numpy(), sample_rate, hop_length)


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingFileError(
            "drawing plots needs matplotlib", hint='pip install "sovits[eval]"'
        ) from error
    return Figure, FigureCanvasAgg


def build_figure(
    *,
    title: str,
    curves: Sequence[F0Curve],
    spectrograms: Sequence[SpectrogramPanel] = (),
    table: Sequence[Sequence[str]] = (),
    table_header: Sequence[str] = (),
) -> Figure:
    """The figure of the module doc. `table` rows are strings, under `table_header`.
    Raises InputError for a spectrogram that is not [F, T] with F, T > 0, or when there
    is no curve and no spectrogram."""
    if not curves and not spectrograms:
        raise InputError("nothing to draw: no f0 curve and no spectrogram")
    for panel in spectrograms:
        if panel.magnitude.ndim != 2 or 0 in panel.magnitude.shape:
            raise InputError(
                f"spectrogram {panel.label!r} must be [frequencies, frames], got "
                f"{panel.magnitude.shape}"
            )
    figure_class, canvas_class = _matplotlib()
    rows = [("f0", 3.2)] if curves else []
    rows += [("spec", 2.0)] * len(spectrograms)
    if table:
        rows.append(("table", 0.45 + 0.28 * (len(table) + 1)))
    figure = figure_class(figsize=(11, sum(h for _, h in rows) + 0.6), layout="constrained")
    canvas_class(figure)
    axes = figure.subplots(len(rows), 1, gridspec_kw={"height_ratios": [h for _, h in rows]})
    axes = np.atleast_1d(axes)
    figure.suptitle(title)
    index = 0
    duration = 0.0
    if curves:
        axis = axes[index]
        index += 1
        for curve in curves:
            values = np.asarray(curve.f0, dtype=np.float64).copy()
            values[~(np.isfinite(values) & (values > 0))] = np.nan
            times = np.arange(values.shape[0]) * curve.frame_seconds
            duration = max(duration, float(times[-1]) if times.size else 0.0)
            axis.plot(times, values, curve.style, label=curve.label, linewidth=1.4)
        axis.set_yscale("log")
        _hertz_ticks(axis, curves)
        axis.set_ylabel("F0 (Hz)")
        axis.set_xlabel("time (s)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="best", fontsize="small")
        axis.set_title("F0 (unvoiced frames left out)", fontsize="medium")
    for panel in spectrograms:
        axis = axes[index]
        index += 1
        magnitude = np.nan_to_num(np.abs(np.asarray(panel.magnitude, dtype=np.float64)))
        level = 20.0 * np.log10(np.maximum(magnitude, 1e-10))
        level -= level.max()
        seconds = magnitude.shape[1] * panel.hop_length / panel.sample_rate
        duration = max(duration, seconds)
        image = axis.imshow(
            np.maximum(level, -DYNAMIC_RANGE_DB),
            origin="lower",
            aspect="auto",
            extent=(0.0, seconds, 0.0, panel.sample_rate / 2000.0),
            cmap="magma",
            vmin=-DYNAMIC_RANGE_DB,
            vmax=0.0,
        )
        axis.set_ylabel("frequency (kHz)")
        axis.set_xlabel("time (s)")
        axis.set_title(panel.label, fontsize="medium")
        figure.colorbar(image, ax=axis, label="dB", pad=0.01)
    if duration > 0:
        for axis in axes[: index]:
            axis.set_xlim(0.0, duration)
    if table:
        axis = axes[index]
        axis.axis("off")
        drawn = axis.table(
            cellText=[list(row) for row in table],
            colLabels=list(table_header) or None,
            loc="center",
            cellLoc="center",
        )
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(9)
        drawn.auto_set_column_width(list(range(len(table[0]))))
    return figure


_HERTZ_TICKS = (25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200)


def _hertz_ticks(axis: Any, curves: Sequence[F0Curve]) -> None:
    """Plain Hz labels on the log F0 axis, at round values inside the curves' range."""
    voiced = [c.f0[np.isfinite(c.f0) & (c.f0 > 0)] for c in curves]
    values = np.concatenate([v for v in voiced if v.size] or [np.array([100.0, 400.0])])
    low, high = float(values.min()) / 1.15, float(values.max()) * 1.15
    ticks = [t for t in _HERTZ_TICKS if low <= t <= high] or [round(float(np.median(values)))]
    axis.set_ylim(low, high)
    axis.set_yticks(ticks, [str(t) for t in ticks])
    axis.set_yticks([], minor=True)


def save_figure(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write `figure` as a PNG to `path` atomically (folders created); returns the path.
    Raises InputError when it cannot be written."""
    from sovits.files import atomic_write

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda handle: handle.write(data))
    except OSError as error:
        raise InputError(f"cannot write the picture: {error}", where=target) from None
    return target


def render_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    curves: Sequence[F0Curve],
    spectrograms: Sequence[SpectrogramPanel] = (),
    table: Sequence[Sequence[str]] = (),
    table_header: Sequence[str] = (),
) -> Path:
    """`build_figure` saved as PNG at `path`; returns the path."""
    return save_figure(
        build_figure(
            title=title,
            curves=curves,
            spectrograms=spectrograms,
            table=table,
            table_header=table_header,
        ),
        path,
    )


def format_measure(key: str, value: float | None) -> str:
    """A measure for a table cell: shares in %, cents, correlations and cosines with
    three decimals, dB with two; "n/a" when undefined."""
    if value is None:
        return "n/a"
    if key in {
        "raw_pitch_accuracy", "raw_chroma_accuracy", "octave_error_rate", "voicing_precision",
        "voicing_recall", "voicing_f1", "voicing_agreement", "clipped_fraction",
        "silent_fraction",
    }:
        return f"{100 * value:.1f} %"
    if key == "f0_error_cents_median":
        return f"{value:.1f} cents"
    if key.startswith(("distance", "target_to")):
        return f"{value:.2f} dB"
    return f"{value:.3f}"


TABLE_KEYS = (
    "raw_pitch_accuracy",
    "raw_chroma_accuracy",
    "f0_error_cents_median",
    "voicing_f1",
    "f0_correlation",
    "loudness_correlation",
    "speaker_similarity_to_target",
    "speaker_similarity_to_source",
)
"""The measures shown in the pictures' tables."""


def measure_table(results: Mapping[str, EvaluationResult]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a table with one row per named result and TABLE_KEYS columns."""
    header = ["", "pitch acc.", "chroma acc.", "median err.", "voicing F1", "f0 corr.",
              "loudness corr.", "sim. target", "sim. source"]  # fmt: skip
    rows = [
        [name] + [format_measure(key, getattr(result, key)) for key in TABLE_KEYS]
        for name, result in results.items()
    ]
    return header, rows


def draw_evaluation(
    path: str | os.PathLike[str],
    result: EvaluationResult,
    source: FileAnalysis,
    converted: FileAnalysis,
    target: FileAnalysis | None,
    settings: EvaluationSettings,
) -> Path:
    """The picture of one evaluated pair: the source's f0 moved by the transpose, the
    conversion's f0 and (when given) the first target reference's f0; the spectrograms
    of source, conversion and target; the measures."""
    frame = settings.hop_length / settings.sample_rate
    shift = 2.0 ** (result.transpose / 12.0)
    curves = [
        F0Curve(
            f"source x 2^({result.transpose:g}/12)" if result.transpose else "source",
            np.where(source.voiced, source.f0 * shift, 0.0),
            frame,
            "-",
        ),
        F0Curve("converted", np.where(converted.voiced, converted.f0, 0.0), frame, "-"),
    ]
    rate = settings.sample_rate
    panels = [
        spectrogram_panel(f"source: {source.path.name}", source.wave, rate),
        spectrogram_panel(f"converted: {converted.path.name}", converted.wave, rate),
    ]
    if target is not None:
        curves.append(
            F0Curve(
                f"target reference: {target.path.name}",
                np.where(target.voiced, target.f0, 0.0),
                frame,
                ":",
            )
        )
        panels.append(spectrogram_panel(f"target reference: {target.path.name}", target.wave, rate))
    header, rows = measure_table({result.name: result})
    return render_report(
        path,
        title=f"{result.name} (f0 by {result.f0_method})",
        curves=curves,
        spectrograms=panels,
        table=rows,
        table_header=header,
    )
