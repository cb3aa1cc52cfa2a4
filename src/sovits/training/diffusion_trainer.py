"""Diffusion training: so-vits-svc 4.1's train_diff.py as a task of the training loop.

`DiffusionTrainer` trains the shallow-diffusion model (`Unit2Mel`) on the same
Fabric machinery as the synthesizer (`sovits.training.loop`), with the original's
semantics and file layout in `env.expdir`:

* the model from the config (`build_unit2mel`), its mel width from the vocoder's
  config.json (`num_mels`), else from the training data; AdamW with `train.lr` and
  `train.weight_decay` (other hyper-parameters torch's defaults, as the original);
* steps are numbered from 1; `model_<n>.pt` holds the weights after n steps,
  `{'global_step': n, 'model': state_dict}` plus `'optimizer'` with `train.save_opt`,
  written atomically every `train.interval_val` steps and when the run stops. The
  previous checkpoint is then deleted unless its step is a multiple of
  `train.interval_force_save` (so model_0.pt is always kept);
* resume from the newest `model_<n>.pt` (the step is the one in the file name), at
  step n + 1, with the optimizer state when the file has one. `model_0.pt` is a base
  model: a warm start at step 1 (with `partial_warm_start`, only the entries that fit
  are loaded). A newest checkpoint that cannot be read or does not fit is an error,
  never a silent fresh start (the original loaded with strict=False);
* the learning rate of step s is lr · gamma^max(⌊(s - 2) / decay_step⌋, 0): what the
  original's StepLR(decay_step, gamma), created with last_epoch = initial step - 2 and
  stepped after every step, gives;
* the loss of a step is the MSE between drawn noise and the denoiser's prediction at
  t ~ randint(0, k_step_max), the draws from a generator seeded with seed + rank;
  the fresh model's weights are drawn with `seed` too (the global RNG is left alone);
* precision from `train.amp_dtype` (fp32 -> "32-true", fp16 -> "16-mixed", bf16 ->
  "bf16-mixed") unless the options name one;
* every `train.interval_log` steps: a log line and TensorBoard `train/loss`,
  `train/lr` (in `<expdir>/logs`, as the original); every `train.interval_val`
  steps, after the checkpoint: the validation loss (each clip's loss averaged over
  `train.batch_size` draws, as the original) as `validation/loss`, each clip
  rendered (k_step_max steps with `infer.method` / `infer.speedup`) as a mel image
  (|rendered - true|, true and rendered stacked), and, when the NSF-HiFiGAN folder of
  `vocoder.ckpt` is there, the rendered audio next to the clip's own (else one log
  line says the audio is skipped);
* the config is written to `<expdir>/config.yaml`.

Epochs are counted per run, as the original does (it has no epoch in its files):
`train.epochs` bounds the epochs of one start, so a resumed run always trains on.

Differences from the original, on purpose: a step whose loss is not finite is
skipped (too many in a row raise TrainingError) instead of ending the program; data
randomness is seeded (`DiffusionSampler`, keyed by the run's first step and the
epoch, so a resumed run draws new crops).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.optim import AdamW, Optimizer

from sovits.checkpoints.diffusion import (
    DEFAULT_N_MELS,
    build_unit2mel,
    read_diffusion_checkpoint,
    resolve_vocoder_path,
    vocoder_mel_bins,
    write_diffusion_checkpoint,
)
from sovits.config.diffusion import DiffusionConfig, save_diffusion_config
from sovits.data.diffusion_dataset import DiffusionBatch
from sovits.errors import CheckpointError, InputError, MissingFileError
from sovits.models.diffusion.unit2mel import Unit2Mel
from sovits.models.noise import NoiseSource
from sovits.training import checkpointing
from sovits.training.loop import (
    Intervals,
    PrecisionName,
    ProgressCallback,
    StepResult,
    TaskStart,
    TrainingLoop,
    TrainOptions,
    TrainResult,
    Writers,
    forward_module,
    mel_image,
)

if TYPE_CHECKING:
    from lightning_fabric import Fabric
    from torch.utils.data import DataLoader

    from sovits.data.diffusion_dataset import DiffusionDataset
    from sovits.models.nsf_vocoder import NsfHifiganVocoder

__all__ = [
    "CONFIG_FILE_NAME",
    "LOG_FILE_NAME",
    "TENSORBOARD_FOLDER",
    "DiffusionTrainer",
    "checkpoint_path",
    "diffusion_learning_rate",
    "find_diffusion_checkpoints",
    "latest_diffusion_checkpoint",
    "make_diffusion_loaders",
    "precision_from_amp_dtype",
    "train_diffusion",
]

logger = logging.getLogger(__name__)

CONFIG_FILE_NAME = "config.yaml"
"""The config copy in the experiment folder (the original's name)."""
LOG_FILE_NAME = "log_info.txt"
"""The text log the CLI keeps in the experiment folder (the original's name)."""
TENSORBOARD_FOLDER = "logs"
"""TensorBoard's folder inside the experiment folder (the original's)."""

_NAME = re.compile(r"^model_(\d+)\.pt$")
# sovits.files.atomic_write's temporary name: ".<target>.<12 hex digits>.tmp"
_TEMPORARY = re.compile(r"^\.model_\d+\.pt\.[0-9a-f]{12}\.tmp$")
_AMP_PRECISION: dict[str, PrecisionName] = {
    "fp32": "32-true",
    "fp16": "16-mixed",
    "bf16": "bf16-mixed",
}
_SPEC_FLOOR = -14.0
"""Offset of the |rendered - true| panel of validation images (the original's vmin)."""


def precision_from_amp_dtype(amp_dtype: str) -> PrecisionName:
    """Fabric precision for `train.amp_dtype` (fp32, fp16, bf16)."""
    try:
        return _AMP_PRECISION[amp_dtype]
    except KeyError:
        raise InputError(
            f"unknown train.amp_dtype {amp_dtype!r}", hint="use fp32, fp16 or bf16"
        ) from None


def diffusion_learning_rate(step: int, *, lr: float, gamma: float, decay_step: int) -> float:
    """The learning rate step number `step` (from 1) trains with:
    lr · gamma^max(⌊(step - 2) / decay_step⌋, 0) (see the module doc)."""
    if step < 1:
        raise ValueError(f"diffusion steps count from 1, got {step}")
    if decay_step < 1:
        raise InputError(f"train.decay_step must be at least 1, got {decay_step}")
    return float(lr * gamma ** max((step - 2) // decay_step, 0))


# --------------------------------------------------------------------------- files


def checkpoint_path(expdir: str | os.PathLike[str], step: int) -> Path:
    """`<expdir>/model_<step>.pt`."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return Path(expdir) / f"model_{step}.pt"


def find_diffusion_checkpoints(expdir: str | os.PathLike[str]) -> dict[int, Path]:
    """Every `model_<step>.pt` in `expdir` (not its sub-folders), by step."""
    directory = Path(expdir)
    if not directory.is_dir():
        return {}
    found = {}
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found[int(match.group(1))] = entry
    return found


def latest_diffusion_checkpoint(expdir: str | os.PathLike[str]) -> tuple[int, Path] | None:
    """(step, path) of the newest `model_<step>.pt`, or None for a fresh run."""
    found = find_diffusion_checkpoints(expdir)
    if not found:
        return None
    step = max(found)
    return step, found[step]


def _remove_stale_temporaries(expdir: Path) -> None:
    removed = 0
    for entry in expdir.iterdir():
        if _TEMPORARY.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed += 1
    if removed:
        logger.info("removed %d unfinished checkpoint temporaries in %s", removed, expdir)


def _load_optimizer(optimizer: Optimizer, state: Mapping[str, Any] | None, path: Path) -> bool:
    """Load a saved optimizer state; False when the file has none with per-parameter state."""
    if not state or not state.get("state") or not state.get("param_groups"):
        return False
    try:
        optimizer.load_state_dict(dict(state))
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise CheckpointError(
            f"the optimizer state does not fit this model ({error})",
            where=path,
            hint="check that the config is the one the run was started with",
        ) from None
    return True


# --------------------------------------------------------------------------- trainer


class DiffusionTrainer:
    """Train a so-vits-svc 4.1 diffusion model into `expdir` (default `env.expdir`),
    resuming what is there.

    config_path: where the config was read from (to find a relative `vocoder.ckpt`
    the way `load_diffusion_model` does). n_mels: the mel width (default: the
    vocoder's `num_mels`; `train_diffusion` falls back to the data's). seed: seed of
    the noise and diffusion steps (rank r uses seed + r) and of validation renders.
    `progress` is called after every step on global rank 0.
    """

    def __init__(
        self,
        config: DiffusionConfig,
        options: TrainOptions | None = None,
        *,
        expdir: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        n_mels: int | None = None,
        seed: int = 1234,
        progress: ProgressCallback | None = None,
    ) -> None:
        train = config.train
        for name in ("interval_log", "interval_val", "interval_force_save", "decay_step",
                     "batch_size", "epochs"):
            if getattr(train, name) < 1:
                raise InputError(f"train.{name} must be at least 1, got {getattr(train, name)}")
        self.config = config
        self.options = options or TrainOptions()
        self.expdir = Path(expdir) if expdir is not None else Path(config.env.expdir)
        self.config_path = Path(config_path) if config_path is not None else None
        self.seed = seed
        self.progress = progress
        self.vocoder_path = resolve_vocoder_path(
            config, self.config_path or Path.cwd() / CONFIG_FILE_NAME
        )
        if n_mels is None:
            if self.vocoder_path is None:
                raise InputError(
                    f"the mel width is unknown: vocoder.ckpt {config.vocoder.ckpt!r} has no "
                    "config.json beside it",
                    hint="put the NSF-HiFiGAN folder where vocoder.ckpt points, or give n_mels",
                )
            n_mels = vocoder_mel_bins(self.vocoder_path.parent / "config.json")
        self.n_mels = n_mels
        self.precision = precision_from_amp_dtype(train.amp_dtype)
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Ask the run to stop after the current step (a checkpoint is written). Thread-safe."""
        self._stop.set()

    def fit(
        self,
        train_loader: Iterable[DiffusionBatch],
        eval_loader: Iterable[DiffusionBatch] | None = None,
    ) -> TrainResult:
        """Train until max_steps, `train.epochs`, or `request_stop`.

        `train_loader` yields DiffusionBatches (a DataLoader with a `DiffusionSampler`
        gets the epoch set before each epoch, and a distributed sampler when several
        processes train); `eval_loader` (rank 0, may be None) the validation clips.
        """
        task = _DiffusionTask(self, train_loader, eval_loader)
        loop = TrainingLoop(task, self.options, progress=self.progress, stop_event=self._stop)
        return loop.run(train_loader)


class _DiffusionTask:
    """The diffusion model as a `TrainingTask`."""

    step_base = 1

    def __init__(
        self,
        trainer: DiffusionTrainer,
        train_loader: Iterable[DiffusionBatch],
        eval_loader: Iterable[DiffusionBatch] | None,
    ) -> None:
        config = trainer.config
        train = config.train
        self.trainer = trainer
        self.config = config
        self.expdir = trainer.expdir
        self.last_epoch = train.epochs
        self.intervals = Intervals(
            log=train.interval_log, save=train.interval_val, evaluate=train.interval_val
        )
        self.default_precision: PrecisionName = trainer.precision
        self.empty_dataset_hint = (
            "check data.training_files and that `sovits preprocess --use-diff` wrote features"
        )
        self.sampler = getattr(train_loader, "sampler", None)
        self.eval_loader = eval_loader
        self._previous_saved: int | None = None
        self._last_log_time = time.monotonic()
        self._vocoder: NsfHifiganVocoder | None = None
        self._vocoder_tried = False

    # ------------------------------------------------------------------ setup

    def tensorboard_dirs(self) -> Mapping[str, Path]:
        return {"train": self.expdir / TENSORBOARD_FOLDER}

    def prepare(self) -> None:
        try:
            self.expdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create the experiment folder ({error})",
                             where=self.expdir) from None
        _remove_stale_temporaries(self.expdir)
        save_diffusion_config(self.config, self.expdir / CONFIG_FILE_NAME)

    def setup(self, fabric: Fabric) -> TaskStart:
        self.fabric = fabric
        self.rank_zero = fabric.is_global_zero
        train = self.config.train
        self.generator = torch.Generator(device=fabric.device)
        self.generator.manual_seed(self.trainer.seed + fabric.global_rank)
        with torch.random.fork_rng(devices=[]):  # a seeded init, the caller's RNG untouched
            torch.manual_seed(self.trainer.seed)
            model = build_unit2mel(self.config, self.trainer.n_mels)
        if self.rank_zero:
            parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
            logger.info(
                "Unit2Mel: %d trainable parameters; timesteps %d, k_step_max %d",
                parameters, model.timesteps, model.k_step_max,
            )
        resume = latest_diffusion_checkpoint(self.expdir)
        optimizer_state: Mapping[str, Any] | None = None
        first_step = 1
        resumed_from: Path | None = None
        if resume is not None:
            step, path = resume
            optimizer_state = self._load_weights(model, step, path)
            first_step = step + 1
            resumed_from = path
            self._previous_saved = step
        elif self.rank_zero:
            logger.info("%s: no checkpoint, starting a fresh run", self.expdir)
        optimizer = AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        module, optimizer = fabric.setup(model, optimizer)
        if resumed_from is not None:
            _load_optimizer(optimizer, optimizer_state, resumed_from)
        for group in optimizer.param_groups:
            group["initial_lr"] = train.lr
            group["weight_decay"] = train.weight_decay
        self.model: Unit2Mel = model
        self.forward = forward_module(module)
        self.optimizer = optimizer
        self.first_step = first_step
        return TaskStart(first_step=first_step, first_epoch=1, resumed_from=resumed_from)

    def _load_weights(self, model: Unit2Mel, step: int, path: Path) -> Mapping[str, Any] | None:
        """Fill `model` from `path`; return the optimizer state to load (None: stay fresh)."""
        from sovits.checkpoints import load_model_state

        checkpoint = read_diffusion_checkpoint(path)
        base = step == 0
        partial = base and self.trainer.options.partial_warm_start
        if partial:
            checkpointing.load_matching(model, checkpoint.model_state, path)
        else:
            load_model_state(model, checkpoint.model_state, source=path)
        if self.rank_zero:
            kind = "warm start from the base model" if base else "resuming"
            logger.info("%s: %s (%s), continuing at step %d", self.expdir, kind, path.name,
                        step + 1)
            if checkpoint.global_step != step:
                logger.info("%s holds global_step %d; the file name's step %d is used",
                            path.name, checkpoint.global_step, step)
        return None if partial else checkpoint.optimizer_state

    def start_epoch(self, epoch: int) -> None:
        begin = getattr(self.sampler, "begin_epoch", None)
        if callable(begin):
            begin(epoch, run=self.first_step)

    # ------------------------------------------------------------------ steps

    def train_step(self, batch: DiffusionBatch, step: int, epoch: int) -> StepResult:
        train = self.config.train
        rate = diffusion_learning_rate(step, lr=train.lr, gamma=train.gamma,
                                       decay_step=train.decay_step)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        batch = batch.to(self.fabric.device)
        self.optimizer.zero_grad(set_to_none=True)
        with self.fabric.autocast():
            loss = self.forward(
                batch.units,
                batch.f0,
                batch.volume,
                batch.mel,
                speaker=batch.speaker,
                aug_shift=batch.aug_shift,
                generator=self.generator,
            )
        finite = torch.isfinite(loss.detach()).float()
        if self.fabric.world_size > 1:
            reduced = self.fabric.all_reduce(finite, reduce_op="min")
            assert isinstance(reduced, Tensor)
            finite = reduced
        value = float(loss.detach())
        losses = {"train/loss": value, "train/lr": rate}
        if finite.item() < 1.0:
            return StepResult(losses, rate, skipped=True)
        self.fabric.backward(loss)
        self.optimizer.step()
        return StepResult(losses, rate)

    def log(self, result: StepResult, step: int, epoch: int, writers: Writers) -> None:
        now = time.monotonic()
        elapsed = max(now - self._last_log_time, 1e-9)
        self._last_log_time = now
        logger.info(
            "epoch %d step %d lr %.3g: loss %.4f (%.2f steps/s)",
            epoch, step, result.learning_rate, result.losses["train/loss"],
            self.intervals.log / elapsed,
        )
        writer = writers.get("train")
        if writer is not None:
            writer.add_scalar("train/loss", result.losses["train/loss"], step)
            writer.add_scalar("train/lr", result.learning_rate, step)

    def save(self, step: int, epoch: int) -> Sequence[Path]:
        train = self.config.train
        path = checkpoint_path(self.expdir, step)
        optimizer = self.optimizer if train.save_opt else None
        write_diffusion_checkpoint(path, self.model, step, optimizer)
        logger.info("saved %s", path.name)
        previous = self._previous_saved
        if previous is not None and previous != step and previous % train.interval_force_save:
            old = checkpoint_path(self.expdir, previous)
            if old.exists():
                old.unlink()
                logger.info("deleted %s", old.name)
        self._previous_saved = step
        return [path]

    # ------------------------------------------------------------------ validation

    def evaluate(self, step: int, writers: Writers) -> None:
        if self.eval_loader is None:
            return
        model = self.model
        device = self.fabric.device
        config = self.config
        writer = writers.get("train")
        repeats = config.train.batch_size
        generator = torch.Generator(device=device)
        generator.manual_seed(self.trainer.seed)
        noise = NoiseSource.from_seed(self.trainer.seed, device)
        vocoder = self._load_vocoder() if writer is not None else None
        total, clips = 0.0, 0
        model.eval()
        try:
            with torch.no_grad():
                for batch in self.eval_loader:
                    batch = batch.to(device)
                    for _ in range(repeats):
                        loss = model.training_loss(
                            batch.units, batch.f0, batch.volume, batch.mel,
                            speaker=batch.speaker, aug_shift=batch.aug_shift,
                            generator=generator,
                        )
                        total += float(loss)
                    clips += 1
                    if writer is not None:
                        self._render(model, batch, noise, vocoder, writer, step)
        finally:
            model.train()
        if clips == 0:
            logger.warning("step %d: the validation set gave no clip", step)
            return
        validation_loss = total / (repeats * clips)
        logger.info("step %d: validation loss %.4f (%d clips)", step, validation_loss, clips)
        if writer is not None:
            writer.add_scalar("validation/loss", validation_loss, step)

    def _render(
        self,
        model: Unit2Mel,
        batch: DiffusionBatch,
        noise: NoiseSource,
        vocoder: NsfHifiganVocoder | None,
        writer: Any,
        step: int,
    ) -> None:
        from sovits.audio.io import load_audio

        config = self.config
        shallow = model.k_step_max != model.timesteps
        rendered = model.infer(
            batch.units, batch.f0, batch.volume,
            speaker=batch.speaker,
            gt_spec=batch.mel if shallow else None,
            k_step=model.k_step_max,
            speedup=config.infer.speedup,
            method=config.infer.method,
            noise=noise,
        )
        path = batch.paths[0]
        name = f"{path.parent.name}_{path.stem}"
        truth, output = batch.mel[0].float(), rendered[0].float()
        panels = torch.cat([(output - truth).abs() + _SPEC_FLOOR, truth, output], dim=-1)
        writer.add_image(f"spec/{name}", mel_image(panels.t()), step, dataformats="HWC")
        if vocoder is None:
            return
        audio = vocoder.infer(rendered.float(), batch.f0.float(), noise=noise)
        writer.add_audio(f"audio/{name}_pred", _clip(audio), step,
                         sample_rate=vocoder.sampling_rate)
        wave, rate = load_audio(path)
        writer.add_audio(f"audio/{name}_gt", _clip(torch.from_numpy(wave)), step,
                         sample_rate=rate)

    def _load_vocoder(self) -> NsfHifiganVocoder | None:
        if self._vocoder_tried:
            return self._vocoder
        self._vocoder_tried = True
        path = self.trainer.vocoder_path
        where = self.config.vocoder.ckpt
        if path is None:
            logger.info("no NSF-HiFiGAN vocoder at %s: validation audio is skipped", where)
            return None
        try:
            from sovits.checkpoints.vocoder import load_nsf_hifigan
        except ImportError as error:
            logger.info("the vocoder cannot be loaded (%s): validation audio is skipped", error)
            return None
        try:
            self._vocoder = load_nsf_hifigan(
                path, device=self.fabric.device, mel_type=self.config.vocoder.type
            )
        except MissingFileError as error:
            logger.info("%s: validation audio is skipped", error)
            return None
        if self._vocoder.num_mels != self.trainer.n_mels:
            raise InputError(
                f"the vocoder takes {self._vocoder.num_mels} mel bins, the model makes "
                f"{self.trainer.n_mels}",
                where=path,
            )
        return self._vocoder


def _clip(wave: Tensor) -> Tensor:
    return wave.detach().float().clamp(-1.0, 1.0).reshape(1, -1).cpu()


# --------------------------------------------------------------------------- shells


def make_diffusion_loaders(
    config: DiffusionConfig,
    *,
    num_workers: int | None = None,
    seed: int = 1234,
    root: str | os.PathLike[str] | None = None,
) -> tuple[DataLoader[DiffusionBatch], DataLoader[DiffusionBatch]]:
    """The training and validation loaders train_diff.py builds from the config.

    Training: `DiffusionDataset(data.training_files)` with augmentation and the
    `train.cache_*` settings, batches of `train.batch_size` in a `DiffusionSampler`'s
    order, `num_workers` processes (default `train.num_workers`; 0 when the cache is
    on a GPU). Validation: `DiffusionDataset(data.validation_files)` whole clips, one
    per batch. Relative filelist paths are taken from `root` (default: the current
    folder). InputError when a filelist or features are missing.
    """
    from torch.utils.data import DataLoader

    from sovits.data.diffusion_dataset import (
        DiffusionDataset,
        DiffusionSampler,
        collate_diffusion,
    )

    data, train = config.data, config.train
    on_cpu = torch.device(train.cache_device).type == "cpu"
    workers = train.num_workers if num_workers is None else num_workers
    workers = workers if on_cpu else 0
    common: dict[str, Any] = {
        "duration": data.duration,
        "hop_length": data.block_size,
        "sample_rate": data.sampling_rate,
        "speakers": config.spk,
        "n_speakers": config.model.n_spk,
        "seed": seed,
        "root": root,
    }
    train_set = DiffusionDataset(
        data.training_files,
        use_aug=True,
        cache_all_data=train.cache_all_data,
        cache_device=train.cache_device,
        cache_fp16=train.cache_fp16,
        **common,
    )
    eval_set = DiffusionDataset(
        data.validation_files, whole_clips=True, cache_all_data=train.cache_all_data, **common
    )
    train_loader: DataLoader[DiffusionBatch] = DataLoader(
        train_set,  # type: ignore[arg-type]
        batch_size=train.batch_size,
        sampler=DiffusionSampler(len(train_set), seed=seed),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=on_cpu and torch.cuda.is_available(),
        collate_fn=collate_diffusion,
    )
    eval_loader: DataLoader[DiffusionBatch] = DataLoader(
        eval_set,  # type: ignore[arg-type]
        batch_size=1,
        shuffle=False,
        num_workers=0,
        collate_fn=collate_diffusion,
    )
    return train_loader, eval_loader


def _data_mel_bins(dataset: DiffusionDataset) -> int:
    clip = dataset.clips[0]
    if clip.mel is not None:
        return int(clip.mel.shape[1])
    from sovits.features.store import read_mel

    return int(read_mel(clip.path).shape[1])


def train_diffusion(
    config: DiffusionConfig,
    options: TrainOptions | None = None,
    *,
    config_path: str | os.PathLike[str] | None = None,
    expdir: str | os.PathLike[str] | None = None,
    num_workers: int | None = None,
    seed: int = 1234,
    progress: ProgressCallback | None = None,
    trainer_hook: Callable[[DiffusionTrainer], None] | None = None,
) -> TrainResult:
    """Train from the dataset the config's filelists name (what `sovits train-diff` runs).

    The mel width is the vocoder's `num_mels` when its config.json is found, else the
    width of the preprocessed mels (InputError when the two disagree). `trainer_hook`
    receives the trainer before training starts (the CLI wires Ctrl-C to
    `request_stop` with it).
    """
    train_loader, eval_loader = make_diffusion_loaders(
        config, num_workers=num_workers, seed=seed
    )
    data_bins = _data_mel_bins(train_loader.dataset)  # type: ignore[arg-type]
    located = resolve_vocoder_path(config, config_path or Path.cwd() / CONFIG_FILE_NAME)
    n_mels = data_bins
    if located is not None:
        n_mels = vocoder_mel_bins(located.parent / "config.json")
        if n_mels != data_bins:
            raise InputError(
                f"the preprocessed mels have {data_bins} bins but the vocoder takes {n_mels}",
                where=located.parent / "config.json",
                hint="preprocess with the vocoder's mel settings, or use the matching vocoder",
            )
    elif data_bins != DEFAULT_N_MELS:
        logger.info("no vocoder config found; using the data's %d mel bins", data_bins)
    trainer = DiffusionTrainer(
        config, options, expdir=expdir, config_path=config_path, n_mels=n_mels, seed=seed,
        progress=progress,
    )
    if trainer_hook is not None:
        trainer_hook(trainer)
    return trainer.fit(train_loader, eval_loader)

