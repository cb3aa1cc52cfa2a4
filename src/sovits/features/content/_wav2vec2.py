"""The wav2vec 2.0 / HuBERT network family in fairseq's module layout.

HuBERT, ContentVec, Chinese HuBERT, HuBERT-soft, DPHuBERT and WavLM share one
architecture: a strided convolution stack over the raw wave (a frame every 320
samples), a LayerNorm and projection of its channels, a weight-normed convolutional
position embedding, and a stack of Transformer layers (post-norm for the base
models, pre-norm for the large ones). This module holds that network once, with
fairseq's parameter names (`feature_extractor.conv_layers.0.0.weight`,
`encoder.pos_conv.0.weight_g`, `encoder.layers.3.self_attn.q_proj.weight`, ...), so
fairseq checkpoints load without renaming; the other families map their names onto
it in their loaders.

Per-layer head counts and feed-forward sizes may differ (DPHuBERT prunes them), and
a layer may lack its attention or feed-forward block entirely. WavLM plugs in its
own attention module through `attention_factory`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.errors import CheckpointError

ConvSpec = tuple[int, int, int]
"""(output channels, kernel size, stride) of one feature-extractor convolution."""

STANDARD_CONV_LAYERS: tuple[ConvSpec, ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + (
    (512, 2, 2),
) * 2
"""fairseq's default `conv_feature_layers`: 400-sample receptive field, hop 320."""

Activation = Literal["gelu", "gelu_accurate", "relu"]

_MAX_REPEAT = 64
"""Largest `* n` accepted in conv_feature_layers (real files use at most 4)."""


