"""Evaluating folders of conversions: pairs matched by name, a table, means with 95 % CIs.

Pairing (`match_pairs`): every audio file of the converted folder is paired with the
source whose name (without extension) equals its own, or else with the longest source
name it starts with followed by "_" (so `song_3key_alice_sovits_pm.flac`, the name
`sovits infer` writes, pairs with `song.wav`). A "_<n>key" right after the source name
gives that pair's transpose when none is set for the run. Files left without a partner
on either side are reported by name; no pair at all is an InputError.

The summary gives, per measure, the mean over the pairs where it is defined, its 95 %
confidence interval (mean +- t(0.975, n - 1) * sd / sqrt(n), Student's t, cut to the
measure's range; none for a single value) and that count. Tables are written as CSV
(one row per pair, then rows "mean", "ci95_low", "ci95_high", "count"; empty cells
where a value is undefined) or as JSON ({"pairs": [...], "summary": {...}}).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovits.errors import InputError
from sovits.evaluation.conversion import (
    METRIC_KEYS,
    EvaluationResult,
    EvaluationSettings,
    Evaluator,
    ProgressCallback,
    write_text,
)

__all__ = [
    "AUDIO_SUFFIXES",
    "FolderEvaluation",
    "MetricSummary",
    "Pair",
    "evaluate_folders",
    "match_pairs",
    "summarise",
    "table_csv",
    "transpose_from_name",
]

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"})
"""File name endings taken as audio in folder mode."""
_KEY = re.compile(r"_(-?\d+(?:\.\d+)?)key(?:_|$)")


@dataclass(frozen=True)
class Pair:
    """A source and its conversion; `transpose` read from the converted name (or None)."""

    source: Path
    converted: Path
    transpose: float | None


def transpose_from_name(source_stem: str, converted_stem: str) -> float | None:
    """The n of a converted name "<source>_<n>key..." (semitones), else None."""
    if not converted_stem.startswith(source_stem):
        return None
    key = _KEY.match(converted_stem[len(source_stem) :])
    return float(key.group(1)) if key else None


def _audio_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError("folder not found", where=folder)
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )


def match_pairs(
    source_dir: str | os.PathLike[str], converted_dir: str | os.PathLike[str]
) -> tuple[list[Pair], list[Path], list[Path]]:
    """(pairs, unmatched sources, unmatched converted files) of two folders (see the
    module doc). Raises InputError for a missing folder or when nothing pairs up."""
    sources = _audio_files(Path(source_dir))
    converted = _audio_files(Path(converted_dir))
    by_stem: dict[str, Path] = {}
    for path in sources:
        if path.stem in by_stem:
            raise InputError(
                f"two sources share the name {path.stem!r}: {by_stem[path.stem].name}, "
                f"{path.name}",
                where=Path(source_dir),
            )
        by_stem[path.stem] = path
    longest_first = sorted(by_stem, key=len, reverse=True)
    pairs: list[Pair] = []
    unmatched_converted: list[Path] = []
    used: set[str] = set()
    for path in converted:
        stem = path.stem
        match = stem if stem in by_stem else None
        if match is None:
            match = next((s for s in longest_first if stem.startswith(s + "_")), None)
        if match is None:
            unmatched_converted.append(path)
            continue
        used.add(match)
        pairs.append(Pair(by_stem[match], path, transpose_from_name(match, stem)))
    unmatched_sources = [by_stem[s] for s in by_stem if s not in used]
    if not pairs:
        raise InputError(
            f"no converted file matches a source by name ({len(sources)} sources, "
            f"{len(converted)} converted files)",
            where=Path(converted_dir),
            hint="a converted file must be named like its source, or start with the "
            "source's name and '_' (as `sovits infer` names them)",
        )
    return pairs, unmatched_sources, unmatched_converted


@dataclass(frozen=True)
class MetricSummary:
    """Mean of one measure over the pairs where it is defined, its 95 % confidence
    interval (None with fewer than 2 values) and that count."""

    mean: float | None
    ci95_low: float | None
    ci95_high: float | None
    count: int


_BOUNDS: dict[str, tuple[float, float]] = {
    "f0_error_cents_median": (0.0, math.inf),
    "distance_to_target": (0.0, math.inf),
    "distance_to_source": (0.0, math.inf),
    "target_to_source": (0.0, math.inf),
    "f0_correlation": (-1.0, 1.0),
    "loudness_correlation": (-1.0, 1.0),
    "speaker_similarity_to_target": (-1.0, 1.0),
    "speaker_similarity_to_source": (-1.0, 1.0),
    "target_similarity_to_source": (-1.0, 1.0),
}
"""Range of each measure the intervals are cut to (the shares: 0-1)."""


def _summary(values: Sequence[float], bounds: tuple[float, float]) -> MetricSummary:
    count = len(values)
    if count == 0:
        return MetricSummary(None, None, None, 0)
    mean = math.fsum(values) / count
    if count < 2:
        return MetricSummary(mean, None, None, 1)
    from scipy.stats import t

    variance = math.fsum((v - mean) ** 2 for v in values) / (count - 1)
    half = float(t.ppf(0.975, count - 1)) * math.sqrt(variance / count)
    low, high = bounds
    return MetricSummary(mean, max(mean - half, low), min(mean + half, high), count)


def summarise(results: Sequence[EvaluationResult]) -> dict[str, MetricSummary]:
    """Per measure (METRIC_KEYS order), the summary over `results`; intervals are cut
    to the measure's range (shares 0-1, correlations and cosines -1..1, cents and dB
    from 0)."""
    return {
        key: _summary(
            [v for r in results if (v := getattr(r, key)) is not None],
            _BOUNDS.get(key, (0.0, 1.0)),
        )
        for key in METRIC_KEYS
    }


@dataclass(frozen=True)
class FolderEvaluation:
    """The results of a folder run, in converted-file order, and the unmatched names."""

    results: tuple[EvaluationResult, ...]
    unmatched_sources: tuple[str, ...] = ()
    unmatched_converted: tuple[str, ...] = ()

    def summary(self) -> dict[str, MetricSummary]:
        """Per-measure means and intervals over the pairs."""
        return summarise([r for r in self.results if r.error is None])

    def messages(self) -> list[str]:
        """One line per unmatched file and per pair that could not be evaluated."""
        lines = [f"no converted file for source {name}" for name in self.unmatched_sources]
        lines += [f"no source for converted file {name}" for name in self.unmatched_converted]
        for result in self.results:
            if result.error is not None:
                lines.append(f"{result.name}: not evaluated: {result.error}")
            else:
                lines += [f"{result.name}: {warning}" for warning in result.warnings]
        return lines

    def summary_dict(self) -> dict[str, Any]:
        """The summary object of `--json` ("type": "summary")."""
        data: dict[str, Any] = {
            "type": "summary",
            "pairs": len(self.results),
            "evaluated": sum(1 for r in self.results if r.error is None),
            "f0_method": self.results[0].f0_method if self.results else None,
        }
        for key, summary in self.summary().items():
            data[key] = {
                "mean": summary.mean,
                "ci95_low": summary.ci95_low,
                "ci95_high": summary.ci95_high,
                "count": summary.count,
            }
        data["unmatched_sources"] = list(self.unmatched_sources)
        data["unmatched_converted"] = list(self.unmatched_converted)
        data["messages"] = self.messages()
        return data

    def json_lines(self) -> list[str]:
        """What `sovits evaluate --json` prints for folders: one JSON object per line,
        each pair ("type": "pair") then the summary."""
        lines = [json.dumps({"type": "pair", **r.to_dict()}) for r in self.results]
        lines.append(json.dumps(self.summary_dict()))
        return lines

    def to_dict(self) -> dict[str, Any]:
        """{"pairs": [...], "summary": {...}}, the JSON table file."""
        return {"pairs": [r.to_dict() for r in self.results], "summary": self.summary_dict()}

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the table to `path`: CSV for a .csv name, JSON otherwise. Returns it."""
        target = Path(path)
        if target.suffix.lower() == ".csv":
            return write_text(target, table_csv(self.results, self.summary()))
        return write_text(target, json.dumps(self.to_dict(), indent=2) + "\n")

    def to_text(self) -> str:
        """A table for a terminal: one line per pair, then means +- intervals."""
        shown = (
            ("raw_pitch_accuracy", "RPA", True),
            ("raw_chroma_accuracy", "RCA", True),
            ("f0_error_cents_median", "cents", False),
            ("voicing_f1", "vF1", True),
            ("f0_correlation", "f0 r", False),
            ("loudness_correlation", "loud r", False),
            ("speaker_similarity_to_target", "sim tgt", False),
            ("speaker_similarity_to_source", "sim src", False),
        )
        width = max([len(r.name) for r in self.results] + [8])

        def cell(value: float | None, percent: bool) -> str:
            if value is None:
                return f"{'-':>8}"
            return f"{100 * value:7.1f}%" if percent else f"{value:8.3f}"

        lines = [f"{'pair':<{width}} " + " ".join(f"{label:>8}" for _, label, _ in shown)]
        for result in self.results:
            if result.error is not None:
                lines.append(f"{result.name:<{width}} not evaluated: {result.error}")
                continue
            lines.append(
                f"{result.name:<{width}} "
                + " ".join(cell(getattr(result, key), pct) for key, _, pct in shown)
            )
        summary = self.summary()
        lines.append(
            f"{'mean':<{width}} " + " ".join(cell(summary[k].mean, p) for k, _, p in shown)
        )
        lines.append(f"95 % confidence intervals over {len(self.results)} pairs:")
        for key, _, percent in shown:
            item = summary[key]
            if item.mean is None:
                continue
            scale, unit = (100.0, " %") if percent else (1.0, "")
            interval = (
                f"[{scale * item.ci95_low:.3f}, {scale * item.ci95_high:.3f}]"
                if item.ci95_low is not None and item.ci95_high is not None
                else "(one value)"
            )
            lines.append(f"  {key}: {scale * item.mean:.3f}{unit} {interval} (n={item.count})")
        return "\n".join(lines) + "\n"


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def table_csv(
    results: Sequence[EvaluationResult], summary: dict[str, MetricSummary] | None = None
) -> str:
    """CSV text: a header, one row per result, then (with `summary`) the rows "mean",
    "ci95_low", "ci95_high" and "count" under the measures."""
    columns = ["name", "source", "converted", "transpose", "f0_method", "f0_frames"]
    columns += [*METRIC_KEYS, "warnings", "error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for result in results:
        row = result.to_dict()
        row["warnings"] = "; ".join(result.warnings)
        writer.writerow([_csv_value(row[c]) for c in columns])
    if summary is not None:
        for part in ("mean", "ci95_low", "ci95_high", "count"):
            values = {key: getattr(item, part) for key, item in summary.items()}
            writer.writerow([part] + [_csv_value(values.get(c)) for c in columns[1:]])
    return buffer.getvalue()


def evaluate_folders(
    source_dir: str | os.PathLike[str],
    converted_dir: str | os.PathLike[str],
    *,
    target_references: Sequence[str | os.PathLike[str]] = (),
    transpose: float | None = None,
    settings: EvaluationSettings | None = None,
    plot_dir: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    evaluator: Evaluator | None = None,
) -> FolderEvaluation:
    """Evaluate every pair of two folders (see the module doc). `transpose` (semitones)
    applies to every pair; None reads it from each converted name ("_<n>key"), else 0.
    With `plot_dir`, each pair's picture is written there as <converted name>.png.
    A pair whose files cannot be read is kept with its error; a missing model stops
    the run (MissingFileError)."""
    pairs, unmatched_sources, unmatched_converted = match_pairs(source_dir, converted_dir)
    runner = evaluator or Evaluator(settings, target_references=target_references)
    results = []
    for index, pair in enumerate(pairs):
        shift = transpose if transpose is not None else (pair.transpose or 0.0)
        plot = Path(plot_dir) / f"{pair.converted.stem}.png" if plot_dir is not None else None
        result = runner.evaluate_or_error(pair.source, pair.converted, transpose=shift, plot=plot)
        results.append(result)
        if progress is not None:
            progress(index + 1, len(pairs), result.name)
    return FolderEvaluation(
        results=tuple(results),
        unmatched_sources=tuple(p.name for p in unmatched_sources),
        unmatched_converted=tuple(p.name for p in unmatched_converted),
    )
