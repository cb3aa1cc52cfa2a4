"""The training loop every sovits trainer runs, on Lightning Fabric.

One loop, several kinds of training. A *task* (`TrainingTask`) says what is trained:
it builds its models and optimizers, resumes from its own checkpoints, runs one step
and returns named losses, logs, evaluates and saves. `TrainingLoop` owns the rest:

* Fabric from `TrainOptions` (accelerator, devices, nodes, strategy, precision; the
  task's default precision unless the options name one) and its launch;
* the output folder prepared on global rank 0 before any rank reads it;
* the epoch / step loop, with global step numbers that continue across resumes
  (the task says which number a fresh run's first step gets: 0 for the synthesizer,
  whose `G_<n>.pth` holds the weights after step n, 1 for the diffusion model, whose
  `model_<n>.pt` holds the weights after n steps);
* a stop after `max_steps` steps in total (counted across resumes), at the end of the
  task's last epoch, or when `request_stop` is called (from another thread, a signal
  handler, a progress callback), always with a checkpoint of the last step;
* every step: the progress callback (rank 0); the task's log, save and evaluation at
  its intervals (rank 0, `step % interval == 0`);
* a guard against losses that are not finite: the task skips such an update and says
  so, and too many skipped steps in a row raise `TrainingError`;
* TensorBoard writers in the folders the task names (rank 0, closed at the end).

`mel_image` turns a log-mel into an RGB image for TensorBoard without a plotting
library; `forward_module` is what to call forward on after `Fabric.setup`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from sovits.errors import InputError, SovitsError, missing_extra

if TYPE_CHECKING:
    from lightning_fabric import Fabric
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "Intervals",
    "PrecisionName",
    "ProgressCallback",
    "StepResult",
    "StopReason",
    "TaskStart",
    "TrainOptions",
    "TrainProgress",
    "TrainResult",
    "TrainingError",
    "TrainingLoop",
    "TrainingTask",
    "Writers",
    "forward_module",
    "make_fabric",
    "mel_image",
    "open_writers",
    "parse_precision",
]

logger = logging.getLogger(__name__)

PrecisionName = Literal["32-true", "16-mixed", "bf16-mixed"]

_PRECISION_ALIASES: dict[str, PrecisionName] = {
    "32": "32-true",
    "32-true": "32-true",
    "fp32": "32-true",
    "16": "16-mixed",
    "16-mixed": "16-mixed",
    "fp16": "16-mixed",
    "bf16": "bf16-mixed",
    "bf16-mixed": "bf16-mixed",
}

StopReason = Literal["max_steps", "epochs", "requested"]

Writers = Mapping[str, "SummaryWriter"]
"""TensorBoard writers by the names the task gave their folders (empty when off)."""


class TrainingError(SovitsError):
    """Training cannot go on (diverged, or a required training package is missing)."""


def parse_precision(name: str) -> PrecisionName:
    """'32', '32-true', '16-mixed', 'bf16-mixed' (and 16, fp16, fp32, bf16) -> Fabric's name."""
    try:
        return _PRECISION_ALIASES[str(name).strip().lower()]
    except KeyError:
        raise InputError(
            f"unknown precision {name!r}", hint="use 32, 16-mixed or bf16-mixed"
        ) from None


@dataclass(frozen=True)
class TrainOptions:
    """How to run training (everything the model's config does not say).

    accelerator, devices, num_nodes, strategy: Fabric's arguments ("auto" picks the
    GPUs when there are any, else the CPU). precision: None follows the config.
    max_steps: stop once this many steps in total (across resumes) are done.
    partial_warm_start: when warm-starting from base models (G_0/D_0, model_0.pt),
    load only the entries that fit (a different speaker count, say) instead of
    failing. tensorboard: write TensorBoard event files. max_nonfinite_steps:
    consecutive skipped steps (loss not finite) tolerated before TrainingError.
    """

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    max_steps: int | None = None
    partial_warm_start: bool = False
    tensorboard: bool = True
    max_nonfinite_steps: int = 10


