"""The GAN / VITS losses against hand computations and torch.distributions."""

from __future__ import annotations

import math

import torch
from torch.distributions import Normal

from sovits.training import losses


def test_discriminator_loss_is_least_squares_per_sub_discriminator():
    real = [torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0]])]
    fake = [torch.tensor([[0.0, 1.0]]), torch.tensor([[-1.0]])]
    total, real_terms, fake_terms = losses.discriminator_loss(real, fake)
    # D0: mean((1-[1,0])²) = 0.5, mean([0,1]²) = 0.5; D1: (1-2)² = 1, (-1)² = 1
    assert [t.item() for t in real_terms] == [0.5, 1.0]
    assert [t.item() for t in fake_terms] == [0.5, 1.0]
    assert total.item() == 3.0


def test_discriminator_loss_computes_in_float32():
    real = [torch.tensor([[0.5]], dtype=torch.float16)]
    fake = [torch.tensor([[0.5]], dtype=torch.bfloat16)]
    total, _, _ = losses.discriminator_loss(real, fake)
    assert total.dtype == torch.float32
    assert total.item() == 0.5


def test_adversarial_loss_pushes_fake_scores_towards_one():
    total, terms = losses.adversarial_loss([torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0]])])
    assert [t.item() for t in terms] == [2.0, 1.0]
    assert total.item() == 3.0


def test_feature_matching_is_twice_the_summed_l1_and_leaves_real_maps_alone():
    real_map = torch.tensor([[1.0, 2.0]], requires_grad=True)
    fake_map = torch.tensor([[0.0, 4.0]], requires_grad=True)
    other_real = torch.zeros(1, 3, requires_grad=True)
    other_fake = torch.ones(1, 3, requires_grad=True)
    value = losses.feature_matching_loss([[real_map], [other_real]], [[fake_map], [other_fake]])
    # 2 * (mean(|1-0|, |2-4|) + mean(|0-1| * 3)) = 2 * (1.5 + 1)
    assert math.isclose(value.item(), 5.0)
    value.backward()
    assert real_map.grad is None and other_real.grad is None
    assert fake_map.grad is not None


def test_kl_loss_is_prior_nll_minus_posterior_entropy_over_valid_frames():
    generator = torch.Generator().manual_seed(3)
    shape = (2, 4, 6)
    z_p, m_p = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    logs_p = 0.3 * torch.randn(shape, generator=generator)
    logs_q = 0.3 * torch.randn(shape, generator=generator)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0.0

    per_element = -Normal(m_p, logs_p.exp()).log_prob(z_p) - Normal(
        torch.zeros(shape), logs_q.exp()
    ).entropy()
    expected = (per_element * mask).sum() / mask.sum()
    value = losses.kl_loss(z_p, logs_q, m_p, logs_p, mask)
    assert torch.allclose(value, expected, rtol=1e-5, atol=1e-6)

    # what lies under the mask does not matter
    z_p_garbage = z_p.clone()
    z_p_garbage[1, :, 4:] = 1e3
    assert losses.kl_loss(z_p_garbage, logs_q, m_p, logs_p, mask).item() == value.item()


def test_mel_and_f0_losses():
    a = torch.tensor([[[0.0, 1.0], [2.0, 3.0]]])
    b = torch.tensor([[[1.0, 1.0], [0.0, 3.0]]])
    assert losses.mel_loss(a, b).item() == 0.75
    assert losses.f0_prediction_loss(a, b).item() == 1.25
