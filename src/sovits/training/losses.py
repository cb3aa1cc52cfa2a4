"""The losses so-vits-svc 4.1 trains its synthesizer with (VITS + HiFiGAN).

* `discriminator_loss`: least-squares GAN loss of the discriminator, summed over its
  sub-discriminators: mean((1 - D(real))²) + mean(D(fake)²).
* `adversarial_loss`: the generator's side of it: mean((1 - D(fake))²), summed.
* `feature_matching_loss`: 2 · Σ mean|real feature - fake feature| over every feature
  map of every sub-discriminator (real features carry no gradient).
* `kl_loss`: the VITS prior/posterior term, averaged over valid frames.
* `mel_loss`: L1 distance of log-mel spectrograms (the caller scales it by c_mel).
* `f0_prediction_loss`: mean squared error of the F0 decoder's log-f0.

Every loss is computed in float32 whatever the inputs' dtype (as the original does
with autocast off), and returns a scalar tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(
    real_scores: Sequence[Tensor], fake_scores: Sequence[Tensor]
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Least-squares discriminator loss.

    real_scores, fake_scores: one score tensor per sub-discriminator (any shape, e.g.
    [B, N']). Returns (total, per-discriminator real terms, per-discriminator fake terms)
    where total = Σ_k mean((1 - real_k)²) + mean(fake_k²).
    """
    if len(real_scores) != len(fake_scores):
        raise ValueError(
            f"{len(real_scores)} real scores but {len(fake_scores)} fake scores"
        )
    real_terms = [torch.mean((1.0 - real.float()) ** 2) for real in real_scores]
    fake_terms = [torch.mean(fake.float() ** 2) for fake in fake_scores]
    total = torch.stack([r + f for r, f in zip(real_terms, fake_terms, strict=True)]).sum()
    return total, real_terms, fake_terms


def adversarial_loss(fake_scores: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """Least-squares generator loss: (Σ_k mean((1 - fake_k)²), per-discriminator terms)."""
    terms = [torch.mean((1.0 - fake.float()) ** 2) for fake in fake_scores]
    return torch.stack(terms).sum(), terms


def feature_matching_loss(
    real_features: Sequence[Sequence[Tensor]], fake_features: Sequence[Sequence[Tensor]]
) -> Tensor:
    """2 · Σ over sub-discriminators and their layers of mean |real - fake|.

    real_features, fake_features: per sub-discriminator, its list of feature maps.
    The real maps are detached: only the generator's side receives gradient.
    """
    terms = []
    for real_maps, fake_maps in zip(real_features, fake_features, strict=True):
        for real, fake in zip(real_maps, fake_maps, strict=True):
            terms.append(torch.mean(torch.abs(real.detach().float() - fake.float())))
    return 2.0 * torch.stack(terms).sum()


def kl_loss(z_p: Tensor, logs_q: Tensor, m_p: Tensor, logs_p: Tensor, mask: Tensor) -> Tensor:
    """VITS KL term between the flowed posterior sample and the prior.

    z_p, logs_q, m_p, logs_p: [B, C, T]; mask: [B, 1, T] (1 on valid frames).
    Per element: logs_p - logs_q - 1/2 + (z_p - m_p)² · exp(-2 logs_p) / 2, i.e. the
    negative log-density of z_p under N(m_p, exp(logs_p)²) minus the entropy of the
    posterior N(·, exp(logs_q)²). Summed over valid elements and divided by the number
    of valid mask entries (Σ mask, not Σ mask · C, as the original).
    """
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    divergence = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(divergence * mask) / torch.sum(mask)


def mel_loss(target_mel: Tensor, generated_mel: Tensor) -> Tensor:
    """Mean absolute difference of two log-mel spectrograms [B, n_mels, T] (unscaled)."""
    return F.l1_loss(target_mel.float(), generated_mel.float())


def f0_prediction_loss(predicted_lf0: Tensor, target_lf0: Tensor) -> Tensor:
    """Mean squared error between predicted and true log-f0 [B, 1, T] (f0_to_lf0 scale).

    The original compares the F0 decoder's output with the un-normalised log-f0
    (`F.mse_loss(pred_lf0, lf0)`), padding frames included.
    """
    return F.mse_loss(predicted_lf0.float(), target_lf0.float())
