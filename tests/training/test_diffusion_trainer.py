"""The diffusion trainer on CPU with a tiny Unit2Mel: learning, checkpoints in the
original's layout, interval_force_save, resume (ours and the original's files), stops."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.checkpoints.diffusion import build_unit2mel
from sovits.config.diffusion import load_diffusion_config
from sovits.errors import CheckpointError, InputError
from sovits.training.diffusion_trainer import (
    DiffusionTrainer,
    diffusion_learning_rate,
    find_diffusion_checkpoints,
    make_diffusion_loaders,
    precision_from_amp_dtype,
)
from sovits.training.loop import TrainingError, TrainOptions, TrainProgress, TrainResult
from tests.conftest import SOVITS41
from tests.training.diffusion_tiny import (
    N_MELS,
    build_project,
    diffusion_dict,
    synthetic_batches,
    tiny_diffusion_config,
    write_tiny_vocoder,
)

FIXTURES = SOVITS41.parent / "sovits41-extras" / "diffusion" / "tiny_2spk"
TRAINED_STEPS = 35


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return build_project(tmp_path_factory.mktemp("diffusion_project"))


def _config(project: Path, **train):
    return tiny_diffusion_config(project, **train)


def _fit(
    config,
    expdir: Path,
    max_steps: int,
    *,
    loaders=None,
    project: Path | None = None,
    tensorboard: bool = False,
    partial_warm_start: bool = False,
    n_mels: int = N_MELS,
    config_path: Path | None = None,
    precision: str | None = None,
    on_progress=None,
) -> tuple[TrainResult, list[TrainProgress]]:
    seen: list[TrainProgress] = []

    def progress(update: TrainProgress) -> None:
        seen.append(update)
        if on_progress is not None:
            on_progress(update, trainer)

    trainer = DiffusionTrainer(
        config,
        TrainOptions(accelerator="cpu", devices=1, max_steps=max_steps, tensorboard=tensorboard,
                     partial_warm_start=partial_warm_start, precision=precision),
        expdir=expdir,
        config_path=config_path,
        n_mels=None if config_path is not None else n_mels,
        progress=progress,
    )
    if loaders is None:
        assert project is not None
        loaders = make_diffusion_loaders(config, root=project)
    return trainer.fit(*loaders), seen


@pytest.fixture(scope="module")
def trained(project, tmp_path_factory) -> tuple[Path, TrainResult, list[TrainProgress]]:
    """35 steps (interval_val 10, interval_force_save 20) with TensorBoard and a vocoder."""
    write_tiny_vocoder(project / "pretrain" / "nsf_hifigan_tiny")
    data = diffusion_dict(project, lr=0.02, batch_size=8)
    data["model"]["n_chans"] = 16
    config_path = project / "configs" / "learning.yaml"
    from sovits.config.diffusion import parse_diffusion_config, save_diffusion_config

    config = parse_diffusion_config(data)
    save_diffusion_config(config, config_path)
    expdir = tmp_path_factory.mktemp("trained") / "diffusion"
    result, seen = _fit(config, expdir, TRAINED_STEPS, project=project, tensorboard=True,
                        config_path=config_path)
    return expdir, result, seen


# ------------------------------------------------------------------ schedule


def _original_rates(first_step: int, last_step: int, lr: float, gamma: float, decay: int):
    """train_diff.py's schedule: lr set from the initial step, StepLR(last_epoch=g - 2),
    stepped after every step; returns the rate each step number trains with."""
    initial = first_step - 1
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter])
    for group in optimizer.param_groups:
        group["initial_lr"] = lr
        group["lr"] = lr * gamma ** max((initial - 2) // decay, 0)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=decay, gamma=gamma, last_epoch=initial - 2
    )
    rates = {}
    for step in range(first_step, last_step + 1):
        rates[step] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("first_step", [1, 2, 5, 7, 12])
def test_learning_rate_follows_the_originals_steplr(first_step: int):
    expected = _original_rates(first_step, 30, lr=1e-3, gamma=0.5, decay=5)
    ours = {
        step: diffusion_learning_rate(step, lr=1e-3, gamma=0.5, decay_step=5)
        for step in expected
    }
    assert ours == pytest.approx(expected, rel=1e-12)


def test_mixed_precision_trains(project, tmp_path):
    # bf16 autocast is what a CPU offers (amp_dtype bf16 -> "bf16-mixed")
    config = _config(project, amp_dtype="bf16")
    result, seen = _fit(config, tmp_path / "diffusion", 3, project=project)
    assert result.last_step == 3
    assert all(math.isfinite(update.losses["train/loss"]) for update in seen)
    payload = torch.load(tmp_path / "diffusion" / "model_3.pt", weights_only=True)
    assert all(tensor.dtype == torch.float32 for tensor in payload["model"].values())


def test_precision_comes_from_amp_dtype():
    assert precision_from_amp_dtype("fp32") == "32-true"
    assert precision_from_amp_dtype("fp16") == "16-mixed"
    assert precision_from_amp_dtype("bf16") == "bf16-mixed"
    with pytest.raises(InputError, match="amp_dtype"):
        precision_from_amp_dtype("fp64")


# ------------------------------------------------------------------ a trained run


def test_training_learns_with_finite_losses(trained):
    _, result, seen = trained
    assert [update.step for update in seen] == list(range(1, TRAINED_STEPS + 1))
    assert [update.steps_done for update in seen[:2]] == [1, 2]
    assert result.first_step == 1 and result.last_step == TRAINED_STEPS
    assert result.stopped_by == "max_steps" and result.resumed_from is None
    losses = [update.losses["train/loss"] for update in seen]
    assert all(math.isfinite(value) for value in losses)
    assert np.mean(losses[25:30]) < 0.92 * np.mean(losses[:5])


def test_checkpoints_follow_interval_force_save_in_the_original_layout(trained, project):
    expdir, result, _ = trained
    # saved at 10, 20, 30 and the final 35; 10 and 30 are deleted when the next one is
    # written (not multiples of interval_force_save = 20), 20 stays
    assert sorted(find_diffusion_checkpoints(expdir)) == [20, TRAINED_STEPS]
    assert [path.name for path in result.checkpoints] == [
        "model_10.pt", "model_20.pt", "model_30.pt", "model_35.pt"
    ]
    config = load_diffusion_config(expdir / "config.yaml")
    assert config.model.n_chans == 16 and config.train.lr == 0.02
    for step in (20, TRAINED_STEPS):
        payload = torch.load(expdir / f"model_{step}.pt", map_location="cpu", weights_only=True)
        assert set(payload) == {"global_step", "model"}
        assert payload["global_step"] == step
        model = build_unit2mel(config, N_MELS)
        model.load_state_dict(payload["model"])  # strict, as the original's inference
    assert not list(expdir.glob(".*.tmp"))


def test_tensorboard_gets_losses_validation_images_and_audio(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    expdir, _, _ = trained
    events = EventAccumulator(str(expdir / "logs"), size_guidance={"images": 0, "audio": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "validation/loss"} <= set(tags["scalars"])
    assert [event.step for event in events.Scalars("train/loss")] == [5, 10, 15, 20, 25, 30, 35]
    assert [event.step for event in events.Scalars("validation/loss")] == [10, 20, 30]
    assert {"spec/alice_alice_0", "spec/bob_bob_0"} <= set(tags["images"])
    assert {"audio/alice_alice_0_pred", "audio/alice_alice_0_gt"} <= set(tags["audio"])


# ------------------------------------------------------------------ resuming


def test_resume_continues_the_step_count(trained, project, tmp_path):
    expdir = tmp_path / "diffusion"
    shutil.copytree(trained[0], expdir)
    config = load_diffusion_config(expdir / "config.yaml")
    result, seen = _fit(config, expdir, TRAINED_STEPS + 5, project=project)
    assert result.first_step == TRAINED_STEPS + 1
    assert result.resumed_from == expdir / f"model_{TRAINED_STEPS}.pt"
    assert [update.step for update in seen] == list(range(TRAINED_STEPS + 1, TRAINED_STEPS + 6))
    # model_40 written at the stop (and at interval_val); model_35 was the previous one
    assert sorted(find_diffusion_checkpoints(expdir)) == [20, 40]
    again, seen_again = _fit(config, expdir, TRAINED_STEPS + 5, project=project)
    assert again.last_step is None and seen_again == [] and again.checkpoints == ()


def test_the_originals_resume_code_accepts_our_checkpoint(project, tmp_path):
    config = _config(project, save_opt=True)
    expdir = tmp_path / "diffusion"
    _fit(config, expdir, 3, project=project)
    payload = torch.load(expdir / "model_3.pt", map_location="cpu", weights_only=True)
    assert set(payload) == {"global_step", "model", "optimizer"}
    # what train_diff.py does with it
    model = build_unit2mel(config, N_MELS)
    optimizer = torch.optim.AdamW(model.parameters())
    model.load_state_dict(payload["model"], strict=False)
    optimizer.load_state_dict(payload["optimizer"])
    initial = payload["global_step"]
    for group in optimizer.param_groups:
        group["initial_lr"] = config.train.lr
    torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.train.decay_step, gamma=config.train.gamma,
        last_epoch=initial - 2,
    )
    assert initial == 3
    state = next(iter(optimizer.state.values()))
    assert float(state["step"]) == 3.0


def _fixture_config(tmp_path: Path, **train):
    config = load_diffusion_config(FIXTURES / "config.yaml")
    train = {"epochs": 1000, **train}  # the fixture's epochs: 1 would end a run early
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train))


def test_we_resume_the_originals_checkpoint_with_its_optimizer(tmp_path):
    expdir = tmp_path / "diffusion"
    expdir.mkdir()
    shutil.copy(FIXTURES / "model_2001_with_optimizer.pt", expdir / "model_2001.pt")
    original = torch.load(expdir / "model_2001.pt", map_location="cpu", weights_only=True)
    config = _fixture_config(tmp_path, save_opt=True, interval_val=1000, interval_log=1000)
    batches = synthetic_batches(2, units=config.data.encoder_out_channels, n_mels=128)
    result, seen = _fit(config, expdir, 2003, loaders=(batches, None), n_mels=128)
    assert result.first_step == 2002 and [update.step for update in seen] == [2002, 2003]
    assert seen[0].learning_rate == pytest.approx(
        diffusion_learning_rate(2002, lr=config.train.lr, gamma=config.train.gamma,
                                decay_step=config.train.decay_step)
    )
    payload = torch.load(expdir / "model_2003.pt", map_location="cpu", weights_only=True)
    assert payload["global_step"] == 2003
    before = original["optimizer"]["state"][0]["step"]
    assert float(payload["optimizer"]["state"][0]["step"]) == float(before) + 2
    # model_2001 (2001 % interval_force_save != 0) made way for model_2003
    assert sorted(find_diffusion_checkpoints(expdir)) == [2003]


def test_warm_start_from_a_base_model_keeps_model_0(tmp_path):
    expdir = tmp_path / "diffusion"
    expdir.mkdir()
    shutil.copy(FIXTURES / "model_2000.pt", expdir / "model_0.pt")
    config = _fixture_config(tmp_path, interval_val=2, interval_force_save=5)
    batches = synthetic_batches(2, units=config.data.encoder_out_channels, n_mels=128)
    result, seen = _fit(config, expdir, 3, loaders=(batches, None), n_mels=128)
    assert result.first_step == 1 and result.resumed_from == expdir / "model_0.pt"
    assert [update.step for update in seen] == [1, 2, 3]
    assert sorted(find_diffusion_checkpoints(expdir)) == [0, 3]


def test_a_base_model_for_another_speaker_count_needs_partial_warm_start(tmp_path):
    expdir = tmp_path / "diffusion"
    expdir.mkdir()
    shutil.copy(FIXTURES / "model_2000.pt", expdir / "model_0.pt")
    config = _fixture_config(tmp_path)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, n_spk=3),
                                 spk={"a": 0, "b": 1, "c": 2})
    batches = synthetic_batches(1, units=config.data.encoder_out_channels, n_mels=128)
    with pytest.raises(CheckpointError, match=r"spk_embed\.weight"):
        _fit(config, expdir, 1, loaders=(batches, None), n_mels=128)
    result, _ = _fit(config, expdir, 1, loaders=(batches, None), n_mels=128,
                     partial_warm_start=True)
    assert result.first_step == 1 and result.last_step == 1


# ------------------------------------------------------------------ failures and stops


def test_a_corrupt_latest_checkpoint_is_an_error_not_a_restart(tmp_path):
    expdir = tmp_path / "diffusion"
    expdir.mkdir()
    shutil.copy(FIXTURES / "model_2000.pt", expdir / "model_10.pt")
    latest = expdir / "model_12.pt"
    latest.write_bytes((FIXTURES / "model_2000.pt").read_bytes()[:1000])
    config = _fixture_config(tmp_path)
    batches = synthetic_batches(1, units=config.data.encoder_out_channels, n_mels=128)
    with pytest.raises(CheckpointError, match=r"model_12\.pt"):
        _fit(config, expdir, 20, loaders=(batches, None), n_mels=128)
    assert sorted(find_diffusion_checkpoints(expdir)) == [10, 12]


def test_request_stop_ends_with_a_checkpoint(project, tmp_path):
    def stop_at_three(update: TrainProgress, trainer: DiffusionTrainer) -> None:
        if update.step == 3:
            trainer.request_stop()

    expdir = tmp_path / "diffusion"
    result, seen = _fit(_config(project), expdir, 50, project=project, on_progress=stop_at_three)
    assert result.stopped_by == "requested" and result.last_step == 3
    assert [update.step for update in seen] == [1, 2, 3]
    assert sorted(find_diffusion_checkpoints(expdir)) == [3]


def test_losses_that_are_not_finite_skip_the_step_then_fail(tmp_path):
    config = _fixture_config(tmp_path, interval_val=1000)
    batches = synthetic_batches(1, units=config.data.encoder_out_channels, n_mels=128)
    bad = dataclasses.replace(batches[0], mel=torch.full_like(batches[0].mel, float("nan")))
    expdir = tmp_path / "diffusion"
    with pytest.raises(TrainingError, match="diverged"):
        _fit(config, expdir, 100, loaders=([bad], None), n_mels=128)
    assert find_diffusion_checkpoints(expdir) == {}


def test_an_empty_training_set_is_an_error(tmp_path):
    config = _fixture_config(tmp_path)
    with pytest.raises(InputError, match="no batches"):
        _fit(config, tmp_path / "diffusion", 3, loaders=([], None), n_mels=128)


def test_bad_intervals_and_an_unknown_mel_width_are_errors(project, tmp_path):
    with pytest.raises(InputError, match="interval_force_save"):
        DiffusionTrainer(_config(project, interval_force_save=0), n_mels=N_MELS)
    with pytest.raises(InputError, match="mel width"):
        DiffusionTrainer(_config(project), expdir=tmp_path)
