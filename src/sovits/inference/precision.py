"""The so-vits synthesizer of one model file in each inference precision asked for.

`ConvertOptions.precision` picks fp32 (the default, the parity path), bf16 or fp16 per
conversion (`sovits.checkpoints.precision` says where each runs). The model is cast
when it is loaded, so the converter keeps one synthesizer per precision it has used,
loading the model file again for a new one (a bf16 copy made from an fp32 model would
do, but the reverse would not: loading from the file keeps every copy exact).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

from sovits.checkpoints.precision import check_precision
from sovits.errors import InputError

if TYPE_CHECKING:
    from sovits.config import SvcConfig
    from sovits.inference.onnx_backend import OnnxSynthesizer
    from sovits.models.synthesizer import Synthesizer

__all__ = ["SynthesizerPrecisions"]


class SynthesizerPrecisions:
    """The synthesizers of one model file, one per precision, loaded on first use.

    model_path / config_path / fast: as `sovits.checkpoints.load_synthesizer` takes
    them (None: diffusion only, no so-vits model); device: where they run. `loaded` is
    the synthesizer already loaded in precision `precision` (or an ONNX one, which
    runs as exported: fp32 only).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None,
        config_path: str | os.PathLike[str] | None,
        *,
        device: torch.device,
        fast: bool,
        loaded: Synthesizer | OnnxSynthesizer | None,
        precision: str,
    ):
        self.model_path = model_path
        self.config_path = config_path
        self.device = device
        self.fast = fast
        self._models: dict[str, Synthesizer | OnnxSynthesizer | None] = {precision: loaded}

    @staticmethod
    def load(
        model_path: str | os.PathLike[str],
        config_path: str | os.PathLike[str] | None,
        *,
        device: torch.device,
        fast: bool,
        precision: str,
    ) -> tuple[Synthesizer, SvcConfig]:
        """`load_synthesizer` in `precision`; InputError where the device lacks it."""
        from sovits.checkpoints import load_synthesizer

        dtype = check_precision(precision, device)
        return load_synthesizer(model_path, config_path, device=device, dtype=dtype, fast=fast)

    def get(self, precision: str) -> Synthesizer | OnnxSynthesizer | None:
        """The synthesizer in `precision`, loaded now if it is the first use.

        Raises InputError for a precision the device lacks, and for bf16 / fp16 with an
        ONNX model or without a so-vits model (only diffusion).
        """
        if precision in self._models:
            return self._models[precision]
        check_precision(precision, self.device)
        if self.model_path is None:
            raise InputError(
                f"precision {precision} applies to the so-vits model; diffusion-only "
                "conversion (-od) runs in fp32",
                hint="leave --precision at fp32 with -od",
            )
        if os.fspath(self.model_path).lower().endswith(".onnx"):
            raise InputError(
                f"precision {precision} is for PyTorch models; an ONNX model runs as it "
                "was exported (fp32)",
                where=os.fspath(self.model_path),
                hint="leave --precision at fp32, or convert with the .pth model",
            )
        model, _ = self.load(
            self.model_path, self.config_path, device=self.device, fast=self.fast,
            precision=precision,
        )
        self._models[precision] = model
        return model
