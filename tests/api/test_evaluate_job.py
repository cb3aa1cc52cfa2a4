"""The evaluate job takes the options of `sovits evaluate`: the f0 method defaults to
"auto" (the most accurate one installed) and speaker similarity can be switched off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sovits.api import JobService
from sovits.api.params import EvaluateParams
from sovits.evaluation import resolve_f0_method
from tests.api.helpers import make_models_root, write_tone

pytestmark = pytest.mark.timeout(120)


def test_evaluate_job_defaults_to_auto_and_can_skip_speaker_similarity(tmp_path: Path) -> None:
    assert EvaluateParams.__dataclass_fields__["method"].default == "auto"
    with JobService(make_models_root(tmp_path / "models"), tmp_path / "work") as service:
        source = write_tone(service.work_dir / "source.wav", seconds=0.5, frequency=220.0)
        converted = write_tone(service.work_dir / "converted.wav", seconds=0.5)
        job = service.submit("evaluate", {"source": str(source), "converted": str(converted),
                                          "speaker_similarity": False})
        assert job.params.get("method", "auto") == "auto"
        view = service.wait(job.id, timeout=90)
        assert view.state == "done", view.log
        metrics = json.loads(Path(view.results[0]).read_text(encoding="utf-8"))
    assert metrics["f0_method"] == resolve_f0_method("auto")
    assert metrics["speaker_similarity_to_source"] is None