@dataclass(frozen=True)
class TrainProgress:
    """What the progress callback receives after every step (rank 0 only)."""

    step: int
    """Global step number just completed (the task's numbering, see `step_base`)."""
    epoch: int
    first_step: int
    """The step number this run started with (after resuming)."""
    max_steps: int | None
    losses: Mapping[str, float]
    learning_rate: float
    step_base: int = 0
    """The number a fresh run's first step gets (0 or 1)."""

    @property
    def steps_done(self) -> int:
        """Steps completed in total, across resumes, including this one."""
        return self.step - self.step_base + 1


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended."""

    first_step: int
    """The global step number the run started with."""
    last_step: int | None
    """The last completed global step (None when nothing was left to do)."""
    epoch: int
    stopped_by: StopReason
    resumed_from: Path | None
    """The checkpoint the run continued from (None for a fresh start)."""
    checkpoints: tuple[Path, ...]
    """Checkpoint files this run wrote (some may have been cleaned up since)."""


ProgressCallback = Callable[[TrainProgress], None]


@dataclass(frozen=True)
class Intervals:
    """Every how many steps the task logs, saves a checkpoint and evaluates (all > 0)."""

    log: int
    save: int
    evaluate: int

    def __post_init__(self) -> None:
        for name in ("log", "save", "evaluate"):
            value = getattr(self, name)
            if value < 1:
                raise InputError(f"the {name} interval must be at least 1 step, got {value}")


@dataclass(frozen=True)
class TaskStart:
    """Where a task's run begins: after `setup`, every rank has the same values."""

    first_step: int
    """Number of the first step to run."""
    first_epoch: int
    resumed_from: Path | None


@dataclass(frozen=True)
class StepResult:
    """What one training step reports.

    losses: named scalars to show and log (losses, gradient norms, ...).
    learning_rate: the rate the step used. skipped: the update was not applied
    because a loss was not finite.
    """

    losses: Mapping[str, float]
    learning_rate: float
    skipped: bool = False


class TrainingTask(Protocol):
    """What a kind of training supplies to `TrainingLoop` (the synthesizer's GAN,
    the diffusion model). Methods run on every rank unless marked rank 0."""

    step_base: int
    """The number a fresh run's first step gets."""
    last_epoch: int
    """The epoch after which training ends (epochs are numbered from 1)."""
    intervals: Intervals
    default_precision: PrecisionName
    empty_dataset_hint: str
    """What to check when the training set gives no batch."""

    def tensorboard_dirs(self) -> Mapping[str, Path]:
        """Folders for TensorBoard writers, by name (rank 0 opens them)."""
        ...

    def prepare(self) -> None:
        """Rank 0, before `setup`: create the output folder, write the config, tidy up."""
        ...

    def setup(self, fabric: Fabric) -> TaskStart:
        """Build models and optimizers, resume from the newest checkpoint, `fabric.setup`."""
        ...

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch's first batch (learning rate per epoch, samplers)."""
        ...

    def train_step(self, batch: Any, step: int, epoch: int) -> StepResult:
        """One optimisation step on `batch` (moved to the device by the task)."""
        ...

    def log(self, result: StepResult, step: int, epoch: int, writers: Writers) -> None:
        """Rank 0, every `intervals.log` steps."""
        ...

    def save(self, step: int, epoch: int) -> Sequence[Path]:
        """Rank 0: write the checkpoint of `step` (and clean up); return files written."""
        ...

    def evaluate(self, step: int, writers: Writers) -> None:
        """Rank 0, every `intervals.evaluate` steps, after any save of that step."""
        ...


def make_fabric(options: TrainOptions, precision: PrecisionName) -> Fabric:
    """A Fabric from the options (MissingExtraError without lightning-fabric, InputError
    for hardware settings Fabric refuses)."""
    try:
        from lightning_fabric import Fabric
    except ImportError as error:
        raise missing_extra("lightning-fabric", "train", "training") from error
    try:
        return Fabric(
            accelerator=options.accelerator,
            devices=options.devices,
            num_nodes=options.num_nodes,
            strategy=options.strategy,
            precision=precision,
        )
    except (ValueError, RuntimeError, TypeError) as error:
        raise InputError(
            f"cannot set up training hardware: {error}",
            hint="check --accelerator, --devices, --strategy and --precision",
        ) from None


def open_writers(folders: Mapping[str, Path]) -> dict[str, SummaryWriter]:
    """A TensorBoard SummaryWriter per folder (MissingExtraError without tensorboard)."""
    if not folders:
        return {}
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise missing_extra(
            "tensorboard", "train", "TensorBoard logging (or turn it off)"
        ) from error
    return {name: SummaryWriter(str(folder)) for name, folder in folders.items()}


