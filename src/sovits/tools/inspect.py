"""`sovits inspect`: what a model file is, what it needs, and whether it fits its config.

`inspect_model` reads a so-vits-svc / sovits model file (safely, see
`sovits.checkpoints.read_checkpoint`) and, with its config.json (given, stored in a
sovits release, or found beside the model), reports: the file form (training
checkpoint, compressed release, fp16 release, sovits safetensors release, ...), a
so-vits-svc version guess with its evidence, the model's switches as the weights show
them, the parameter count, and every disagreement between the weights and the config.
`compare_state` (the key/shape comparison against the model a config builds) is
shared with merge and compress.

Version rules (so-vits-svc 4.0 vs 4.1): 4.0 configs have no `model.speech_encoder`
and 4.0 models use 256-dim HuBERT units (vec256l9); 4.1 added volume embedding,
depthwise convolutions, shared flow parameters, the transformer flow, the snake
vocoder and optional f0 prediction, whose weights or config keys only 4.1 produces.
A vec768l12 4.1 model without 4.1-only keys has the same weights as a 4.0-v2 one,
so without a config the guess can stay "unknown".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from sovits.checkpoints import POSTERIOR_ENCODER_PREFIX, Checkpoint, read_checkpoint
from sovits.config import SvcConfig, load_svc_config, parse_svc_config
from sovits.errors import SovitsError

logger = logging.getLogger(__name__)

__all__ = [
    "ModelOutline",
    "ModelReport",
    "NeededFile",
    "StateDifferences",
    "compare_state",
    "expected_state_shapes",
    "format_report",
    "inspect_model",
    "model_outline",
    "parameter_count",
]

FileFormat = Literal[
    "original-training",
    "original-release",
    "original-release-fp16",
    "original-discriminator",
    "state-dict",
    "sovits-release",
    "safetensors",
]

_FORMAT_DESCRIPTIONS: Mapping[str, str] = {
    "original-training": "so-vits-svc training checkpoint (G_*.pth: weights, optimizer, epoch)",
    "original-release": "so-vits-svc compressed release (compress_model.py, no enc_q)",
    "original-release-fp16": "so-vits-svc compressed release in float16 (compress_model.py -hf)",
    "original-discriminator": "so-vits-svc discriminator checkpoint (D_*.pth; not a voice model)",
    "state-dict": "bare state dict (torch file)",
    "sovits-release": "sovits release (safetensors with the config inside)",
    "safetensors": "plain safetensors weights (no config inside)",
}

VersionGuess = Literal["4.0", "4.1", "unknown"]

# Keys a 4.1 config has and a 4.0 config lacks (SvcConfig fills them when absent).
_KEYS_NEW_IN_41 = (
    "model.speech_encoder",
    "model.vol_embedding",
    "model.use_depthwise_conv",
    "model.flow_share_parameter",
    "model.use_automatic_f0_prediction",
    "model.use_transformer_flow",
    "model.n_flow_layer",
    "model.n_layers_trans_flow",
    "data.unit_interpolate_mode",
    "train.vol_aug",
)

_DIFFUSION_FOLDER = "diffusion"


@dataclass(frozen=True)
class NeededFile:
    """A file conversion with this model needs or can use.

    name: the file name (a `sovits.features.pretrained` key for pretrained weights);
    purpose: what it is for; path: where it was found, or None when absent.
    """

    name: str
    purpose: str
    path: str | None


@dataclass(frozen=True)
class StateDifferences:
    """How a state dict differs from the model a config builds.

    missing: keys the model has and the file lacks (enc_q.* is not counted for
    files that hold no enc_q at all, i.e. releases); unexpected: keys the file has
    and the model lacks; mismatched: (key, shape in file, shape in model).
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = ()

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def lines(self, limit: int = 5) -> list[str]:
        """One line per kind of difference, listing up to `limit` keys each."""

        def listed(keys: list[str]) -> str:
            more = len(keys) - limit
            return ", ".join(keys[:limit]) + (f", ... ({more} more)" if more > 0 else "")

        out = []
        if self.mismatched:
            shapes = [
                f"{key} {list(file_shape)} vs {list(model_shape)}"
                for key, file_shape, model_shape in self.mismatched
            ]
            out.append(f"{len(shapes)} shape mismatches (file vs config): {listed(shapes)}")
        if self.missing:
            out.append(f"{len(self.missing)} keys missing from the file: "
                       f"{listed(list(self.missing))}")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} keys the config's model does not have: "
                       f"{listed(list(self.unexpected))}")
        return out


