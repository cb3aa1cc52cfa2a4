"""Resuming a discriminator saved with another layout: the demo's scale-only D."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sovits.checkpoints import write_training_checkpoint
from sovits.errors import CheckpointError
from sovits.models.discriminators import MultiPeriodDiscriminator
from sovits.training.checkpointing import load_discriminator_state


def _write(path: Path, state: dict[str, torch.Tensor]) -> Path:
    write_training_checkpoint(
        path, model_state=state, optimizer_state=None, learning_rate=1e-4, iteration=3
    )
    return path


def test_a_scale_only_discriminator_resumes_as_scale_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = MultiPeriodDiscriminator(periods=())  # what `sovits demo` trains
    path = _write(tmp_path / "D_40.pth", saved.state_dict())
    built = MultiPeriodDiscriminator(periods=(2,))  # scale + one period, like `train`
    resumed, checkpoint = load_discriminator_state(path, built)
    assert isinstance(resumed, MultiPeriodDiscriminator) and len(resumed.discriminators) == 1
    for key, value in saved.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    assert checkpoint.iteration == 3
    # a matching layout loads into the discriminator it was given
    same, _ = load_discriminator_state(path, MultiPeriodDiscriminator(periods=()))
    assert len(same.discriminators) == 1


def test_another_count_of_sub_discriminators_is_explained(tmp_path: Path) -> None:
    state = dict(MultiPeriodDiscriminator(periods=()).state_dict())
    state["discriminators.1.convs.0.weight"] = torch.zeros(1)
    state["discriminators.2.convs.0.weight"] = torch.zeros(1)
    path = _write(tmp_path / "D_7.pth", state)
    with pytest.raises(CheckpointError, match="holds 3 sub-discriminators but") as caught:
        load_discriminator_state(path, MultiPeriodDiscriminator(periods=(2,)))
    assert "cannot resume" in str(caught.value) and str(path) in str(caught.value)


def test_training_resumes_a_run_that_used_the_demos_discriminator(tmp_path: Path) -> None:
    from sovits.training.trainer import Trainer, TrainOptions
    from tests.training.tiny import RepeatingLoader, synthetic_batches, tiny_config

    config = tiny_config()
    batches = RepeatingLoader(synthetic_batches(config, 2), epoch_length=4)

    def run(max_steps: int, factory: object) -> object:
        trainer = Trainer(
            config, tmp_path, TrainOptions(accelerator="cpu", devices=1, max_steps=max_steps,
                                           tensorboard=False),
            discriminator_factory=factory,  # type: ignore[arg-type]
        )
        return trainer.fit(batches)

    run(2, lambda cfg: MultiPeriodDiscriminator(periods=()))  # as `sovits demo` trains
    # `sovits train` builds the scale and period sub-discriminators; it resumes the
    # scale-only D_1.pth with the layout it was saved in
    result = run(3, lambda cfg: MultiPeriodDiscriminator(periods=(2,)))
    assert result.first_step == 2 and result.last_step == 2  # type: ignore[attr-defined]
    saved = torch.load(tmp_path / "D_2.pth", weights_only=True)["model"]
    assert {key.split(".")[1] for key in saved} == {"0"}
