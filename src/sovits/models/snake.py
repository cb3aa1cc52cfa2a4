"""Anti-aliased SnakeBeta activation of the "nsf-snake-hifigan" decoder.

so-vits-svc 4.1's snake vocoder replaces every leaky ReLU of HiFiGAN with an
activation that runs at twice the sample rate: 2x upsample with a Kaiser-windowed
sinc filter, SnakeBeta `x + sin²(x·e^α) / (e^β + 1e-9)`, 2x downsample with the same
filter. Both filters are buffers, so they appear in the state dict as in the original
(`upsample.filter`, `downsample.lowpass.filter`, each [1, 1, 12]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_NO_DIV_BY_ZERO = 1e-9


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    """Kaiser-windowed sinc low-pass filter, normalised to unit sum.

    cutoff and half_width are in cycles per sample (0.5 = Nyquist). Returns [1, 1, kernel_size]
    float32, computed with the same float32 operations as the original, so the values match it
    bit for bit.
    """
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    if cutoff > 0.5:
        raise ValueError(f"cutoff above 0.5 makes no sense, got {cutoff}")
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    # Kaiser's empirical formulas for the attenuation and the window's beta.
    transition = 4 * half_width
    attenuation = 2.285 * (half_size - 1) * math.pi * transition + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    if even:
        time = torch.arange(-half_size, half_size) + 0.5
    else:
        time = torch.arange(kernel_size) - half_size
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    taps /= taps.sum()
    return taps.view(1, 1, kernel_size)


class UpSample2x(nn.Module):
    """Upsample by `ratio` with zero stuffing and a Kaiser-sinc filter; replicate padding.

    [B, C, T] -> [B, C, T * ratio]. The buffer `filter` is [1, 1, kernel_size]. A known
    `channels` count keeps the grouped convolution static (what ONNX export needs);
    None takes it from the input.
    """

    filter: Tensor

    def __init__(self, ratio: int = 2, kernel_size: int = 12, channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.ratio = ratio
        self.kernel_size = kernel_size
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        taps = kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size)
        self.register_buffer("filter", taps)

    def forward(self, x: Tensor) -> Tensor:
        channels = self.channels if self.channels is not None else x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        y = self.ratio * F.conv_transpose1d(
            x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels
        )
        return y[..., self.crop_left : y.shape[-1] - self.crop_right]


class LowPassFilter1d(nn.Module):
    """Kaiser-sinc low-pass, replicate padding, stride: [B, C, T] -> [B, C, T // stride].

    `channels` as in UpSample2x.
    """

    filter: Tensor

    def __init__(
        self,
        cutoff: float = 0.5,
        half_width: float = 0.6,
        stride: int = 1,
        kernel_size: int = 12,
        channels: int | None = None,
    ):
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.kernel_size = kernel_size
        even = kernel_size % 2 == 0
        self.pad_left = kernel_size // 2 - int(even)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        channels = self.channels if self.channels is not None else x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        taps = self.filter.expand(channels, -1, -1)
        return F.conv1d(x, taps, stride=self.stride, groups=channels)


class DownSample2x(nn.Module):
    """Low-pass then keep every `ratio`-th sample: [B, C, T] -> [B, C, T // ratio]."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12, channels: int | None = None):
        super().__init__()
        self.ratio = ratio
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.lowpass(x)


class SnakeBeta(nn.Module):
    """Periodic activation `x + sin²(x·e^alpha) / (e^beta + 1e-9)`, per channel.

    alpha and beta are [C] parameters on a log scale (the original's `alpha_logscale=True`),
    zero at initialisation. Input and output [B, C, T].
    """

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        frequency = torch.exp(self.alpha.unsqueeze(0).unsqueeze(-1))
        magnitude = torch.exp(self.beta.unsqueeze(0).unsqueeze(-1))
        return x + (1.0 / (magnitude + _NO_DIV_BY_ZERO)) * torch.pow(torch.sin(x * frequency), 2)


class SnakeAlias(nn.Module):
    """SnakeBeta evaluated at twice the rate: upsample, activate, downsample. [B, C, T] -> same."""

    def __init__(self, channels: int, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample2x(ratio, kernel_size, channels)
        self.downsample = DownSample2x(ratio, kernel_size, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(self.act(self.upsample(x)))
