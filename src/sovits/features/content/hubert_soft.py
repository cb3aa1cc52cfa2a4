"""HuBERT-soft (bshall/hubert, hubert-soft-0d54a1f4.pt): the `hubertsoft` encoder.

The network is HuBERT base (12 post-norm layers of width 768 with 12 heads) whose
last layer output goes through a 768 -> 256 projection (`proj`): the "soft units".
so-vits-svc pads the wave with 40 zeros on each side first, so an input of N samples
gives N // 320 frames.

The file is a state dict (optionally wrapped as {"hubert": ...} and/or with DDP's
"module." prefix) in bshall's module layout, with torch.nn.TransformerEncoderLayer
weights (`in_proj_weight`, `linear1`, `norm1`, ...). The loader renames it onto
`Wav2Vec2Network` (fairseq layout); the training-only `masked_spec_embed` and
`label_embedding` are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import CheckpointError
from sovits.features.content._wav2vec2 import (
    STANDARD_CONV_LAYERS,
    NetworkConfig,
    Wav2Vec2Network,
    fold_parametrized_weight_norm,
    load_network_state,
)
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave
from sovits.features.content.safe_unpickle import load_checkpoint

PADDING = (400 - 320) // 2
"""Zeros added on each side of the wave before encoding (the original's `units`)."""

_DROPPED = ("masked_spec_embed", "label_embedding.weight")
_RENAMES = (
    (r"^feature_extractor\.conv(\d+)\.", r"feature_extractor.conv_layers.\1.0."),
    (r"^feature_extractor\.norm0\.", "feature_extractor.conv_layers.0.2."),
    (r"^feature_projection\.norm\.", "layer_norm."),
    (r"^feature_projection\.projection\.", "post_extract_proj."),
    (r"^positional_embedding\.conv\.", "encoder.pos_conv.0."),
    (r"^norm\.", "encoder.layer_norm."),
    (r"^(encoder\.layers\.\d+\.)self_attn\.out_proj\.", r"\1self_attn.out_proj."),
    (r"^(encoder\.layers\.\d+\.)linear1\.", r"\1fc1."),
    (r"^(encoder\.layers\.\d+\.)linear2\.", r"\1fc2."),
    (r"^(encoder\.layers\.\d+\.)norm1\.", r"\1self_attn_layer_norm."),
    (r"^(encoder\.layers\.\d+\.)norm2\.", r"\1final_layer_norm."),
    (r"^proj\.", "final_proj."),
)


def hubert_soft_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a bshall HuBERT-soft state dict to `Wav2Vec2Network` keys.

    The packed `in_proj_weight` / `in_proj_bias` of each layer are split into q, k
    and v (in that order).
    """
    renamed: dict[str, Tensor] = {}
    for key, value in fold_parametrized_weight_norm(dict(state)).items():
        if key in _DROPPED:
            continue
        packed = re.match(r"^(encoder\.layers\.\d+\.self_attn\.)in_proj_(weight|bias)$", key)
        if packed:
            for part, chunk in zip(("q", "k", "v"), value.chunk(3, dim=0), strict=True):
                renamed[f"{packed.group(1)}{part}_proj.{packed.group(2)}"] = chunk
            continue
        for pattern, replacement in _RENAMES:
            new_key, count = re.subn(pattern, replacement, key)
            if count:
                key = new_key
                break
        renamed[key] = value
    return renamed


def _unwrap(checkpoint: object, path: Path) -> dict[str, Tensor]:
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("hubert"), Mapping):
        checkpoint = checkpoint["hubert"]
    if not isinstance(checkpoint, Mapping) or not all(
        isinstance(value, Tensor) for value in checkpoint.values()
    ):
        raise CheckpointError("not a HuBERT-soft checkpoint: expected a state dict", where=path)
    state = {str(key): value for key, value in checkpoint.items()}
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    if "proj.weight" not in state or "feature_extractor.conv0.weight" not in state:
        raise CheckpointError(
            "not a HuBERT-soft checkpoint: no feature_extractor.conv0 / proj weights", where=path
        )
    return state


def load_hubert_soft(path: str | Path, *, num_heads: int | None = None) -> Wav2Vec2Network:
    """Load hubert-soft-0d54a1f4.pt (eval mode, float32, CPU).

    num_heads: attention heads; the original network has 12 for width 768, i.e.
        width // 64, which is the default.
    Raises MissingFileError or CheckpointError.
    """
    path = Path(path)
    state = hubert_soft_state(_unwrap(load_checkpoint(path), path))
    try:
        embed_dim = int(state["encoder.layer_norm.weight"].shape[0])
        pos_weight = state["encoder.pos_conv.0.weight_v"]
        num_layers = 1 + max(
            int(match.group(1))
            for key in state
            if (match := re.match(r"encoder\.layers\.(\d+)\.", key))
        )
        ffn_dims = tuple(
            int(state[f"encoder.layers.{i}.fc1.weight"].shape[0]) for i in range(num_layers)
        )
        conv_layers = tuple(
            (int(state[f"feature_extractor.conv_layers.{i}.0.weight"].shape[0]), kernel, stride)
            for i, (_, kernel, stride) in enumerate(STANDARD_CONV_LAYERS)
        )
    except (KeyError, ValueError) as error:
        raise CheckpointError(
            f"not a HuBERT-soft checkpoint: incomplete weights ({error})", where=path
        ) from None
    heads = num_heads if num_heads is not None else max(1, embed_dim // 64)
    if embed_dim % heads:
        raise CheckpointError(f"{heads} heads do not divide the width {embed_dim}", where=path)
    config = NetworkConfig(
        conv_layers=conv_layers,
        extractor_mode="default",
        conv_bias=False,
        embed_dim=embed_dim,
        num_heads=(heads,) * num_layers,
        head_dim=embed_dim // heads,
        ffn_dims=ffn_dims,
        conv_pos=int(pos_weight.shape[2]),
        conv_pos_groups=embed_dim // int(pos_weight.shape[1]),
        layer_norm_first=False,
        final_dim=int(state["final_proj.weight"].shape[0]),
    )
    network = Wav2Vec2Network(config)
    load_network_state(network, state, what="HuBERT-soft", where=path)
    return network.eval()


class HubertSoftEncoder:
    """ContentEncoder `hubertsoft`: soft units [N // 320, 256] of a 16 kHz wave."""

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE

    def __init__(
        self,
        weights: str | Path | Wav2Vec2Network,
        *,
        name: str = "hubertsoft",
        device: str | torch.device = "cpu",
        num_heads: int | None = None,
    ):
        network = (
            weights
            if isinstance(weights, Wav2Vec2Network)
            else load_hubert_soft(weights, num_heads=num_heads)
        )
        if network.final_proj is None:
            raise CheckpointError("HuBERT-soft network without its projection")
        self.name = name
        self.network = network.to(device).eval()
        self.device = torch.device(device)
        self.dim = int(network.final_proj.out_features)

    def encode(self, wave: Tensor) -> Tensor:
        """Soft units of `wave` (float32 [N], 16 kHz): [N // 320, dim] on the encoder's device."""
        minimum = self.network.feature_extractor.min_samples() - 2 * PADDING
        wave = check_wave(wave, min_samples=minimum)
        assert self.network.final_proj is not None
        with torch.inference_mode():
            padded = F.pad(wave.to(self.device)[None], (PADDING, PADDING))
            units = self.network.final_proj(self.network(padded))
        return units[0]
