"""ONNX export of the synthesizer in the layout MoeVoiceStudio (MoeVS) runs.

`export_onnx` wraps the one `Synthesizer` in a thin adapter module (no re-declared
model) and traces it with torch's TorchScript-based exporter, as so-vits-svc 4.1's
`onnx_export.py` did. The graph has the original's inputs and dynamic axes:

| input  | shape              | dtype   | meaning |
|--------|--------------------|---------|---------|
| c      | [B, T_units, ssl]  | float32 | content units, time-major |
| f0     | [1, T]             | float32 | Hz per frame |
| mel2ph | [1, T]             | int64   | unit index per frame, 1-based; 0 picks a zero frame |
| uv     | [1, T]             | float32 | 1 = voiced |
| noise  | [1, inter, T]      | float32 | prior noise already scaled: randn * noise_scale |
| sid    | [1] int64, or [T, S] float32 | | speaker id; with speaker mixing, per-frame weights |
| vol    | [1, T]             | float32 | volume envelope, only for `vol_embedding` models |

and one output `audio` [B, 1, T * hop]. The NSF sine source runs in its ONNX mode
(frame-rate phase, `NsfHifiganGenerator.onnx_compatible`), so the audio equals the
torch synthesizer's with that mode on, not its default mode. Its random draws (initial
phases, additive noise) are random ops inside the graph, as MoeVS expects.

Differences from the original's export, on purpose:

* weight norm is folded into plain weights first (`fold=True`), so the graph holds
  the weights torch computes instead of recomputing them with ReduceL2 on every run;
* every CumSum accumulates in float64. torch's CPU cumsum accumulates float32 in
  double, onnxruntime's in float32; the ONNX-mode phase reaches hundreds of cycles, so
  float32 accumulation drifts by up to a few hundredths of a cycle over a few seconds;
* the speaker-mix weights may name fewer speakers than the model has (`n_speakers`
  larger than the config's `spk`): the columns follow `spk` in file order, as the
  original's `Characters`, and are mapped onto the embedding table inside the graph.

Beside the graph goes the MoeVS JSON (`<output>.json`, the original's fields); inside
the graph's metadata go the whole config.json (`sovits.config`) and a description of
the export (`sovits.export`), which `sovits.inference.onnx_backend` reads back.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.config import SvcConfig
from sovits.errors import InputError, SovitsError, missing_extra
from sovits.files import atomic_write
from sovits.models.noise import NoiseSource
from sovits.models.synthesizer import Synthesizer

__all__ = [
    "DEFAULT_OPSET",
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "MOEVS_SUFFIX",
    "OnnxExport",
    "OnnxExportError",
    "export_onnx",
    "input_names",
    "moevs_config",
    "moevs_encoder_name",
]

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 16
"""The opset so-vits-svc's exporter and MoeVoiceStudio use."""
EXPORT_FORMAT = "sovits-onnx"
EXPORT_FORMAT_VERSION = 1
CONFIG_METADATA_KEY = "sovits.config"
EXPORT_METADATA_KEY = "sovits.export"
MOEVS_SUFFIX = "_SoVits"
"""MoeVS looks for `<Name>_SoVits.onnx`; the JSON's Name drops this suffix."""
HARMONICS = 9
"""Sines in the NSF source (fundamental + 8 overtones; fixed in so-vits-svc)."""

_DUMMY_FRAMES = 24
"""Frames of the tracing input. Any length works; the graph's time axes are dynamic."""

# ContentVec layers by the names MoeVS gives them.
_MOEVS_ENCODER_NAMES = {
    "vec768l12": "vec-768-layer-12",
    "vec768l12-onnx": "vec-768-layer-12",
    "vec768l9-onnx": "vec-768-layer-9",
    "vec256l9": "vec-256-layer-9",
    "vec256l9-onnx": "vec-256-layer-9",
    "vec256l12-onnx": "vec-256-layer-12",
}


class OnnxExportError(SovitsError):
    """The model could not be exported (tracing or writing failed)."""


def input_names(*, volume: bool) -> list[str]:
    """The graph's input names in order (MoeVS's): c, f0, mel2ph, uv, noise, sid (, vol)."""
    names = ["c", "f0", "mel2ph", "uv", "noise", "sid"]
    if volume:
        names.append("vol")
    return names


