"""Normalising flows between the posterior latent z and the prior latent z_p.

Owns the mean-only affine coupling layers (WaveNet or causal-transformer
conditioner), the channel flip, and the two coupling blocks so-vits-svc 4.1 builds:
`ResidualCouplingBlock` (4 WaveNet couplings) and `TransformerCouplingBlock`
(`n_flows` transformer couplings). Each coupling is followed by a flip, so the
state-dict keys are `flows.0`, `flows.2`, ... With `share_parameter` one
conditioner is shared by all couplings and also registered as `wn`, so its
parameters appear under `wn.*` and under every `flows.<2i>.enc.*`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sovits.models.attention import CausalTransformer
from sovits.models.wavenet import WaveNet


class Flip(nn.Module):
    """Reverses the channel order (its own inverse)."""

    def forward(
        self, x: Tensor, mask: Tensor, g: Tensor | None = None, reverse: bool = False
    ) -> Tensor:
        """x: [B, C, T] -> [B, C, T] with channels reversed."""
        return torch.flip(x, [1])


class MeanOnlyCoupling(nn.Module):
    """Affine coupling with unit scale: the second half of the channels is shifted by
    a mean predicted from the first half (`x1 + m` forward, `x1 - m` reverse), so the
    log-determinant is zero.

    `encoder` maps [B, H, T] (with mask and speaker g) to [B, H, T].
    """

    def __init__(self, channels: int, hidden_channels: int, encoder: nn.Module):
        super().__init__()
        if channels % 2 != 0:
            raise ValueError(f"coupling channels must be even, got {channels}")
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = encoder
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)
        # Zero init makes every coupling start as the identity (as the original).
        nn.init.zeros_(self.post.weight)
        assert self.post.bias is not None
        nn.init.zeros_(self.post.bias)

    def forward(
        self, x: Tensor, mask: Tensor, g: Tensor | None = None, reverse: bool = False
    ) -> Tensor:
        """x: [B, C, T]; mask: [B, 1, T]; g: [B, gin, 1 or T] -> [B, C, T]."""
        x0, x1 = torch.split(x, [self.half_channels] * 2, 1)
        h = self.pre(x0) * mask
        h = self.enc(h, mask, g=g)
        mean = self.post(h) * mask
        x1 = (x1 - mean) * mask if reverse else mean + x1 * mask
        return torch.cat([x0, x1], 1)


class _CouplingBlock(nn.Module):
    """Couplings interleaved with flips; reverse runs the list backwards."""

    flows: nn.ModuleList

    def forward(
        self, x: Tensor, mask: Tensor, g: Tensor | None = None, reverse: bool = False
    ) -> Tensor:
        """x: [B, C, T]; mask: [B, 1, T]; g: [B, gin, 1 or T].

        Forward (training) maps z -> z_p; reverse (inference) maps z_p -> z.
        """
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x = flow(x, mask, g=g, reverse=reverse)
        return x


class ResidualCouplingBlock(_CouplingBlock):
    """`n_flows` mean-only couplings with WaveNet conditioners, each followed by a flip."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        *,
        n_flows: int = 4,
        gin_channels: int = 0,
        share_parameter: bool = False,
        use_depthwise_conv: bool = False,
    ):
        super().__init__()
        self.flows = nn.ModuleList()

        def make_wavenet() -> WaveNet:
            return WaveNet(
                hidden_channels,
                kernel_size,
                dilation_rate,
                n_layers,
                gin_channels=gin_channels,
                use_depthwise_conv=use_depthwise_conv,
            )

        self.wn = make_wavenet() if share_parameter else None
        for _ in range(n_flows):
            encoder = self.wn if self.wn is not None else make_wavenet()
            self.flows.append(MeanOnlyCoupling(channels, hidden_channels, encoder))
            self.flows.append(Flip())


class TransformerCouplingBlock(_CouplingBlock):
    """`n_flows` mean-only couplings with speaker-conditioned causal-transformer
    conditioners, each followed by a flip."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        *,
        n_flows: int = 4,
        gin_channels: int = 0,
        share_parameter: bool = False,
    ):
        super().__init__()
        self.flows = nn.ModuleList()

        def make_transformer() -> CausalTransformer:
            return CausalTransformer(
                hidden_channels,
                filter_channels,
                n_heads,
                n_layers,
                kernel_size,
                p_dropout,
                gin_channels=gin_channels,
            )

        self.wn = make_transformer() if share_parameter else None
        for _ in range(n_flows):
            encoder = self.wn if self.wn is not None else make_transformer()
            self.flows.append(MeanOnlyCoupling(channels, hidden_channels, encoder))
            self.flows.append(Flip())
