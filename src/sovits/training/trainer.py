"""The Trainer: so-vits-svc 4.1 GAN training on Lightning Fabric, resumable.

What train.py's `run` and `train_and_evaluate` do, with Fabric owning the device,
precision and distribution (one CPU, one GPU, all GPUs of a node with DDP, or several
nodes when started by a launcher such as `torchrun` or `fabric run`):

* models from the config (`build_synthesizer`, `build_discriminator`), AdamW with the
  config's learning rate, betas and eps for each;
* resume from the newest complete G_<step>/D_<step> pair of the model folder (see
  `sovits.training.checkpointing` for the step convention); G_0/D_0 base models give a
  warm start. A checkpoint that cannot be read or does not fit is an error, never a
  silent fresh start;
* the learning rate per epoch: learning_rate · lr_decay^(epoch - 1), or with
  warmup_epochs W > 0 learning_rate · epoch / W up to epoch W and
  learning_rate · lr_decay^(epoch - W) after (what the original's warm-up plus
  ExponentialLR stepped once per epoch produce);
* every step (`gan_step.train_step`): discriminator then generator update; every
  log_interval steps TensorBoard scalars and mel images; every eval_interval steps
  the validation clips rendered (audio and mels in `<model dir>/eval`) and a
  checkpoint pair written atomically, keeping the newest keep_ckpts pairs;
* a clean stop after `max_steps` global steps, at the end of the configured epochs,
  or when `request_stop` is called, always with a checkpoint of the last step.

Scaling out: with `devices` > 1 (or "auto" on a machine with several GPUs) Fabric
starts one process per device by running the same command again (DDP). On several
machines, start the command on each under a launcher and pass `num_nodes`, e.g.
`torchrun --nnodes 2 --nproc-per-node 8 --node-rank R --master-addr HOST
$(which sovits) train -m 44k --num-nodes 2 --devices 8` (or Lightning's `fabric run`).
Logging, evaluation and checkpoints happen on global rank 0 only. Precision comes
from the config (fp16_run with half_type "fp16" -> "16-mixed", "bf16" ->
"bf16-mixed", else "32-true") unless the options name one.

Differences from the original, on purpose: each rank seeds torch with seed + rank
and a `DataLoader` is given a distributed sampler (the original fed every GPU the
same batches); the generated audio's mel is computed in float32 outside autocast; a
step whose loss is not finite is skipped rather than applied, and too many in a row
raise `TrainingError`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import AdamW, Optimizer

from sovits.config import SvcConfig, save_svc_config
from sovits.data.batch import Batch
from sovits.errors import InputError, SovitsError
from sovits.models.build import build_discriminator, build_synthesizer
from sovits.models.synthesizer import Synthesizer
from sovits.training import checkpointing
from sovits.training.gan_step import (
    EvaluationItem,
    GeneratorPass,
    StepSettings,
    evaluate,
    total_gradient_norm,
    train_step,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from lightning_fabric import Fabric
    from torch.utils.tensorboard import SummaryWriter

logger = logging.getLogger(__name__)

PrecisionName = Literal["32-true", "16-mixed", "bf16-mixed"]

_PRECISION_ALIASES: dict[str, PrecisionName] = {
    "32": "32-true",
    "32-true": "32-true",
    "16": "16-mixed",
    "16-mixed": "16-mixed",
    "fp16": "16-mixed",
    "bf16": "bf16-mixed",
    "bf16-mixed": "bf16-mixed",
}

StopReason = Literal["max_steps", "epochs", "requested"]


class TrainingError(SovitsError):
    """Training cannot go on (diverged, or a required training package is missing)."""


def precision_from_config(config: SvcConfig) -> PrecisionName:
    """Fabric precision for the config's fp16_run / half_type (train.py's autocast)."""
    if not config.train.fp16_run:
        return "32-true"
    return "bf16-mixed" if config.train.half_type == "bf16" else "16-mixed"


def parse_precision(name: str) -> PrecisionName:
    """'32', '32-true', '16-mixed', 'bf16-mixed' (and 16, fp16, bf16) -> Fabric's name."""
    try:
        return _PRECISION_ALIASES[str(name).strip().lower()]
    except KeyError:
        raise InputError(
            f"unknown precision {name!r}", hint="use 32, 16-mixed or bf16-mixed"
        ) from None


