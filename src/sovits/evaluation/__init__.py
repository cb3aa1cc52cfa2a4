"""Objective measures of conversions, as `sovits evaluate` and the demo report them.

* `sovits.evaluation.conversion`: one pair (F0 fidelity, loudness, speaker similarity,
  timbre distances, clipping and silence) — `evaluate_conversion`, `Evaluator`;
* `sovits.evaluation.folders`: folders of pairs matched by name, tables with means and
  95 % confidence intervals — `evaluate_folders`;
* `sovits.evaluation.pitch`: the F0 measures on two tracks;
* `sovits.evaluation.plots`: matplotlib pictures (F0 curves, spectrograms, tables).

Importing this package is cheap: torch, the models and matplotlib load when used.
"""

from __future__ import annotations

from sovits.evaluation.conversion import (
    METRIC_KEYS,
    EvaluationResult,
    EvaluationSettings,
    Evaluator,
    FileAnalysis,
    cepstral_distance,
    evaluate_conversion,
    resolve_f0_method,
)
from sovits.evaluation.folders import (
    FolderEvaluation,
    MetricSummary,
    evaluate_folders,
    match_pairs,
    summarise,
)
from sovits.evaluation.pitch import PitchMetrics, pitch_metrics

__all__ = [
    "METRIC_KEYS",
    "EvaluationResult",
    "EvaluationSettings",
    "Evaluator",
    "FileAnalysis",
    "FolderEvaluation",
    "MetricSummary",
    "PitchMetrics",
    "cepstral_distance",
    "evaluate_conversion",
    "evaluate_folders",
    "match_pairs",
    "pitch_metrics",
    "resolve_f0_method",
    "summarise",
]
