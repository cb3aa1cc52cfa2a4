"""fairseq HuBERT checkpoints: ContentVec (vec768l12, vec256l9) and Chinese HuBERT large.

so-vits-svc 4.1 loads these files with fairseq's `load_model_ensemble_and_task` and
calls `model.extract_features(source, padding_mask=all False, output_layer=k)`:

* vec768l12: checkpoint_best_legacy_500.pt (or RVC's hubert_base.pt, the same
  network), output of Transformer layer 12 -> [T, 768];
* vec256l9: the same file, output of layer 9 passed through `final_proj` -> [T, 256];
* cnhubertlarge: chinese-hubert-large-fairseq-ckpt.pt, output of all 24 pre-norm
  layers and the final LayerNorm -> [T, 1024].

The wave is not normalised (the original passes it as is). Here the file is read
by `safe_unpickle.load_checkpoint` (no fairseq, no code execution), the network
sizes come from the weights and the saved config (`cfg['model']` or the older
`args` Namespace), and the weights load strictly into `Wav2Vec2Network`, which has
fairseq's parameter names. Training-only entries (`mask_emb`, `label_embs_concat`)
are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from sovits.errors import CheckpointError
from sovits.features.content._wav2vec2 import (
    STANDARD_CONV_LAYERS,
    Activation,
    NetworkConfig,
    Wav2Vec2Network,
    fold_parametrized_weight_norm,
    load_network_state,
    parse_conv_layers,
)
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave
from sovits.features.content.safe_unpickle import load_checkpoint, plain_config

logger = logging.getLogger(__name__)

TRAINING_ONLY_KEYS = ("mask_emb", "label_embs_concat", "label_embs")
"""Entries of a fairseq HuBERT state dict that inference never reads."""


def fairseq_model_config(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The model section of a fairseq checkpoint's config as a plain dict.

    Newer files keep it in `cfg['model']` (a dict or omegaconf DictConfig), older ones
    in the `args` Namespace (all options flat). Returns {} when neither is present.
    """
    cfg = plain_config(checkpoint.get("cfg"))
    if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping):
        return dict(cfg["model"])
    args = plain_config(checkpoint.get("args"))
    if isinstance(args, Mapping):
        return dict(args)
    return {}


def state_dict_of(checkpoint: Any, key: str, where: Path) -> dict[str, Tensor]:
    """`checkpoint[key]` as a dict of tensors, or CheckpointError."""
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get(key), Mapping):
        found = list(checkpoint)[:8] if isinstance(checkpoint, Mapping) else type(checkpoint)
        raise CheckpointError(
            f"expected a checkpoint dict with a {key!r} state dict, found {found}", where=where
        )
    state = {}
    for name, value in checkpoint[key].items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"state dict entry {name!r} is not a tensor", where=where)
        state[str(name)] = value
    return state


