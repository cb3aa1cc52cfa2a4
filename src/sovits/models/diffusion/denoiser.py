"""The WaveNet noise predictor of so-vits-svc 4.1's diffusion model (from DDSP-SVC).

`WaveNet` maps a noisy normalised mel [B, 1, M, T], a diffusion step t [B] and the
Unit2Mel conditioning [B, H, T] to the predicted noise [B, 1, M, T]. Module and
parameter names follow the original (`input_projection`, `mlp.0`, `mlp.2`,
`residual_layers.{i}.*`, `skip_projection`, `output_projection`) so its state dict
loads unchanged.

Samplers call the denoiser many times with the same conditioning; `project_condition`
computes every layer's conditioner projection once, and `forward` accepts the result,
which gives the same numbers as projecting inside every call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def step_embedding(steps: Tensor, channels: int) -> Tensor:
    """Sinusoidal embedding of diffusion steps: [B] (int or float) -> [B, channels] float32.

    The first half holds sin(t * f_i), the second cos(t * f_i), with
    f_i = exp(-i * ln(10000) / (channels / 2 - 1)) for i < channels / 2.
    """
    half = channels // 2
    scale = math.log(10000) / (half - 1)
    frequencies = torch.exp(torch.arange(half, device=steps.device) * -scale)
    phases = steps[:, None] * frequencies[None, :]
    return torch.cat((phases.sin(), phases.cos()), dim=-1)


class ResidualLayer(nn.Module):
    """One gated residual layer: conv k3 (dilation 1) + step and conditioner projections."""

    def __init__(self, hidden_channels: int, residual_channels: int):
        super().__init__()
        self.residual_channels = residual_channels
        self.dilated_conv = nn.Conv1d(
            residual_channels, 2 * residual_channels, kernel_size=3, padding=1
        )
        self.diffusion_projection = nn.Linear(residual_channels, residual_channels)
        self.conditioner_projection = nn.Conv1d(hidden_channels, 2 * residual_channels, 1)
        self.output_projection = nn.Conv1d(residual_channels, 2 * residual_channels, 1)

    def forward(
        self, x: Tensor, projected_condition: Tensor, step: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x: [B, R, T]; projected_condition: [B, 2R, T] (this layer's
        `conditioner_projection(cond)`); step: [B, R] step features.
        Returns (new x [B, R, T], skip [B, R, T])."""
        y = x + self.diffusion_projection(step).unsqueeze(-1)
        y = self.dilated_conv(y) + projected_condition
        gate, filtered = torch.split(y, [self.residual_channels, self.residual_channels], dim=1)
        y = torch.sigmoid(gate) * torch.tanh(filtered)
        y = self.output_projection(y)
        residual, skip = torch.split(y, [self.residual_channels, self.residual_channels], dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class WaveNet(nn.Module):
    """Noise predictor: n_layers gated residual layers over the mel frames.

    n_mels: M, mel bins; n_layers: L; residual_channels: R (`n_chans` in the config);
    hidden_channels: H, the width of the conditioning (`n_hidden`).
    """

    def __init__(
        self,
        n_mels: int = 128,
        n_layers: int = 20,
        residual_channels: int = 512,
        hidden_channels: int = 256,
    ):
        super().__init__()
        if residual_channels < 4 or residual_channels % 2:
            raise ValueError(f"residual_channels must be even and >= 4, got {residual_channels}")
        self.residual_channels = residual_channels
        self.input_projection = nn.Conv1d(n_mels, residual_channels, 1)
        self.mlp = nn.Sequential(
            nn.Linear(residual_channels, residual_channels * 4),
            nn.Mish(),
            nn.Linear(residual_channels * 4, residual_channels),
        )
        self.residual_layers = nn.ModuleList(
            ResidualLayer(hidden_channels, residual_channels) for _ in range(n_layers)
        )
        self.skip_projection = nn.Conv1d(residual_channels, residual_channels, 1)
        self.output_projection = nn.Conv1d(residual_channels, n_mels, 1)
        # The original's initialisation (matters for training from scratch only).
        nn.init.kaiming_normal_(self.input_projection.weight)
        nn.init.kaiming_normal_(self.skip_projection.weight)
        nn.init.zeros_(self.output_projection.weight)

    def step_features(self, steps: Tensor) -> Tensor:
        """[B] diffusion steps (int64, or float for DPM-Solver / UniPC) -> [B, R]."""
        return self.mlp(step_embedding(steps, self.residual_channels))

    def project_condition(self, cond: Tensor) -> list[Tensor]:
        """Every layer's conditioner projection of cond [B, H, T]: L tensors [B, 2R, T]."""
        return [layer.conditioner_projection(cond) for layer in self._layers()]

    def _layers(self) -> list[ResidualLayer]:
        return [cast(ResidualLayer, layer) for layer in self.residual_layers]

    def forward(
        self,
        spec: Tensor,
        steps: Tensor,
        cond: Tensor | None = None,
        *,
        projected_condition: Sequence[Tensor] | None = None,
    ) -> Tensor:
        """Predicted noise [B, 1, M, T] of spec [B, 1, M, T] at steps [B].

        Give either cond [B, H, T] or `projected_condition` from `project_condition`.
        """
        if projected_condition is None:
            if cond is None:
                raise ValueError("WaveNet needs cond or projected_condition")
            projected_condition = self.project_condition(cond)
        elif len(projected_condition) != len(self.residual_layers):
            raise ValueError(
                f"projected_condition has {len(projected_condition)} entries for "
                f"{len(self.residual_layers)} layers"
            )
        x = F.relu(self.input_projection(spec[:, 0]))
        step = self.step_features(steps)
        skip_sum: Tensor | None = None
        for layer, condition in zip(self.residual_layers, projected_condition, strict=True):
            x, skip = layer(x, condition, step)
            skip_sum = skip if skip_sum is None else skip_sum + skip
        if skip_sum is None:
            raise ValueError("WaveNet has no residual layers")
        x = skip_sum / math.sqrt(len(self.residual_layers))
        x = F.relu(self.skip_projection(x))
        return self.output_projection(x)[:, None, :, :]
