"""HiFiGAN discriminators used to train the so-vits-svc 4.1 synthesizer.

`MultiPeriodDiscriminator` is the original's `models.MultiPeriodDiscriminator`: one
scale discriminator on the raw waveform followed by period discriminators for periods
2, 3, 5, 7 and 11. Parameter names equal the keys of an original `D_*.pth` file
(`discriminators.0.convs.N.weight_g`, ...), so those files load strictly.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from sovits.models.weight_norm import weight_norm

LEAKY_RELU_SLOPE = 0.1
DEFAULT_PERIODS = (2, 3, 5, 7, 11)


def _normalised(module: nn.Module, use_spectral_norm: bool) -> nn.Module:
    """Weight norm (keys weight_g, weight_v) or spectral norm (weight_orig, weight_u, weight_v)."""
    if use_spectral_norm:
        return spectral_norm(module)
    return weight_norm(module)


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class DiscriminatorS(nn.Module):
    """Scale discriminator on the raw waveform: strided grouped 1-D convolutions.

    forward: audio [B, 1, N] -> (scores [B, N'], feature maps: 7 tensors [B, C, N_i]).
    """

    def __init__(self, use_spectral_norm: bool = False):
        super().__init__()
        layers = [
            # (in, out, kernel, stride, groups, padding)
            (1, 16, 15, 1, 1, 7),
            (16, 64, 41, 4, 4, 20),
            (64, 256, 41, 4, 16, 20),
            (256, 1024, 41, 4, 64, 20),
            (1024, 1024, 41, 4, 256, 20),
            (1024, 1024, 5, 1, 1, 2),
        ]
        self.convs = nn.ModuleList(
            _normalised(
                nn.Conv1d(c_in, c_out, kernel, stride, groups=groups, padding=padding),
                use_spectral_norm,
            )
            for c_in, c_out, kernel, stride, groups, padding in layers
        )
        self.conv_post = _normalised(nn.Conv1d(1024, 1, 3, 1, padding=1), use_spectral_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        feature_maps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_RELU_SLOPE)
            feature_maps.append(x)
        x = self.conv_post(x)
        feature_maps.append(x)
        return torch.flatten(x, 1, -1), feature_maps


class DiscriminatorP(nn.Module):
    """Period discriminator: the waveform folded into [N / period, period], 2-D convolutions.

    forward: audio [B, 1, N] -> (scores [B, N'], feature maps: 6 tensors [B, C, H_i, period]).
    The waveform is reflect-padded at the end to a multiple of the period.
    """

    def __init__(
        self, period: int, kernel_size: int = 5, stride: int = 3, use_spectral_norm: bool = False
    ):
        super().__init__()
        self.period = period
        channels = [1, 32, 128, 512, 1024]
        padding = (_padding(kernel_size), 0)
        convs: list[nn.Module] = [
            _normalised(
                nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride, 1), padding=padding),
                use_spectral_norm,
            )
            for c_in, c_out in itertools.pairwise(channels)
        ]
        last = nn.Conv2d(1024, 1024, (kernel_size, 1), 1, padding=padding)
        convs.append(_normalised(last, use_spectral_norm))
        self.convs = nn.ModuleList(convs)
        post = nn.Conv2d(1024, 1, (3, 1), 1, padding=(1, 0))
        self.conv_post = _normalised(post, use_spectral_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        batch, channels, length = x.shape
        if length % self.period != 0:
            extra = self.period - length % self.period
            x = F.pad(x, (0, extra), "reflect")
            length += extra
        x = x.view(batch, channels, length // self.period, self.period)
        feature_maps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_RELU_SLOPE)
            feature_maps.append(x)
        x = self.conv_post(x)
        feature_maps.append(x)
        return torch.flatten(x, 1, -1), feature_maps


class DiscriminatorOutput(NamedTuple):
    """Scores and feature maps of every sub-discriminator, for real and generated audio.

    Unpacks like the original's return value: (y_d_rs, y_d_gs, fmap_rs, fmap_gs).
    """

    real_scores: list[Tensor]
    fake_scores: list[Tensor]
    real_features: list[list[Tensor]]
    fake_features: list[list[Tensor]]


class MultiPeriodDiscriminator(nn.Module):
    """DiscriminatorS followed by one DiscriminatorP per period (the original's layout)."""

    def __init__(
        self, use_spectral_norm: bool = False, periods: Sequence[int] = DEFAULT_PERIODS
    ):
        super().__init__()
        discriminators: list[nn.Module] = [DiscriminatorS(use_spectral_norm=use_spectral_norm)]
        discriminators += [
            DiscriminatorP(period, use_spectral_norm=use_spectral_norm) for period in periods
        ]
        self.discriminators = nn.ModuleList(discriminators)

    def forward(self, real: Tensor, fake: Tensor) -> DiscriminatorOutput:
        """real, fake: audio [B, 1, N]."""
        output = DiscriminatorOutput([], [], [], [])
        for discriminator in self.discriminators:
            real_score, real_maps = discriminator(real)
            fake_score, fake_maps = discriminator(fake)
            output.real_scores.append(real_score)
            output.fake_scores.append(fake_score)
            output.real_features.append(real_maps)
            output.fake_features.append(fake_maps)
        return output
