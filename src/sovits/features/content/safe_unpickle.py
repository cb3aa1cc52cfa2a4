"""Reading PyTorch checkpoints whose pickles name classes sovits does not import.

fairseq checkpoints (ContentVec, HuBERT, Chinese HuBERT) store, next to the weights,
Python objects of fairseq, omegaconf, argparse and numpy: a config, the task's
dictionaries, training meters. `torch.load(weights_only=True)` refuses them, and the
original's `torch.load(weights_only=False)` would run whatever code the pickle asks
for. `load_checkpoint` does neither:

1. it first tries `torch.load(weights_only=True)`; files holding only tensors and
   plain containers (Whisper, DPHuBERT, HuBERT-soft, WavLM) load here;
2. if that load is refused because of other objects, it reads the file again with a
   restricted unpickler. Tensors are rebuilt by torch's own functions; plain
   containers are the real builtins; every class from fairseq, omegaconf, numpy,
   typing, pathlib, datetime (and argparse.Namespace, which only stores attributes)
   becomes an `InertObject`: a record of the constructor arguments and pickled state,
   with no behaviour. Any other global (os.system, builtins.eval, subprocess, ...)
   stops the load with a CheckpointError before it can be called.

`plain_config` turns the inert records of an omegaconf DictConfig / ListConfig and
an argparse Namespace back into plain dicts and lists.
"""

from __future__ import annotations

import argparse
import collections
import logging
import pickle
import types
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

import torch

from sovits.errors import CheckpointError, MissingFileError

logger = logging.getLogger(__name__)

_INERT_MODULE_ROOTS = frozenset(
    {"fairseq", "omegaconf", "numpy", "typing", "pathlib", "datetime", "hydra", "enum"}
)
"""Top-level modules whose classes load as InertObject records."""
_INERT_NAMES = frozenset({"collections.defaultdict", "collections.Counter", "collections.deque"})

_BUILTIN_TYPES = (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "bool",
    "str",
    "bytes",
    "bytearray",
    "complex",
    "slice",
    "object",
)


def _allowed_globals() -> dict[str, Any]:
    """Real objects the restricted unpickler hands out, by "module.name"."""
    import builtins

    allowed: dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "argparse.Namespace": argparse.Namespace,
        "torch.Size": torch.Size,
        "_codecs.encode": _encode_latin1,
        "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": torch._utils._rebuild_parameter_with_state,
    }
    for name in _BUILTIN_TYPES:
        allowed[f"builtins.{name}"] = getattr(builtins, name)
        allowed[f"__builtin__.{name}"] = getattr(builtins, name)
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            allowed[f"torch.{name}"] = value
    return allowed


