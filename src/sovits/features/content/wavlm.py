"""WavLM (microsoft/unilm, WavLM-Base+.pt): the `wavlmbase+` encoder.

WavLM is HuBERT's network with a gated relative position bias in the attention:
the first layer owns a bucketed relative-position embedding (`relative_attention_bias`,
T5-style buckets, bidirectional), and every layer scales that bias per head and frame
by a gate computed from its input (`grep_linear`, `grep_a`). so-vits-svc calls
`extract_features(wave)` with no layer, i.e. the output after all layers (Base+ is
post-norm, so without a final LayerNorm), after normalising the wave when the config
says `normalize` (False for Base+).

The file is `{'cfg': dict, 'model': state_dict}` with unilm's (fairseq) parameter
names; it loads strictly into `Wav2Vec2Network` with `WavLMSelfAttention`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.errors import CheckpointError
from sovits.features.content._wav2vec2 import (
    SelfAttention,
    Wav2Vec2Network,
    fold_parametrized_weight_norm,
    load_network_state,
)
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave
from sovits.features.content.hubert import hubert_network_config, state_dict_of
from sovits.features.content.safe_unpickle import load_checkpoint, plain_config

DEFAULT_MAX_DISTANCE = 1280
"""unilm's WavLMConfig default for `max_distance` (Base+ stores 800)."""


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> Tensor:
    """T5-style bidirectional buckets of key - query offsets: int64 [length, length].

    Half of the buckets hold positive offsets. Within a half, offsets below a quarter
    of `num_buckets` get their own bucket; larger ones share logarithmically wider
    buckets up to `max_distance`, beyond which they share the last one.
    """
    positions = torch.arange(length, dtype=torch.long)
    offsets = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    buckets = (offsets > 0).to(torch.long) * half
    distance = offsets.abs()
    exact = half // 2
    scaled = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
    large = exact + (scaled * (half - exact)).to(torch.long)
    large = torch.minimum(large, torch.full_like(large, half - 1))
    return buckets + torch.where(distance < exact, distance, large)


class WavLMSelfAttention(SelfAttention):
    """Self-attention with WavLM's gated relative position bias.

    `relative_attention_bias` exists in the first layer only; its [H, T, T] bias is
    handed to the following layers. With `gated`, each layer multiplies it by
    a * (b * grep_a - 1) + 2, where (a, b) = sigmoid of `grep_linear` over the
    per-head slices of the layer input, summed in groups of four.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        has_relative_attention_bias: bool,
        num_buckets: int,
        max_distance: int,
        gated: bool,
    ):
        super().__init__(embed_dim, num_heads, embed_dim // num_heads)
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.relative_attention_bias = (
            nn.Embedding(num_buckets, num_heads) if has_relative_attention_bias else None
        )
        self.grep_linear = nn.Linear(self.head_dim, 8) if gated else None
        self.grep_a = nn.Parameter(torch.ones(1, num_heads, 1, 1)) if gated else None

    def forward(self, x: Tensor, position_bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        batch, frames, _ = x.shape
        if self.relative_attention_bias is not None and position_bias is None:
            buckets = relative_position_buckets(frames, self.num_buckets, self.max_distance)
            position_bias = self.relative_attention_bias(buckets.to(x.device)).permute(2, 0, 1)
            position_bias = position_bias[None].expand(batch, -1, -1, -1)
        bias = position_bias
        if position_bias is not None and self.grep_linear is not None:
            assert self.grep_a is not None
            slices = x.view(batch, frames, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
            projected = self.grep_linear(slices).view(batch, self.num_heads, frames, 2, 4).sum(-1)
            gate_a, gate_b = torch.sigmoid(projected).chunk(2, dim=-1)
            bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * position_bias
        return self.attend(x, bias), position_bias


def load_wavlm(path: str | Path) -> tuple[Wav2Vec2Network, bool]:
    """Load a unilm WavLM checkpoint (eval mode, float32, CPU).

    Returns the network and the config's `normalize` flag (normalise the wave first).
    Raises MissingFileError or CheckpointError.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    state = fold_parametrized_weight_norm(state_dict_of(checkpoint, "model", path))
    state.pop("mask_emb", None)
    cfg = plain_config(checkpoint.get("cfg")) if isinstance(checkpoint, Mapping) else None
    if not isinstance(cfg, Mapping):
        raise CheckpointError("not a WavLM checkpoint: no 'cfg' dict", where=path)
    model_config: dict[str, Any] = {"encoder_attention_heads": 12, **cfg}
    config = hubert_network_config(state, model_config, path)
    relative = bool(model_config.get("relative_position_embedding", False))
    gated = bool(model_config.get("gru_rel_pos", False))
    bias_weight = state.get("encoder.layers.0.self_attn.relative_attention_bias.weight")
    num_buckets = int(bias_weight.shape[0]) if bias_weight is not None else 0
    if relative and bias_weight is None:
        raise CheckpointError("config asks for relative positions, weights have none", where=path)
    max_distance = int(model_config.get("max_distance", DEFAULT_MAX_DISTANCE))
    heads = config.num_heads[0]
    assert heads is not None

    def attention(index: int, embed_dim: int, num_heads: int, head_dim: int) -> nn.Module:
        return WavLMSelfAttention(
            embed_dim,
            num_heads,
            has_relative_attention_bias=relative and index == 0,
            num_buckets=num_buckets,
            max_distance=max_distance,
            gated=gated,
        )

    network = Wav2Vec2Network(config, attention)
    load_network_state(network, state, what="WavLM", where=path)
    return network.eval(), bool(model_config.get("normalize", False))


class WavLMEncoder:
    """ContentEncoder `wavlmbase+`: WavLM output after all layers, [T, 768]."""

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE

    def __init__(
        self,
        weights: str | Path,
        *,
        name: str = "wavlmbase+",
        device: str | torch.device = "cpu",
    ):
        network, normalize = load_wavlm(weights)
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
