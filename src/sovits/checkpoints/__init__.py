"""Model files: reading every so-vits-svc checkpoint form, loading it strictly, writing safely.

Reading (`read_checkpoint`) always goes through `torch.load(weights_only=True)`, so a
file that carries Python objects other than tensors and plain containers (a pickle
that could run code) is refused, never executed. Forms understood:

* training checkpoint `G_*.pth` / `D_*.pth`:
  `{'model': state_dict, 'iteration': epoch, 'optimizer': AdamW state, 'learning_rate': float}`
  (the original's "iteration" is the epoch number);
* release from `compress_model.py`: the same layout without `enc_q.*`, maybe float16;
* a bare state dict, and keys prefixed with `module.` (stripped);
* sovits' safe release: a safetensors file whose metadata holds the config.json text.

Writing is atomic: a temporary file in the target folder is written, flushed to disk
and renamed over the target, so an interrupted write never leaves a partial file.
`load_model_state` fills a module from a state dict and fails with one clear error
listing shape mismatches, missing and unexpected keys.

The building blocks (`require_file`, `load_torch_file`, `check_state_dict`,
`strip_ddp_prefix`, `read_counter`, `read_optimizer_state`, `write_model_file`) also
serve the diffusion and vocoder model files (`checkpoints.diffusion`, `checkpoints.vocoder`).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import torch
from torch import Tensor, nn

from sovits.config import SvcConfig, load_svc_config, parse_svc_config
from sovits.errors import CheckpointError
from sovits.files import atomic_write
from sovits.models.build import build_synthesizer
from sovits.models.synthesizer import Synthesizer
from sovits.models.vocoder import enable_fast_cpu_inference
from sovits.models.weight_norm import fold_weight_norm

logger = logging.getLogger(__name__)

RELEASE_FORMAT = "sovits-release"
RELEASE_FORMAT_VERSION = "1"

# Parameters of the posterior encoder, used only in training; releases leave them out.
POSTERIOR_ENCODER_PREFIX = "enc_q."

# What compress_model.py writes besides the weights: learning_rate is a literal there.
_ORIGINAL_RELEASE_LEARNING_RATE = 1e-4

_DDP_PREFIX = "module."
_LISTED_KEYS = 5

CheckpointContainer = Literal[
    "torch-checkpoint", "torch-state-dict", "sovits-release", "safetensors"
]


@dataclass
class Checkpoint:
    """What a model file holds.

    `iteration` is what the file calls "iteration" (the epoch in so-vits-svc training
    checkpoints, 0 in releases). `config` is the config.json dict stored in a sovits
    safe release, else None. `container` tells which form the file had.
    """

    model_state: dict[str, Tensor]
    iteration: int
    optimizer_state: dict[str, Any] | None
    learning_rate: float | None
    config: dict[str, Any] | None = None
    container: CheckpointContainer = "torch-checkpoint"

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the first floating-point tensor (the original casts the model to it)."""
        for tensor in self.model_state.values():
            if tensor.is_floating_point():
                return tensor.dtype
        return None

    @property
    def has_posterior_encoder(self) -> bool:
        """Whether `enc_q.*` (needed for training, not for inference) is present."""
        return any(key.startswith(POSTERIOR_ENCODER_PREFIX) for key in self.model_state)


# --------------------------------------------------------------------------- reading


def require_file(path: Path) -> None:
    """CheckpointError unless `path` is an existing file."""
    if not path.exists():
        raise CheckpointError("checkpoint file not found", where=path)
    if not path.is_file():
        raise CheckpointError("not a file", where=path)


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with a little-endian u64 header size, then '{'."""
    if path.suffix == ".safetensors":
        return True
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    header_size = int.from_bytes(head[:8], "little")
    return 0 < header_size <= path.stat().st_size - 8


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_torch_file(path: Path) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; CheckpointError naming the file
    when it is corrupt, truncated, not a PyTorch file, or holds Python objects that are
    not plain weights (such a pickle is refused, never run)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's restricted unpickler names the refused import as "GLOBAL module.name".
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        if refused:
            raise CheckpointError(
                "refused to load: the file holds Python objects other than tensors "
                f"({refused.group(1)}; a pickle like this can run code when loaded)",
                where=path,
                hint="sovits only loads plain weights; get the model from a source you trust "
                "or re-save its state dict with a safe tool",
            ) from None
        raise CheckpointError(
            "cannot read checkpoint: it is not a PyTorch file, or it is corrupt", where=path
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as error:
        raise CheckpointError(
            f"cannot read checkpoint, the file is truncated, corrupt or not a PyTorch file "
            f"({_first_line(error)})",
            where=path,
        ) from None


def check_state_dict(state: Mapping[Any, Any], path: Path | str, what: str) -> dict[str, Tensor]:
    """`state` as a dict of str -> Tensor, or CheckpointError (`what` names the entry)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{what} has a non-string key {key!r}", where=path)
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{what} entry {key!r} is a {type(value).__name__}, not a tensor", where=path
            )
        out[key] = value
    return out