@dataclass(frozen=True)
class ModelReport:
    """What `inspect_model` found. Fields that need a config are None without one.

    `mismatches` lists every disagreement between the weights and the config (the
    model would not load); `warnings` lists problems of the config alone (e.g. a
    speech encoder whose unit size is not model.ssl_dim).
    """

    model_path: str
    file_format: FileFormat
    file_format_description: str
    file_bytes: int
    config_path: str | None
    config_source: str | None
    version: VersionGuess
    version_evidence: tuple[str, ...]
    speech_encoder: str | None
    speech_encoder_assumed: bool
    unit_dim: int | None
    sample_rate: int | None
    hop_length: int | None
    speakers: tuple[str, ...]
    n_speakers_config: int | None
    speaker_embedding_rows: int | None
    gin_channels: int | None
    hidden_channels: int | None
    inter_channels: int | None
    vol_embedding: bool
    use_depthwise_conv: bool
    flow: Literal["residual", "transformer", "unknown"]
    flow_share_parameter: bool
    vocoder: Literal["nsf-hifigan", "nsf-snake-hifigan", "unknown"]
    resblock: Literal["1", "2", "unknown"]
    automatic_f0_prediction: bool
    has_posterior_encoder: bool
    n_keys: int
    n_parameters: int
    dtype: str | None
    iteration: int
    optimizer_steps: int | None
    learning_rate: float | None
    needed_files: tuple[NeededFile, ...]
    mismatches: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())
    posterior_encoder_keys: int = 0
    """Tensors of the posterior encoder (enc_q.*) among `n_keys`: used only in training."""
    posterior_encoder_values: int = 0
    """Values of those tensors among `n_parameters`."""
    has_optimizer_state: bool = False
    """Whether the file holds optimizer state, the moments of every parameter (not
    counted in `n_keys`/`n_parameters`); a release's empty skeleton does not count."""
    dropped_posterior_keys: int | None = None
    """For a file without enc_q and with a config: the enc_q tensors the model has and
    the file lacks (what `compress` dropped); None otherwise."""
    dropped_posterior_values: int | None = None
    """Their values."""

    @property
    def fits_config(self) -> bool | None:
        """True when a config was available and nothing disagrees, None without config."""
        if self.config_path is None and self.config_source is None:
            return None
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["fits_config"] = self.fits_config
        result: dict[str, Any] = json.loads(json.dumps(data))
        return result


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class ModelOutline:
    """The synthesizer a config builds, without its weights.

    shapes: state-dict key -> shape; parameter_count: `len(list(model.parameters()))`
    of the full model (enc_q included), the number of parameter indices in the
    optimizer state compress_model.py writes.
    """

    shapes: Mapping[str, tuple[int, ...]]
    parameter_count: int
    aliases: frozenset[str] = frozenset()
    """Keys that name the same tensor as an earlier key (flow_share_parameter ties);
    a float16 release stores such tensors separately, so they are counted once by key."""


