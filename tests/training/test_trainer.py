"""The Trainer on CPU with a tiny model: learning, checkpoints, resume, failures, kill -9."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sovits.checkpoints import load_model_state, read_checkpoint
from sovits.config import load_svc_config
from sovits.errors import CheckpointError, InputError
from sovits.models.build import build_synthesizer
from sovits.training import checkpointing
from sovits.training.trainer import (
    Trainer,
    TrainOptions,
    TrainProgress,
    TrainResult,
    learning_rate_at,
    mel_image,
    parse_precision,
    precision_from_config,
)
from tests.training.tiny import (
    RepeatingLoader,
    TinyDiscriminator,
    synthetic_batches,
    tiny_config,
    tiny_discriminator,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINED_STEPS = 30


def _fit(
    model_dir: Path,
    max_steps: int,
    *,
    config=None,
    precision: str | None = None,
    eval_loader=None,
    tensorboard: bool = False,
    partial_warm_start: bool = False,
    batches: int = 1,
    epoch_length: int = 12,
    on_progress=None,
) -> tuple[TrainResult, list[TrainProgress]]:
    config = config or tiny_config()
    seen: list[TrainProgress] = []

    def progress(update: TrainProgress) -> None:
        seen.append(update)
        if on_progress is not None:
            on_progress(update)

    trainer = Trainer(
        config,
        model_dir,
        TrainOptions(
            accelerator="cpu",
            devices=1,
            max_steps=max_steps,
            tensorboard=tensorboard,
            partial_warm_start=partial_warm_start,
            precision=precision,
        ),
        progress=progress,
        discriminator_factory=tiny_discriminator,
    )
    if on_progress is not None:
        on_progress.trainer = trainer  # type: ignore[attr-defined]
    loader = RepeatingLoader(synthetic_batches(config, batches), epoch_length=epoch_length)
    return trainer.fit(loader, eval_loader), seen


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, TrainResult, list[TrainProgress]]:
    """30 steps on one fixed batch (epochs of 12 steps), with evaluation and TensorBoard."""
    model_dir = tmp_path_factory.mktemp("trained") / "44k"
    config = tiny_config()
    result, seen = _fit(
        model_dir,
        TRAINED_STEPS,
        config=config,
        eval_loader=synthetic_batches(config, 2, seed=5, batch_size=1),
        tensorboard=True,
    )
    return model_dir, result, seen


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


# ------------------------------------------------------------------ schedule


def _original_rates(epochs: int, learning_rate: float, decay: float, warmup: int) -> list[float]:
    """train.py's loop: warm-up overrides, ExponentialLR stepped once per epoch."""
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay, last_epoch=-1)
    rates = []
    for epoch in range(1, epochs + 1):
        if epoch <= warmup:
            optimizer.param_groups[0]["lr"] = learning_rate / warmup * epoch
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("warmup", [0, 3])
def test_learning_rate_follows_the_originals_schedule(warmup: int):
    expected = _original_rates(8, 2e-4, 0.9, warmup)
    ours = [
        learning_rate_at(epoch, learning_rate=2e-4, lr_decay=0.9, warmup_epochs=warmup)
        for epoch in range(1, 9)
    ]
    assert np.allclose(ours, expected, rtol=1e-12, atol=0)


def test_precision_comes_from_the_config_unless_named():
    config = tiny_config()
    assert precision_from_config(config) == "32-true"
    assert precision_from_config(tiny_config(fp16_run=True)) == "16-mixed"
    assert precision_from_config(tiny_config(fp16_run=True, half_type="bf16")) == "bf16-mixed"
    assert parse_precision("32") == "32-true"
    assert parse_precision("bf16-mixed") == "bf16-mixed"
    with pytest.raises(InputError, match="precision"):
        parse_precision("64")


# ------------------------------------------------------------------ a trained run