def strip_ddp_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """`state` without the "module." prefix DistributedDataParallel adds to every key."""
    if state and all(key.startswith(_DDP_PREFIX) for key in state):
        return {key[len(_DDP_PREFIX) :]: value for key, value in state.items()}
    return state


def read_counter(value: Any, key: str, path: Path) -> int:
    """A checkpoint's step or epoch entry `key` as an int (a one-element tensor is
    accepted), or CheckpointError."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{key!r} is {value!r}, not an integer", where=path)
    return value


def read_optimizer_state(payload: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The checkpoint's 'optimizer' entry as a dict (None when absent), or CheckpointError."""
    optimizer = payload.get("optimizer")
    if optimizer is not None and not isinstance(optimizer, Mapping):
        raise CheckpointError(
            f"'optimizer' is a {type(optimizer).__name__}, not a dict", where=path
        )
    return dict(optimizer) if optimizer is not None else None


def _interpret(payload: Any, path: Path) -> Checkpoint:
    if not isinstance(payload, Mapping):
        raise CheckpointError(
            f"not a so-vits-svc checkpoint: the file holds a {type(payload).__name__}, "
            "not a dict",
            where=path,
        )
    model = payload.get("model")
    if isinstance(model, Mapping):
        state = strip_ddp_prefix(check_state_dict(model, path, "'model'"))
        iteration = read_counter(
            payload.get("iteration", payload.get("global_step", 0)), "iteration", path
        )
        learning_rate = payload.get("learning_rate")
        if learning_rate is not None:
            if isinstance(learning_rate, bool) or not isinstance(learning_rate, int | float):
                raise CheckpointError(
                    f"'learning_rate' is {learning_rate!r}, not a number", where=path
                )
            learning_rate = float(learning_rate)
        return Checkpoint(
            model_state=state,
            iteration=iteration,
            optimizer_state=read_optimizer_state(payload, path),
            learning_rate=learning_rate,
            container="torch-checkpoint",
        )
    if payload and all(isinstance(value, Tensor) for value in payload.values()):
        state = strip_ddp_prefix(check_state_dict(payload, path, "state dict"))
        return Checkpoint(
            model_state=state,
            iteration=0,
            optimizer_state=None,
            learning_rate=None,
            container="torch-state-dict",
        )
    keys = ", ".join(repr(key) for key in list(payload)[:_LISTED_KEYS])
    raise CheckpointError(
        "not a so-vits-svc checkpoint: expected a dict with a 'model' state dict, or a "
        f"state dict of tensors; top-level keys: {keys or '(none)'}",
        where=path,
    )


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read any so-vits-svc / sovits model file (G_*.pth, D_*.pth, releases) on the CPU.

    Tensors keep the dtype they were stored with (a `-hf` release gives float16).
    Raises CheckpointError naming the file when it is missing, truncated, corrupt,
    not a checkpoint, or holds objects that are not plain weights.
    """
    path = Path(path)
    require_file(path)
    if _looks_like_safetensors(path):
        state, metadata = _read_safetensors(path)
        if metadata.get("format") == RELEASE_FORMAT:
            config = _release_config(metadata, path)
            return Checkpoint(state, 0, None, None, config=config, container="sovits-release")
        return Checkpoint(state, 0, None, None, container="safetensors")
    return _interpret(load_torch_file(path), path)


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own error types and OSError
        raise CheckpointError(
            f"cannot read safetensors file, it is truncated or corrupt ({_first_line(error)})",
            where=path,
        ) from None
    return state, metadata


def _release_config(metadata: Mapping[str, str], path: Path) -> dict[str, Any]:
    version = metadata.get("format_version")
    if version != RELEASE_FORMAT_VERSION:
        raise CheckpointError(
            f"sovits release format_version {version!r} is not supported "
            f"(this sovits reads version {RELEASE_FORMAT_VERSION})",
            where=path,
            hint="it may have been written by a newer sovits",
        )
    text = metadata.get("config")
    if text is None:
        raise CheckpointError("sovits release has no 'config' metadata", where=path)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"the stored config is not valid JSON ({error.msg})",
                              where=path) from None
    if not isinstance(config, dict):
        raise CheckpointError("the stored config is not a JSON object", where=path)
    return config


def read_release(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a sovits safe release: (state dict without enc_q, config.json dict)."""
    path = Path(path)
    require_file(path)
    state, metadata = _read_safetensors(path)
    if metadata.get("format") != RELEASE_FORMAT:
        raise CheckpointError(
            f"not a sovits release: its metadata has no format {RELEASE_FORMAT!r}", where=path
        )
    return state, _release_config(metadata, path)