def learning_rate_at(
    epoch: int, *, learning_rate: float, lr_decay: float, warmup_epochs: int = 0
) -> float:
    """The learning rate of `epoch` (1-based) under the original's schedule.

    Without warm-up: learning_rate · lr_decay^(epoch - 1). With W = warmup_epochs > 0:
    learning_rate · epoch / W for epoch <= W, then learning_rate · lr_decay^(epoch - W).
    """
    if epoch < 1:
        raise ValueError(f"epochs count from 1, got {epoch}")
    if warmup_epochs > 0:
        if epoch <= warmup_epochs:
            return learning_rate * epoch / warmup_epochs
        return float(learning_rate * lr_decay ** (epoch - warmup_epochs))
    return float(learning_rate * lr_decay ** (epoch - 1))


@dataclass(frozen=True)
class TrainOptions:
    """How to run training (everything the config does not say).

    accelerator, devices, num_nodes, strategy: Fabric's arguments ("auto" picks the
    GPUs when there are any, else the CPU). precision: None follows the config.
    max_steps: stop once this many global steps (counted from 0, across resumes) are
    done. partial_warm_start: when warm-starting from G_0/D_0 base models, load only
    the entries that fit (a different speaker count, say) instead of failing.
    tensorboard: write TensorBoard event files. max_nonfinite_steps: consecutive
    skipped steps (loss not finite) tolerated before TrainingError.
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
    """Global step just completed (0-based)."""
    epoch: int
    first_step: int
    """The step this run started with (after resuming)."""
    max_steps: int | None
    losses: Mapping[str, float]
    learning_rate: float


@dataclass(frozen=True)
class TrainResult:
    """How a `Trainer.fit` call ended."""

    first_step: int
    """The global step the run started with."""
    last_step: int | None
    """The last completed global step (None when nothing was left to do)."""
    epoch: int
    stopped_by: StopReason
    resumed_from: Path | None
    """The G_ checkpoint the run continued from (None for a fresh start)."""
    checkpoints: tuple[Path, ...]
    """Checkpoint files this run wrote (some may have been cleaned up since)."""


ProgressCallback = Callable[[TrainProgress], None]
DiscriminatorFactory = Callable[[SvcConfig], nn.Module]


class FabricBackend:
    """`gan_step.StepBackend` over a Fabric instance."""

    def __init__(self, fabric: Fabric) -> None:
        self.fabric = fabric

    def autocast(self) -> AbstractContextManager[Any]:
        return self.fabric.autocast()

    def backward(self, loss: Tensor, module: nn.Module) -> None:
        self.fabric.backward(loss)

    def gradient_norm(self, module: nn.Module, optimizer: Optimizer) -> Tensor:
        # Unscales fp16 gradients first; an infinite max_norm measures without clipping.
        norm = self.fabric.clip_gradients(
            module, optimizer, max_norm=math.inf, error_if_nonfinite=False
        )
        return norm if norm is not None else total_gradient_norm(module.parameters())

    def optimizer_step(self, optimizer: Optimizer) -> None:
        optimizer.step()


def forward_module(module: nn.Module) -> nn.Module:
    """What to call for a forward pass of a module returned by `Fabric.setup`.

    Fabric's wrapper casts floating inputs to the autocast dtype (f0 in Hz would be
    rounded to float16); the module under it (DDP, or the model itself) keeps DDP's
    gradient synchronisation and, inside `fabric.autocast()`, mixed precision.
    """
    inner = getattr(module, "_forward_module", None)
    return inner if isinstance(inner, nn.Module) else module


class Trainer:
    """Train a so-vits-svc synthesizer into `model_dir` (resuming what is there).

    `progress` is called after every step on global rank 0. `discriminator_factory`
    builds the discriminator from the config (default `build_discriminator`; tests
    pass a smaller one).
    """

    def __init__(
        self,
        config: SvcConfig,
        model_dir: str | os.PathLike[str],
        options: TrainOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        discriminator_factory: DiscriminatorFactory | None = None,
    ) -> None:
        self.config = config
        self.model_dir = Path(model_dir)
        self.options = options or TrainOptions()
        self.progress = progress
        self.discriminator_factory = discriminator_factory or build_discriminator
        self.settings = StepSettings.from_config(config)
        self.precision: PrecisionName = (
            parse_precision(self.options.precision)
            if self.options.precision is not None
            else precision_from_config(config)
        )
        if self.options.max_steps is not None and self.options.max_steps < 0:
            raise InputError(f"max_steps must be >= 0, got {self.options.max_steps}")
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Ask the run to stop after the current step (a checkpoint is written). Thread-safe."""
        self._stop.set()

    # ------------------------------------------------------------------ setup

    def _make_fabric(self) -> Fabric:
        try:
            from lightning_fabric import Fabric
        except ImportError:
            raise TrainingError(
                "training needs the lightning-fabric package",
                hint="pip install lightning-fabric",
            ) from None
        try:
            return Fabric(
                accelerator=self.options.accelerator,
                devices=self.options.devices,
                num_nodes=self.options.num_nodes,
                strategy=self.options.strategy,
                precision=self.precision,
            )
        except (ValueError, RuntimeError, TypeError) as error:
            raise InputError(
                f"cannot set up training hardware: {error}",
                hint="check --accelerator, --devices, --strategy and --precision",
            ) from None

    def _writers(self) -> tuple[SummaryWriter | None, SummaryWriter | None]:
        if not self.options.tensorboard:
            return None, None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TrainingError(
                "TensorBoard logging needs the tensorboard package",
                hint="pip install tensorboard, or turn TensorBoard logging off",
            ) from None
        return SummaryWriter(str(self.model_dir)), SummaryWriter(str(self.model_dir / "eval"))

    def _prepare_model_dir(self) -> None:
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create the model folder ({error})",
                             where=self.model_dir) from None
        checkpointing.remove_stale_temporaries(self.model_dir)
        save_svc_config(self.config, self.model_dir / "config.json")

    def _optimizer(self, module: nn.Module) -> AdamW:
        train = self.config.train
        return AdamW(
            module.parameters(), lr=train.learning_rate, betas=train.betas, eps=train.eps
        )

    def _set_learning_rate(self, optimizers: Iterable[Optimizer], epoch: int) -> float:
        train = self.config.train
        rate = learning_rate_at(
            epoch,
            learning_rate=train.learning_rate,
            lr_decay=train.lr_decay,
            warmup_epochs=train.warmup_epochs,
        )
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = rate
                # ExponentialLR's bookkeeping: the original's resume needs it in the file.
                group["initial_lr"] = train.learning_rate
        return rate

    # -------------------------------------------------------------------- run

    def fit(
        self, train_loader: Iterable[Batch], eval_loader: Iterable[Batch] | None = None
    ) -> TrainResult:
        """Train until max_steps, the config's epochs, or `request_stop`.

        `train_loader` yields `Batch`es (a torch DataLoader gets a distributed sampler
        when several processes train); `eval_loader` (rank 0 only, may be None) yields
        the validation clips, the first item of each batch being rendered.
        """
        fabric = self._make_fabric()
        fabric.launch()
        rank_zero = fabric.is_global_zero
        torch.manual_seed(self.config.train.seed + fabric.global_rank)

        if rank_zero:
            self._prepare_model_dir()
        fabric.barrier()

        generator = build_synthesizer(self.config)
        discriminator = self.discriminator_factory(self.config)
        resume = checkpointing.latest_resume_point(self.model_dir)
        start_step, start_epoch = 0, 1
        loaded: tuple[Any, Any] | None = None
        if resume is not None:
            partial = self.options.partial_warm_start and resume.is_base_model
            generator_checkpoint = checkpointing.load_training_state(
                resume.generator_path, generator, partial=partial
            )
            discriminator_checkpoint = checkpointing.load_training_state(
                resume.discriminator_path, discriminator, partial=partial
            )
            start_step = resume.next_step
            start_epoch = max(generator_checkpoint.iteration, 1)
            if not partial:
                loaded = (generator_checkpoint, discriminator_checkpoint)
            if rank_zero:
                kind = "warm start from base models" if resume.is_base_model else "resuming"
                logger.info(
                    "%s: %s (%s), continuing at step %d, epoch %d",
                    self.model_dir, kind, resume.generator_path.name, start_step, start_epoch,
                )
        elif rank_zero:
            logger.info("%s: no checkpoint, starting a fresh run", self.model_dir)

        generator_optimizer = self._optimizer(generator)
        discriminator_optimizer = self._optimizer(discriminator)
        generator_module, generator_optimizer = fabric.setup(generator, generator_optimizer)
        discriminator_module, discriminator_optimizer = fabric.setup(
            discriminator, discriminator_optimizer
        )
        if loaded is not None and resume is not None:
            checkpointing.load_optimizer_state(
                generator_optimizer, loaded[0], resume.generator_path
            )
            checkpointing.load_optimizer_state(
                discriminator_optimizer, loaded[1], resume.discriminator_path
            )
        loaded = None

        train_batches: Iterable[Batch] = train_loader
        if isinstance(train_loader, torch.utils.data.DataLoader):
            train_batches = fabric.setup_dataloaders(  # type: ignore[assignment]
                train_loader, move_to_device=False
            )

        run = _Run(
            trainer=self,
            fabric=fabric,
            generator=generator,
            discriminator=discriminator,
            generator_forward=forward_module(generator_module),
            discriminator_forward=forward_module(discriminator_module),
            generator_optimizer=generator_optimizer,
            discriminator_optimizer=discriminator_optimizer,
            train_batches=train_batches,
            eval_batches=eval_loader if rank_zero else None,
            first_step=start_step,
            first_epoch=start_epoch,
            resumed_from=resume.generator_path if resume else None,
        )
        try:
            return run.loop()
        finally:
            run.close()


