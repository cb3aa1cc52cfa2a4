"""The demo pipeline end to end (opt-in: several minutes on a CPU) and its argument check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sovits.demo.pipeline import run_demo
from sovits.errors import InputError


def test_no_training_steps_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="train_steps"):
        run_demo(tmp_path / "demo", train_steps=0)
    assert not (tmp_path / "demo").exists()


@pytest.mark.skipif(
    not os.environ.get("SOVITS_DEMO_TEST"), reason="set SOVITS_DEMO_TEST=1 (takes minutes)"
)
def test_the_whole_demo_runs(tmp_path: Path) -> None:
    stages: list[str] = []
    result = run_demo(
        tmp_path / "demo" / "out",
        train_steps=2,
        n_clips_per_singer=3,
        seconds=2.0,
        batch_size=2,
        accelerator="cpu",
        progress=stages.append,
    )
    assert len(stages) == 7
    assert result.model_path.name == "G_1.pth"
    assert result.work_dir == tmp_path / "demo" / "work"
    assert result.source.is_file() and sorted(result.converted) == [0.0, 3.0]
    assert all(path.parent == result.out_dir for path in result.converted.values())
    assert result.report_path.read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads(result.metrics_path.read_text())
    assert sorted(metrics) == ["transpose_0", "transpose_3"]
    assert sorted(metrics["transpose_3"]) == [
        "distance_to_source",
        "distance_to_target",
        "f0_error_cents_median",
    ]