def test_training_learns_with_finite_losses(trained):
    _, result, seen = trained
    assert [update.step for update in seen] == list(range(TRAINED_STEPS))
    assert result.first_step == 0 and result.last_step == TRAINED_STEPS - 1
    assert result.stopped_by == "max_steps" and result.resumed_from is None
    for update in seen:
        assert all(math.isfinite(value) for value in update.losses.values()), update
    mel = [update.losses["loss/g/mel"] for update in seen]
    assert np.mean(mel[-5:]) < 0.85 * np.mean(mel[:5])
    # epochs of 12 steps: the learning rate decays once per epoch
    assert [update.epoch for update in seen[::12]] == [1, 2, 3]
    config = tiny_config()
    assert seen[12].learning_rate == pytest.approx(
        config.train.learning_rate * config.train.lr_decay
    )


def test_checkpoints_are_in_the_original_layout_and_load(trained):
    model_dir, _, _ = trained
    config = tiny_config()
    found = checkpointing.find_checkpoints(model_dir)
    # saved at 0, 10, 20 and the final 29; keep_ckpts = 2 keeps 20, 29 (and G_0 always)
    assert sorted(found["G"]) == sorted(found["D"]) == [0, 20, 29]
    assert load_svc_config(model_dir / "config.json") == config
    for kind, model in (("G", build_synthesizer(config)), ("D", TinyDiscriminator())):
        for step, path in found[kind].items():
            payload = torch.load(path, map_location="cpu", weights_only=True)
            assert set(payload) == {"model", "iteration", "optimizer", "learning_rate"}
            assert payload["learning_rate"] == config.train.learning_rate
            assert payload["iteration"] == (3 if step == 29 else step // 12 + 1)
            assert not any(key.startswith("module.") for key in payload["model"])
            group = payload["optimizer"]["param_groups"][0]
            assert group["initial_lr"] == config.train.learning_rate
            checkpoint = read_checkpoint(path)
            load_model_state(model, checkpoint.model_state, source=path)
    assert not list(model_dir.glob(".*.tmp"))


def test_tensorboard_gets_scalars_mel_images_and_eval_audio(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model_dir, _, _ = trained
    train_events = EventAccumulator(str(model_dir), size_guidance={"images": 0})
    train_events.Reload()
    tags = train_events.Tags()
    assert {"loss/g/mel", "loss/d/total", "learning_rate", "grad_norm_g"} <= set(tags["scalars"])
    assert {"slice/mel_org", "slice/mel_gen", "all/mel"} <= set(tags["images"])
    assert [event.step for event in train_events.Scalars("loss/g/mel")] == [0, 5, 10, 15, 20, 25]
    eval_events = EventAccumulator(str(model_dir / "eval"), size_guidance={"audio": 0})
    eval_events.Reload()
    tags = eval_events.Tags()
    assert {"gen/audio_0", "gt/audio_0", "gen/audio_1"} <= set(tags["audio"])
    assert {"gen/mel", "gt/mel"} <= set(tags["images"])
    assert [event.step for event in eval_events.Audio("gen/audio_0")] == [0, 10, 20]


def test_mel_image_is_rgb_with_low_bins_at_the_bottom():
    mel = torch.zeros(20, 7)
    mel[0] = 5.0  # the lowest bin is the brightest
    image = mel_image(mel)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert image.shape[0] >= 160 and image.shape[1] == 7
    assert image[-1].mean() > image[0].mean()


def test_mixed_precision_trains(tmp_path):
    # bf16 autocast is what a CPU offers (Fabric turns 16-mixed into it there too)
    result, seen = _fit(tmp_path / "44k", 3, precision="bf16-mixed")
    assert result.last_step == 2
    for update in seen:
        assert all(math.isfinite(value) for value in update.losses.values())
        assert update.losses["skipped/g"] == 0.0


# ------------------------------------------------------------------ resuming


def test_resume_continues_the_global_step(trained, tmp_path):
    model_dir = _copy(trained[0], tmp_path / "44k")
    result, seen = _fit(model_dir, TRAINED_STEPS + 4)
    assert result.first_step == TRAINED_STEPS
    assert result.resumed_from == model_dir / f"G_{TRAINED_STEPS - 1}.pth"
    assert [update.step for update in seen] == list(range(TRAINED_STEPS, TRAINED_STEPS + 4))
    assert seen[0].epoch == 3  # the epoch stored in G_29's "iteration"
    assert (model_dir / f"G_{TRAINED_STEPS + 3}.pth").exists()
    # nothing left to do: no step, no new file
    again, seen_again = _fit(model_dir, TRAINED_STEPS + 4)
    assert again.last_step is None and seen_again == [] and again.checkpoints == ()


def test_the_originals_resume_code_accepts_our_checkpoint(trained):
    model_dir, _, _ = trained
    config = tiny_config()
    path = model_dir / f"G_{TRAINED_STEPS - 1}.pth"
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = build_synthesizer(config)
    model.load_state_dict(payload["model"])
    optimizer = torch.optim.AdamW(
        model.parameters(), config.train.learning_rate, betas=config.train.betas,
        eps=config.train.eps,
    )
    optimizer.load_state_dict(payload["optimizer"])
    epoch = max(payload["iteration"], 1)
    torch.optim.lr_scheduler.ExponentialLR(
        optimizer, gamma=config.train.lr_decay, last_epoch=epoch - 2
    )
    name = str(path)
    assert int(name[name.rfind("_") + 1 : name.rfind(".")]) + 1 == TRAINED_STEPS


def test_we_resume_from_the_originals_checkpoints(tmp_path):
    """Files as train.py writes them (plain torch.save, an ExponentialLR-driven AdamW)."""
    config = tiny_config()
    torch.manual_seed(0)
    model_dir = tmp_path / "44k"
    model_dir.mkdir()
    for kind, model in (("G", build_synthesizer(config)), ("D", TinyDiscriminator())):
        optimizer = torch.optim.AdamW(model.parameters(), config.train.learning_rate)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
        for parameter in model.parameters():
            parameter.grad = torch.ones_like(parameter)
        optimizer.step()
        scheduler.step()
        torch.save(
            {
                "model": model.state_dict(),
                "iteration": 3,
                "optimizer": optimizer.state_dict(),
                "learning_rate": config.train.learning_rate,
            },
            model_dir / f"{kind}_7.pth",
        )
    result, seen = _fit(model_dir, 9)
    assert result.first_step == 8 and [update.step for update in seen] == [8]
    assert seen[0].epoch == 3
    assert seen[0].learning_rate == pytest.approx(
        config.train.learning_rate * config.train.lr_decay**2
    )


def test_warm_start_from_base_models(trained, tmp_path):
    model_dir = tmp_path / "44k"
    model_dir.mkdir()
    for name in ("G_0.pth", "D_0.pth"):
        shutil.copy(trained[0] / name, model_dir / name)
    result, seen = _fit(model_dir, 2)
    assert result.first_step == 1 and [update.step for update in seen] == [1]
    assert result.resumed_from == model_dir / "G_0.pth"


def test_base_models_for_another_speaker_count_need_partial_warm_start(trained, tmp_path):
    model_dir = tmp_path / "44k"
    model_dir.mkdir()
    for name in ("G_0.pth", "D_0.pth"):
        shutil.copy(trained[0] / name, model_dir / name)
    config = tiny_config()
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, n_speakers=3))
    with pytest.raises(CheckpointError, match=r"emb_g\.weight"):
        _fit(model_dir, 2, config=config)
    result, _ = _fit(model_dir, 2, config=config, partial_warm_start=True)
    assert result.first_step == 1