class _Run:
    """One `Trainer.fit` call's state: the loop, logging, evaluation and checkpoints."""

    def __init__(
        self,
        *,
        trainer: Trainer,
        fabric: Fabric,
        generator: Synthesizer,
        discriminator: nn.Module,
        generator_forward: nn.Module,
        discriminator_forward: nn.Module,
        generator_optimizer: Optimizer,
        discriminator_optimizer: Optimizer,
        train_batches: Iterable[Batch],
        eval_batches: Iterable[Batch] | None,
        first_step: int,
        first_epoch: int,
        resumed_from: Path | None,
    ) -> None:
        self.trainer = trainer
        self.config = trainer.config
        self.options = trainer.options
        self.settings = trainer.settings
        self.fabric = fabric
        self.backend = FabricBackend(fabric)
        self.generator = generator
        self.discriminator = discriminator
        self.generator_forward = generator_forward
        self.discriminator_forward = discriminator_forward
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.train_batches = train_batches
        self.eval_batches = eval_batches
        self.first_step = first_step
        self.first_epoch = first_epoch
        self.resumed_from = resumed_from
        self.rank_zero = fabric.is_global_zero
        self.writer, self.eval_writer = trainer._writers() if self.rank_zero else (None, None)
        self.written: list[Path] = []
        self.last_saved: int | None = first_step - 1 if resumed_from is not None else None
        self.nonfinite_in_a_row = 0

    def close(self) -> None:
        for writer in (self.writer, self.eval_writer):
            if writer is not None:
                writer.close()

    def _stop_requested(self) -> bool:
        flag = self.trainer._stop.is_set()
        if self.fabric.world_size > 1:
            value = torch.tensor(1.0 if flag else 0.0, device=self.fabric.device)
            reduced = self.fabric.all_reduce(value, reduce_op="sum")
            assert isinstance(reduced, Tensor)
            flag = bool(reduced.item() > 0)
        return flag

    def _out_of_steps(self, step: int) -> bool:
        return self.options.max_steps is not None and step >= self.options.max_steps

    def loop(self) -> TrainResult:
        step = self.first_step
        epoch = self.first_epoch
        last_epoch = self.config.train.epochs
        stopped_by: StopReason = "epochs"
        self.generator.train()
        self.discriminator.train()
        epoch_started = time.monotonic()
        while epoch <= last_epoch:
            if self._out_of_steps(step):
                stopped_by = "max_steps"
                break
            learning_rate = self.trainer._set_learning_rate(
                (self.generator_optimizer, self.discriminator_optimizer), epoch
            )
            interrupted: StopReason | None = None
            steps_this_epoch = 0
            for batch in self.train_batches:
                if self._out_of_steps(step):
                    interrupted = "max_steps"
                    break
                if self._stop_requested():
                    interrupted = "requested"
                    break
                self._one_step(batch, step, epoch, learning_rate)
                step += 1
                steps_this_epoch += 1
            if interrupted is not None:
                stopped_by = interrupted
                break
            if steps_this_epoch == 0:
                raise InputError(
                    "the training set gave no batches",
                    hint="check data.training_files and that preprocessing wrote features",
                )
            if self.rank_zero:
                logger.info(
                    "epoch %d done at step %d (%.1f s)",
                    epoch, step - 1, time.monotonic() - epoch_started,
                )
            epoch_started = time.monotonic()
            epoch += 1
        epoch = min(epoch, last_epoch)
        last_step = step - 1 if step > self.first_step else None
        if (
            self.rank_zero
            and last_step is not None
            and self.last_saved != last_step
        ):
            self._save(last_step, epoch)
        self.fabric.barrier()
        if self.rank_zero:
            logger.info("stopped (%s) after step %s", stopped_by, last_step)
        return TrainResult(
            first_step=self.first_step,
            last_step=last_step,
            epoch=epoch,
            stopped_by=stopped_by,
            resumed_from=self.resumed_from,
            checkpoints=tuple(self.written),
        )

    def _one_step(self, batch: Batch, step: int, epoch: int, learning_rate: float) -> None:
        batch = batch.to(self.fabric.device)
        named, generated = train_step(
            self.generator_forward,
            self.discriminator_forward,
            self.generator_optimizer,
            self.discriminator_optimizer,
            batch,
            self.settings,
            self.backend,
        )
        named["learning_rate"] = learning_rate
        self._check_finite(named, step)
        if not self.rank_zero:
            return
        if self.trainer.progress is not None:
            self.trainer.progress(
                TrainProgress(
                    step=step,
                    epoch=epoch,
                    first_step=self.first_step,
                    max_steps=self.options.max_steps,
                    losses=named,
                    learning_rate=learning_rate,
                )
            )
        if step % self.config.train.log_interval == 0:
            self._log(named, generated, step, epoch)
        if step % self.config.train.eval_interval == 0:
            self._evaluate(step)
            self._save(step, epoch)

    def _check_finite(self, named: Mapping[str, float], step: int) -> None:
        skipped = named.get("skipped/d", 0.0) > 0 or named.get("skipped/g", 0.0) > 0
        if not skipped:
            self.nonfinite_in_a_row = 0
            return
        self.nonfinite_in_a_row += 1
        logger.warning(
            "step %d: loss is not finite (d %s, g %s); the update was skipped",
            step, named.get("loss/d/total"), named.get("loss/g/total"),
        )
        if self.nonfinite_in_a_row > self.options.max_nonfinite_steps:
            raise TrainingError(
                f"training diverged: {self.nonfinite_in_a_row} steps in a row up to step "
                f"{step} had a loss that is not finite",
                hint="resume from the last checkpoint with a lower learning rate or "
                "--precision 32",
            )

    # ---------------------------------------------------------------- logging

    def _log(
        self, named: Mapping[str, float], generated: GeneratorPass, step: int, epoch: int
    ) -> None:
        logger.info(
            "epoch %d step %d lr %.3g: d %.3f, g %.3f (gen %.3f, fm %.3f, mel %.3f, "
            "kl %.3f, lf0 %.3f)",
            epoch, step, named["learning_rate"], named["loss/d/total"],
            named["loss/g/total"], named["loss/g/gen"], named["loss/g/fm"],
            named["loss/g/mel"], named["loss/g/kl"], named["loss/g/lf0"],
        )
        if self.writer is None:
            return
        for name, value in named.items():
            if not name.startswith("skipped/"):
                self.writer.add_scalar(name, value, step)
        images = {
            "slice/mel_org": generated.mel_slice[0],
            "slice/mel_gen": generated.generated_mel[0],
            "all/mel": generated.mel[0],
        }
        for name, mel in images.items():
            self.writer.add_image(name, mel_image(mel), step, dataformats="HWC")

    def _evaluate(self, step: int) -> None:
        if self.eval_batches is None:
            return
        items = evaluate(self.generator, self.eval_batches, self.settings, self.fabric.device)
        if self.eval_writer is None or not items:
            return
        rate = self.config.data.sampling_rate
        for index, item in enumerate(items):
            self.eval_writer.add_audio(
                f"gen/audio_{index}", _audio(item.generated_audio), step, sample_rate=rate
            )
            self.eval_writer.add_audio(
                f"gt/audio_{index}", _audio(item.reference_audio), step, sample_rate=rate
            )
        last: EvaluationItem = items[-1]
        self.eval_writer.add_image("gen/mel", mel_image(last.generated_mel), step,
                                   dataformats="HWC")
        self.eval_writer.add_image("gt/mel", mel_image(last.reference_mel), step,
                                   dataformats="HWC")
        self.eval_writer.flush()

    def _save(self, step: int, epoch: int) -> None:
        paths = checkpointing.save_checkpoint_pair(
            self.trainer.model_dir,
            step,
            epoch=epoch,
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            learning_rate=self.config.train.learning_rate,
        )
        self.written.extend(paths)
        self.last_saved = step
        logger.info("saved %s and %s (epoch %d)", paths[0].name, paths[1].name, epoch)
        if self.config.train.keep_ckpts > 0:
            checkpointing.clean_checkpoints(self.trainer.model_dir, self.config.train.keep_ckpts)
        if self.writer is not None:
            self.writer.flush()


