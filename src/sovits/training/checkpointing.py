"""Training checkpoints in a model folder: names, the resume point, writing, cleanup.

The folder layout is so-vits-svc's (`logs/44k/`): pairs `G_<step>.pth` (synthesizer)
and `D_<step>.pth` (discriminator), each `{'model', 'iteration', 'optimizer',
'learning_rate'}` as `sovits.checkpoints.write_training_checkpoint` writes it.

Step convention (the original's, kept so that either program resumes the other's
runs): global steps are counted from 0; `G_<s>.pth` holds the weights after the step
with index s, and training resumes at step s + 1. The file's 'iteration' is the
epoch that step belonged to (training resumes at the start of epoch
max(iteration, 1)); 'learning_rate' is the config's initial learning rate. The true
global step therefore lives in the file name only, as in the original, which reads
it back with `int(name[name.rfind("_") + 1 : name.rfind(".")])`.

`G_0.pth` / `D_0.pth` double as the base models a new run warm-starts from (the
original treats them the same way: resume at step 1); cleanup never deletes them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor, nn
from torch.optim import Optimizer

from sovits.checkpoints import (
    Checkpoint,
    load_model_state,
    read_checkpoint,
    write_training_checkpoint,
)
from sovits.errors import CheckpointError

logger = logging.getLogger(__name__)

CheckpointKind = Literal["G", "D"]
KINDS: tuple[CheckpointKind, CheckpointKind] = ("G", "D")

_NAME = re.compile(r"^([GD])_(\d+)\.pth$")
# sovits.files.atomic_write's temporary name: ".<target>.<12 hex digits>.tmp"
_TEMPORARY = re.compile(r"^\.([GD])_(\d+)\.pth\.[0-9a-f]{12}\.tmp$")


def checkpoint_path(model_dir: str | os.PathLike[str], kind: CheckpointKind, step: int) -> Path:
    """`<model_dir>/G_<step>.pth` or `D_<step>.pth`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be 'G' or 'D', got {kind!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return Path(model_dir) / f"{kind}_{step}.pth"


def step_of(path: str | os.PathLike[str]) -> int:
    """The global step in a checkpoint's file name (`G_800.pth` -> 800)."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"not a checkpoint name (G_<step>.pth / D_<step>.pth): {path}")
    return int(match.group(2))


def find_checkpoints(model_dir: str | os.PathLike[str]) -> dict[CheckpointKind, dict[int, Path]]:
    """Every `G_<step>.pth` and `D_<step>.pth` file in `model_dir`, by kind and step."""
    found: dict[CheckpointKind, dict[int, Path]] = {"G": {}, "D": {}}
    directory = Path(model_dir)
    if not directory.is_dir():
        return found
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            kind: CheckpointKind = "G" if match.group(1) == "G" else "D"
            found[kind][int(match.group(2))] = entry
    return found


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint pair a run continues from: the weights after step `step`."""

    step: int
    generator_path: Path
    discriminator_path: Path

    @property
    def next_step(self) -> int:
        """The global step training continues with."""
        return self.step + 1

    @property
    def is_base_model(self) -> bool:
        """True for G_0.pth / D_0.pth (a warm start from base models, or a run that stopped
        right after its first step)."""
        return self.step == 0


def latest_resume_point(model_dir: str | os.PathLike[str]) -> ResumePoint | None:
    """The newest step with both G_<step>.pth and D_<step>.pth, or None for a fresh run.

    A newer file without its partner (a run stopped between writing G and D) is
    reported in a warning and passed over. Files of one kind only, with no complete
    pair, raise a CheckpointError: the run cannot resume and must not start afresh
    over them.
    """
    found = find_checkpoints(model_dir)
    paired = sorted(set(found["G"]) & set(found["D"]))
    unpaired = sorted(set(found["G"]) ^ set(found["D"]))
    if not paired:
        if unpaired:
            names = ", ".join(
                found["G"].get(step, found["D"].get(step, Path("?"))).name for step in unpaired
            )
            raise CheckpointError(
                f"found {names} but no complete G_<step>.pth / D_<step>.pth pair to resume from",
                where=os.fspath(model_dir),
                hint="put the missing partner file beside it (base models need both G_0.pth "
                "and D_0.pth), or move these files away to start a fresh run",
            )
        return None
    step = paired[-1]
    newer = [s for s in unpaired if s > step]
    if newer:
        logger.warning(
            "%s: %s has no partner (the run probably stopped while writing it); "
            "resuming from step %d instead",
            model_dir,
            ", ".join(
                (found["G"].get(s) or found["D"][s]).name for s in newer
            ),
            step,
        )
    return ResumePoint(step, found["G"][step], found["D"][step])


def load_training_state(
    path: str | os.PathLike[str], model: nn.Module, *, partial: bool = False
) -> Checkpoint:
    """Fill `model` from a training checkpoint; return what the file holds.

    The model must fit exactly (CheckpointError listing mismatched, missing and
    unexpected keys) unless `partial`: then only the entries whose name and shape match
    are loaded, the rest keep their fresh values and are listed in a warning. The
    optimizer state is left to `load_optimizer_state` (call it once the optimizer's
    parameters are on their device, so the state lands there too).
    """
    checkpoint = read_checkpoint(path)
    if partial:
        load_matching(model, checkpoint.model_state, path)
    else:
        load_model_state(model, checkpoint.model_state, source=path)
    return checkpoint


def load_discriminator_state(
    path: str | os.PathLike[str],
    discriminator: nn.Module,
    *,
    use_spectral_norm: bool = False,
    partial: bool = False,
) -> tuple[nn.Module, Checkpoint]:
    """`load_training_state` for the discriminator, adapting to the layout it was saved
    with: (the discriminator to train, the checkpoint).

    `sovits demo` trains with the scale sub-discriminator alone (the period ones cost
    ~90 % of a CPU step), so its D_*.pth holds `discriminators.0.*` only. Resuming such
    a file (not `partial`) continues with a scale-only discriminator, as the run that
    wrote it did, and says so. Any other count of sub-discriminators that differs from
    `discriminator`'s raises CheckpointError explaining why it cannot be resumed.
    """
    from sovits.models.discriminators import MultiPeriodDiscriminator

    checkpoint = read_checkpoint(path)
    saved = {
        int(key.split(".")[1]) for key in checkpoint.model_state
        if key.startswith("discriminators.") and key.split(".")[1].isdigit()
    }
    built = getattr(discriminator, "discriminators", None)
    if not partial and saved and isinstance(built, nn.ModuleList) and len(saved) != len(built):
        if saved == {0}:
            logger.info(
                "%s holds only the scale sub-discriminator (how `sovits demo` trains); "
                "training goes on with that discriminator", path,
            )
            discriminator = MultiPeriodDiscriminator(
                use_spectral_norm=use_spectral_norm, periods=()
            )
        else:
            raise CheckpointError(
                f"the discriminator holds {len(saved)} sub-discriminators but `sovits "
                f"train` builds {len(built)} (the scale one and one per period)",
                where=os.fspath(path),
                hint="it was trained with other periods, so this run cannot resume it: train "
                "into a new model folder (-m), or warm-start one from base models G_0.pth / "
                "D_0.pth with --partial-warm-start",
            )
    if partial:
        load_matching(discriminator, checkpoint.model_state, path)
    else:
        load_model_state(discriminator, checkpoint.model_state, source=path)
    return discriminator, checkpoint


def load_optimizer_state(
    optimizer: Optimizer, checkpoint: Checkpoint, path: str | os.PathLike[str]
) -> bool:
    """Load the checkpoint's optimizer state into `optimizer`; return whether it did.

    Nothing is loaded when the file has no optimizer entry or one without per-parameter
    state (a release's fresh AdamW entry): the optimizer stays fresh. A state that does
    not fit the optimizer raises CheckpointError naming `path`.
    """
    if not _has_parameter_state(checkpoint.optimizer_state):
        return False
    assert checkpoint.optimizer_state is not None
    try:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise CheckpointError(
            f"the optimizer state does not fit this model ({error})",
            where=os.fspath(path),
            hint="check that config.json is the one the run was started with",
        ) from None
    return True


def _has_parameter_state(state: Mapping[str, Any] | None) -> bool:
    if not state:
        return False
    return bool(state.get("state")) and bool(state.get("param_groups"))


def load_matching(
    model: nn.Module, state: Mapping[str, Tensor], path: str | os.PathLike[str]
) -> None:
    expected = model.state_dict()
    matching = {
        key: value.to(expected[key].dtype) if value.is_floating_point() else value
        for key, value in state.items()
        if key in expected and tuple(value.shape) == tuple(expected[key].shape)
    }
    skipped = sorted(set(expected) - set(matching))
    ignored = sorted(set(state) - set(expected))
    if not matching:
        raise CheckpointError(
            "no entry of the checkpoint fits the model", where=os.fspath(path)
        )
    model.load_state_dict(matching, strict=False)
    if skipped or ignored:
        logger.warning(
            "%s: partial load: %d of %d model entries loaded; kept fresh: %s; ignored: %s",
            path,
            len(matching),
            len(expected),
            ", ".join(skipped[:10]) or "none",
            ", ".join(ignored[:10]) or "none",
        )


def save_checkpoint_pair(
    model_dir: str | os.PathLike[str],
    step: int,
    *,
    epoch: int,
    generator: nn.Module,
    discriminator: nn.Module,
    generator_optimizer: Optimizer,
    discriminator_optimizer: Optimizer,
    learning_rate: float,
) -> tuple[Path, Path]:
    """Write G_<step>.pth, then D_<step>.pth, each atomically; return both paths.

    `generator` / `discriminator` are the unwrapped modules (their keys have no
    `module.` prefix); `epoch` becomes the files' 'iteration'; `learning_rate` is the
    config's initial rate, as the original stores it.
    """
    paths = (
        checkpoint_path(model_dir, "G", step),
        checkpoint_path(model_dir, "D", step),
    )
    for path, model, optimizer in (
        (paths[0], generator, generator_optimizer),
        (paths[1], discriminator, discriminator_optimizer),
    ):
        write_training_checkpoint(
            path,
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            learning_rate=learning_rate,
            iteration=epoch,
        )
    return paths


def clean_checkpoints(model_dir: str | os.PathLike[str], keep: int) -> list[Path]:
    """Delete all but the `keep` newest G_/D_ checkpoints of each kind; return the deleted.

    Newest means highest step (the original sorts by modification time). G_0.pth and
    D_0.pth are never deleted. `keep` <= 0 keeps everything.
    """
    if keep <= 0:
        return []
    deleted = []
    for steps in find_checkpoints(model_dir).values():
        candidates = sorted(step for step in steps if step != 0)
        for step in candidates[:-keep]:
            steps[step].unlink(missing_ok=True)
            logger.info("deleted old checkpoint %s", steps[step])
            deleted.append(steps[step])
    return deleted


def remove_stale_temporaries(model_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files a killed run left while writing a checkpoint; return them.

    Only names of the form `.G_<step>.pth.<hex>.tmp` / `.D_…` (what an interrupted
    atomic write leaves) are touched. Call it only when no other run writes here.
    """
    directory = Path(model_dir)
    if not directory.is_dir():
        return []
    removed = []
    for entry in directory.iterdir():
        if _TEMPORARY.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        logger.info("removed %d unfinished checkpoint temporaries in %s", len(removed), model_dir)
    return removed


def model_dir_for(
    name_or_path: str | os.PathLike[str], logs_root: str | os.PathLike[str] = "logs"
) -> Path:
    """The model folder `-m` names: a bare name is a folder under `logs_root` (the seed's
    `-m 44k` -> `logs/44k`); a value with a path separator, or starting with "." or "~",
    is a folder path as given (`-m ./runs/alto`, `-m /data/alto`).
    """
    text = os.fspath(name_or_path)
    if not text.strip():
        raise ValueError("the model name is empty")
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if any(separator in text for separator in separators) or text.startswith((".", "~")):
        return Path(text).expanduser()
    return Path(logs_root) / text
