"""DPHuBERT (pyf98/DPHuBERT, DPHuBERT-sp0.75.pth): the `dphubert` encoder.

DPHuBERT is HuBERT base after structured pruning: convolution channels, attention
heads and feed-forward units were removed per layer, and a layer may have lost its
whole attention or feed-forward block. The file is `{'config': {...}, 'state_dict':
{...}}`, where `config` holds the keyword arguments of DPHuBERT's `wav2vec2_model`
(torchaudio's wav2vec2 factory with per-layer lists: `encoder_num_heads`,
`encoder_use_attention`, `encoder_ff_interm_features`, ...) and the state dict uses
torchaudio's module names. so-vits-svc returns `model(wave)[0]`: the Transformer
output after all layers ([T, 768]).

The loader renames the weights onto `Wav2Vec2Network` (fairseq layout) and loads them
strictly. The extractor output is multiplied by the saved `dummy_weight` (the channel
mask that pruning left behind), as in DPHuBERT. Checkpoints still in the middle of
pruning (`*_prune_*` switches on), DPWavLM files and files with an `aux` head are
refused with a CheckpointError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import CheckpointError
from sovits.features.content._wav2vec2 import (
    STANDARD_CONV_LAYERS,
    ConvSpec,
    NetworkConfig,
    Wav2Vec2Network,
    fold_parametrized_weight_norm,
    load_network_state,
)
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave
from sovits.features.content.hubert import state_dict_of
from sovits.features.content.safe_unpickle import load_checkpoint

_PRUNE_SWITCHES = (
    "extractor_prune_conv_channels",
    "encoder_prune_attention_heads",
    "encoder_prune_attention_layer",
    "encoder_prune_feed_forward_intermediate",
    "encoder_prune_feed_forward_layer",
)

_LAYER_RENAMES = (
    ("attention.", "self_attn."),
    ("layer_norm.", "self_attn_layer_norm."),
    ("feed_forward.intermediate_dense.", "fc1."),
    ("feed_forward.output_dense.", "fc2."),
    ("final_layer_norm.", "final_layer_norm."),
)


def torchaudio_to_fairseq(
    state: Mapping[str, Tensor], extractor_mode: Literal["default", "layer_norm"]
) -> dict[str, Tensor]:
    """Rename a torchaudio-layout wav2vec2 state dict to `Wav2Vec2Network` keys."""
    renamed: dict[str, Tensor] = {}
    for key, value in fold_parametrized_weight_norm(dict(state)).items():
        new = key
        conv = re.match(r"^feature_extractor\.conv_layers\.(\d+)\.(conv|layer_norm)\.(\w+)$", key)
        layer = re.match(r"^encoder\.transformer\.layers\.(\d+)\.(.+)$", key)
        if conv:
            index, part, name = conv.groups()
            if part == "conv":
                new = f"feature_extractor.conv_layers.{index}.0.{name}"
            elif extractor_mode == "layer_norm":
                new = f"feature_extractor.conv_layers.{index}.2.1.{name}"
            else:
                new = f"feature_extractor.conv_layers.{index}.2.{name}"
        elif key.startswith("encoder.feature_projection.layer_norm."):
            new = "layer_norm." + key.rsplit(".", 1)[1]
        elif key.startswith("encoder.feature_projection.projection."):
            new = "post_extract_proj." + key.rsplit(".", 1)[1]
        elif key.startswith("encoder.transformer.pos_conv_embed.conv."):
            new = "encoder.pos_conv.0." + key.rsplit(".", 1)[1]
        elif key.startswith("encoder.transformer.layer_norm."):
            new = "encoder.layer_norm." + key.rsplit(".", 1)[1]
        elif layer:
            index, rest = layer.groups()
            for source, target in _LAYER_RENAMES:
                if rest.startswith(source):
                    rest = target + rest[len(source) :]
                    break
            new = f"encoder.layers.{index}.{rest}"
        renamed[new] = value
    return renamed


def _per_layer(config: Mapping[str, Any], key: str, count: int, where: Path) -> list[Any]:
    value = config.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != count:
        raise CheckpointError(
            f"DPHuBERT config {key!r} must list {count} values, got {value!r}", where=where
        )
    return list(value)


def dphubert_network_config(config: Mapping[str, Any], where: Path) -> NetworkConfig:
    """`NetworkConfig` from DPHuBERT's `wav2vec2_model` keyword arguments."""
    if "encoder_remaining_heads" in config:
        raise CheckpointError(
            "DPWavLM checkpoints are not supported (dphubert is HuBERT)", where=where
        )
    switched_on = [key for key in _PRUNE_SWITCHES if config.get(key)]
    if switched_on:
        raise CheckpointError(
            f"checkpoint taken during pruning ({', '.join(switched_on)} on); use the final "
            "pruned model",
            where=where,
        )
    if config.get("aux_num_out") is not None:
        raise CheckpointError(
            "DPHuBERT with an aux (fine-tuning) head is not supported", where=where
        )
    try:
        mode = {"group_norm": "default", "layer_norm": "layer_norm"}[config["extractor_mode"]]
        layers_value = config.get("extractor_conv_layer_config")
        conv_layers: tuple[ConvSpec, ...] = (
            STANDARD_CONV_LAYERS
            if layers_value is None
            else tuple((int(c), int(k), int(s)) for c, k, s in layers_value)
        )
        count = int(config["encoder_num_layers"])
        use_attention = _per_layer(config, "encoder_use_attention", count, where)
        use_ffn = _per_layer(config, "encoder_use_feed_forward", count, where)
        heads = _per_layer(config, "encoder_num_heads", count, where)
        ffn = _per_layer(config, "encoder_ff_interm_features", count, where)
        return NetworkConfig(
            conv_layers=conv_layers,
            extractor_mode=mode,  # type: ignore[arg-type]
            conv_bias=bool(config["extractor_conv_bias"]),
            embed_dim=int(config["encoder_embed_dim"]),
            num_heads=tuple(
                int(h) if use else None for h, use in zip(heads, use_attention, strict=True)
            ),
            head_dim=int(config["encoder_head_dim"]),
            ffn_dims=tuple(int(f) if use else None for f, use in zip(ffn, use_ffn, strict=True)),
            conv_pos=int(config["encoder_pos_conv_kernel"]),
            conv_pos_groups=int(config["encoder_pos_conv_groups"]),
            layer_norm_first=bool(config["encoder_layer_norm_first"]),
            feature_scale=True,
            always_project=True,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"unreadable DPHuBERT config ({error!r})", where=where) from None