def _audio(wave: Tensor) -> Tensor:
    return wave.detach().float().clamp(-1.0, 1.0).reshape(1, -1).cpu()


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


# --------------------------------------------------------------------------- shells


def default_num_workers(config: SvcConfig) -> int:
    """Loader worker processes as train.py: 5 (or the CPU count, if at most 4); 0 with
    all_in_mem."""
    if config.train.all_in_mem:
        return 0
    cpus = os.cpu_count() or 1
    return 5 if cpus > 4 else cpus


def make_loaders(
    config: SvcConfig, *, num_workers: int | None = None
) -> tuple[torch.utils.data.DataLoader[Batch], torch.utils.data.DataLoader[Batch]]:
    """The training and validation loaders train.py builds from the config's filelists.

    Training: `SvcDataset(data.training_files)` (volume augmentation as configured,
    all_in_mem honoured), batches of train.batch_size in the dataset's fixed shuffled
    order (the original does not reshuffle per epoch), `num_workers` processes
    (default `default_num_workers`). Validation: `SvcDataset(data.validation_files)`
    without augmentation, one clip per batch. Paths in the filelists are relative to
    the current folder, as in so-vits-svc. InputError when a filelist or features are
    missing.
    """
    from torch.utils.data import DataLoader

    from sovits.data.dataset import SvcDataset, collate_batch

    workers = default_num_workers(config) if num_workers is None else num_workers
    all_in_mem = config.train.all_in_mem
    train_set = SvcDataset(config.data.training_files, config, all_in_mem=all_in_mem)
    eval_set = SvcDataset(
        config.data.validation_files, config, all_in_mem=all_in_mem, vol_aug=False
    )
    pin = torch.cuda.is_available()
    train_loader: DataLoader[Batch] = DataLoader(
        train_set,  # type: ignore[arg-type]
        batch_size=config.train.batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        collate_fn=collate_batch,
    )
    eval_loader: DataLoader[Batch] = DataLoader(
        eval_set,  # type: ignore[arg-type]
        batch_size=1,
        shuffle=False,
        num_workers=min(workers, 1),
        collate_fn=collate_batch,
    )
    return train_loader, eval_loader


def train(
    config: SvcConfig,
    model_dir: str | os.PathLike[str],
    options: TrainOptions | None = None,
    *,
    num_workers: int | None = None,
    progress: ProgressCallback | None = None,
    trainer_hook: Callable[[Trainer], None] | None = None,
) -> TrainResult:
    """Train from the dataset the config's filelists name (what `sovits train` runs).

    `trainer_hook` receives the Trainer before training starts (the CLI uses it to
    wire Ctrl-C to `request_stop`).
    """
    trainer = Trainer(config, model_dir, options, progress=progress)
    if trainer_hook is not None:
        trainer_hook(trainer)
    train_loader, eval_loader = make_loaders(config, num_workers=num_workers)
    return trainer.fit(train_loader, eval_loader)