def model_outline(config: SvcConfig) -> ModelOutline:
    """Build `config`'s synthesizer once (randomly initialised, on the CPU; about a
    second for the full 4.1 template) and keep only its key shapes and parameter count."""
    from sovits.models.build import build_synthesizer

    with torch.no_grad():
        model = build_synthesizer(config)
    state = model.state_dict()
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    aliases = set()
    for key, value in state.items():
        identity = (value.untyped_storage().data_ptr(), int(value.storage_offset()),
                    tuple(value.shape))
        if value.numel() and identity in seen:
            aliases.add(key)
        seen.add(identity)
    return ModelOutline(shapes, len(list(model.parameters())), frozenset(aliases))


def expected_state_shapes(config: SvcConfig) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the synthesizer state dict `config` builds."""
    return dict(model_outline(config).shapes)


def parameter_count(config: SvcConfig) -> int:
    """`len(list(model.parameters()))` of `config`'s full synthesizer (enc_q included)."""
    return model_outline(config).parameter_count


def compare_state(
    state: Mapping[str, Tensor],
    config: SvcConfig,
    *,
    outline: ModelOutline | None = None,
) -> StateDifferences:
    """Keys and shapes of `state` against the synthesizer `config` describes.

    enc_q.* may be absent as a whole (releases drop it); a file with only some enc_q
    keys has them reported missing. Pass `outline` (`model_outline(config)`) to
    avoid building the model again.
    """
    expected = (outline or model_outline(config)).shapes
    has_posterior = any(key.startswith(POSTERIOR_ENCODER_PREFIX) for key in state)
    missing = tuple(
        key
        for key in expected
        if key not in state and (has_posterior or not key.startswith(POSTERIOR_ENCODER_PREFIX))
    )
    unexpected = tuple(key for key in state if key not in expected)
    mismatched = tuple(
        (key, tuple(tensor.shape), expected[key])
        for key, tensor in state.items()
        if key in expected and tuple(tensor.shape) != expected[key]
    )
    return StateDifferences(missing, unexpected, mismatched)


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class _Features:
    """The model's switches as the weights show them."""

    unit_dim: int | None
    hidden_channels: int | None
    inter_channels: int | None
    speaker_rows: int | None
    gin_channels: int | None
    vol_embedding: bool
    depthwise: bool
    share: bool
    flow: Literal["residual", "transformer", "unknown"]
    snake: bool
    resblock: Literal["1", "2", "unknown"]
    f0_decoder: bool
    posterior: bool


def _dim(state: Mapping[str, Tensor], key: str, axis: int) -> int | None:
    tensor = state.get(key)
    if tensor is None or tensor.dim() <= axis:
        return None
    return int(tensor.shape[axis])


def _features(state: Mapping[str, Tensor]) -> _Features:
    keys = list(state)
    projection = _dim(state, "enc_p.proj.weight", 0)
    flow_keys = [key for key in keys if key.startswith("flow.")]
    if any(".enc.attn_layers." in key or ".enc.cond_pre." in key for key in flow_keys):
        flow: Literal["residual", "transformer", "unknown"] = "transformer"
    elif flow_keys:
        flow = "residual"
    else:
        flow = "unknown"
    dec_keys = [key for key in keys if key.startswith("dec.resblocks.0.")]
    if any(key.startswith("dec.resblocks.0.convs1.") for key in dec_keys):
        resblock: Literal["1", "2", "unknown"] = "1"
    elif any(key.startswith("dec.resblocks.0.convs.") for key in dec_keys):
        resblock = "2"
    else:
        resblock = "unknown"
    return _Features(
        unit_dim=_dim(state, "pre.weight", 1),
        hidden_channels=_dim(state, "pre.weight", 0),
        inter_channels=projection // 2 if projection is not None else None,
        speaker_rows=_dim(state, "emb_g.weight", 0),
        gin_channels=_dim(state, "emb_g.weight", 1),
        vol_embedding="emb_vol.weight" in state,
        depthwise=any(".depth_conv." in key for key in flow_keys),
        share=any(key.startswith("flow.wn.") for key in flow_keys),
        flow=flow,
        snake=any(key.startswith("dec.") and ".act." in key for key in keys),
        resblock=resblock,
        f0_decoder=any(key.startswith("f0_decoder.") for key in keys),
        posterior=any(key.startswith(POSTERIOR_ENCODER_PREFIX) for key in keys),
    )


