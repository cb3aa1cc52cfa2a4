"""The demo's report.png: F0 curves of source, conversions and ideal renditions,
spectrograms and the measures, drawn with matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sovits.demo.report import draw_demo_report
from sovits.errors import InputError
from sovits.evaluation import EvaluationResult, EvaluationSettings, FileAnalysis

SETTINGS = EvaluationSettings(speaker_similarity=False)


def _analysis(name: str, f0: float) -> FileAnalysis:
    frames = 100
    time = np.arange(frames * 160) / 16000
    return FileAnalysis(
        path=Path(f"{name}.wav"),
        wave=(0.3 * np.sin(2 * np.pi * f0 * time)).astype(np.float32),
        f0=np.full(frames, f0, dtype=np.float32),
        voiced=np.arange(frames) > 10,
        cepstra=np.zeros((frames, 8)),
        loudness_db=np.full(frames, -20.0),
        clipped_fraction=0.0,
    )


def _result(transpose: float) -> EvaluationResult:
    return EvaluationResult(
        name=f"transpose_{transpose:g}", source="source.wav", converted="c.flac",
        target_references=("t.wav",), transpose=transpose, f0_method="swift",
        raw_pitch_accuracy=0.98, f0_error_cents_median=3.0,
    )  # fmt: skip


def test_the_report_draws_every_conversion_and_its_ideal(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    analyses = {
        "source": _analysis("source", 200.0),
        "transpose_0": _analysis("c0", 201.0),
        "target_0": _analysis("t0", 200.0),
        "transpose_3": _analysis("c3", 238.0),
        "target_3": _analysis("t3", 237.8),
    }
    metrics = {0.0: _result(0.0), 3.0: _result(3.0)}
    path = draw_demo_report(
        tmp_path / "out" / "report.png", analyses, metrics, SETTINGS, conversion_f0="dio"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    del analyses["target_3"]
    with pytest.raises(InputError, match="transpose 3"):
        draw_demo_report(tmp_path / "r.png", analyses, metrics, SETTINGS, conversion_f0="dio")
