"""The demo pipeline: its parts (fast) and the whole run (opt-in: minutes on a CPU)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sovits.config import template_config
from sovits.demo.pipeline import (
    DemoResult,
    _demo_discriminator,
    _demo_model_config,
    _remove_checkpoints,
    _save_untrained,
    demo_checks,
    run_demo,
)
from sovits.errors import InputError
from sovits.evaluation import METRIC_KEYS, EvaluationResult
from sovits.models.discriminators import DiscriminatorS


def test_negative_training_steps_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="train_steps"):
        run_demo(tmp_path / "demo", train_steps=-1)
    assert not (tmp_path / "demo").exists()


def test_the_untrained_model_is_saved_as_a_checkpoint_pair(tmp_path: Path) -> None:
    config = template_config(tiny=True)
    config = replace(config, model=_demo_model_config(config.model))
    _save_untrained(config, tmp_path / "logs", demo_model=True)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "D_0.pth",
        "G_0.pth",
        "config.json",
    ]
    generator = torch.load(tmp_path / "logs" / "G_0.pth", weights_only=True)
    assert generator["iteration"] == 0 and "emb_g.weight" in generator["model"]


def test_the_demo_discriminator_is_the_scale_one_alone() -> None:
    discriminator = _demo_discriminator(template_config(tiny=True))
    parts = list(discriminator.discriminators)
    assert len(parts) == 1 and isinstance(parts[0], DiscriminatorS)
    real, fake = torch.zeros(1, 1, 1024), torch.ones(1, 1, 1024)
    scores = discriminator(real, fake)
    assert len(scores.real_scores) == len(scores.fake_scores) == 1


def test_the_demo_model_is_the_tiny_template_shrunk() -> None:
    tiny = template_config(tiny=True).model
    demo = _demo_model_config(tiny)
    assert demo.hidden_channels < tiny.hidden_channels
    assert demo.upsample_initial_channel < tiny.upsample_initial_channel
    assert demo.upsample_rates == tiny.upsample_rates  # same hop, same file format
    assert demo.ssl_dim == tiny.ssl_dim and demo.n_speakers == tiny.n_speakers


def test_earlier_checkpoints_are_removed_and_nothing_else(tmp_path: Path) -> None:
    for name in ("G_0.pth", "D_0.pth", "G_12.pth", "D_12.pth", "config.json", "G_x.pth"):
        (tmp_path / name).write_bytes(b"")
    _remove_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G_x.pth", "config.json"]
    _remove_checkpoints(tmp_path / "missing")  # no folder yet: nothing to do


def _result(
    f0_error: float | None,
    similarity: tuple[float, float] | None,
    distances: tuple[float, float, float] | None,
    accuracy: float | None = 0.99,
) -> EvaluationResult:
    """A result with (similarity to target, to source) and (distance to target, to
    source, target to source)."""
    to_target, to_source, between = distances or (None, 7.0, None)
    return EvaluationResult(
        name="b",
        source="a.wav",
        converted="b.wav",
        target_references=("t.wav",),
        transpose=0.0,
        f0_method="swift",
        f0_frames=100,
        f0_error_cents_median=f0_error,
        raw_pitch_accuracy=accuracy,
        speaker_similarity_to_target=similarity[0] if similarity else None,
        speaker_similarity_to_source=similarity[1] if similarity else None,
        distance_to_target=to_target,
        distance_to_source=to_source,
        target_to_source=between,
    )


TRAINED = _result(3.1, (0.669, 0.576), (2.98, 8.32, 9.16))
"""Step 300 of the demo recipe, transpose +3 (seed 0, `sovits demo`)."""
UNTRAINED = _result(3.7, (0.501, 0.543), (6.84, 7.79, 8.41))
"""The untrained model, transpose 0 (seed 0, `sovits demo --steps 0`)."""


def test_demo_checks_tell_a_trained_conversion_from_an_untrained_one() -> None:
    trained = demo_checks(TRAINED)
    assert trained == dict.fromkeys(trained, True)
    assert demo_checks(UNTRAINED) == {
        # the NSF source carries the f0 even with random weights
        "f0_error_at_most_50_cents": True,
        "raw_pitch_accuracy_at_least_80_percent": True,
        "more_similar_to_target_than_to_source": False,
        "closer_to_target_than_to_source": True,  # far from both, a little less from B
        "within_half_the_singers_distance_of_target": False,
    }
    buzzing = demo_checks(_result(1500.0, (0.8, 0.6), (2.9, 6.2, 5.2), accuracy=0.1))
    assert not buzzing["f0_error_at_most_50_cents"]
    assert not buzzing["raw_pitch_accuracy_at_least_80_percent"]
    silent = demo_checks(_result(None, None, None, accuracy=None))
    assert not any(silent.values())


def test_missed_checks_name_the_conversion_and_the_target(tmp_path: Path) -> None:
    paths = {name: tmp_path / name for name in ("c.json", "m.pth", "s.wav", "m.json", "r.png")}
    result = DemoResult(
        out_dir=tmp_path,
        work_dir=tmp_path,
        config_path=paths["c.json"],
        model_path=paths["m.pth"],
        source=paths["s.wav"],
        converted={},
        targets={},
        metrics_path=paths["m.json"],
        report_path=paths["r.png"],
        metrics={0.0: TRAINED, 3.0: UNTRAINED},
    )
    assert result.missed_checks() == [
        "transpose_3: more_similar_to_target_than_to_source",
        "transpose_3: within_half_the_singers_distance_of_target",
    ]


@pytest.mark.skipif(
    not os.environ.get("SOVITS_DEMO_TEST"), reason="set SOVITS_DEMO_TEST=1 (takes minutes)"
)
def test_the_whole_demo_runs(tmp_path: Path) -> None:
    stages: list[str] = []
    out = tmp_path / "demo" / "out"
    small = {"n_clips_per_singer": 3, "seconds": 2.0, "batch_size": 2, "accelerator": "cpu"}
    result = run_demo(out, train_steps=2, progress=stages.append, **small)
    assert len(stages) == 7
    assert result.model_path.name == "G_1.pth"
    assert result.work_dir == tmp_path / "demo" / "work"
    assert result.source.is_file() and sorted(result.converted) == [0.0, 3.0]
    assert sorted(path.name for path in result.targets.values()) == [
        "target_0key.wav",
        "target_3key.wav",
    ]
    assert all(path.parent == result.out_dir for path in result.converted.values())
    assert result.report_path.read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads(result.metrics_path.read_text())
    assert sorted(metrics) == ["transpose_0", "transpose_3"]
    assert set(metrics["transpose_3"]) == {"f0_method", *METRIC_KEYS, "warnings", "checks"}
    assert sorted(metrics["transpose_3"]["checks"]) == sorted(demo_checks(result.metrics[3.0]))
    assert metrics["transpose_3"]["speaker_similarity_to_target"] is not None
    # A second run starts afresh: the first run's checkpoints are gone.
    again = run_demo(out, train_steps=1, **small)
    assert again.model_path.name == "G_0.pth"
    assert not result.model_path.exists()
    untrained = run_demo(out, train_steps=0, **small)
    assert untrained.model_path.name == "G_0.pth" and untrained.metrics_path.is_file()