def load_dphubert(path: str | Path) -> tuple[Wav2Vec2Network, bool]:
    """Load a final DPHuBERT checkpoint (eval mode, float32, CPU).

    Returns the network and its `normalize_waveform` flag. Raises MissingFileError or
    CheckpointError.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    state = state_dict_of(checkpoint, "state_dict", path)
    config = checkpoint.get("config")
    if not isinstance(config, Mapping):
        raise CheckpointError("not a DPHuBERT checkpoint: no 'config' dict", where=path)
    network_config = dphubert_network_config(config, path)
    network = Wav2Vec2Network(network_config)
    renamed = torchaudio_to_fairseq(state, network_config.extractor_mode)
    load_network_state(network, renamed, what="DPHuBERT", where=path)
    return network.eval(), bool(config.get("normalize_waveform", False))


class DPHubertEncoder:
    """ContentEncoder `dphubert`: DPHuBERT output after all layers, [T, 768]."""

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE

    def __init__(
        self,
        weights: str | Path,
        *,
        name: str = "dphubert",
        device: str | torch.device = "cpu",
    ):
        network, normalize = load_dphubert(weights)
        self.name = name
        self.network = network.to(device).eval()
        self.normalize = normalize
        self.device = torch.device(device)
        self.dim = network.config.embed_dim

    def encode(self, wave: Tensor) -> Tensor:
        """Features of `wave` (float32 [N], 16 kHz): [(N - 400) // 320 + 1, dim]."""
        wave = check_wave(wave, min_samples=self.network.feature_extractor.min_samples())
        wave = wave.to(self.device)
        if self.normalize:
            wave = F.layer_norm(wave, wave.shape)
        with torch.inference_mode():
            return self.network(wave[None])[0]
