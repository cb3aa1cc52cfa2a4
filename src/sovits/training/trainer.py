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

The loop itself (Fabric, steps and epochs, stops, intervals, the non-finite guard,
TensorBoard writers) is `sovits.training.loop.TrainingLoop`, shared with the diffusion
trainer; this module supplies the GAN task (`_GanTask`): models, resume, the step,
logging, evaluation and checkpoints. The loop's public types are re-exported here.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.optim import AdamW, Optimizer

from sovits.config import SvcConfig, save_svc_config
from sovits.data.batch import Batch
from sovits.errors import InputError
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
from sovits.training.loop import (
    Intervals,
    PrecisionName,
    ProgressCallback,
    StepResult,
    StopReason,
    TaskStart,
    TrainingError,
    TrainingLoop,
    TrainOptions,
    TrainProgress,
    TrainResult,
    Writers,
    forward_module,
    mel_image,
    parse_precision,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from lightning_fabric import Fabric

__all__ = [
    "DiscriminatorFactory",
    "FabricBackend",
    "PrecisionName",
    "ProgressCallback",
    "StopReason",
    "TrainOptions",
    "TrainProgress",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "default_num_workers",
    "forward_module",
    "learning_rate_at",
    "make_loaders",
    "mel_image",
    "parse_precision",
    "precision_from_config",
    "train",
]

logger = logging.getLogger(__name__)


def precision_from_config(config: SvcConfig) -> PrecisionName:
    """Fabric precision for the config's fp16_run / half_type (train.py's autocast)."""
    if not config.train.fp16_run:
        return "32-true"
    return "bf16-mixed" if config.train.half_type == "bf16" else "16-mixed"


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

    def fit(
        self, train_loader: Iterable[Batch], eval_loader: Iterable[Batch] | None = None
    ) -> TrainResult:
        """Train until max_steps, the config's epochs, or `request_stop`.

        `train_loader` yields `Batch`es (a torch DataLoader gets a distributed sampler
        when several processes train); `eval_loader` (rank 0 only, may be None) yields
        the validation clips, the first item of each batch being rendered.
        """
        task = _GanTask(self, eval_loader)
        loop = TrainingLoop(task, self.options, progress=self.progress, stop_event=self._stop)
        return loop.run(train_loader)


class _GanTask:
    """The synthesizer's GAN training as a `TrainingTask` (one `Trainer.fit` call)."""

    step_base = 0

    def __init__(self, trainer: Trainer, eval_loader: Iterable[Batch] | None) -> None:
        config = trainer.config
        self.trainer = trainer
        self.config = config
        self.settings = trainer.settings
        self.model_dir = trainer.model_dir
        self.eval_loader = eval_loader
        self.last_epoch = config.train.epochs
        self.intervals = Intervals(
            log=config.train.log_interval,
            save=config.train.eval_interval,
            evaluate=config.train.eval_interval,
        )
        self.default_precision: PrecisionName = trainer.precision
        self.empty_dataset_hint = (
            "check data.training_files and that preprocessing wrote features"
        )
        self.learning_rate = config.train.learning_rate
        self._last_generated: GeneratorPass | None = None

    # ------------------------------------------------------------------ setup

    def tensorboard_dirs(self) -> Mapping[str, Path]:
        return {"train": self.model_dir, "eval": self.model_dir / "eval"}

    def prepare(self) -> None:
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create the model folder ({error})",
                             where=self.model_dir) from None
        checkpointing.remove_stale_temporaries(self.model_dir)
        save_svc_config(self.config, self.model_dir / "config.json")

    def setup(self, fabric: Fabric) -> TaskStart:
        trainer = self.trainer
        rank_zero = fabric.is_global_zero
        torch.manual_seed(self.config.train.seed + fabric.global_rank)
        generator = build_synthesizer(self.config)
        discriminator = trainer.discriminator_factory(self.config)
        resume = checkpointing.latest_resume_point(self.model_dir)
        start_step, start_epoch = 0, 1
        loaded: tuple[Any, Any] | None = None
        if resume is not None:
            partial = trainer.options.partial_warm_start and resume.is_base_model
            generator_checkpoint = checkpointing.load_training_state(
                resume.generator_path, generator, partial=partial
            )
            discriminator, discriminator_checkpoint = checkpointing.load_discriminator_state(
                resume.discriminator_path, discriminator,
                use_spectral_norm=self.config.model.use_spectral_norm, partial=partial,
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

        generator_optimizer = trainer._optimizer(generator)
        discriminator_optimizer = trainer._optimizer(discriminator)
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
        self.fabric = fabric
        self.backend = FabricBackend(fabric)
        self.generator: Synthesizer = generator
        self.discriminator = discriminator
        self.generator_forward = forward_module(generator_module)
        self.discriminator_forward = forward_module(discriminator_module)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        generator.train()
        discriminator.train()
        return TaskStart(
            first_step=start_step,
            first_epoch=start_epoch,
            resumed_from=resume.generator_path if resume else None,
        )

    def start_epoch(self, epoch: int) -> None:
        self.learning_rate = self.trainer._set_learning_rate(
            (self.generator_optimizer, self.discriminator_optimizer), epoch
        )

    # ------------------------------------------------------------------ steps

    def train_step(self, batch: Batch, step: int, epoch: int) -> StepResult:
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
        named["learning_rate"] = self.learning_rate
        self._last_generated = generated
        skipped = named.get("skipped/d", 0.0) > 0 or named.get("skipped/g", 0.0) > 0
        return StepResult(named, self.learning_rate, skipped=skipped)

    def log(self, result: StepResult, step: int, epoch: int, writers: Writers) -> None:
        named = result.losses
        logger.info(
            "epoch %d step %d lr %.3g: d %.3f, g %.3f (gen %.3f, fm %.3f, mel %.3f, "
            "kl %.3f, lf0 %.3f)",
            epoch, step, named["learning_rate"], named["loss/d/total"],
            named["loss/g/total"], named["loss/g/gen"], named["loss/g/fm"],
            named["loss/g/mel"], named["loss/g/kl"], named["loss/g/lf0"],
        )
        writer = writers.get("train")
        generated = self._last_generated
        if writer is None or generated is None:
            return
        for name, value in named.items():
            if not name.startswith("skipped/"):
                writer.add_scalar(name, value, step)
        images = {
            "slice/mel_org": generated.mel_slice[0],
            "slice/mel_gen": generated.generated_mel[0],
            "all/mel": generated.mel[0],
        }
        for name, mel in images.items():
            writer.add_image(name, mel_image(mel), step, dataformats="HWC")

    def save(self, step: int, epoch: int) -> Sequence[Path]:
        paths = checkpointing.save_checkpoint_pair(
            self.model_dir,
            step,
            epoch=epoch,
            generator=self.generator,
            discriminator=self.discriminator,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            learning_rate=self.config.train.learning_rate,
        )
        logger.info("saved %s and %s (epoch %d)", paths[0].name, paths[1].name, epoch)
        if self.config.train.keep_ckpts > 0:
            checkpointing.clean_checkpoints(self.model_dir, self.config.train.keep_ckpts)
        return paths

    def evaluate(self, step: int, writers: Writers) -> None:
        if self.eval_loader is None:
            return
        items = evaluate(self.generator, self.eval_loader, self.settings, self.fabric.device)
        eval_writer = writers.get("eval")
        if eval_writer is None or not items:
            return
        rate = self.config.data.sampling_rate
        for index, item in enumerate(items):
            eval_writer.add_audio(
                f"gen/audio_{index}", _audio(item.generated_audio), step, sample_rate=rate
            )
            eval_writer.add_audio(
                f"gt/audio_{index}", _audio(item.reference_audio), step, sample_rate=rate
            )
        last: EvaluationItem = items[-1]
        eval_writer.add_image("gen/mel", mel_image(last.generated_mel), step,
                              dataformats="HWC")
        eval_writer.add_image("gt/mel", mel_image(last.reference_mel), step,
                              dataformats="HWC")


def _audio(wave: Tensor) -> Tensor:
    return wave.detach().float().clamp(-1.0, 1.0).reshape(1, -1).cpu()


# --------------------------------------------------------------------------- shells


def default_num_workers(config: SvcConfig) -> int:
    """Loader worker processes as train.py: 5 (or the CPU count, if at most 4); 0 with
    all_in_mem."""
    if config.train.all_in_mem:
        return 0
    cpus = os.cpu_count() or 1
    return 5 if cpus > 4 else cpus


def make_loaders(
    config: SvcConfig, *, num_workers: int | None = None, crop_frames: int | None = None
) -> tuple[torch.utils.data.DataLoader[Batch], torch.utils.data.DataLoader[Batch]]:
    """The training and validation loaders train.py builds from the config's filelists.

    Training: `SvcDataset(data.training_files)` (volume augmentation as configured,
    all_in_mem honoured), batches of train.batch_size in the dataset's fixed shuffled
    order (the original does not reshuffle per epoch), `num_workers` processes
    (default `default_num_workers`). `crop_frames` cuts training clips longer than
    that to a random window of that many frames (None: the original's crop rule,
    `sovits.data.dataset`). Validation: `SvcDataset(data.validation_files)`
    without augmentation, one clip per batch. Paths in the filelists are relative to
    the current folder, as in so-vits-svc. InputError when a filelist or features are
    missing.
    """
    from torch.utils.data import DataLoader

    from sovits.data.dataset import CROP_FRAMES, MAX_FRAMES, SvcDataset, collate_batch

    workers = default_num_workers(config) if num_workers is None else num_workers
    all_in_mem = config.train.all_in_mem
    train_set = SvcDataset(
        config.data.training_files,
        config,
        all_in_mem=all_in_mem,
        max_frames=crop_frames or MAX_FRAMES,
        crop_frames=crop_frames or CROP_FRAMES,
    )
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