# --------------------------------------------------------------------------- loading


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED_KEYS])
    more = len(keys) - _LISTED_KEYS
    return shown + (f", ... ({more} more)" if more > 0 else "")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _tied_groups(state: Mapping[str, Tensor]) -> list[list[str]]:
    """Keys of `state` that are the same tensor (a parameter registered under several names)."""
    groups: dict[tuple[Any, ...], list[str]] = {}
    for key, tensor in state.items():
        if tensor.numel() == 0:
            continue
        identity = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        groups.setdefault(identity, []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def load_model_state(
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    source: str | os.PathLike[str],
    allowed_missing_prefixes: tuple[str, ...] = (),
    ignored_unexpected_prefixes: tuple[str, ...] = (),
) -> None:
    """Fill `model` with `state`, strictly.

    Every model key must be in `state` (except keys starting with one of
    `allowed_missing_prefixes`, e.g. ("enc_q.",) for inference from a release),
    every `state` key must be in the model (except `ignored_unexpected_prefixes`), and
    shapes must match. All problems are reported together in one CheckpointError
    naming `source`. Floating-point tensors are cast to the dtype of the model's
    tensor (a float16 release loads into a float32 model). Keys that name one shared
    parameter (flow_share_parameter) must carry equal values.
    """
    expected = model.state_dict()
    missing = [
        key
        for key in expected
        if key not in state and not key.startswith(allowed_missing_prefixes)
    ]
    unexpected = [
        key
        for key in state
        if key not in expected and not key.startswith(ignored_unexpected_prefixes)
    ]
    mismatched: list[str] = []
    to_load: dict[str, Tensor] = {}
    for key, value in state.items():
        if key not in expected:
            continue
        target = expected[key]
        if not isinstance(value, Tensor):
            mismatched.append(f"{key}: a {type(value).__name__}, not a tensor")
            continue
        if tuple(value.shape) != tuple(target.shape):
            mismatched.append(
                f"{key}: checkpoint {list(value.shape)} vs model {list(target.shape)}"
            )
            continue
        if value.is_floating_point() != target.is_floating_point():
            mismatched.append(f"{key}: checkpoint {value.dtype} vs model {target.dtype}")
            continue
        if value.is_floating_point() and value.dtype != target.dtype:
            value = value.to(target.dtype)
        to_load[key] = value
    for group in _tied_groups(expected):
        present = [key for key in group if key in to_load]
        first = present[0] if present else None
        for key in present[1:]:
            assert first is not None
            if not torch.equal(to_load[first], to_load[key]):
                mismatched.append(
                    f"{key}: differs from {first}, which the model shares with it"
                )
    problems = []
    if mismatched:
        problems.append(f"{_plural(len(mismatched), 'mismatched key')} ({_listed(mismatched)})")
    if missing:
        problems.append(f"{_plural(len(missing), 'missing key')} ({_listed(missing)})")
    if unexpected:
        problems.append(f"{_plural(len(unexpected), 'unexpected key')} ({_listed(unexpected)})")
    if problems:
        raise CheckpointError(
            "checkpoint does not fit the model: " + "; ".join(problems),
            where=os.fspath(source),
            hint="check that config.json is the one the model was trained with",
        )
    model.load_state_dict(to_load, strict=False)


# --------------------------------------------------------------------------- writing


def write_model_file(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """`atomic_write`, with I/O failures reported as a CheckpointError naming the file."""
    try:
        atomic_write(path, write)
    except OSError as error:
        raise CheckpointError(f"cannot write model file ({error})", where=path) from None


def _checked_state(model_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    state = dict(model_state)
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise TypeError(f"model_state must map str to Tensor; got {key!r}: {type(value)}")
    return state


def write_training_checkpoint(
    path: str | os.PathLike[str],
    *,
    model_state: Mapping[str, Tensor],
    optimizer_state: Mapping[str, Any] | None,
    learning_rate: float,
    iteration: int,
) -> None:
    """Write a training checkpoint in the original's layout, atomically.

    The file is `{'model', 'iteration', 'optimizer', 'learning_rate'}` as
    so-vits-svc's `utils.save_checkpoint` writes it (the original stores the epoch as
    "iteration"), so the original's `load_checkpoint` and train.py resume from it.
    """
    payload = {
        "model": _checked_state(model_state),
        "iteration": int(iteration),
        "optimizer": dict(optimizer_state) if optimizer_state is not None else None,
        "learning_rate": float(learning_rate),
    }
    write_model_file(Path(path), lambda handle: torch.save(payload, handle))


def _without_posterior_encoder(
    model_state: Mapping[str, Tensor], half: bool
) -> dict[str, Tensor]:
    state = {}
    for key, tensor in _checked_state(model_state).items():
        if key.startswith(POSTERIOR_ENCODER_PREFIX):
            continue
        tensor = tensor.detach()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    return state


def _unaliased(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """CPU, contiguous tensors that share no storage (safetensors refuses aliases)."""
    out: dict[str, Tensor] = {}
    seen: set[int] = set()
    for key, tensor in state.items():
        tensor = tensor.to("cpu").contiguous()
        storage = tensor.untyped_storage()
        owns_storage = storage.nbytes() == tensor.numel() * tensor.element_size()
        if storage.data_ptr() in seen or not owns_storage:
            tensor = tensor.clone()
        if tensor.numel():
            seen.add(tensor.untyped_storage().data_ptr())
        out[key] = tensor
    return out


def _config_dict(config: SvcConfig | Mapping[str, Any], path: Path) -> dict[str, Any]:
    if isinstance(config, SvcConfig):
        return config.to_dict()
    data: dict[str, Any] = json.loads(json.dumps(dict(config)))
    parse_svc_config(data, source=f"{path} (config to store)")
    return data


def write_release(
    path: str | os.PathLike[str],
    *,
    model_state: Mapping[str, Tensor],
    config: SvcConfig | Mapping[str, Any],
    half: bool = False,
) -> None:
    """Write a sovits safe release: safetensors weights plus the config, atomically.

    `enc_q.*` is left out (inference does not use it); with `half` floating-point
    tensors are stored as float16. Tensors shared between keys are stored as
    separate copies. The metadata holds {"format": "sovits-release",
    "format_version": "1", "config": <config.json text>}; the config is validated
    first (ConfigError if it is not a valid so-vits-svc config).
    """
    from safetensors.torch import save

    path = Path(path)
    config_data = _config_dict(config, path)
    tensors = _unaliased(_without_posterior_encoder(model_state, half))
    metadata = {
        "format": RELEASE_FORMAT,
        "format_version": RELEASE_FORMAT_VERSION,
        "config": json.dumps(config_data, ensure_ascii=False),
    }
    data = save(tensors, metadata=metadata)
    write_model_file(path, lambda handle: handle.write(data))


def _distinct_tensors(tensors: Iterable[Tensor]) -> int:
    identities = set()
    for tensor in tensors:
        identities.add(
            (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            if tensor.numel()
            else id(tensor)
        )
    return len(identities)


def fresh_adamw_state(
    parameter_count: int,
    *,
    learning_rate: float = 1e-4,
    betas: tuple[float, float] = (0.8, 0.99),
    eps: float = 1e-9,
) -> dict[str, Any]:
    """`AdamW(params, learning_rate, betas=betas, eps=eps).state_dict()` before any step.

    This is the optimizer entry compress_model.py writes: one parameter group with
    indices 0..parameter_count-1 and an empty 'state', with the installed torch's
    group keys (defaults: the 4.1 template's train settings).
    """
    placeholders = [nn.Parameter(torch.empty(0)) for _ in range(parameter_count)]
    optimizer = torch.optim.AdamW(placeholders, lr=learning_rate, betas=betas, eps=eps)
    return optimizer.state_dict()


def write_original_release(
    path: str | os.PathLike[str],
    model_state: Mapping[str, Tensor],
    half: bool = False,
    *,
    parameter_count: int | None = None,
    learning_rate: float = 1e-4,
    betas: tuple[float, float] = (0.8, 0.99),
    eps: float = 1e-9,
) -> None:
    """Write a release in compress_model.py's layout, readable by so-vits-svc.

    The file is `{'model': state without enc_q (float16 with `half`), 'iteration': 0,
    'optimizer': fresh AdamW state, 'learning_rate': 1e-4}`. The optimizer's group
    lists one index per parameter of the full model (enc_q included), which
    train.py needs to resume from the file: pass `parameter_count`
    (`len(list(model.parameters()))`); by default the distinct tensors of
    `model_state` are counted, which is exact when the state has enc_q and no
    buffers. `learning_rate`, `betas` and `eps` are the optimizer's settings (the
    original takes them from the config's train section).
    """
    state = _without_posterior_encoder(model_state, half)
    if parameter_count is None:
        parameter_count = _distinct_tensors(_checked_state(model_state).values())
    payload = {
        "model": state,
        "iteration": 0,
        "optimizer": fresh_adamw_state(
            parameter_count, learning_rate=learning_rate, betas=betas, eps=eps
        ),
        "learning_rate": _ORIGINAL_RELEASE_LEARNING_RATE,
    }
    write_model_file(Path(path), lambda handle: torch.save(payload, handle))



# --------------------------------------------------------------------------- models


def load_synthesizer(
    model_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    fold: bool = True,
    fast: bool = True,
) -> tuple[Synthesizer, SvcConfig]:
    """Build the synthesizer a so-vits-svc model file needs and fill it strictly.

    `model_path` is any form `read_checkpoint` reads; `config_path` is its config.json
    (optional for sovits releases, which embed it). The posterior encoder (`enc_q`,
    training only) may be absent. The model is returned in eval mode on `device` in
    `dtype` (fp16 files are widened to float32 by default; bfloat16 / float16 for a lower
    inference precision, see `sovits.checkpoints.precision`), with weight norm folded
    unless `fold` is False. `fast` turns on the decoder's channels-last CPU path
    (float32 inference without autograd; audio within 1e-5 of the original's operation
    order); with `fast=False` the output is bit-identical to so-vits-svc's. A checkpoint
    made for another config raises a CheckpointError naming the mismatching keys.
    """
    checkpoint = read_checkpoint(model_path)
    if config_path is not None:
        config = load_svc_config(config_path)
    elif checkpoint.config is not None:
        config = parse_svc_config(checkpoint.config, source=os.fspath(model_path))
    else:
        raise CheckpointError(
            "this model file does not carry its config",
            where=os.fspath(model_path),
            hint="pass the config.json it was trained with",
        )
    model = build_synthesizer(config)
    load_model_state(
        model,
        checkpoint.model_state,
        source=os.fspath(model_path),
        allowed_missing_prefixes=("enc_q.",),
    )
    model.eval()
    # An fp16 file loaded as fp16 is cast before folding, so it normalises its weights
    # in fp16 as the original does. A lower inference precision (`checkpoints.precision`)
    # folds in float32 first, then rounds the folded weights once.
    fold_first = fold and dtype != torch.float32 and checkpoint.dtype != dtype
    if fold_first:
        fold_weight_norm(model)
    model.to(device=device, dtype=dtype)
    if fold and not fold_first:
        fold_weight_norm(model)
    enable_fast_cpu_inference(model, fast)
    return model, config