def _distinct_elements(state: Mapping[str, Tensor]) -> int:
    """Elements of the distinct tensors (keys that share one tensor count once)."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    identity: tuple[int, int, tuple[int, ...]]
    total = 0
    for tensor in state.values():
        identity = (
            tensor.untyped_storage().data_ptr(),
            int(tensor.storage_offset()),
            tuple(tensor.shape),
        )
        if tensor.numel() and identity in seen:
            continue
        seen.add(identity)
        total += tensor.numel()
    return total


def _file_format(checkpoint: Checkpoint, features: _Features) -> FileFormat:
    if checkpoint.container == "sovits-release":
        return "sovits-release"
    if checkpoint.container == "safetensors":
        return "safetensors"
    state = checkpoint.model_state
    if state and all(key.startswith("discriminators.") for key in state):
        return "original-discriminator"
    if checkpoint.container == "torch-state-dict":
        return "state-dict"
    if features.posterior:
        return "original-training"
    if checkpoint.dtype == torch.float16:
        return "original-release-fp16"
    return "original-release"


def _holds_optimizer_state(optimizer: Mapping[str, Any] | None) -> bool:
    """Whether an optimizer dict holds per-parameter state (a release's skeleton of
    empty state and parameter indices does not)."""
    states = optimizer.get("state") if optimizer else None
    return isinstance(states, Mapping) and bool(states)


def _optimizer_steps(optimizer: Mapping[str, Any] | None) -> int | None:
    if not optimizer:
        return None
    states = optimizer.get("state")
    if not isinstance(states, Mapping) or not states:
        return 0 if isinstance(states, Mapping) else None
    first = next(iter(states.values()))
    step = first.get("step") if isinstance(first, Mapping) else None
    if isinstance(step, Tensor) and step.numel() == 1:
        return int(step.item())
    if isinstance(step, int | float) and not isinstance(step, bool):
        return int(step)
    return None


# --------------------------------------------------------------------------- config


def _find_config(
    model_path: Path, config_path: str | os.PathLike[str] | None, checkpoint: Checkpoint
) -> tuple[SvcConfig | None, str | None, str | None]:
    """(config, its path, how it was found)."""
    if config_path is not None:
        return load_svc_config(config_path), os.fspath(config_path), "given"
    if checkpoint.config is not None:
        config = parse_svc_config(checkpoint.config, source=f"{model_path} (stored config)")
        return config, None, "stored in the release"
    beside = model_path.parent / "config.json"
    if beside.is_file():
        try:
            return load_svc_config(beside), os.fspath(beside), "found beside the model"
        except SovitsError as error:
            logger.warning("ignoring %s: %s", beside, error)
    return None, None, None


def _version(
    config: SvcConfig | None,
    config_keys_meaningful: bool,
    features: _Features,
) -> tuple[VersionGuess, tuple[str, ...]]:
    evidence: list[str] = []
    new_weights = []
    if features.vol_embedding:
        new_weights.append("volume embedding (emb_vol)")
    if features.depthwise:
        new_weights.append("depthwise convolutions")
    if features.share:
        new_weights.append("shared flow parameters (flow.wn)")
    if features.flow == "transformer":
        new_weights.append("transformer flow")
    if features.snake:
        new_weights.append("snake vocoder activations")
    if not features.f0_decoder and features.hidden_channels is not None:
        new_weights.append("no f0 decoder (use_automatic_f0_prediction off)")
    if new_weights:
        evidence.append("4.1-only weights: " + ", ".join(new_weights))
    present_new_keys: list[str] = []
    if config is not None and config_keys_meaningful:
        present_new_keys = [key for key in _KEYS_NEW_IN_41 if key not in config.filled_defaults]
        if present_new_keys:
            shown = ", ".join(present_new_keys[:3])
            more = len(present_new_keys) - 3
            evidence.append(
                f"config has 4.1 keys: {shown}" + (f" and {more} more" if more > 0 else "")
            )
        elif "model.speech_encoder" in config.filled_defaults:
            evidence.append("config has no model.speech_encoder and no other 4.1 keys (4.0 layout)")
    if new_weights or present_new_keys:
        return "4.1", tuple(evidence)
    if config is not None and config_keys_meaningful:
        return "4.0", tuple(evidence)
    if features.unit_dim == 256:
        evidence.append(
            "256-dim units and no 4.1-only weights: 4.0's HuBERT units (a 4.1 vec256l9 "
            "model without 4.1 switches looks the same)"
        )
        return "4.0", tuple(evidence)
    evidence.append("no 4.1-only weights; 4.0-v2 and 4.1 models of this shape look the same")
    return "unknown", tuple(evidence)


def _semantic_mismatches(
    config: SvcConfig, features: _Features, stored: Mapping[str, Any] | None
) -> list[str]:
    model = config.model
    problems = []
    if features.speaker_rows is not None and features.speaker_rows != model.n_speakers:
        problems.append(
            f"model.n_speakers is {model.n_speakers} but the speaker embedding (emb_g) "
            f"has {features.speaker_rows} rows"
        )
    if features.gin_channels is not None and features.gin_channels != model.gin_channels:
        problems.append(
            f"model.gin_channels is {model.gin_channels} but emb_g has "
            f"{features.gin_channels} columns"
        )
    if features.unit_dim is not None and features.unit_dim != model.ssl_dim:
        problems.append(
            f"model.ssl_dim is {model.ssl_dim} but the unit input layer (pre.weight) takes "
            f"{features.unit_dim}-dim units"
        )
    if features.hidden_channels is not None and features.hidden_channels != model.hidden_channels:
        problems.append(
            f"model.hidden_channels is {model.hidden_channels} but pre.weight gives "
            f"{features.hidden_channels}"
        )
    switches = (
        ("model.vol_embedding", model.vol_embedding, features.vol_embedding, "emb_vol.*"),
        ("model.use_automatic_f0_prediction", model.use_automatic_f0_prediction,
         features.f0_decoder, "f0_decoder.*"),
        ("model.flow_share_parameter", model.flow_share_parameter, features.share, "flow.wn.*"),
        ("model.use_depthwise_conv", model.use_depthwise_conv, features.depthwise,
         "depthwise flow convolutions"),
        ("model.use_transformer_flow", model.use_transformer_flow,
         features.flow == "transformer", "transformer flow weights"),
        ("model.vocoder_name == 'nsf-snake-hifigan'", model.vocoder_name == "nsf-snake-hifigan",
         features.snake, "snake activations"),
    )
    for name, configured, present, what in switches:
        if features.hidden_channels is None:
            break
        if configured != present:
            problems.append(
                f"{name} is {str(configured).lower()} but the file "
                f"{'has' if present else 'has no'} {what}"
            )
    if features.resblock != "unknown" and features.resblock != model.resblock:
        problems.append(
            f"model.resblock is {model.resblock!r} but the decoder weights are resblock "
            f"{features.resblock!r}"
        )
    if stored is not None:
        stored_config = parse_svc_config(stored, source="stored config")
        if stored_config != config:
            stored_dict, given = stored_config.to_dict(), config.to_dict()
            differing = [
                f"{section}.{key}"
                for section in ("train", "data", "model")
                for key in given[section]
                if given[section].get(key) != stored_dict[section].get(key)
            ]
            if stored_dict["spk"] != given["spk"]:
                differing.append("spk")
            problems.append(
                "the config stored in the release differs from the given one: "
                + ", ".join(differing)
            )
    return problems


def _config_warnings(config: SvcConfig) -> list[str]:
    """Problems of the config itself that the weights cannot show (encoder vs ssl_dim)."""
    from sovits.features.content.registry import ENCODERS

    model = config.model
    spec = ENCODERS.get(model.speech_encoder)
    if spec is None or spec.dim == model.ssl_dim:
        return []
    assumed = (
        " (absent from the config; so-vits-svc 4.1 assumes it)"
        if "model.speech_encoder" in config.filled_defaults
        else ""
    )
    fitting = [name for name, other in ENCODERS.items() if other.dim == model.ssl_dim]
    return [
        f"model.speech_encoder {model.speech_encoder!r}{assumed} gives {spec.dim}-dim "
        f"units but model.ssl_dim is {model.ssl_dim}: the model cannot run with this "
        "encoder"
        + (f"; encoders with {model.ssl_dim}-dim units: {', '.join(fitting)}" if fitting else "")
    ]


# --------------------------------------------------------------------------- files


def _needed_files(
    model_path: Path, config: SvcConfig | None, features: _Features
) -> tuple[NeededFile, ...]:
    from sovits.features.content.registry import ENCODERS
    from sovits.features.pretrained import search_locations

    def located(name: str) -> str | None:
        try:
            candidates = search_locations(name)
        except ValueError:
            return None
        found = next((path for path in candidates if path.is_file()), None)
        return os.fspath(found) if found is not None else None

    files: list[NeededFile] = []
    encoders: list[str]
    if config is not None:
        encoders = [config.model.speech_encoder]
    else:
        encoders = [name for name, spec in ENCODERS.items() if spec.dim == features.unit_dim]
    seen: set[str] = set()
    for encoder in encoders:
        spec = ENCODERS.get(encoder)
        if spec is None or not spec.weights or spec.weights in seen:
            continue
        seen.add(spec.weights)
        which = encoder if config is not None else f"one of: {', '.join(encoders)}"
        files.append(
            NeededFile(spec.weights, f"content encoder ({which})", located(spec.weights))
        )
    folder = model_path.parent
    diffusion_models = sorted((folder / _DIFFUSION_FOLDER).glob("model_*.pt"))
    diffusion_config = folder / _DIFFUSION_FOLDER / "config.yaml"
    if diffusion_models:
        latest = max(diffusion_models, key=_step_of)
        files.append(NeededFile(latest.name, "shallow-diffusion model (-shd)", os.fspath(latest)))
        files.append(
            NeededFile(
                "config.yaml",
                "shallow-diffusion config (-dc)",
                os.fspath(diffusion_config) if diffusion_config.is_file() else None,
            )
        )
        files.append(NeededFile("nsf_hifigan", "vocoder of the diffusion model",
                                located("nsf_hifigan")))
    from sovits.retrieval.locate import timbre_candidates

    for retrieval, purpose in (
        (False, "k-means cluster model (-cm with -cr)"),
        (True, "feature-retrieval index (-cm with -fr)"),
    ):
        for path in timbre_candidates(model_path, feature_retrieval=retrieval):
            files.append(NeededFile(path.name, purpose, os.fspath(path)))
    return tuple(files)


def _step_of(path: Path) -> int:
    digits = path.stem.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else -1


# --------------------------------------------------------------------------- report


def inspect_model(
    model_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
) -> ModelReport:
    """Inspect a model file (and its config) without building the model's weights.

    The config is `config_path`, else the one stored in a sovits release, else a
    config.json beside the model (`config_source` says which). Raises
    CheckpointError / ConfigError when the files cannot be read; disagreements
    between the two are reported in `mismatches`, not raised.
    """
    path = Path(model_path)
    checkpoint = read_checkpoint(path)
    state = checkpoint.model_state
    features = _features(state)
    config, found_config_path, config_source = _find_config(path, config_path, checkpoint)
    file_format = _file_format(checkpoint, features)

    mismatches: list[str] = []
    warnings = _config_warnings(config) if config is not None else []
    outline: ModelOutline | None = None
    if config is not None and file_format != "original-discriminator":
        stored = checkpoint.config if config_source == "given" else None
        mismatches.extend(_semantic_mismatches(config, features, stored))
        outline = model_outline(config)
        mismatches.extend(compare_state(state, config, outline=outline).lines())
    posterior = {
        key: tensor for key, tensor in state.items()
        if key.startswith(POSTERIOR_ENCODER_PREFIX)
    }
    dropped_keys = dropped_values = None
    if outline is not None and not posterior and features.hidden_channels is not None:
        dropped = [
            shape for key, shape in outline.shapes.items()
            if key.startswith(POSTERIOR_ENCODER_PREFIX)
        ]
        dropped_keys = len(dropped)
        dropped_values = sum(math.prod(shape) for shape in dropped)
    version, evidence = _version(
        config, config_keys_meaningful=config_source not in (None, "stored in the release"),
        features=features,
    )
    if config is not None:
        encoder: str | None = config.model.speech_encoder
        assumed = "model.speech_encoder" in config.filled_defaults
    else:
        encoder, assumed = None, False
    dtype = checkpoint.dtype
    return ModelReport(
        model_path=os.fspath(path),
        file_format=file_format,
        file_format_description=_FORMAT_DESCRIPTIONS[file_format],
        file_bytes=path.stat().st_size,
        config_path=found_config_path,
        config_source=config_source,
        version=version,
        version_evidence=evidence,
        speech_encoder=encoder,
        speech_encoder_assumed=assumed,
        unit_dim=features.unit_dim,
        sample_rate=config.data.sampling_rate if config is not None else None,
        hop_length=config.data.hop_length if config is not None else None,
        speakers=config.speaker_names if config is not None else (),
        n_speakers_config=config.model.n_speakers if config is not None else None,
        speaker_embedding_rows=features.speaker_rows,
        gin_channels=features.gin_channels,
        hidden_channels=features.hidden_channels,
        inter_channels=features.inter_channels,
        vol_embedding=features.vol_embedding,
        use_depthwise_conv=features.depthwise,
        flow=features.flow,
        flow_share_parameter=features.share,
        vocoder="nsf-snake-hifigan" if features.snake else (
            "nsf-hifigan" if features.resblock != "unknown" else "unknown"
        ),
        resblock=features.resblock,
        automatic_f0_prediction=features.f0_decoder,
        has_posterior_encoder=features.posterior,
        n_keys=len(state),
        n_parameters=_distinct_elements(
            {key: tensor for key, tensor in state.items()
             if outline is None or key not in outline.aliases}
        ),
        dtype=str(dtype).removeprefix("torch.") if dtype is not None else None,
        iteration=checkpoint.iteration,
        optimizer_steps=_optimizer_steps(checkpoint.optimizer_state),
        learning_rate=checkpoint.learning_rate,
        needed_files=_needed_files(path, config, features),
        mismatches=tuple(mismatches),
        warnings=tuple(warnings),
        posterior_encoder_keys=len(posterior),
        posterior_encoder_values=_distinct_elements(posterior),
        has_optimizer_state=_holds_optimizer_state(checkpoint.optimizer_state),
        dropped_posterior_keys=dropped_keys,
        dropped_posterior_values=dropped_values,
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _reconciliation(report: ModelReport) -> list[str]:
    """Lines that make the counts of a training checkpoint and of its release agree:
    what a release drops (the posterior encoder, the optimizer state) and the dtype."""
    if report.file_format == "original-discriminator":
        return []
    if report.posterior_encoder_keys:
        kept_keys = report.n_keys - report.posterior_encoder_keys
        kept_values = report.n_parameters - report.posterior_encoder_values
        optimizer = " and the optimizer state (not counted above)" if (
            report.has_optimizer_state) else ""
        return [
            f"  of these, the posterior encoder (enc_q, used only in training): "
            f"{report.posterior_encoder_keys} tensors, {report.posterior_encoder_values:,} "
            f"values; `sovits compress` drops it{optimizer}, so a release keeps "
            f"{kept_keys} tensors, {kept_values:,} values"
            f"{' (in float16 with --half)' if report.dtype == 'float32' else ''}"
        ]
    if report.hidden_channels is None:
        return []
    optimizer = "" if report.has_optimizer_state else " and no optimizer state"
    line = f"  no posterior encoder (enc_q){optimizer}: a release keeps only what conversion needs"
    if report.dropped_posterior_keys:
        line += (
            f"; the training checkpoint also holds enc_q's {report.dropped_posterior_keys} "
            f"tensors, {report.dropped_posterior_values:,} values"
        )
    if report.dtype == "float16":
        line += "; weights stored in float16 (half the bytes of float32)"
    return [line]


def format_report(report: ModelReport) -> str:
    """A human-readable, multi-line summary of `report` (ends with a newline)."""
    lines = [f"{report.model_path}: {report.file_format_description}"]
    megabytes = report.file_bytes / 1e6
    lines.append(
        f"  size {megabytes:.1f} MB, {report.n_keys} tensors, "
        f"{report.n_parameters:,} values, {report.dtype or 'no floating-point'} weights"
    )
    lines.extend(_reconciliation(report))
    if report.file_format == "original-training":
        steps = (
            f", optimizer steps {report.optimizer_steps}"
            if report.optimizer_steps is not None
            else ""
        )
        lines.append(f"  epoch (\"iteration\") {report.iteration}{steps}")
    lines.append(f"  so-vits-svc version: {report.version}")
    lines.extend(f"    - {line}" for line in report.version_evidence)
    if report.config_source is not None:
        where = f" {report.config_path}" if report.config_path else ""
        lines.append(f"  config: {report.config_source}{where}")
    else:
        lines.append("  config: none (pass -c config.json to check the model against it)")
    if report.speech_encoder is not None:
        assumed = " (not in the config; the 4.1 default)" if report.speech_encoder_assumed else ""
        lines.append(f"  speech encoder: {report.speech_encoder}{assumed}, "
                     f"{report.unit_dim}-dim units")
    else:
        lines.append(f"  units: {report.unit_dim}-dim")
    if report.sample_rate is not None:
        lines.append(f"  audio: {report.sample_rate} Hz, hop {report.hop_length}")
    if report.speakers:
        lines.append(f"  speakers ({len(report.speakers)}): {', '.join(report.speakers)}")
    lines.append(
        f"  speaker embedding: {report.speaker_embedding_rows} rows x "
        f"{report.gin_channels}; hidden {report.hidden_channels}, inter {report.inter_channels}"
    )
    lines.append(
        f"  volume embedding {_yes(report.vol_embedding)}, depthwise conv "
        f"{_yes(report.use_depthwise_conv)}, flow {report.flow}"
        f"{' (shared parameters)' if report.flow_share_parameter else ''}, vocoder "
        f"{report.vocoder} (resblock {report.resblock}), f0 prediction "
        f"{_yes(report.automatic_f0_prediction)}, posterior encoder "
        f"{_yes(report.has_posterior_encoder)}"
    )
    if report.needed_files:
        lines.append("  files:")
        for needed in report.needed_files:
            where = needed.path if needed.path is not None else "MISSING"
            lines.append(f"    {needed.name} - {needed.purpose}: {where}")
    if report.fits_config is None:
        pass
    elif report.mismatches:
        lines.append(f"  does NOT fit its config ({len(report.mismatches)} problems):")
        lines.extend(f"    - {line}" for line in report.mismatches)
    else:
        lines.append("  fits its config")
    lines.extend(f"  warning: {line}" for line in report.warnings)
    return "\n".join(lines) + "\n"