# ------------------------------------------------------------------ failures


def test_a_corrupt_latest_checkpoint_is_an_error_not_a_restart(trained, tmp_path):
    model_dir = _copy(trained[0], tmp_path / "44k")
    latest = model_dir / f"G_{TRAINED_STEPS - 1}.pth"
    latest.write_bytes(latest.read_bytes()[:1000])
    before = sorted(path.name for path in model_dir.iterdir())
    with pytest.raises(CheckpointError, match=latest.name):
        _fit(model_dir, TRAINED_STEPS + 3)
    assert sorted(path.name for path in model_dir.iterdir()) == before


def test_a_checkpoint_for_another_model_is_an_error(trained, tmp_path):
    model_dir = _copy(trained[0], tmp_path / "44k")
    config = tiny_config()
    model = dataclasses.replace(config.model, hidden_channels=12, filter_channels=24)
    with pytest.raises(CheckpointError, match="does not fit"):
        _fit(model_dir, TRAINED_STEPS + 3, config=dataclasses.replace(config, model=model))


def test_checkpoints_without_a_partner(trained, tmp_path):
    model_dir = tmp_path / "44k"
    model_dir.mkdir()
    shutil.copy(trained[0] / "G_20.pth", model_dir / "G_20.pth")
    with pytest.raises(CheckpointError, match="no complete"):
        checkpointing.latest_resume_point(model_dir)
    # a pair plus a newer lone G (stopped between the two writes): the pair wins
    shutil.copy(trained[0] / "G_0.pth", model_dir / "G_0.pth")
    shutil.copy(trained[0] / "D_0.pth", model_dir / "D_0.pth")
    point = checkpointing.latest_resume_point(model_dir)
    assert point is not None and point.step == 0 and point.next_step == 1


