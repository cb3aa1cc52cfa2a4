"""Transformer building blocks of the so-vits-svc 4.1 synthesizer.

Owns the channel-wise LayerNorm (`gamma`/`beta`), multi-head self-attention with
optional windowed relative-position embeddings, the position-wise convolutional
feed-forward block, the relative-position `TransformerEncoder` used by the content
encoder (`enc_p.enc_`) and the causal `CausalTransformer` ("FFT" in the original)
used by the F0 decoder and by the transformer flow. Module and parameter names
follow the original's state dict; tensors are channel-first, [B, C, T].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.models.wavenet import gated_tanh_sigmoid
from sovits.models.weight_norm import weight_norm

MASKED_SCORE = -1e4
"""Score given to masked attention positions before the softmax (as the original)."""


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T] tensors (eps 1e-5)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, T] -> [B, C, T], normalised over C."""
        x = x.transpose(1, -1)
        x = F.layer_norm(x, (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


@dataclass(frozen=True)
class RelativePositions:
    """Index tables between absolute (query i, key j) pairs and relative offsets
    j - i in -(T-1)..T-1, built once per encoder forward and shared by its layers.

    `relative_of_key[i, j]` = j - i + T - 1 (column of key j in query i's relative
    row); `key_of_relative[i, r]` = i + r - (T - 1), clamped into 0..T-1, with
    `key_exists[i, r]` telling whether that key position exists.
    """

    length: int
    relative_of_key: Tensor  # [T, T] int64
    key_of_relative: Tensor  # [T, 2T-1] int64
    key_exists: Tensor  # [T, 2T-1] bool

    @classmethod
    def build(cls, length: int, device: torch.device) -> RelativePositions:
        """Tables for a sequence of `length` frames."""
        positions = torch.arange(length, device=device)
        offsets = torch.arange(2 * length - 1, device=device) - (length - 1)
        key_of_relative = positions[:, None] + offsets[None, :]
        return cls(
            length=length,
            relative_of_key=positions[None, :] - positions[:, None] + (length - 1),
            key_of_relative=key_of_relative.clamp(0, length - 1),
            key_exists=(key_of_relative >= 0) & (key_of_relative < length),
        )


def relative_embeddings_for_length(table: Tensor, window_size: int, length: int) -> Tensor:
    """Embedding rows for offsets -(T-1)..T-1 from a window table [1, 2w+1, d]:
    [1, 2T-1, d], zero rows beyond the window (pads, then slices, as the original)."""
    pad = max(length - (window_size + 1), 0)
    start = max((window_size + 1) - length, 0)
    if pad > 0:
        table = F.pad(table, (0, 0, pad, pad))
    return table[:, start : start + 2 * length - 1]


class MultiHeadAttention(nn.Module):
    """Multi-head attention over [B, C, T] with 1x1 conv projections.

    With `window_size`, adds relative-position terms (one table shared by all
    heads, `emb_rel_k`/`emb_rel_v` [1, 2w+1, C/heads]) to the scores and the output,
    as in VITS: positions farther apart than the window get no relative term. The
    terms are computed over all 2T-1 offsets (zero rows outside the window), which
    keeps the original's matrix shapes and therefore its float results exactly.
    `proximal_init` copies the query projection into the key projection at init.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int,
        n_heads: int,
        *,
        p_dropout: float = 0.0,
        window_size: int | None = None,
        proximal_init: bool = False,
    ):
        super().__init__()
        if channels % n_heads != 0:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.channels = channels
        self.n_heads = n_heads
        self.head_channels = channels // n_heads
        self.window_size = window_size

        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        self.drop = nn.Dropout(p_dropout)

        if window_size is not None:
            stddev = self.head_channels**-0.5
            table_shape = (1, 2 * window_size + 1, self.head_channels)
            self.emb_rel_k = nn.Parameter(torch.randn(table_shape) * stddev)
            self.emb_rel_v = nn.Parameter(torch.randn(table_shape) * stddev)

        nn.init.xavier_uniform_(self.conv_q.weight)
        nn.init.xavier_uniform_(self.conv_k.weight)
        nn.init.xavier_uniform_(self.conv_v.weight)
        if proximal_init:
            with torch.no_grad():
                self.conv_k.weight.copy_(self.conv_q.weight)
                assert self.conv_k.bias is not None and self.conv_q.bias is not None
                self.conv_k.bias.copy_(self.conv_q.bias)

    def forward(
        self, x: Tensor, mask: Tensor, relative: RelativePositions | None = None
    ) -> Tensor:
        """Self-attention. x: [B, C, T]; mask: broadcastable to [B, heads, T, T]
        (0 = masked). `relative` (windowed layers only) may be shared between
        layers; it is built here when not given."""
        batch, channels, length = x.shape
        heads, head_channels = self.n_heads, self.head_channels

        def split_heads(projected: Tensor) -> Tensor:  # [B, C, T] -> [B, h, T, d]
            return projected.view(batch, heads, head_channels, length).transpose(2, 3)

        query = split_heads(self.conv_q(x)) / math.sqrt(head_channels)
        key = split_heads(self.conv_k(x))
        value = split_heads(self.conv_v(x))

        scores = torch.matmul(query, key.transpose(-2, -1))
        if self.window_size is not None:
            if relative is None:
                relative = RelativePositions.build(length, x.device)
            scores = scores + self._relative_key_scores(query, relative)
        scores = scores.masked_fill(mask == 0, MASKED_SCORE)
        weights = self.drop(F.softmax(scores, dim=-1))  # [B, h, T, T]
        output = torch.matmul(weights, value)
        if self.window_size is not None:
            assert relative is not None
            output = output + self._relative_value_output(weights, relative)
        output = output.transpose(2, 3).contiguous().view(batch, channels, length)
        return self.conv_o(output)

    def _relative_key_scores(self, query: Tensor, relative: RelativePositions) -> Tensor:
        """Relative-key term of the scores: [B, h, T, T] (zero outside the window).

        Computed over all 2T-1 offsets with the original's matrix shapes, so the
        float results match it bit for bit.
        """
        assert self.window_size is not None
        table = relative_embeddings_for_length(self.emb_rel_k, self.window_size, relative.length)
        per_offset = torch.matmul(query, table.unsqueeze(0).transpose(-2, -1))  # [B,h,T,2T-1]
        index = relative.relative_of_key.expand(*per_offset.shape[:2], -1, -1)
        return torch.gather(per_offset, -1, index)

    def _relative_value_output(self, weights: Tensor, relative: RelativePositions) -> Tensor:
        """Relative-value term of the output: attention weights regrouped by offset
        times the value table -> [B, h, T, d]."""
        assert self.window_size is not None
        table = relative_embeddings_for_length(self.emb_rel_v, self.window_size, relative.length)
        index = relative.key_of_relative.expand(*weights.shape[:2], -1, -1)
        per_offset = torch.gather(weights, -1, index)
        per_offset = torch.where(relative.key_exists, per_offset, per_offset.new_zeros(()))
        return torch.matmul(per_offset, table.unsqueeze(0))


class FeedForward(nn.Module):
    """Two convolutions with ReLU between, masked before each ("FFN").

    `causal` pads k-1 frames on the left; otherwise (k-1)//2 left and k//2 right.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filter_channels: int,
        kernel_size: int,
        *,
        p_dropout: float = 0.0,
        causal: bool = False,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        if causal:
            self.padding = (kernel_size - 1, 0)
        else:
            self.padding = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def _pad(self, x: Tensor) -> Tensor:
        return x if self.kernel_size == 1 else F.pad(x, self.padding)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: [B, C_in, T]; mask: [B, 1, T] -> [B, C_out, T]."""
        x = torch.relu(self.conv_1(self._pad(x * mask)))
        x = self.drop(x)
        x = self.conv_2(self._pad(x * mask))
        return x * mask


class TransformerEncoder(nn.Module):
    """Post-norm transformer with windowed relative-position self-attention
    (`enc_p.enc_`): attention, add & norm, feed-forward ("same" padding), add & norm."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        window_size: int = 4,
    ):
        super().__init__()
        self.n_layers = n_layers
        self.window_size = window_size
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(
                MultiHeadAttention(
                    hidden_channels,
                    hidden_channels,
                    n_heads,
                    p_dropout=p_dropout,
                    window_size=window_size,
                )
            )
            self.norm_layers_1.append(ChannelLayerNorm(hidden_channels))
            self.ffn_layers.append(
                FeedForward(
                    hidden_channels,
                    hidden_channels,
                    filter_channels,
                    kernel_size,
                    p_dropout=p_dropout,
                )
            )
            self.norm_layers_2.append(ChannelLayerNorm(hidden_channels))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: [B, H, T]; mask: [B, 1, T] (1 = valid frame) -> [B, H, T]."""
        attention_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, T, T]
        relative = RelativePositions.build(x.size(2), x.device)
        x = x * mask
        for attention, norm_1, feed_forward, norm_2 in zip(
            self.attn_layers,
            self.norm_layers_1,
            self.ffn_layers,
            self.norm_layers_2,
            strict=True,
        ):
            y = self.drop(attention(x, attention_mask, relative))
            x = norm_1(x + y)
            y = self.drop(feed_forward(x, mask))
            x = norm_2(x + y)
        return x * mask


class CausalTransformer(nn.Module):
    """Post-norm transformer with causal self-attention and causal feed-forward
    ("FFT" in the original; used by the F0 decoder and the transformer flow).

    With `gin_channels > 0` (the flow variant, `isflow` in the original) it is
    conditioned on a speaker embedding: before every layer, x goes through
    `cond_pre` (H -> 2H) and a tanh·sigmoid gate with that layer's slice of
    `cond_layer(g)`. Note the attention mask is only causal: padding frames are
    not masked out of the keys (as in the original).
    """

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int = 1,
        kernel_size: int = 1,
        p_dropout: float = 0.0,
        *,
        gin_channels: int = 0,
    ):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.cond_pre: nn.Conv1d | None = None
        self.cond_layer: nn.Conv1d | None = None
        if gin_channels > 0:
            self.cond_pre = nn.Conv1d(hidden_channels, 2 * hidden_channels, 1)
            self.cond_layer = weight_norm(
                nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
            )
        self.drop = nn.Dropout(p_dropout)
        self.self_attn_layers = nn.ModuleList()
        self.norm_layers_0 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        for _ in range(n_layers):
            self.self_attn_layers.append(
                MultiHeadAttention(
                    hidden_channels,
                    hidden_channels,
                    n_heads,
                    p_dropout=p_dropout,
                    proximal_init=True,
                )
            )
            self.norm_layers_0.append(ChannelLayerNorm(hidden_channels))
            self.ffn_layers.append(
                FeedForward(
                    hidden_channels,
                    hidden_channels,
                    filter_channels,
                    kernel_size,
                    p_dropout=p_dropout,
                    causal=True,
                )
            )
            self.norm_layers_1.append(ChannelLayerNorm(hidden_channels))

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None = None) -> Tensor:
        """x: [B, H, T]; mask: [B, 1, T]; g: [B, gin, 1 or T] (only with
        gin_channels > 0; ignored when None) -> [B, H, T]."""
        length = mask.size(2)
        causal_mask = torch.ones(length, length, device=x.device, dtype=x.dtype).tril()
        condition = None
        if g is not None:
            if self.cond_layer is None:
                raise ValueError("this CausalTransformer was built without gin_channels")
            condition = self.cond_layer(g)
        x = x * mask
        hidden = self.hidden_channels
        for index in range(self.n_layers):
            if condition is not None:
                assert self.cond_pre is not None
                offset = index * 2 * hidden
                x = gated_tanh_sigmoid(
                    self.cond_pre(x), condition[:, offset : offset + 2 * hidden, :], hidden
                )
            y = self.drop(self.self_attn_layers[index](x, causal_mask))
            x = self.norm_layers_0[index](x + y)
            y = self.drop(self.ffn_layers[index](x, mask))
            x = self.norm_layers_1[index](x + y)
        return x * mask