def parse_conv_layers(text: str) -> tuple[ConvSpec, ...]:
    """Read fairseq's `conv_feature_layers` string without `eval`.

    The string is a Python expression of lists of (dim, kernel, stride) tuples joined
    by `+` and repeated by `* n`, e.g. "[(512,10,5)] + [(512,3,2)] * 4". Only those
    constructs are accepted; anything else raises CheckpointError.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
        value = _evaluate_layer_expression(tree.body)
    except (SyntaxError, ValueError, TypeError) as error:
        raise CheckpointError(f"unreadable conv_feature_layers {text!r}: {error}") from None
    layers = []
    for item in value:
        if not (isinstance(item, tuple) and len(item) == 3 and all(type(v) is int for v in item)):
            raise CheckpointError(f"unreadable conv_feature_layers {text!r}: bad entry {item!r}")
        layers.append((item[0], item[1], item[2]))
    return tuple(layers)


def _evaluate_layer_expression(node: ast.expr) -> list[object]:
    if isinstance(node, ast.List):
        return [_evaluate_tuple(element) for element in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate_layer_expression(node.left) + _evaluate_layer_expression(node.right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for items, count in ((node.left, node.right), (node.right, node.left)):
            if isinstance(count, ast.Constant) and type(count.value) is int:
                if not 0 <= count.value <= _MAX_REPEAT:
                    raise ValueError(f"repeat count {count.value} out of range")
                return _evaluate_layer_expression(items) * count.value
    raise ValueError(f"unsupported expression {ast.dump(node)}")


def _evaluate_tuple(node: ast.expr) -> tuple[int, ...]:
    if isinstance(node, ast.Tuple) and all(
        isinstance(element, ast.Constant) and type(element.value) is int for element in node.elts
    ):
        return tuple(element.value for element in node.elts)  # type: ignore[attr-defined]
    raise ValueError(f"unsupported list entry {ast.dump(node)}")


def activation_function(name: str) -> Callable[[Tensor], Tensor]:
    """fairseq's activation by name: "gelu" (erf), "gelu_accurate" (tanh form), "relu"."""
    if name == "gelu":
        return F.gelu
    if name == "gelu_accurate":
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise CheckpointError(f"unsupported activation_fn {name!r} (gelu, gelu_accurate, relu)")


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes and switches of a wav2vec 2.0-family network.

    conv_layers: (channels, kernel, stride) of each feature-extractor convolution.
    extractor_mode: "default" (GroupNorm after the first convolution only) or
        "layer_norm" (LayerNorm over channels after every convolution).
    conv_bias: whether the feature-extractor convolutions have biases.
    embed_dim: Transformer width C.
    num_heads: per layer, attention heads (None: the layer has no attention block).
    head_dim: size of one attention head (C // heads except in pruned models).
    ffn_dims: per layer, feed-forward hidden size (None: no feed-forward block).
    conv_pos, conv_pos_groups: kernel size and groups of the position convolution.
    layer_norm_first: pre-norm layers and a final LayerNorm (large models) instead of
        post-norm layers and a LayerNorm before the first layer (base models).
    activation: feed-forward activation.
    final_dim: output size of `final_proj` (None: no final projection).
    feature_scale: multiply the extractor output by a learnt per-channel vector
        (`feature_extractor.dummy_weight`, DPHuBERT).
    always_project: keep `post_extract_proj` even when the extractor's channels equal
        C (torchaudio-style models always have it; fairseq only when they differ).
    """

    conv_layers: tuple[ConvSpec, ...]
    extractor_mode: Literal["default", "layer_norm"]
    conv_bias: bool
    embed_dim: int
    num_heads: tuple[int | None, ...]
    head_dim: int
    ffn_dims: tuple[int | None, ...]
    conv_pos: int
    conv_pos_groups: int
    layer_norm_first: bool
    activation: Activation = "gelu"
    final_dim: int | None = None
    feature_scale: bool = False
    always_project: bool = False

    @property
    def num_layers(self) -> int:
        return len(self.num_heads)


class _TransposeLast(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(-2, -1)


class ConvFeatureExtractor(nn.Module):
    """Strided convolutions over the wave: [B, N] -> [B, channels, T], GELU after each.

    Layer i is fairseq's Sequential (conv, dropout, [norm], GELU), so its keys are
    `conv_layers.{i}.0.weight` and `conv_layers.0.2.weight` (GroupNorm) or
    `conv_layers.{i}.2.1.weight` (LayerNorm over channels).
    """

    def __init__(
        self,
        conv_layers: Sequence[ConvSpec],
        *,
        mode: Literal["default", "layer_norm"],
        conv_bias: bool,
        feature_scale: bool = False,
    ):
        super().__init__()
        self.specs = tuple(conv_layers)
        blocks = []
        in_channels = 1
        for index, (channels, kernel, stride) in enumerate(self.specs):
            conv = nn.Conv1d(in_channels, channels, kernel, stride=stride, bias=conv_bias)
            parts: list[nn.Module] = [conv, nn.Dropout(0.0)]
            if mode == "layer_norm":
                parts.append(
                    nn.Sequential(_TransposeLast(), nn.LayerNorm(channels), _TransposeLast())
                )
            elif index == 0:
                parts.append(nn.GroupNorm(channels, channels, affine=True))
            parts.append(nn.GELU())
            blocks.append(nn.Sequential(*parts))
            in_channels = channels
        self.conv_layers = nn.ModuleList(blocks)
        self.dummy_weight: nn.Parameter | None = (
            nn.Parameter(torch.ones(in_channels), requires_grad=False) if feature_scale else None
        )

    def forward(self, wave: Tensor) -> Tensor:
        x = wave.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        if self.dummy_weight is not None:
            x = x * self.dummy_weight[:, None]
        return x

    def frames(self, n_samples: int) -> int:
        """Output frames for an input of `n_samples` (0 when it is too short)."""
        length = n_samples
        for _, kernel, stride in self.specs:
            if length < kernel:
                return 0
            length = (length - kernel) // stride + 1
        return length

    def min_samples(self) -> int:
        """Shortest input that yields one frame."""
        needed = 1
        for _, kernel, stride in reversed(self.specs):
            needed = (needed - 1) * stride + kernel
        return needed


class WeightNormConv1d(nn.Module):
    """Conv1d whose weight is weight_g * weight_v / ||weight_v|| (norm over all dims but `dim`).

    The parameters are named like torch's old `weight_norm` (`weight_g`, `weight_v`,
    `bias`); the weight is rebuilt with `torch._weight_norm`, the kernel that
    function calls.
    """

    def __init__(
        self, channels: int, kernel_size: int, *, groups: int, padding: int, dim: int = 2
    ):
        super().__init__()
        self.padding = padding
        self.groups = groups
        self.dim = dim
        g_shape = [1, 1, 1]
        g_shape[dim] = (channels, channels // groups, kernel_size)[dim]
        self.weight_g = nn.Parameter(torch.ones(g_shape))
        self.weight_v = nn.Parameter(torch.zeros(channels, channels // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        weight = torch._weight_norm(self.weight_v, self.weight_g, self.dim)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _SamePad(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : x.shape[-1] - self.remove]


class SelfAttention(nn.Module):
    """Multi-head self-attention: [B, T, C] -> [B, T, C].

    `num_heads * head_dim` may be smaller than C (pruned heads). `forward` takes and
    returns a position bias so that WavLM's attention can share the layer code;
    this class ignores it.
    """

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        self.k_proj = nn.Linear(embed_dim, inner)
        self.v_proj = nn.Linear(embed_dim, inner)
        self.q_proj = nn.Linear(embed_dim, inner)
        self.out_proj = nn.Linear(inner, embed_dim)

    def attend(self, x: Tensor, bias: Tensor | None) -> Tensor:
        """Scaled dot-product attention of x with itself plus an additive `bias` [B, H, T, T]."""
        batch, frames, _ = x.shape
        shape = (batch, frames, self.num_heads, self.head_dim)
        query = self.q_proj(x).view(shape).transpose(1, 2)
        key = self.k_proj(x).view(shape).transpose(1, 2)
        value = self.v_proj(x).view(shape).transpose(1, 2)
        # softmax(q k^T / sqrt(head_dim) + bias) v, without a [T, T] matrix when bias is None
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, -1))

    def forward(self, x: Tensor, position_bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return self.attend(x, None), position_bias


AttentionFactory = Callable[[int, int, int, int], nn.Module]
"""(layer index, embed_dim, num_heads, head_dim) -> attention module."""


def _standard_attention(index: int, embed_dim: int, num_heads: int, head_dim: int) -> nn.Module:
    return SelfAttention(embed_dim, num_heads, head_dim)


class EncoderLayer(nn.Module):
    """One Transformer layer (fairseq's TransformerSentenceEncoderLayer).

    Post-norm: x = LN1(x + attn(x)); x = LN2(x + ffn(x)). Pre-norm: x = x + attn(LN1(x));
    x = x + ffn(LN2(x)). A missing block is skipped; in post-norm its LayerNorm still runs.
    """

    def __init__(
        self,
        embed_dim: int,
        attention: nn.Module | None,
        ffn_dim: int | None,
        *,
        layer_norm_first: bool,
        activation: Activation,
    ):
        super().__init__()
        self.self_attn = attention
        self.self_attn_layer_norm = nn.LayerNorm(embed_dim)
        self.fc1 = nn.Linear(embed_dim, ffn_dim) if ffn_dim is not None else None
        self.fc2 = nn.Linear(ffn_dim, embed_dim) if ffn_dim is not None else None
        self.final_layer_norm = nn.LayerNorm(embed_dim)
        self.layer_norm_first = layer_norm_first
        self.activation = activation_function(activation)

    def _feed_forward(self, x: Tensor) -> Tensor:
        assert self.fc1 is not None and self.fc2 is not None
        return self.fc2(self.activation(self.fc1(x)))

    def forward(self, x: Tensor, position_bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.layer_norm_first:
            if self.self_attn is not None:
                normed = self.self_attn_layer_norm(x)
                attended, position_bias = self.self_attn(normed, position_bias)
                x = x + attended
            if self.fc1 is not None:
                x = x + self._feed_forward(self.final_layer_norm(x))
            return x, position_bias
        if self.self_attn is not None:
            attended, position_bias = self.self_attn(x, position_bias)
            x = x + attended
        x = self.self_attn_layer_norm(x)
        if self.fc1 is not None:
            x = x + self._feed_forward(x)
        return self.final_layer_norm(x), position_bias


class TransformerEncoder(nn.Module):
    """Position convolution + Transformer layers: [B, T, C] -> [B, T, C]."""

    def __init__(self, config: NetworkConfig, attention_factory: AttentionFactory):
        super().__init__()
        channels = config.embed_dim
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(
                channels,
                config.conv_pos,
                groups=config.conv_pos_groups,
                padding=config.conv_pos // 2,
            ),
            _SamePad(config.conv_pos),
            nn.GELU(),
        )
        layers = []
        for index, (heads, ffn_dim) in enumerate(
            zip(config.num_heads, config.ffn_dims, strict=True)
        ):
            attention = (
                attention_factory(index, channels, heads, config.head_dim)
                if heads is not None
                else None
            )
            layers.append(
                EncoderLayer(
                    channels,
                    attention,
                    ffn_dim,
                    layer_norm_first=config.layer_norm_first,
                    activation=config.activation,
                )
            )
        self.layers = nn.ModuleList(layers)
        self.layer_norm = nn.LayerNorm(channels)
        self.layer_norm_first = config.layer_norm_first

    def forward(self, x: Tensor, output_layer: int | None = None) -> Tensor:
        """Run the layers; with `output_layer` = k stop after the k-th (1-based).

        As in fairseq, the final LayerNorm of a pre-norm model is applied only when
        every layer runs (`output_layer` None).
        """
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        position_bias: Tensor | None = None
        count = len(self.layers) if output_layer is None else output_layer
        for layer in self.layers[:count]:
            x, position_bias = layer(x, position_bias)
        if self.layer_norm_first and output_layer is None:
            x = self.layer_norm(x)
        return x


class Wav2Vec2Network(nn.Module):
    """Wave [B, N] -> features [B, T, C] (T = frames of the convolution stack).

    Keys follow fairseq's HubertModel: `feature_extractor.*`, `layer_norm.*`,
    `post_extract_proj.*` (when the extractor's channels differ from C), `encoder.*`
    and `final_proj.*` (when `final_dim` is set).
    """

    def __init__(self, config: NetworkConfig, attention_factory: AttentionFactory | None = None):
        super().__init__()
        self.config = config
        extractor_channels = config.conv_layers[-1][0]
        self.feature_extractor = ConvFeatureExtractor(
            config.conv_layers,
            mode=config.extractor_mode,
            conv_bias=config.conv_bias,
            feature_scale=config.feature_scale,
        )
        self.layer_norm = nn.LayerNorm(extractor_channels)
        self.post_extract_proj = (
            nn.Linear(extractor_channels, config.embed_dim)
            if extractor_channels != config.embed_dim or config.always_project
            else None
        )
        self.encoder = TransformerEncoder(config, attention_factory or _standard_attention)
        self.final_proj = (
            nn.Linear(config.embed_dim, config.final_dim) if config.final_dim is not None else None
        )

    def forward(self, wave: Tensor, output_layer: int | None = None) -> Tensor:
        """Transformer output [B, T, C] after `output_layer` layers (all when None)."""
        if output_layer is not None and not 1 <= output_layer <= len(self.encoder.layers):
            raise ValueError(
                f"output_layer must be in [1, {len(self.encoder.layers)}], got {output_layer}"
            )
        features = self.feature_extractor(wave).transpose(1, 2)
        features = self.layer_norm(features)
        if self.post_extract_proj is not None:
            features = self.post_extract_proj(features)
        return self.encoder(features, output_layer)


def load_network_state(
    network: nn.Module, state: dict[str, Tensor], *, what: str, where: object
) -> None:
    """Strictly load `state` (cast to float32) into `network`; CheckpointError on any mismatch."""
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        key
        for key in set(expected) & set(state)
        if tuple(expected[key].shape) != tuple(state[key].shape)
    )
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        if wrong_shape:
            parts.append(
                "wrong shape "
                + ", ".join(
                    f"{key} {list(state[key].shape)} (expected {list(expected[key].shape)})"
                    for key in wrong_shape[:3]
                )
            )
        raise CheckpointError(
            f"{what} weights do not fit the network: " + "; ".join(parts), where=str(where)
        )
    network.load_state_dict(
        {key: value.to(torch.float32) for key, value in state.items()}, strict=True
    )


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return f"{shown}{' ...' if len(keys) > 5 else ''} ({len(keys)})"


def fold_parametrized_weight_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename `parametrizations.weight.original0/1` (newer torch) to `weight_g` / `weight_v`."""
    renamed = {}
    for key, value in state.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        renamed[key] = value
    return renamed