def test_an_empty_training_set_is_an_error(tmp_path):
    config = tiny_config()
    trainer = Trainer(
        config, tmp_path / "44k",
        TrainOptions(accelerator="cpu", devices=1, max_steps=3, tensorboard=False),
        discriminator_factory=tiny_discriminator,
    )
    with pytest.raises(InputError, match="no batches"):
        trainer.fit([])


def test_request_stop_ends_with_a_checkpoint(tmp_path):
    def stop_after_two(update: TrainProgress) -> None:
        if update.step == 2:
            stop_after_two.trainer.request_stop()  # type: ignore[attr-defined]

    result, seen = _fit(tmp_path / "44k", 50, on_progress=stop_after_two)
    assert result.stopped_by == "requested" and result.last_step == 2
    assert [update.step for update in seen] == [0, 1, 2]
    assert (tmp_path / "44k" / "G_2.pth").exists() and (tmp_path / "44k" / "D_2.pth").exists()


def test_cleanup_keeps_base_models_and_removes_only_our_temporaries(tmp_path):
    for step in (0, 5, 10, 15):
        for kind in ("G", "D"):
            (tmp_path / f"{kind}_{step}.pth").write_bytes(b"x")
    deleted = checkpointing.clean_checkpoints(tmp_path, keep=2)
    assert sorted(path.name for path in deleted) == ["D_5.pth", "G_5.pth"]
    assert checkpointing.find_checkpoints(tmp_path)["G"].keys() == {0, 10, 15}
    stale = tmp_path / ".G_20.pth.0123456789ab.tmp"
    stale.write_bytes(b"partial")
    other = tmp_path / ".notes.tmp"
    other.write_bytes(b"keep")
    assert checkpointing.remove_stale_temporaries(tmp_path) == [stale]
    assert other.exists() and not stale.exists()


# ------------------------------------------------------------------ kill -9


def test_a_killed_run_resumes_and_every_checkpoint_on_disk_loads(tmp_path):
    model_dir = tmp_path / "44k"
    command = [sys.executable, "-m", "tests.training.tiny", str(model_dir),
               "--max-steps", "1000", "--eval-interval", "3"]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    deadline = time.monotonic() + 120
    last_step = -1
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("step "):
                last_step = int(line.split()[1])
            # checkpoints at 0, 3, 6 are written once step 7 has been reported
            if last_step >= 7 or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert last_step >= 7, "the training subprocess did not get far enough"
    assert process.returncode == -signal.SIGKILL

    found = checkpointing.find_checkpoints(model_dir)
    for paths in found.values():
        for path in paths.values():
            read_checkpoint(path)  # every file on disk is whole
    point = checkpointing.latest_resume_point(model_dir)
    assert point is not None and point.step >= 6

    result, seen = _fit(
        model_dir, point.next_step + 2,
        config=tiny_config(eval_interval=3, log_interval=1000),
        batches=3, epoch_length=7,
    )
    assert result.first_step == point.next_step
    assert [update.step for update in seen] == [point.next_step, point.next_step + 1]
    assert not list(model_dir.glob(".*.tmp"))
    for paths in checkpointing.find_checkpoints(model_dir).values():
        for path in paths.values():
            read_checkpoint(path)
