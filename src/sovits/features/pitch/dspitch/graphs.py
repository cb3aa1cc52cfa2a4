"""onnxruntime sessions of the bank's graphs, fed by the inputs each graph declares.

DiffSinger's exports changed their inputs many times (dspitch.md section 3.3), so the
runner never assumes a set: it reads `session.get_inputs()`, checks every declared
name against the names it knows how to fill (an unknown one is a CheckpointError naming
it and the accepted set), and shapes scalars by the declared rank (0-d or [1]).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sovits.errors import CheckpointError, InputError

__all__ = ["DeclaredInput", "OnnxGraph", "onnx_providers"]

logger = logging.getLogger(__name__)

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
    "tensor(int32)": np.int32,
    "tensor(double)": np.float64,
}


@dataclass(frozen=True)
class DeclaredInput:
    """One graph input as declared: name, numpy dtype, rank (None if unknown), shape."""

    name: str
    dtype: type
    rank: int | None
    shape: tuple[int | str | None, ...] | None


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for `device` ("cpu", "cuda", "cuda:0"): CUDA first
    when asked for and available, the CPU always."""
    import onnxruntime

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in (
        onnxruntime.get_available_providers()
    ):
        providers.insert(0, "CUDAExecutionProvider")
    return providers


class OnnxGraph:
    """One ONNX model under onnxruntime, created once and reused.

    path: the .onnx file; what: a label for messages ("pitch model");
    accepted: input names this program can feed; required_outputs: output names read.
    Raises CheckpointError when the file is not a loadable model, declares an input
    outside `accepted`, or lacks a required output.
    """

    def __init__(
        self,
        path: Path,
        what: str,
        *,
        accepted: Collection[str],
        required_outputs: Sequence[str],
        device: str = "cpu",
    ) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise InputError(
                "the dspitch f0 method needs onnxruntime", hint="pip install onnxruntime"
            ) from None
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4  # failures come back as exceptions with the message
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=onnx_providers(device)
            )
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise CheckpointError(
                f"cannot load the {what}: {error}", where=path,
                hint="it must be an ONNX export of the model",
            ) from None
        self.path = path
        self.what = what
        self.inputs: dict[str, DeclaredInput] = {}
        for item in self.session.get_inputs():
            shape = tuple(item.shape) if item.shape is not None else None
            self.inputs[item.name] = DeclaredInput(
                item.name,
                _DTYPES.get(item.type, np.float32),
                len(shape) if shape is not None else None,
                shape,
            )
        unknown = [name for name in self.inputs if name not in accepted]
        if unknown:
            raise CheckpointError(
                f"the {what} declares the input(s) {', '.join(unknown)} that sovits cannot "
                f"feed; known inputs: {', '.join(sorted(accepted))}",
                where=path,
            )
        outputs = [item.name for item in self.session.get_outputs()]
        missing = [name for name in required_outputs if name not in outputs]
        if missing:
            raise CheckpointError(
                f"the {what} has no output {', '.join(missing)} (its outputs: "
                f"{', '.join(outputs)})",
                where=path,
                hint="the file may not be the model it is named as",
            )

    def declares(self, name: str) -> bool:
        """Whether the graph has an input called `name`."""
        return name in self.inputs

    def scalar(self, name: str, value: int | float) -> np.ndarray:
        """`value` shaped for the declared input `name`: 0-d when its rank is 0 or
        unknown, [1] * rank otherwise (OpenUtau feeds [1], other drivers 0-d)."""
        declared = self.inputs[name]
        array: np.ndarray = np.asarray(value, dtype=declared.dtype)
        if declared.rank:
            array = array.reshape((1,) * declared.rank)
        return array

    def run(self, outputs: Sequence[str], feeds: Mapping[str, Any]) -> list[np.ndarray]:
        """Run with exactly the declared inputs: `feeds` must hold every one of them
        (extra entries are dropped). Returns the named outputs. Raises CheckpointError
        when onnxruntime refuses the feeds or fails."""
        missing = [name for name in self.inputs if name not in feeds]
        if missing:
            raise CheckpointError(
                f"the {self.what} needs the input(s) {', '.join(missing)}", where=self.path
            )
        chosen: dict[str, np.ndarray] = {
            name: np.asarray(feeds[name], dtype=declared.dtype)
            for name, declared in self.inputs.items()
        }
        try:
            result = self.session.run(list(outputs), chosen)
        except Exception as error:  # onnxruntime's errors are untyped
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in chosen.items())
            raise CheckpointError(
                f"the {self.what} failed: {str(error).splitlines()[0]} (inputs: {shapes})",
                where=self.path,
            ) from error
        return [np.asarray(value) for value in result]
