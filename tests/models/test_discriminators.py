"""Multi-period discriminator: the original's D_*.pth layout and output structure.

There is no discriminator fixture; the expected keys below are written from the original
4.1 `models.py` (DiscriminatorS then DiscriminatorP for periods 2, 3, 5, 7, 11, with
`torch.nn.utils.weight_norm` or `spectral_norm`).
"""

from __future__ import annotations

import pytest
import torch

from sovits.models.discriminators import (
    DiscriminatorOutput,
    DiscriminatorP,
    DiscriminatorS,
    MultiPeriodDiscriminator,
)

# (in, out, kernel, groups) of DiscriminatorS.convs, then conv_post.
SCALE_LAYERS = [
    (1, 16, 15, 1),
    (16, 64, 41, 4),
    (64, 256, 41, 16),
    (256, 1024, 41, 64),
    (1024, 1024, 41, 256),
    (1024, 1024, 5, 1),
]
PERIOD_CHANNELS = [(1, 32), (32, 128), (128, 512), (512, 1024), (1024, 1024)]


def expected_weight_norm_keys() -> list[tuple[str, tuple[int, ...]]]:
    keys: list[tuple[str, tuple[int, ...]]] = []

    def conv(prefix: str, weight_shape: tuple[int, ...]) -> None:
        out_channels = weight_shape[0]
        keys.append((f"{prefix}.bias", (out_channels,)))
        keys.append((f"{prefix}.weight_g", (out_channels,) + (1,) * (len(weight_shape) - 1)))
        keys.append((f"{prefix}.weight_v", weight_shape))

    for i, (c_in, c_out, kernel, groups) in enumerate(SCALE_LAYERS):
        conv(f"discriminators.0.convs.{i}", (c_out, c_in // groups, kernel))
    conv("discriminators.0.conv_post", (1, 1024, 3))
    for d in range(1, 6):
        for i, (c_in, c_out) in enumerate(PERIOD_CHANNELS):
            conv(f"discriminators.{d}.convs.{i}", (c_out, c_in, 5, 1))
        conv(f"discriminators.{d}.conv_post", (1, 1024, 3, 1))
    return keys


def test_state_dict_keys_equal_the_original_layout() -> None:
    model = MultiPeriodDiscriminator()
    actual = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    assert actual == expected_weight_norm_keys()
    assert [type(d) for d in model.discriminators] == [DiscriminatorS] + [DiscriminatorP] * 5
    assert [d.period for d in model.discriminators[1:]] == [2, 3, 5, 7, 11]


def test_spectral_norm_keys() -> None:
    model = MultiPeriodDiscriminator(use_spectral_norm=True)
    state = model.state_dict()
    assert state["discriminators.0.convs.1.weight_orig"].shape == (64, 4, 41)
    assert state["discriminators.0.convs.1.weight_u"].shape == (64,)
    assert state["discriminators.0.convs.1.weight_v"].shape == (4 * 41,)
    assert state["discriminators.3.conv_post.weight_orig"].shape == (1, 1024, 3, 1)
    assert not any(key.endswith("weight_g") for key in state)


def test_state_dict_round_trips_strictly() -> None:
    torch.manual_seed(0)
    source = MultiPeriodDiscriminator()
    target = MultiPeriodDiscriminator()
    target.load_state_dict(source.state_dict(), strict=True)
    y = torch.randn(1, 1, 300)
    with torch.no_grad():
        first, second = source(y, y), target(y, y)
    for a, b in zip(first.real_scores, second.real_scores, strict=True):
        assert torch.equal(a, b)


def test_forward_returns_scores_and_feature_maps_per_discriminator() -> None:
    torch.manual_seed(0)
    model = MultiPeriodDiscriminator()
    batch, length = 2, 1000  # not a multiple of 3, 7 or 11: reflect padding kicks in
    real, fake = torch.randn(batch, 1, length), torch.randn(batch, 1, length)
    output = model(real, fake)
    assert isinstance(output, DiscriminatorOutput)
    y_d_rs, y_d_gs, fmap_rs, fmap_gs = output  # the original's tuple order
    assert len(y_d_rs) == len(y_d_gs) == len(fmap_rs) == len(fmap_gs) == 6
    assert [len(maps) for maps in fmap_rs] == [7, 6, 6, 6, 6, 6]
    # Scale discriminator: strides 1, 4, 4, 4, 4, 1, 1 over the waveform.
    assert [tuple(m.shape) for m in fmap_rs[0]] == [
        (2, 16, 1000),
        (2, 64, 250),
        (2, 256, 63),
        (2, 1024, 16),
        (2, 1024, 4),
        (2, 1024, 4),
        (2, 1, 4),
    ]
    assert y_d_rs[0].shape == (2, 4)
    for index, period in enumerate([2, 3, 5, 7, 11], start=1):
        rows = -(-length // period)
        for _ in range(4):
            rows = (rows + 2 * 2 - 5) // 3 + 1
        assert tuple(fmap_gs[index][-1].shape) == (batch, 1, rows, period)
        assert y_d_gs[index].shape == (batch, rows * period)
    assert fmap_rs[1][0].shape[1] == 32
    assert not torch.equal(y_d_rs[2], y_d_gs[2])


@pytest.mark.parametrize("use_spectral_norm", [False, True])
def test_discriminator_trains(use_spectral_norm: bool) -> None:
    torch.manual_seed(0)
    model = MultiPeriodDiscriminator(use_spectral_norm=use_spectral_norm)
    fake = torch.randn(1, 1, 256, requires_grad=True)
    output = model(torch.randn(1, 1, 256), fake)
    loss = sum(score.mean() for score in output.fake_scores)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()
    first = model.discriminators[0].convs[0]
    name = "weight_orig" if use_spectral_norm else "weight_v"
    assert getattr(first, name).grad is not None