def _count_layers(state: Mapping[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    indices = {int(match.group(1)) for key in state if (match := regex.match(key))}
    return max(indices) + 1 if indices else 0


def _require(state: Mapping[str, Tensor], key: str, where: Path) -> Tensor:
    if key not in state:
        raise CheckpointError(
            f"not a HuBERT-family checkpoint: no {key!r} in the weights", where=where
        )
    return state[key]


def hubert_network_config(
    state: Mapping[str, Tensor], model_config: Mapping[str, Any], where: Path
) -> NetworkConfig:
    """Network sizes of a fairseq HuBERT state dict and its model config.

    Sizes come from the weights; the head count, pre/post-norm order, activation and
    convolution strides come from the config (fairseq's defaults when absent).
    """
    embed_dim = int(_require(state, "encoder.layer_norm.weight", where).shape[0])
    num_layers = _count_layers(state, r"encoder\.layers\.(\d+)\.")
    if num_layers == 0:
        raise CheckpointError("not a HuBERT-family checkpoint: no encoder layers", where=where)
    ffn_dims = tuple(
        int(_require(state, f"encoder.layers.{i}.fc1.weight", where).shape[0])
        for i in range(num_layers)
    )
    heads_value = model_config.get("encoder_attention_heads")
    if heads_value is None:
        heads = max(1, embed_dim // 64)
        logger.info("%s: no encoder_attention_heads in the config; assuming %d", where, heads)
    else:
        heads = int(heads_value)
    if embed_dim % heads:
        raise CheckpointError(
            f"encoder_attention_heads {heads} does not divide the width {embed_dim}", where=where
        )
    conv_count = _count_layers(state, r"feature_extractor\.conv_layers\.(\d+)\.")
    layers_text = model_config.get("conv_feature_layers")
    listed = (
        parse_conv_layers(layers_text) if isinstance(layers_text, str) else STANDARD_CONV_LAYERS
    )
    if len(listed) != conv_count:
        raise CheckpointError(
            f"conv_feature_layers lists {len(listed)} convolutions, the weights have {conv_count}",
            where=where,
        )
    # channels come from the weights, kernel sizes and strides from the config
    specs = tuple(
        (int(_require(state, f"feature_extractor.conv_layers.{i}.0.weight", where).shape[0]), k, s)
        for i, (_, k, s) in enumerate(listed)
    )
    layer_norm_mode = "feature_extractor.conv_layers.0.2.1.weight" in state
    pos_weight = _require(state, "encoder.pos_conv.0.weight_v", where)
    final_weight = state.get("final_proj.weight")
    activation = str(model_config.get("activation_fn", "gelu"))
    if activation not in ("gelu", "gelu_accurate", "relu"):
        raise CheckpointError(f"unsupported activation_fn {activation!r}", where=where)
    return NetworkConfig(
        conv_layers=specs,
        extractor_mode="layer_norm" if layer_norm_mode else "default",
        conv_bias="feature_extractor.conv_layers.0.0.bias" in state,
        embed_dim=embed_dim,
        num_heads=(heads,) * num_layers,
        head_dim=embed_dim // heads,
        ffn_dims=ffn_dims,
        conv_pos=int(pos_weight.shape[2]),
        conv_pos_groups=embed_dim // int(pos_weight.shape[1]),
        layer_norm_first=bool(model_config.get("layer_norm_first", False)),
        activation=cast(Activation, activation),
        final_dim=int(final_weight.shape[0]) if final_weight is not None else None,
    )


def load_fairseq_hubert(path: str | Path) -> Wav2Vec2Network:
    """Load a fairseq HuBERT pretraining checkpoint (eval mode, float32, CPU).

    Raises MissingFileError or CheckpointError.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    state = fold_parametrized_weight_norm(state_dict_of(checkpoint, "model", path))
    state = {key: value for key, value in state.items() if key not in TRAINING_ONLY_KEYS}
    config = hubert_network_config(state, fairseq_model_config(checkpoint), path)
    network = Wav2Vec2Network(config)
    load_network_state(network, state, what="HuBERT", where=path)
    return network.eval()


class FairseqHubertEncoder:
    """ContentEncoder over a fairseq HuBERT / ContentVec checkpoint.

    weights: path of the checkpoint file (or an already loaded network).
    output_layer: Transformer layer whose output is returned (1-based; None: all
        layers, with the final LayerNorm of pre-norm models).
    final_projection: pass the features through the checkpoint's `final_proj`
        (vec256l9).
    """

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE

    def __init__(
        self,
        weights: str | Path | Wav2Vec2Network,
        *,
        name: str = "hubert",
        output_layer: int | None = None,
        final_projection: bool = False,
        device: str | torch.device = "cpu",
    ):
        network = weights if isinstance(weights, Wav2Vec2Network) else load_fairseq_hubert(weights)
        where = weights if isinstance(weights, (str, Path)) else None
        layers = len(network.encoder.layers)
        if output_layer is not None and not 1 <= output_layer <= layers:
            raise CheckpointError(
                f"{name} reads Transformer layer {output_layer}, the network has {layers}",
                where=where,
            )
        if final_projection and network.final_proj is None:
            raise CheckpointError(f"{name} needs final_proj, the checkpoint has none", where=where)
        self.name = name
        self.network = network.to(device).eval()
        self.device = torch.device(device)
        self.output_layer = output_layer
        self.final_projection = final_projection
        if final_projection:
            assert network.final_proj is not None
            self.dim = int(network.final_proj.out_features)
        else:
            self.dim = network.config.embed_dim

    def encode(self, wave: Tensor) -> Tensor:
        """Features of `wave` (float32 [N], 16 kHz): [N' frames, dim] on the encoder's device.

        N' follows the convolution stack: (N - 400) // 320 + 1 for the standard layout.
        """
        wave = check_wave(wave, min_samples=self.network.feature_extractor.min_samples())
        with torch.inference_mode():
            features = self.network(wave.to(self.device)[None], self.output_layer)
            if self.final_projection:
                assert self.network.final_proj is not None
                features = self.network.final_proj(features)
        return features[0]