def _encode_latin1(text: str, encoding: str = "utf-8") -> bytes:
    """What protocol-2 pickles call to rebuild bytes (`_codecs.encode(text, "latin1")`)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


class InertObject:
    """Stand-in for an object of a class sovits does not import.

    It keeps what the pickle gave it and does nothing else: `pickled_name` is the
    class's "module.name", `args`/`kwargs` the constructor arguments, `state` the
    pickled state, and `items`/`values` what the pickle added as mapping entries or
    list elements.
    """

    pickled_name: ClassVar[str] = ""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any
    items: dict[Any, Any]
    values: list[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        instance = object.__new__(cls)
        instance.args = args
        instance.kwargs = kwargs
        instance.state = None
        instance.items = {}
        instance.values = []
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.values.append(value)

    def extend(self, values: Any) -> None:
        self.values.extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.pickled_name}>"


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a global that is neither allowed nor replaced by a stand-in."""

    def __init__(self, qualified_name: str):
        self.qualified_name = qualified_name
        super().__init__(f"refused global {qualified_name}")


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that hands out only allowed globals and inert stand-ins."""

    def __init__(self, file: IO[bytes], **kwargs: Any):
        super().__init__(file, **kwargs)
        self._allowed = _allowed_globals()
        self._stand_ins: dict[str, type[InertObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified in self._allowed:
            return self._allowed[qualified]
        if module.split(".")[0] in _INERT_MODULE_ROOTS or qualified in _INERT_NAMES:
            return self._stand_in(qualified)
        raise RefusedGlobalError(qualified)

    def _stand_in(self, qualified: str) -> type[InertObject]:
        if qualified not in self._stand_ins:
            short = qualified.rsplit(".", 1)[-1]
            self._stand_ins[qualified] = type(
                f"Inert{short}", (InertObject,), {"pickled_name": qualified}
            )
        return self._stand_ins[qualified]


def _restricted_load(file: IO[bytes], **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


def _restricted_pickle_module() -> types.ModuleType:
    """A module object torch.load accepts as `pickle_module` (Unpickler and load)."""
    module = types.ModuleType("sovits_restricted_pickle")
    module.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    module.load = _restricted_load  # type: ignore[attr-defined]
    return module


def _weights_only_refusal(error: BaseException) -> bool:
    text = str(error).lower()
    return "weights only load failed" in text or "weights_only" in text


def load_checkpoint(path: str | Path) -> Any:
    """Read a PyTorch checkpoint without running code from it (tensors on the CPU).

    Raises MissingFileError when the file is absent and CheckpointError when it is
    not a readable checkpoint or its pickle asks for a global outside the allowlist
    (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("checkpoint file not found", where=path)
    # memory-map zip checkpoints: storages that are never used (fairseq files carry
    # optimizer state) are then never read
    mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if not _weights_only_refusal(error):
            raise CheckpointError(
                f"not a PyTorch checkpoint ({_first_line(error)})", where=path
            ) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as error:
        raise CheckpointError(
            f"cannot read the checkpoint, the file is truncated, corrupt or not a PyTorch "
            f"file ({_first_line(error)})",
            where=path,
        ) from None
    logger.debug("%s holds non-tensor objects; reading it with the restricted unpickler", path)
    try:
        return torch.load(
            path,
            map_location="cpu",
            weights_only=False,  # the restricted pickle_module below does the vetting
            pickle_module=_restricted_pickle_module(),
            mmap=mmap,
        )
    except RefusedGlobalError as error:
        raise CheckpointError(
            f"refused to load: the file's pickle asks for {error.qualified_name}, which "
            "could run code; sovits only reads weights and plain configs",
            where=path,
            hint="get the model from a source you trust",
        ) from None
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
    ) as error:
        raise CheckpointError(
            f"cannot read the checkpoint ({_first_line(error)})", where=path
        ) from None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


_OMEGACONF_CONTAINERS = ("omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig")


def plain_config(value: Any) -> Any:
    """`value` with omegaconf containers, value nodes and Namespaces made plain.

    DictConfig -> dict, ListConfig -> list, value nodes (AnyNode, IntegerNode, ...) ->
    their value, argparse.Namespace -> dict of its attributes; dicts, lists and tuples
    are converted recursively. Other inert records are returned unchanged.
    """
    if isinstance(value, argparse.Namespace):
        return {key: plain_config(item) for key, item in vars(value).items()}
    if isinstance(value, InertObject):
        state = _state_dict(value)
        if value.pickled_name.startswith("omegaconf.") and "_content" in state:
            content = state["_content"]
            if isinstance(content, Mapping):
                return {key: plain_config(item) for key, item in content.items()}
            if isinstance(content, (list, tuple)):
                return [plain_config(item) for item in content]
            return content  # None, "???" (missing) or an interpolation string
        if value.pickled_name.startswith("omegaconf.nodes.") and "_val" in state:
            return plain_config(state["_val"])
        return value
    if isinstance(value, Mapping):
        return {key: plain_config(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_config(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_config(item) for item in value)
    return value


def _state_dict(record: InertObject) -> dict[str, Any]:
    """The instance dict of a pickled object's state ((dict, slots) tuples included)."""
    state = record.state
    if isinstance(state, tuple) and len(state) == 2:
        merged: dict[str, Any] = {}
        for part in state:
            if isinstance(part, Mapping):
                merged.update(part)
        return merged
    return dict(state) if isinstance(state, Mapping) else {}
