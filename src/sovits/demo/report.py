"""The demo's picture, report.png, drawn with matplotlib (`sovits.evaluation.plots`).

Top to bottom: the F0 panel (the source, each conversion, and singer B's rendition of
the melody per transpose as a dotted curve: the ideal result), the spectrograms of the
source and of each conversion, and a table of the measures per transpose. Axes carry
their units (time in s, F0 in Hz on a log scale, frequency in kHz, level in dB).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sovits.errors import InputError

if TYPE_CHECKING:
    from sovits.evaluation import EvaluationResult, EvaluationSettings, FileAnalysis

__all__ = ["draw_demo_report"]


def _key(transpose: float) -> str:
    return f"transpose_{transpose:g}"


def draw_demo_report(
    path: str | os.PathLike[str],
    analyses: Mapping[str, FileAnalysis],
    metrics: Mapping[float, EvaluationResult],
    settings: EvaluationSettings,
    *,
    conversion_f0: str,
) -> Path:
    """Write report.png to `path` and return it.

    analyses: "source", and per transpose t "transpose_<t>" (the conversion) and
    "target_<t>" (singer B's rendition), as `sovits.evaluation.Evaluator.analyse`
    returns them. metrics: the measures per transpose. conversion_f0 is named in the
    title beside the method the measures used. Raises InputError when an analysis is
    missing.
    """
    from sovits.evaluation.plots import F0Curve, measure_table, render_report, spectrogram_panel

    if "source" not in analyses:
        raise InputError("the demo report needs the source's analysis")
    frame = settings.hop_length / settings.sample_rate
    rate = settings.sample_rate

    def f0(analysis: FileAnalysis) -> np.ndarray:
        return np.where(analysis.voiced, analysis.f0, 0.0)

    source = analyses["source"]
    curves = [F0Curve("source (singer A)", f0(source), frame, "-")]
    panels = [spectrogram_panel("source: singer A", source.wave, rate)]
    for transpose in metrics:
        converted = analyses.get(_key(transpose))
        target = analyses.get(f"target_{transpose:g}")
        if converted is None or target is None:
            raise InputError(f"the demo report misses the analyses of transpose {transpose:g}")
        curves.append(F0Curve(f"converted, {transpose:+g} semitones", f0(converted), frame, "-"))
        curves.append(F0Curve(f"singer B, {transpose:+g} (ideal)", f0(target), frame, ":"))
        label = f"converted to singer B, {transpose:+g} semitones"
        panels.append(spectrogram_panel(label, converted.wave, rate))
    header, rows = measure_table({_key(t): result for t, result in metrics.items()})
    method = next(iter(metrics.values())).f0_method if metrics else "?"
    return render_report(
        path,
        title=f"sovits demo: singer A -> singer B (converted with {conversion_f0} f0; "
        f"measured with {method})",
        curves=curves,
        spectrograms=panels,
        table=rows,
        table_header=header,
    )