def forward_module(module: nn.Module) -> nn.Module:
    """What to call for a forward pass of a module returned by `Fabric.setup`.

    Fabric's wrapper casts floating inputs to the autocast dtype (f0 in Hz would be
    rounded to float16); the module under it (DDP, or the model itself) keeps DDP's
    gradient synchronisation and, inside `fabric.autocast()`, mixed precision.
    """
    inner = getattr(module, "_forward_module", None)
    return inner if isinstance(inner, nn.Module) else module


class TrainingLoop:
    """Runs a `TrainingTask` (see the module doc). One `run` per instance.

    The precision is `options.precision` when given, else the task's default.
    progress: called after every step on global rank 0. stop_event: an event that
    `request_stop` sets (pass one to share it with the caller; default a new one).
    """

    def __init__(
        self,
        task: TrainingTask,
        options: TrainOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.task = task
        self.options = options or TrainOptions()
        self.progress = progress
        if self.options.max_steps is not None and self.options.max_steps < 0:
            raise InputError(f"max_steps must be >= 0, got {self.options.max_steps}")
        self.precision: PrecisionName = (
            parse_precision(self.options.precision)
            if self.options.precision is not None
            else task.default_precision
        )
        self._stop = stop_event if stop_event is not None else threading.Event()
        self.fabric: Fabric | None = None
        self._writers: dict[str, SummaryWriter] = {}
        self._written: list[Path] = []
        self._last_saved: int | None = None
        self._nonfinite_in_a_row = 0

    def request_stop(self) -> None:
        """Ask the run to stop after the current step (a checkpoint is written). Thread-safe."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -------------------------------------------------------------------- run

    def run(self, train_loader: Iterable[Any]) -> TrainResult:
        """Train on `train_loader`'s batches until a stop (see the module doc).

        A torch DataLoader gets a distributed sampler when several processes train.
        """
        fabric = make_fabric(self.options, self.precision)
        self.fabric = fabric
        fabric.launch()
        if fabric.is_global_zero:
            self.task.prepare()
        fabric.barrier()
        batches: Iterable[Any] = train_loader
        if isinstance(train_loader, torch.utils.data.DataLoader):
            batches = fabric.setup_dataloaders(train_loader, move_to_device=False)
        start = self.task.setup(fabric)
        if fabric.is_global_zero and self.options.tensorboard:
            self._writers = open_writers(self.task.tensorboard_dirs())
        try:
            return self._loop(fabric, batches, start)
        finally:
            for writer in self._writers.values():
                writer.close()
            self._writers = {}

    def _stop_requested(self, fabric: Fabric) -> bool:
        flag = self._stop.is_set()
        if fabric.world_size > 1:
            value = torch.tensor(1.0 if flag else 0.0, device=fabric.device)
            reduced = fabric.all_reduce(value, reduce_op="sum")
            assert isinstance(reduced, Tensor)
            flag = bool(reduced.item() > 0)
        return flag

    def _out_of_steps(self, step: int) -> bool:
        limit = self.options.max_steps
        return limit is not None and step - self.task.step_base >= limit

    def _loop(self, fabric: Fabric, batches: Iterable[Any], start: TaskStart) -> TrainResult:
        task = self.task
        rank_zero = fabric.is_global_zero
        step, epoch = start.first_step, start.first_epoch
        last_epoch = task.last_epoch
        self._last_saved = start.first_step - 1 if start.resumed_from is not None else None
        stopped_by: StopReason = "epochs"
        epoch_started = time.monotonic()
        while epoch <= last_epoch:
            if self._out_of_steps(step):
                stopped_by = "max_steps"
                break
            task.start_epoch(epoch)
            interrupted: StopReason | None = None
            steps_this_epoch = 0
            for batch in batches:
                if self._out_of_steps(step):
                    interrupted = "max_steps"
                    break
                if self._stop_requested(fabric):
                    interrupted = "requested"
                    break
                self._one_step(batch, step, epoch, start.first_step, rank_zero)
                step += 1
                steps_this_epoch += 1
            if interrupted is not None:
                stopped_by = interrupted
                break
            if steps_this_epoch == 0:
                raise InputError("the training set gave no batches", hint=task.empty_dataset_hint)
            if rank_zero:
                logger.info(
                    "epoch %d done at step %d (%.1f s)",
                    epoch, step - 1, time.monotonic() - epoch_started,
                )
            epoch_started = time.monotonic()
            epoch += 1
        epoch = min(epoch, last_epoch)
        last_step = step - 1 if step > start.first_step else None
        if rank_zero and last_step is not None and self._last_saved != last_step:
            self._save(last_step, epoch)
        fabric.barrier()
        if rank_zero:
            logger.info("stopped (%s) after step %s", stopped_by, last_step)
        return TrainResult(
            first_step=start.first_step,
            last_step=last_step,
            epoch=epoch,
            stopped_by=stopped_by,
            resumed_from=start.resumed_from,
            checkpoints=tuple(self._written),
        )

    def _one_step(
        self, batch: Any, step: int, epoch: int, first_step: int, rank_zero: bool
    ) -> None:
        task = self.task
        result = task.train_step(batch, step, epoch)
        self._check_finite(result, step)
        if not rank_zero:
            return
        if self.progress is not None:
            self.progress(
                TrainProgress(
                    step=step,
                    epoch=epoch,
                    first_step=first_step,
                    max_steps=self.options.max_steps,
                    losses=result.losses,
                    learning_rate=result.learning_rate,
                    step_base=task.step_base,
                )
            )
        intervals = task.intervals
        if step % intervals.log == 0:
            task.log(result, step, epoch, self._writers)
        if step % intervals.save == 0:
            self._save(step, epoch)
        if step % intervals.evaluate == 0:
            task.evaluate(step, self._writers)
            self._flush()

    def _check_finite(self, result: StepResult, step: int) -> None:
        if not result.skipped:
            self._nonfinite_in_a_row = 0
            return
        self._nonfinite_in_a_row += 1
        shown = ", ".join(f"{name} {value:.4g}" for name, value in result.losses.items())
        logger.warning("step %d: loss is not finite (%s); the update was skipped", step, shown)
        if self._nonfinite_in_a_row > self.options.max_nonfinite_steps:
            raise TrainingError(
                f"training diverged: {self._nonfinite_in_a_row} steps in a row up to step "
                f"{step} had a loss that is not finite",
                hint="resume from the last checkpoint with a lower learning rate or "
                "--precision 32",
            )

    def _save(self, step: int, epoch: int) -> None:
        self._written.extend(self.task.save(step, epoch))
        self._last_saved = step
        self._flush()

    def _flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()


# --------------------------------------------------------------------------- images

# Viridis at five evenly spaced points (enough for a readable spectrogram).
_COLORMAP_ANCHORS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
    dtype=np.float64,
)
_MIN_IMAGE_HEIGHT = 160


def mel_image(mel: Tensor | np.ndarray) -> np.ndarray:
    """A log-mel [n_mels, T] as an RGB image [H, W, 3] uint8 (low bins at the bottom).

    Values are scaled from their min..max onto a viridis-like colour map; rows are
    repeated so that the image is at least 160 pixels high. Needs no plotting library.
    """
    values = mel.detach().float().cpu().numpy() if isinstance(mel, Tensor) else np.asarray(mel)
    if values.ndim != 2:
        raise ValueError(f"expected a mel [n_mels, T], got shape {values.shape}")
    values = values.astype(np.float64)
    finite = np.isfinite(values)
    low = float(values[finite].min()) if finite.any() else 0.0
    high = float(values[finite].max()) if finite.any() else 1.0
    scaled = np.where(finite, (values - low) / max(high - low, 1e-12), 0.0)
    positions = scaled * (len(_COLORMAP_ANCHORS) - 1)
    lower = np.clip(np.floor(positions).astype(int), 0, len(_COLORMAP_ANCHORS) - 2)
    fraction = (positions - lower)[..., None]
    colors = (
        _COLORMAP_ANCHORS[lower] * (1.0 - fraction) + _COLORMAP_ANCHORS[lower + 1] * fraction
    )
    image = np.flipud(np.round(colors).astype(np.uint8))
    repeat = max(1, -(-_MIN_IMAGE_HEIGHT // max(image.shape[0], 1)))
    return np.ascontiguousarray(np.repeat(image, repeat, axis=0))
