"""`sovits merge`: blend the weights of several models of one architecture.

This is so-vits-svc 4.1's `utils.mix_model` (the WebUI's "voice fusion" tab): every
tensor of the first model's state dict becomes `Σ_i w_i · model_i[key]`, accumulated
from zeros in the file order with the same float32 operations, so the result is
bit-identical. Rates are percentages; `rate / 100` is turned into weights by
`softmax` ("convex" mode: note this is not `rate / Σ rate`) or used as is ("linear"
mode, unnormalised). The other entries of the result (iteration, optimizer,
learning rate) are the first model's. Unlike the original, models whose keys,
shapes or configs differ are refused instead of failing half-way or being blended
into noise.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from sovits.checkpoints import Checkpoint, read_checkpoint, write_training_checkpoint
from sovits.config import SvcConfig, load_svc_config, parse_svc_config
from sovits.errors import CheckpointError, InputError

logger = logging.getLogger(__name__)

__all__ = ["MergeMode", "merge_model_files", "merge_models", "merge_weights", "save_merged_model"]

MergeMode = Literal["convex", "linear"]
"""convex: softmax(rate / 100) (the WebUI's "凸组合", mode 0); linear: rate / 100
("线性组合", mode 1)."""

_MODES = ("convex", "linear")
_DEFAULT_LEARNING_RATE = 1e-4
"""Written when the first input carries no learning rate (a bare state dict)."""


def merge_weights(rates: Sequence[float], mode: MergeMode = "convex") -> Tensor:
    """The per-model weights: float32 [N] from percentages `rates`.

    convex: softmax(rates / 100) (30/70/100 gives 0.2219/0.3311/0.4469);
    linear: rates / 100.
    """
    if mode not in _MODES:
        raise InputError(f"unknown merge mode {mode!r}", hint="use 'convex' or 'linear'")
    for rate in rates:
        if isinstance(rate, bool) or not math.isfinite(rate):
            raise InputError(f"merge rates must be finite numbers, got {rate!r}")
    weights = torch.tensor([float(rate) for rate in rates], dtype=torch.float32) / 100
    if mode == "convex":
        weights = torch.softmax(weights, dim=0)
    return weights


def _config_of(
    value: SvcConfig | str | os.PathLike[str] | None, checkpoint: Checkpoint, path: Path
) -> SvcConfig | None:
    if isinstance(value, SvcConfig):
        return value
    if value is not None:
        return load_svc_config(value)
    if checkpoint.config is not None:
        return parse_svc_config(checkpoint.config, source=f"{path} (stored config)")
    return None


def _architecture(config: SvcConfig) -> dict[str, Any]:
    """What must agree for two models to be blended meaningfully."""
    data = config.to_dict()
    audio = {key: data["data"][key] for key in ("sampling_rate", "hop_length", "filter_length")}
    return {"model": data["model"], "data": audio}


def _check_configs(
    paths: Sequence[Path],
    checkpoints: Sequence[Checkpoint],
    configs: Sequence[SvcConfig | str | os.PathLike[str]] | None,
) -> None:
    from sovits.tools.inspect import compare_state

    if configs is not None and len(configs) not in (1, len(paths)):
        raise InputError(
            f"give one config for all models or one per model; got {len(configs)} for "
            f"{len(paths)} models"
        )
    resolved: list[SvcConfig | None] = []
    for index, (path, checkpoint) in enumerate(zip(paths, checkpoints, strict=True)):
        given = None if configs is None else configs[0 if len(configs) == 1 else index]
        resolved.append(_config_of(given, checkpoint, path))
    first_index = next((i for i, config in enumerate(resolved) if config is not None), None)
    if first_index is None:
        return
    reference = resolved[first_index]
    assert reference is not None
    for index, config in enumerate(resolved):
        if config is None:
            continue
        if _architecture(config) != _architecture(reference):
            mine, theirs = _architecture(config), _architecture(reference)
            differing = [
                f"{section}.{key}"
                for section in ("data", "model")
                for key in mine[section]
                if mine[section][key] != theirs[section].get(key)
            ]
            raise InputError(
                f"the configs of {paths[first_index]} and {paths[index]} differ in "
                + ", ".join(differing),
                hint="only models of one architecture and sample rate can be merged",
            )
        if config.spk != reference.spk:
            logger.warning(
                "%s and %s name their speakers differently; the merged model keeps the "
                "speaker rows, not the names", paths[first_index], paths[index]
            )
        differences = compare_state(checkpoints[index].model_state, config)
        if not differences.fits:
            raise CheckpointError(
                "the model does not fit its config: " + "; ".join(differences.lines()),
                where=paths[index],
            )


def _check_states(paths: Sequence[Path], checkpoints: Sequence[Checkpoint]) -> None:
    first = checkpoints[0].model_state
    for path, checkpoint in zip(paths[1:], checkpoints[1:], strict=True):
        state = checkpoint.model_state
        missing = [key for key in first if key not in state]
        extra = [key for key in state if key not in first]
        if missing or extra:
            parts = []
            if missing:
                listed = ", ".join(missing[:5])
                parts.append(f"{len(missing)} keys of {paths[0]} missing ({listed})")
            if extra:
                parts.append(f"{len(extra)} keys not in {paths[0]} ({', '.join(extra[:5])})")
            raise CheckpointError(
                "cannot merge models with different keys: " + "; ".join(parts),
                where=path,
                hint="merge only models trained from one config (a release lacks enc_q: "
                "compress every model, or none)",
            )
        shapes = [
            f"{key} {list(state[key].shape)} vs {list(tensor.shape)}"
            for key, tensor in first.items()
            if state[key].shape != tensor.shape
        ]
        if shapes:
            listed = ", ".join(shapes[:5]) + (f", ... ({len(shapes) - 5} more)"
                                               if len(shapes) > 5 else "")
            raise CheckpointError(
                f"cannot merge models whose tensors differ in shape: {listed}",
                where=path,
                hint="the models were trained with different configs",
            )
        unequal = [
            key
            for key, tensor in first.items()
            if not tensor.is_floating_point() and not torch.equal(tensor, state[key])
        ]
        if unequal:
            raise CheckpointError(
                f"cannot merge: integer tensors differ ({', '.join(unequal[:5])})", where=path
            )


def merge_models(
    paths: Sequence[str | os.PathLike[str]],
    rates: Sequence[float],
    mode: MergeMode = "convex",
    *,
    configs: Sequence[SvcConfig | str | os.PathLike[str]] | None = None,
) -> dict[str, Any]:
    """Blend model files as so-vits-svc's `utils.mix_model`; returns the checkpoint dict.

    paths: two or more model files (any form `read_checkpoint` reads; all must have
        the same keys and shapes). rates: one percentage per model. mode: "convex" or
        "linear" (see `merge_weights`). configs: optional config per model (or one for
        all); models whose configs differ in architecture or sample rate, or whose
        weights do not fit their config, are refused. Configs stored in sovits
        releases are compared too.

    Returns `{'model': merged state dict, 'iteration', 'optimizer', 'learning_rate'}`
    with everything but 'model' from the first file (the original's layout). Floating
    tensors keep the first model's dtype; integer tensors must be equal and are copied.
    Raises InputError (bad rates or mode, fewer than 2 models) or CheckpointError.
    """
    if len(paths) < 2:
        raise InputError(f"merging needs at least 2 models, got {len(paths)}")
    if len(rates) != len(paths):
        raise InputError(
            f"got {len(rates)} rates for {len(paths)} models; give one rate per model"
        )
    weights = merge_weights(rates, mode)
    files = [Path(path) for path in paths]
    checkpoints = [read_checkpoint(path) for path in files]
    _check_states(files, checkpoints)
    _check_configs(files, checkpoints, configs)
    if mode == "linear" and not math.isclose(float(weights.sum()), 1.0, rel_tol=1e-6):
        logger.warning(
            "linear merge weights sum to %.4g, not 1: the merged weights are scaled",
            float(weights.sum()),
        )
    states = [checkpoint.model_state for checkpoint in checkpoints]
    merged: dict[str, Tensor] = {}
    for key, template in states[0].items():
        if not template.is_floating_point():
            merged[key] = template.clone()
            continue
        total = torch.zeros_like(template)
        for index, state in enumerate(states):
            total += state[key] * weights[index]
        merged[key] = total
    first = checkpoints[0]
    return {
        "model": merged,
        "iteration": first.iteration,
        "optimizer": first.optimizer_state,
        "learning_rate": first.learning_rate,
    }


def save_merged_model(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> None:
    """Write a `merge_models` result in the original G_*.pth layout, atomically."""
    learning_rate = checkpoint.get("learning_rate")
    write_training_checkpoint(
        path,
        model_state=checkpoint["model"],
        optimizer_state=checkpoint.get("optimizer"),
        learning_rate=_DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate,
        iteration=int(checkpoint.get("iteration", 0)),
    )


def merge_model_files(
    paths: Sequence[str | os.PathLike[str]],
    rates: Sequence[float],
    output: str | os.PathLike[str],
    mode: MergeMode = "convex",
    *,
    configs: Sequence[SvcConfig | str | os.PathLike[str]] | None = None,
) -> Tensor:
    """`merge_models` then `save_merged_model` to `output`; returns the weights used."""
    output = Path(output)
    resolved = {Path(path).resolve() for path in paths}
    if output.resolve() in resolved:
        raise InputError("the output would overwrite one of the models being merged",
                         where=output)
    checkpoint = merge_models(paths, rates, mode, configs=configs)
    save_merged_model(output, checkpoint)
    return merge_weights(rates, mode)