def _dynamic_axes(*, speaker_mix: bool, volume: bool) -> dict[str, dict[int, str]]:
    """The original's dynamic axes, with the names torch gave them there."""
    axes = {"c": [0, 1], "f0": [1], "mel2ph": [1], "uv": [1], "noise": [2]}
    if speaker_mix:
        axes["sid"] = [0]
    if volume:
        axes["vol"] = [1]
    return {
        name: {axis: f"{name}_dynamic_axes_{number}" for number, axis in enumerate(dims, 1)}
        for name, dims in axes.items()
    }


class _GraphNoise(NoiseSource):
    """The draws of one traced `Synthesizer.infer`: the first normal draw (the prior
    noise) is the graph's `noise` input; the sine source's draws become onnxruntime
    random ops (RandomUniformLike, RandomNormalLike)."""

    def __init__(self, prior: Tensor) -> None:
        super().__init__(torch.Generator())
        self._prior: Tensor | None = prior

    def normal(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        if self._prior is not None:
            prior, self._prior = self._prior, None
            return prior.to(like.dtype)
        if tuple(shape) == tuple(like.shape):
            return torch.randn_like(like)
        return torch.randn(tuple(shape), dtype=like.dtype, device=like.device)

    def uniform(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        return torch.rand(tuple(shape), dtype=like.dtype, device=like.device)


class OnnxExport(nn.Module):
    """The synthesizer with MoeVS's calling convention (see the module docstring).

    `synthesizer` must be in eval mode with its decoder in ONNX mode. `speaker_columns`
    (speaker mixing only) gives the model speaker id of each weight column; when it is
    not 0..n_speakers-1 in order, the weights are mapped onto the ids by a fixed 0/1
    matrix, which changes no value.
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        *,
        speaker_mix: bool,
        speaker_columns: Sequence[int] | None = None,
    ):
        super().__init__()
        self.synthesizer = synthesizer
        self.speaker_mix = speaker_mix
        self.speaker_projection: Tensor | None
        columns = list(speaker_columns) if speaker_columns is not None else None
        if speaker_mix and columns is not None and columns != list(range(synthesizer.n_speakers)):
            projection = torch.zeros(len(columns), synthesizer.n_speakers)
            for column, speaker_id in enumerate(columns):
                projection[column, speaker_id] = 1.0
            self.register_buffer("speaker_projection", projection)
        else:
            self.speaker_projection = None

    def forward(
        self,
        c: Tensor,
        f0: Tensor,
        mel2ph: Tensor,
        uv: Tensor,
        noise: Tensor,
        sid: Tensor,
        vol: Tensor | None = None,
    ) -> Tensor:
        """Tensors as in the module docstring -> audio [B, 1, T * hop]."""
        # mel2ph indexes the units with a zero frame prepended (0 selects silence).
        padded = F.pad(c, (0, 0, 1, 0))
        index = mel2ph.unsqueeze(2).expand(-1, -1, c.shape[2])
        content = torch.gather(padded, 1, index).transpose(1, 2)  # [B, ssl, T]
        if self.speaker_mix:
            speaker = sid if self.speaker_projection is None else sid @ self.speaker_projection
        else:
            speaker = sid.unsqueeze(0)  # [1] -> [1, 1]
        result = self.synthesizer.infer(
            content,
            f0,
            uv,
            speaker=speaker,
            noise_scale=1.0,
            volume=vol,
            noise=_GraphNoise(noise),
        )
        return result.audio


def _dummy_inputs(
    synthesizer: Synthesizer, *, speaker_mix: bool, columns: int, volume: bool
) -> tuple[Tensor, ...]:
    frames = _DUMMY_FRAMES
    generator = torch.Generator().manual_seed(0)
    c = torch.randn(1, frames, synthesizer.ssl_dim, generator=generator)
    f0 = 220.0 + 20.0 * torch.rand(1, frames, generator=generator)
    mel2ph = torch.arange(1, frames + 1, dtype=torch.long)[None]
    uv = torch.ones(1, frames)
    noise = torch.zeros(1, synthesizer.inter_channels, frames)
    if speaker_mix:
        sid = torch.zeros(frames, columns)
        sid[:, 0] = 1.0
    else:
        sid = torch.zeros(1, dtype=torch.long)
    tensors: tuple[Tensor, ...] = (c, f0, mel2ph, uv, noise, sid)
    if volume:
        tensors += (torch.full((1, frames), 0.1),)
    return tensors


def _accumulate_in_double(model: Any) -> int:
    """Make every float32 CumSum of the graph accumulate in float64, as torch's CPU
    cumsum does. Returns how many nodes were changed."""
    from onnx import TensorProto, helper

    graph = model.graph
    float_values = _float32_values(model)
    nodes = []
    changed = 0
    for node in graph.node:
        if node.op_type != "CumSum" or node.input[0] not in float_values:
            nodes.append(node)
            continue
        source, result = node.input[0], node.output[0]
        wide_in, wide_out = f"{source}__float64", f"{result}__float64"
        nodes.append(
            helper.make_node(
                "Cast", [source], [wide_in], to=TensorProto.DOUBLE, name=f"{node.name}/to_float64"
            )
        )
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        nodes.append(
            helper.make_node(
                "CumSum", [wide_in, node.input[1]], [wide_out], name=node.name, **attributes
            )
        )
        nodes.append(
            helper.make_node(
                "Cast", [wide_out], [result], to=TensorProto.FLOAT, name=f"{node.name}/to_float32"
            )
        )
        changed += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return changed


def _float32_values(model: Any) -> set[str]:
    """Names of the graph's float32 values (after onnx shape inference)."""
    from onnx import TensorProto, shape_inference

    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    names = set()
    for info in [*graph.value_info, *graph.input, *graph.output]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            names.add(info.name)
    return names


def moevs_encoder_name(config: SvcConfig) -> str:
    """The `Hubert` entry of the MoeVS JSON for the config's speech encoder.

    ContentVec encoders get MoeVS's names ("vec-768-layer-12", ...). For others the
    original's rule (from gin_channels) is kept and a warning is logged: MoeVS may need
    the entry edited by hand.
    """
    encoder = config.model.speech_encoder
    if encoder in _MOEVS_ENCODER_NAMES:
        return _MOEVS_ENCODER_NAMES[encoder]
    gin = config.model.gin_channels
    name = f"vec-{gin}-layer-{12 if gin == 768 else 9}"
    logger.warning(
        "MoeVoiceStudio has no name for the speech encoder %r; writing Hubert=%r "
        "(so-vits-svc's rule), edit it if MoeVS needs another encoder",
        encoder,
        name,
    )
    return name


def moevs_config(config: SvcConfig, name: str, *, speaker_mix: bool) -> dict[str, Any]:
    """The MoeVoiceStudio model JSON that so-vits-svc's onnx_export.py writes.

    Differences: `Hubert` comes from `model.speech_encoder` (the original derived it
    from gin_channels) and `HiddenSize` is the units' dimension `ssl_dim`, which is what
    MoeVS reads it as (the original wrote gin_channels, equal to ssl_dim in every
    so-vits-svc template).
    """
    return {
        "Folder": name,
        "Name": name,
        "Type": "SoVits",
        "Rate": config.data.sampling_rate,
        "Hop": config.data.hop_length,
        "Hubert": moevs_encoder_name(config),
        "SoVits4": True,
        "SoVits3": False,
        "CharaMix": speaker_mix,
        "Volume": config.model.vol_embedding,
        "HiddenSize": config.model.ssl_dim,
        "Characters": list(config.spk),
        "Cluster": "",
    }


def _moevs_name(output_path: Path) -> str:
    stem = output_path.stem
    if stem.endswith(MOEVS_SUFFIX) and len(stem) > len(MOEVS_SUFFIX):
        return stem[: -len(MOEVS_SUFFIX)]
    logger.info(
        "MoeVoiceStudio expects the graph to be named <Name>%s.onnx; got %s",
        MOEVS_SUFFIX,
        output_path.name,
    )
    return stem


def _trace(
    adapter: OnnxExport, inputs: tuple[Tensor, ...], *, speaker_mix: bool, volume: bool, opset: int
) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The synthesizer's Python-side input checks run once on the tracing input;
        # the tracer warns that they are not recorded, which is intended.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # so-vits-svc's graphs come from the TorchScript exporter, which torch now
        # calls legacy; MoeVS's layout depends on it.
        for message in (
            ".*legacy TorchScript-based ONNX export",
            "The feature will be removed",
            "Constant folding - Only steps=1",
        ):
            warnings.filterwarnings("ignore", message=message)
        torch.onnx.export(
            adapter,
            inputs,
            cast(Any, buffer),  # the exporter writes to any binary file object
            input_names=input_names(volume=volume),
            output_names=["audio"],
            dynamic_axes=_dynamic_axes(speaker_mix=speaker_mix, volume=volume),
            opset_version=opset,
            do_constant_folding=False,
            dynamo=False,
        )
    return buffer.getvalue()


def export_onnx(
    model_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None,
    output_path: str | os.PathLike[str],
    *,
    speaker_mix: bool = False,
    opset: int = DEFAULT_OPSET,
    fold: bool = True,
    write_moevs_config: bool = True,
) -> Path:
    """Export a so-vits-svc model to ONNX for MoeVoiceStudio and `sovits infer`.

    model_path / config_path: the model file and its config.json (optional for sovits
    releases that embed it). With `speaker_mix`, sid is per-frame mixing weights
    [T, len(spk)] (columns in the config's `spk` order) instead of an id [1]. `fold`
    folds weight norm into plain weights first. Writes `output_path` (and, with
    `write_moevs_config`, the MoeVS JSON beside it with suffix .json) atomically,
    creating the folder. Returns the graph's path.

    Raises CheckpointError when the model and config do not fit, InputError for a bad
    output path or opset, OnnxExportError when tracing or writing fails, and
    MissingExtraError without the onnx package.
    """
    try:
        import onnx
    except ImportError as error:
        raise missing_extra("onnx", "onnx", "ONNX export") from error

    from sovits.checkpoints import load_synthesizer

    output = Path(output_path)
    if output.suffix.lower() != ".onnx":
        raise InputError(f"the output must be a .onnx file, got {output.name!r}", where=output)
    if opset < DEFAULT_OPSET:
        raise InputError(
            f"opset {opset} is too old for this graph", hint=f"use {DEFAULT_OPSET} or newer"
        )
    synthesizer, config = load_synthesizer(
        model_path, config_path, device="cpu", dtype=torch.float32, fold=fold, fast=False
    )
    synthesizer.dec.onnx_compatible = True
    volume = config.model.vol_embedding
    columns = list(config.spk.values())
    if speaker_mix and not columns:
        raise InputError("speaker mixing needs at least one speaker in the config's spk")
    adapter = OnnxExport(synthesizer, speaker_mix=speaker_mix, speaker_columns=columns).eval()
    inputs = _dummy_inputs(
        synthesizer, speaker_mix=speaker_mix, columns=len(columns), volume=volume
    )
    try:
        graph_bytes = _trace(adapter, inputs, speaker_mix=speaker_mix, volume=volume, opset=opset)
    except (RuntimeError, ValueError, torch.onnx.errors.OnnxExporterError) as error:
        # The exporter's messages end with a dump of the whole TorchScript graph.
        summary = str(error).strip().splitlines()[0].split(" [Caused by")[0]
        hint = (
            "the nsf-snake-hifigan decoder's anti-aliasing filters cannot be traced yet"
            if synthesizer.dec.snake
            else None
        )
        raise OnnxExportError(
            f"tracing the synthesizer failed: {summary}", where=os.fspath(model_path), hint=hint
        ) from error

    graph = onnx.load_model_from_string(graph_bytes)
    changed = _accumulate_in_double(graph)
    logger.debug("%d CumSum nodes accumulate in float64", changed)
    description = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_FORMAT_VERSION,
        "speaker_mix": speaker_mix,
        "speaker_columns": columns if speaker_mix else None,
        "volume": volume,
        "predict_f0": False,
        "sine_source": "onnx",
        "harmonics": HARMONICS,
        "folded_weight_norm": fold,
        "sampling_rate": config.data.sampling_rate,
        "hop_length": config.data.hop_length,
        "ssl_dim": config.model.ssl_dim,
        "inter_channels": config.model.inter_channels,
    }
    for key, value in (
        (CONFIG_METADATA_KEY, json.dumps(config.to_dict(), ensure_ascii=False)),
        (EXPORT_METADATA_KEY, json.dumps(description)),
    ):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    data = graph.SerializeToString()

    name = _moevs_name(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, lambda handle: handle.write(data))
        if write_moevs_config:
            text = json.dumps(
                moevs_config(config, name, speaker_mix=speaker_mix), indent=4, ensure_ascii=False
            )
            atomic_write(
                output.with_suffix(".json"),
                lambda handle: handle.write((text + "\n").encode("utf-8")),
            )
    except OSError as error:
        raise OnnxExportError(f"cannot write the ONNX model ({error})", where=output) from None
    logger.info("wrote %s (%.1f MB)", output, len(data) / 1e6)
    return output
