"""Running an exported so-vits-svc ONNX synthesizer with onnxruntime.

`OnnxSynthesizer` takes the graphs `sovits export-onnx` writes, and the MoeVoiceStudio
graphs of so-vits-svc's own `onnx_export.py` (inputs c, f0, mel2ph, uv, noise, sid
(, vol); output audio), and offers the same `infer` as the torch `Synthesizer`, so the
`Converter` can use either.

Randomness: the graph draws its NSF source noise with onnxruntime random ops. On load,
the one RandomUniformLike (initial phases [B, 9]) and the one RandomNormalLike
(additive noise [B, N, 9]) are replaced by two extra inputs, which `infer` fills from
the `NoiseSource` in the order the torch synthesizer draws: prior noise, phases, source
noise. With the same seed the ONNX and the torch ONNX-mode path then see the same
numbers. A graph with other random ops is run as it is, with its own randomness.

The audio equals the torch synthesizer's with its decoder in ONNX mode
(`NsfHifiganGenerator.onnx_compatible = True`), not its default mode: the two sine
source algorithms differ (see `sovits.models.vocoder.SineGenerator`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sovits.config import SvcConfig, load_svc_config, parse_svc_config
from sovits.errors import CheckpointError, InputError, MissingFileError, missing_extra
from sovits.models.noise import NoiseSource
from sovits.models.synthesizer import DEFAULT_SEED, SynthesisOutput

__all__ = ["OnnxSynthesizer", "load_onnx_synthesizer"]

logger = logging.getLogger(__name__)

CONFIG_METADATA_KEY = "sovits.config"
EXPORT_METADATA_KEY = "sovits.export"
"""Metadata keys written by `sovits.tools.onnx_export` (this layer cannot import it)."""

PHASE_INPUT = "sovits_source_phase"
SOURCE_NOISE_INPUT = "sovits_source_noise"
_HARMONICS = 9
"""Sines of the NSF source (fundamental + 8 overtones), fixed in so-vits-svc."""

_REQUIRED_INPUTS = ("c", "f0", "mel2ph", "uv", "noise", "sid")
_INT64 = 7
"""onnx.TensorProto.INT64 (onnx itself is imported only when a model is loaded)."""


@dataclass(frozen=True)
class _GraphInput:
    name: str
    element_type: int
    shape: tuple[int | str, ...]


def _graph_inputs(model: Any) -> dict[str, _GraphInput]:
    inputs = {}
    for value in model.graph.input:
        tensor_type = value.type.tensor_type
        shape = tuple(
            dim.dim_value if dim.HasField("dim_value") else dim.dim_param
            for dim in tensor_type.shape.dim
        )
        inputs[value.name] = _GraphInput(value.name, tensor_type.elem_type, shape)
    return inputs


def _inject_source_draws(model: Any) -> bool:
    """Replace the NSF source's two random ops by graph inputs (see the module
    docstring). Returns False, leaving the graph as it is, when the graph does not have
    exactly one RandomUniformLike, one RandomNormalLike and no other random op."""
    from onnx import TensorProto, helper

    graph = model.graph
    random_nodes = [node for node in graph.node if node.op_type.startswith("Random")]
    kinds = sorted(node.op_type for node in random_nodes)
    if kinds != ["RandomNormalLike", "RandomUniformLike"]:
        if random_nodes:
            logger.warning(
                "the graph has random ops %s; they run inside onnxruntime, so the seed "
                "does not fix the output",
                kinds,
            )
        return False
    replacements = {
        "RandomUniformLike": (PHASE_INPUT, ["batch", "harmonics"]),
        "RandomNormalLike": (SOURCE_NOISE_INPUT, ["batch", "samples", "harmonics"]),
    }
    nodes = []
    for node in graph.node:
        if node.op_type in replacements:
            name, dims = replacements[node.op_type]
            graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
            nodes.append(
                helper.make_node("Identity", [name], list(node.output), name=f"{name}/identity")
            )
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return True


def _metadata(model: Any) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}


class OnnxSynthesizer:
    """An exported synthesizer run by onnxruntime, with `Synthesizer.infer`'s interface.

    path: the .onnx file. config: its so-vits-svc config (None: the one embedded by
    `sovits export-onnx`; graphs from so-vits-svc's exporter need it). providers:
    onnxruntime execution providers (default CPU). threads: onnxruntime intra-op threads
    (None: onnxruntime's default).
    Raises MissingFileError for a missing file, CheckpointError for a file that is not a
    so-vits-svc ONNX synthesizer or does not fit `config`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: SvcConfig | None = None,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ):
        try:
            import onnx
            import onnxruntime
        except ImportError as error:
            package = "onnxruntime" if error.name == "onnxruntime" else "onnx"
            raise missing_extra(package, "onnx", "running an ONNX synthesizer") from error

        self.path = Path(path)
        if not self.path.is_file():
            raise MissingFileError("the ONNX model file does not exist", where=self.path)
        try:
            model = onnx.load(self.path)
        except Exception as error:  # onnx raises DecodeError and others for bad files
            raise CheckpointError(f"not a readable ONNX model ({error})", where=self.path) from None
        metadata = _metadata(model)
        self.export_info: dict[str, Any] = json.loads(metadata.get(EXPORT_METADATA_KEY, "{}"))
        embedded = metadata.get(CONFIG_METADATA_KEY)
        embedded_config = (
            parse_svc_config(json.loads(embedded), source=f"{self.path} (embedded config)")
            if embedded is not None
            else None
        )
        if config is None:
            if embedded_config is None:
                raise CheckpointError(
                    "this ONNX model does not carry its config",
                    where=self.path,
                    hint="pass the config.json it was trained with",
                )
            config = embedded_config
        self.config = config
        self._inputs = _graph_inputs(model)
        self._output_names = [value.name for value in model.graph.output]
        self._check_graph(embedded_config)
        self.injects_source_draws = _inject_source_draws(model)

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                model.SerializeToString(),
                options,
                providers=list(providers) if providers is not None else ["CPUExecutionProvider"],
            )
        except Exception as error:  # onnxruntime raises its own exception types
            raise CheckpointError(
                f"onnxruntime cannot load the model ({error})", where=self.path
            ) from None

    # ------------------------------------------------------------------ properties

    @property
    def speaker_mix(self) -> bool:
        """Whether the graph's sid is per-frame mixing weights [T, columns] (else an
        int64 id [1]); `infer` takes weights by speaker id and maps them to columns."""
        return self._inputs["sid"].element_type != _INT64

    @property
    def has_volume(self) -> bool:
        """Whether the graph takes the volume envelope `vol`."""
        return "vol" in self._inputs

    @property
    def ssl_dim(self) -> int:
        """Dimension of the content units."""
        return self.config.model.ssl_dim

    @property
    def inter_channels(self) -> int:
        """Channels of the prior noise."""
        return self.config.model.inter_channels

    @property
    def n_speakers(self) -> int:
        """Rows of the model's speaker embedding (valid ids are 0..n_speakers-1)."""
        return self.config.model.n_speakers

    @property
    def sampling_rate(self) -> int:
        """Output rate, Hz."""
        return self.config.data.sampling_rate

    @property
    def hop_length(self) -> int:
        """Samples per frame."""
        return self.config.data.hop_length

    @property
    def speaker_columns(self) -> list[int]:
        """Speaker mixing: the speaker id of each weight column (the config's `spk`
        order, as so-vits-svc's exporter and MoeVS's `Characters`)."""
        columns = self.export_info.get("speaker_columns")
        if isinstance(columns, list):
            return [int(column) for column in columns]
        return list(self.config.spk.values())

    # ------------------------------------------------------------------ checks

    def _fail(self, message: str, hint: str | None = None) -> CheckpointError:
        return CheckpointError(message, where=self.path, hint=hint)

    def _check_graph(self, embedded: SvcConfig | None) -> None:
        missing = [name for name in _REQUIRED_INPUTS if name not in self._inputs]
        if missing or "audio" not in self._output_names:
            raise self._fail(
                "not a so-vits-svc ONNX synthesizer: "
                + (f"inputs {', '.join(missing)} missing" if missing else "no output 'audio'"),
                hint="export it with `sovits export-onnx`",
            )
        config = self.config
        mismatch = "the ONNX model does not fit the config"
        hint = "use the config.json the model was trained with"
        ssl = self._inputs["c"].shape[-1]
        if isinstance(ssl, int) and ssl != config.model.ssl_dim:
            raise self._fail(
                f"{mismatch}: units have {ssl} dims, model.ssl_dim is {config.model.ssl_dim}", hint
            )
        inter = self._inputs["noise"].shape[1] if len(self._inputs["noise"].shape) == 3 else None
        if isinstance(inter, int) and inter != config.model.inter_channels:
            raise self._fail(
                f"{mismatch}: noise has {inter} channels, model.inter_channels is "
                f"{config.model.inter_channels}",
                hint,
            )
        if self.has_volume != config.model.vol_embedding:
            raise self._fail(
                f"{mismatch}: the graph {'takes' if self.has_volume else 'has no'} vol input, "
                f"model.vol_embedding is {config.model.vol_embedding}",
                hint,
            )
        if self.speaker_mix:
            width = self._inputs["sid"].shape[-1]
            columns = self.speaker_columns
            if isinstance(width, int) and width != len(columns):
                raise self._fail(
                    f"{mismatch}: speaker mixing takes {width} weights per frame, the config "
                    f"names {len(columns)} speakers",
                    hint,
                )
            if any(not 0 <= column < config.model.n_speakers for column in columns):
                raise self._fail(
                    f"{mismatch}: speaker ids outside 0..{config.model.n_speakers - 1}", hint
                )
        if embedded is not None:
            for label, ours, theirs in (
                ("data.sampling_rate", embedded.data.sampling_rate, config.data.sampling_rate),
                ("data.hop_length", embedded.data.hop_length, config.data.hop_length),
                ("model.n_speakers", embedded.model.n_speakers, config.model.n_speakers),
                (
                    "model.speech_encoder",
                    embedded.model.speech_encoder,
                    config.model.speech_encoder,
                ),
            ):
                if ours != theirs:
                    raise self._fail(
                        f"{mismatch}: it was exported with {label} = {ours!r}, "
                        f"the config has {theirs!r}",
                        hint,
                    )

    # ------------------------------------------------------------------ inference

    def _speaker_feed(self, speaker: Tensor, frames: int) -> np.ndarray:
        """The graph's sid: an int64 id [1], or mixing weights per column [T, columns]."""
        if torch.is_floating_point(speaker):
            if not self.speaker_mix:
                raise InputError(
                    "this ONNX model was exported without speaker mixing and takes one speaker id",
                    hint="export it again with --speaker-mix",
                )
            if tuple(speaker.shape) != (frames, self.n_speakers):
                raise InputError(
                    f"speaker mixing weights must have shape [frames={frames}, "
                    f"n_speakers={self.n_speakers}], got {list(speaker.shape)}"
                )
            return self._by_column(speaker.detach().to("cpu", torch.float32).numpy())
        ids = speaker.flatten().tolist()
        if len(ids) != 1:
            raise InputError(f"the ONNX synthesizer takes one speaker id ([[id]]), got {ids}")
        speaker_id = int(ids[0])
        if not 0 <= speaker_id < self.n_speakers:
            raise InputError(f"speaker id out of range 0..{self.n_speakers - 1}: {speaker_id}")
        if not self.speaker_mix:
            return np.array([speaker_id], dtype=np.int64)
        one_hot = np.zeros((frames, self.n_speakers), dtype=np.float32)
        one_hot[:, speaker_id] = 1.0
        return self._by_column(one_hot)

    def _by_column(self, by_id: np.ndarray) -> np.ndarray:
        """Weights per speaker id [T, n_speakers] -> per graph column [T, columns]."""
        column_of: dict[int, int] = {}
        for column, speaker_id in enumerate(self.speaker_columns):
            column_of.setdefault(speaker_id, column)
        unreachable = [
            speaker_id
            for speaker_id in range(self.n_speakers)
            if speaker_id not in column_of and np.any(by_id[:, speaker_id] != 0)
        ]
        if unreachable:
            raise InputError(
                f"speaker ids {unreachable} have no column in this speaker-mix model "
                "(its columns are the config's named speakers)"
            )
        weights = np.zeros((by_id.shape[0], len(self.speaker_columns)), dtype=np.float32)
        for speaker_id, column in column_of.items():
            weights[:, column] = by_id[:, speaker_id]
        return weights

    def infer(
        self,
        content: Tensor,
        f0: Tensor,
        uv: Tensor,
        *,
        speaker: Tensor,
        noise_scale: float = 0.35,
        predict_f0: bool = False,
        volume: Tensor | None = None,
        noise: NoiseSource | None = None,
        seed: int = DEFAULT_SEED,
    ) -> SynthesisOutput:
        """Render audio, as `Synthesizer.infer` does (batch 1).

        content: [1, ssl_dim, T] units at frame rate; f0: [1, T] Hz; uv: [1, T];
        speaker: an id [[id]] (or [id]), or with a speaker-mix graph per-frame weights
        by speaker id [T, n_speakers], as `Synthesizer.speaker_condition` takes them;
        volume: [1, T] (required when the graph takes vol). Random draws come from
        `noise` (or `NoiseSource.from_seed(seed)`): prior noise [1, inter, T] (scaled by
        noise_scale), then the source's phases and noise. Returns audio [1, 1, T * hop]
        on content's device and the f0 used.
        """
        if predict_f0:
            raise InputError(
                "this ONNX model has no f0 predictor (the exported graph renders the given f0)",
                hint="turn off auto f0 prediction, or convert with the torch model",
            )
        if content.dim() != 3 or content.size(0) != 1 or content.size(1) != self.ssl_dim:
            raise InputError(
                f"content must have shape [1, ssl_dim={self.ssl_dim}, T], got {list(content.shape)}"
            )
        frames = content.size(2)
        for name, tensor in (("f0", f0), ("uv", uv), ("volume", volume)):
            if tensor is not None and tuple(tensor.shape) != (1, frames):
                raise InputError(
                    f"{name} must have shape [1, T={frames}] like content, got {list(tensor.shape)}"
                )
        if self.has_volume and volume is None:
            raise InputError(
                "this model has a volume embedding (vol_embedding) and needs volume",
                hint="pass the per-frame volume envelope [1, T]",
            )
        if noise is None:
            noise = NoiseSource.from_seed(seed)
        like = torch.empty((), dtype=torch.float32, device=noise.generator.device)

        def numpy(tensor: Tensor, dtype: torch.dtype = torch.float32) -> np.ndarray:
            return tensor.detach().to("cpu", dtype).contiguous().numpy()

        prior = noise.normal((1, self.inter_channels, frames), like=like) * noise_scale
        feed: dict[str, np.ndarray] = {
            "c": numpy(content.transpose(1, 2)),
            "f0": numpy(f0),
            "mel2ph": np.arange(1, frames + 1, dtype=np.int64)[None],
            "uv": numpy(uv),
            "noise": numpy(prior),
            "sid": self._speaker_feed(speaker, frames),
        }
        if self.has_volume:
            assert volume is not None
            feed["vol"] = numpy(volume)
        if self.injects_source_draws:
            samples = frames * self.config.upsample_factor
            feed[PHASE_INPUT] = numpy(noise.uniform((1, _HARMONICS), like=like))
            feed[SOURCE_NOISE_INPUT] = numpy(noise.normal((1, samples, _HARMONICS), like=like))
        (audio,) = self.session.run(["audio"], feed)
        return SynthesisOutput(audio=torch.from_numpy(audio).to(content.device), f0=f0)


def load_onnx_synthesizer(
    model_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    *,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> tuple[OnnxSynthesizer, SvcConfig]:
    """`OnnxSynthesizer` for `model_path` and the config it runs with, like
    `sovits.checkpoints.load_synthesizer`. config_path: the model's config.json
    (optional for graphs written by `sovits export-onnx`, which embed it; when given it
    must fit the graph)."""
    config = load_svc_config(config_path) if config_path is not None else None
    synthesizer = OnnxSynthesizer(model_path, config, providers=providers, threads=threads)
    return synthesizer, synthesizer.config
