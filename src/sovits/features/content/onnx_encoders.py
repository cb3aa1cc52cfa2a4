"""The MoeSS ONNX encoders: vec256l9-onnx, vec256l12-onnx, vec768l9-onnx,
vec768l12-onnx and hubertsoft-onnx.

These files (NaruseMioShirakana/MoeSS-SUBModel) are ONNX exports of ContentVec /
HuBERT-soft with input "source" [1, 1, N] (float32 wave at 16 kHz) and output
"embed" [1, T, D]. so-vits-svc feeds the first input whatever its name and takes the
first output; so does `OnnxContentEncoder`. onnxruntime is imported only when an
encoder is built (`pip install onnxruntime`, or onnxruntime-gpu for CUDA).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sovits.errors import CheckpointError, MissingFileError, SovitsError
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave

logger = logging.getLogger(__name__)

_PROBE_SAMPLES = SAMPLE_RATE
"""Length of the silent probe used when the graph does not state the feature size."""


def _providers(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxContentEncoder:
    """ContentEncoder over an ONNX graph: wave [1, 1, N] -> features [1, T, D].

    weights: path of the .onnx file.
    device: "cpu" or "cuda" (the CUDA provider is used when onnxruntime has it); the
        result is returned on this device.
    """

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE

    def __init__(
        self,
        weights: str | Path,
        *,
        name: str = "onnx",
        device: str | torch.device = "cpu",
    ):
        path = Path(weights)
        if not path.is_file():
            raise MissingFileError("ONNX encoder file not found", where=path)
        try:
            import onnxruntime
        except ImportError:
            raise SovitsError(
                f"{name} needs onnxruntime", hint="pip install onnxruntime"
            ) from None
        self.name = name
        self.device = torch.device(device)
        try:
            self.session: Any = onnxruntime.InferenceSession(
                str(path), providers=_providers(self.device)
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise CheckpointError(f"cannot open the ONNX graph ({error})", where=path) from error
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if not inputs or not outputs:
            raise CheckpointError("ONNX graph without inputs or outputs", where=path)
        shape = inputs[0].shape
        if shape is not None and len(shape) != 3:
            raise CheckpointError(
                f"ONNX input {inputs[0].name!r} has rank {len(shape)}, expected [1, 1, N]",
                where=path,
            )
        self.input_name: str = inputs[0].name
        last = outputs[0].shape[-1] if outputs[0].shape else None
        self.dim = int(last) if isinstance(last, int) else self._probe_dim(path)

    def _probe_dim(self, path: Path) -> int:
        features = self._run(np.zeros(_PROBE_SAMPLES, dtype=np.float32))
        logger.debug("%s: feature size %d found by a probe run", path, features.shape[-1])
        return int(features.shape[-1])

    def _run(self, wave: np.ndarray) -> np.ndarray:
        outputs = self.session.run(None, {self.input_name: wave[None, None, :]})
        features = np.asarray(outputs[0])
        if features.ndim != 3 or features.shape[0] != 1:
            raise CheckpointError(
                f"{self.name}: ONNX output has shape {list(features.shape)}, expected [1, T, D]"
            )
        return features

    def encode(self, wave: Tensor) -> Tensor:
        """Features of `wave` (float32 [N], 16 kHz): [T, dim] on the encoder's device."""
        audio = check_wave(wave, min_samples=HOP_SIZE).detach().cpu().numpy()
        features = self._run(np.ascontiguousarray(audio, dtype=np.float32))
        return torch.from_numpy(features[0].copy()).to(self.device)
