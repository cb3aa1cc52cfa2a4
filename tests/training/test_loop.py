"""TrainingLoop with a scripted task: numbering, intervals, stops, the final checkpoint,
the non-finite guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovits.errors import InputError
from sovits.training.loop import (
    Intervals,
    StepResult,
    TaskStart,
    TrainingError,
    TrainingLoop,
    TrainOptions,
    parse_precision,
)


class ScriptedTask:
    """Records what the loop asks of it; losses are NaN for the steps in `nonfinite`."""

    default_precision = "32-true"
    empty_dataset_hint = "add batches"

    def __init__(self, *, step_base: int = 1, first_step: int | None = None,
                 last_epoch: int = 100, nonfinite: frozenset[int] = frozenset()) -> None:
        self.step_base = step_base
        self.first_step = step_base if first_step is None else first_step
        self.last_epoch = last_epoch
        self.intervals = Intervals(log=2, save=3, evaluate=3)
        self.nonfinite = nonfinite
        self.events: list[tuple[str, int]] = []

    def tensorboard_dirs(self):
        return {}

    def prepare(self) -> None:
        self.events.append(("prepare", 0))

    def setup(self, fabric) -> TaskStart:
        resumed = Path("model.pt") if self.first_step != self.step_base else None
        return TaskStart(first_step=self.first_step, first_epoch=1, resumed_from=resumed)

    def start_epoch(self, epoch: int) -> None:
        self.events.append(("epoch", epoch))

    def train_step(self, batch, step: int, epoch: int) -> StepResult:
        self.events.append(("step", step))
        bad = step in self.nonfinite
        return StepResult({"loss": float("nan") if bad else 1.0}, 0.1, skipped=bad)

    def log(self, result, step, epoch, writers) -> None:
        self.events.append(("log", step))

    def save(self, step: int, epoch: int):
        self.events.append(("save", step))
        return [Path(f"model_{step}.pt")]

    def evaluate(self, step, writers) -> None:
        self.events.append(("evaluate", step))


def _run(task: ScriptedTask, batches: int = 4, **options):
    loop = TrainingLoop(task, TrainOptions(accelerator="cpu", devices=1, tensorboard=False,
                                           **options))
    return loop, loop.run(list(range(batches)))


def _of(task: ScriptedTask, kind: str) -> list[int]:
    return [step for name, step in task.events if name == kind]


def test_steps_intervals_and_the_final_checkpoint():
    task = ScriptedTask(step_base=1)
    _, result = _run(task, max_steps=7)
    assert _of(task, "step") == [1, 2, 3, 4, 5, 6, 7]
    assert _of(task, "epoch") == [1, 2]
    assert _of(task, "log") == [2, 4, 6]
    assert _of(task, "save") == [3, 6, 7] and _of(task, "evaluate") == [3, 6]
    assert task.events.index(("save", 3)) < task.events.index(("evaluate", 3))
    assert (result.first_step, result.last_step, result.stopped_by) == (1, 7, "max_steps")
    assert result.checkpoints == (Path("model_3.pt"), Path("model_6.pt"), Path("model_7.pt"))


def test_a_zero_based_task_and_a_resumed_one():
    zero = ScriptedTask(step_base=0)
    _, result = _run(zero, max_steps=4)
    assert _of(zero, "step") == [0, 1, 2, 3] and _of(zero, "save") == [0, 3]
    resumed = ScriptedTask(step_base=1, first_step=7)
    _, result = _run(resumed, max_steps=9)
    assert _of(resumed, "step") == [7, 8, 9] and _of(resumed, "save") == [9]
    assert result.first_step == 7 and result.last_step == 9
    done = ScriptedTask(step_base=1, first_step=10)
    _, result = _run(done, max_steps=9)
    assert result.last_step is None and _of(done, "save") == []


def test_the_last_epoch_ends_the_run():
    task = ScriptedTask(last_epoch=2)
    _, result = _run(task, batches=3)
    assert _of(task, "step") == [1, 2, 3, 4, 5, 6] and result.stopped_by == "epochs"
    assert result.epoch == 2 and _of(task, "save") == [3, 6]


def test_request_stop_from_the_progress_callback():
    task = ScriptedTask()
    loop = TrainingLoop(task, TrainOptions(accelerator="cpu", devices=1, tensorboard=False),
                        progress=lambda update: loop.request_stop() if update.step == 4 else None)
    result = loop.run(list(range(10)))
    assert result.stopped_by == "requested" and result.last_step == 4
    assert _of(task, "save") == [3, 4]


def test_nonfinite_steps_are_tolerated_then_fatal():
    task = ScriptedTask(nonfinite=frozenset({2, 3}))
    _, result = _run(task, max_steps=5, max_nonfinite_steps=2)
    assert result.last_step == 5
    failing = ScriptedTask(nonfinite=frozenset(range(2, 100)))
    with pytest.raises(TrainingError, match="3 steps in a row up to step 4"):
        _run(failing, max_steps=50, max_nonfinite_steps=2)


def test_bad_inputs():
    with pytest.raises(InputError, match="no batches"):
        _run(ScriptedTask(), batches=0)
    with pytest.raises(InputError, match="max_steps"):
        TrainingLoop(ScriptedTask(), TrainOptions(max_steps=-1))
    with pytest.raises(InputError, match="interval"):
        Intervals(log=0, save=1, evaluate=1)
    assert parse_precision("fp16") == "16-mixed" and parse_precision("32") == "32-true"
