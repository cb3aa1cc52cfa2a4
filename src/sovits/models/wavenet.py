"""WaveNet-style gated residual stack ("WN") of the posterior encoder and the flows.

Owns the gated tanh·sigmoid activation, the depthwise-separable convolution that
so-vits-svc 4.1 can use for the dilated input convolutions (`use_depthwise_conv`;
chosen per instance here, not through a module global), and `WaveNet` itself.
State-dict names follow the original: `in_layers`, `res_skip_layers`, `cond_layer`,
each weight-normed (`weight_g`/`weight_v`); a depthwise-separable input layer has
`depth_conv` and `point_conv`, each weight-normed on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sovits.models.weight_norm import weight_norm


def gated_tanh_sigmoid(x: Tensor, condition: Tensor, channels: int) -> Tensor:
    """tanh(a[:, :channels]) * sigmoid(a[:, channels:]) with a = x + condition.

    x: [B, 2C, T]; condition: broadcastable to x -> [B, C, T].
    """
    summed = x + condition
    return torch.tanh(summed[:, :channels, :]) * torch.sigmoid(summed[:, channels:, :])


class DepthwiseSeparableConv1d(nn.Module):
    """Depthwise conv (kernel, dilation, padding; one filter per channel) then a
    1x1 pointwise conv. Weight norm, when wanted, goes on each part separately."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        dilation: int = 1,
        padding: int = 0,
    ):
        super().__init__()
        self.depth_conv = nn.Conv1d(
            in_channels,
            in_channels,
            kernel_size,
            groups=in_channels,
            dilation=dilation,
            padding=padding,
        )
        self.point_conv = nn.Conv1d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C_in, T] -> [B, C_out, T]."""
        return self.point_conv(self.depth_conv(x))


def weight_normed_conv1d(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    dilation: int = 1,
    padding: int = 0,
    depthwise_separable: bool = False,
) -> nn.Module:
    """A weight-normed Conv1d, or a depthwise-separable pair with both parts weight-normed."""
    if depthwise_separable:
        conv = DepthwiseSeparableConv1d(
            in_channels, out_channels, kernel_size, dilation=dilation, padding=padding
        )
        weight_norm(conv.depth_conv)
        weight_norm(conv.point_conv)
        return conv
    return weight_norm(
        nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)
    )


class WaveNet(nn.Module):
    """Non-causal WaveNet: `n_layers` dilated convs with gated activations, residual
    and skip 1x1 convs, optional global conditioning; returns the summed skips.

    Dilation of layer i is dilation_rate**i, with "same" padding.
    """

    def __init__(
        self,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        *,
        gin_channels: int = 0,
        p_dropout: float = 0.0,
        use_depthwise_conv: bool = False,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"WaveNet kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        self.gin_channels = gin_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.drop = nn.Dropout(p_dropout)
        if gin_channels != 0:
            self.cond_layer = weight_norm(
                nn.Conv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
            )
        for index in range(n_layers):
            dilation = dilation_rate**index
            self.in_layers.append(
                weight_normed_conv1d(
                    hidden_channels,
                    2 * hidden_channels,
                    kernel_size,
                    dilation=dilation,
                    padding=(kernel_size * dilation - dilation) // 2,
                    depthwise_separable=use_depthwise_conv,
                )
            )
            # The last layer only feeds the skip output.
            res_skip_channels = 2 * hidden_channels if index < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(
                weight_norm(nn.Conv1d(hidden_channels, res_skip_channels, 1))
            )

    def forward(self, x: Tensor, mask: Tensor, g: Tensor | None = None) -> Tensor:
        """x: [B, H, T]; mask: [B, 1, T]; g: [B, gin, 1 or T] or None -> [B, H, T]."""
        hidden = self.hidden_channels
        condition = self.cond_layer(g) if g is not None else None
        output = torch.zeros_like(x)
        for index, (in_layer, res_skip_layer) in enumerate(
            zip(self.in_layers, self.res_skip_layers, strict=True)
        ):
            x_in = in_layer(x)
            if condition is not None:
                offset = index * 2 * hidden
                layer_condition = condition[:, offset : offset + 2 * hidden, :]
            else:
                layer_condition = torch.zeros_like(x_in)
            acts = self.drop(gated_tanh_sigmoid(x_in, layer_condition, hidden))
            res_skip = res_skip_layer(acts)
            if index < self.n_layers - 1:
                x = (x + res_skip[:, :hidden, :]) * mask
                output = output + res_skip[:, hidden:, :]
            else:
                output = output + res_skip
        return output * mask
