"""The discrete variance-preserving noise schedule seen as a continuous-time process.

Both fast ODE samplers (DPM-Solver, UniPC) view a DDPM trained on steps n = 0 .. N-1 as
a continuous process on t in (0, 1]: step n sits at t = (n + 1) / N, and log(alpha_t)
(half the log of alphas_cumprod) is interpolated linearly between those knots.
This module owns that view: alpha_t, sigma_t, the half log-SNR lambda_t and its
inverse, the time the denoiser is given for a continuous t, and the uniform time grid;
and what both samplers build on it: the denoiser as a model of continuous t
(`continuous_model`) and their minimum step count (`check_solver_steps`).

All schedule arithmetic is float32 on the CPU, as in so-vits-svc 4.1, so the samplers
reproduce its numbers; results are moved to the caller's device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sovits.errors import InputError

SOLVER_ORDER = 2
"""The order of the multistep samplers (DPM-Solver, UniPC) as so-vits-svc runs them."""


def _piecewise_linear(query: Tensor, knots_x: Tensor, knots_y: Tensor) -> Tensor:
    """Linear interpolation through (knots_x, knots_y), extended linearly past both ends.

    query: any shape; knots_x: [K] increasing (K >= 2); knots_y: [K]. Returns query's shape.
    A query that falls exactly on a knot uses the segment to its left; the result then
    differs from the knot value by rounding only.
    """
    count = knots_x.shape[0]
    flat = query.reshape(-1)
    above = torch.searchsorted(knots_x, flat)
    segment = (above - 1).clamp(0, count - 2)
    x_start, x_end = knots_x[segment], knots_x[segment + 1]
    y_start, y_end = knots_y[segment], knots_y[segment + 1]
    value = y_start + (flat - x_start) * (y_end - y_start) / (x_end - x_start)
    return value.reshape(query.shape)


@dataclass(frozen=True)
class DiscreteVPSchedule:
    """log(alpha) at the knots t_n = (n + 1) / N, n = 0 .. N-1.

    knot_times: [N] float32, torch.linspace(0, 1, N + 1)[1:].
    knot_log_alpha: [N] float32, 0.5 * cumsum(log(1 - betas)).
    """

    knot_times: Tensor
    knot_log_alpha: Tensor

    @classmethod
    def from_betas(cls, betas: Tensor, *, clip_lambda: float | None = None) -> DiscreteVPSchedule:
        """The schedule of a DDPM with per-step noise variances `betas` [N].

        clip_lambda: if given, trailing steps whose half log-SNR lies below it are dropped
        (DPM-Solver uses -5.1; UniPC keeps every step). The linear 1000-step schedule of
        so-vits-svc never goes below about -5.06, so this never drops a step there.
        """
        betas = betas.detach().to(device="cpu", dtype=torch.float32)
        log_alpha = 0.5 * torch.log(1 - betas).cumsum(dim=0)
        if clip_lambda is not None:
            half_log_snr = log_alpha - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))
            rising = torch.flip(half_log_snr, [0])
            drop = int(torch.searchsorted(rising, torch.tensor(clip_lambda, dtype=rising.dtype)))
            if drop > 0:
                log_alpha = log_alpha[:-drop]
        steps = log_alpha.shape[0]
        knot_times = torch.linspace(0.0, 1.0, steps + 1)[1:].to(torch.float32)
        return cls(knot_times=knot_times, knot_log_alpha=log_alpha)

    @property
    def total_steps(self) -> int:
        """N, the number of discrete steps the schedule covers."""
        return int(self.knot_log_alpha.shape[0])

    def log_alpha(self, t: Tensor) -> Tensor:
        """log(alpha_t) for continuous times t (any shape, float32) -> [numel]."""
        knots_x = self.knot_times.to(t.device)
        knots_y = self.knot_log_alpha.to(t.device)
        return _piecewise_linear(t.reshape(-1), knots_x, knots_y)

    def alpha(self, t: Tensor) -> Tensor:
        """alpha_t, the scale of the clean signal in x_t -> [numel]."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: Tensor) -> Tensor:
        """sigma_t = sqrt(1 - alpha_t^2), the scale of the noise in x_t -> [numel]."""
        return torch.sqrt(1.0 - torch.exp(2.0 * self.log_alpha(t)))

    def half_log_snr(self, t: Tensor) -> Tensor:
        """lambda_t = log(alpha_t) - log(sigma_t) -> [numel]."""
        log_alpha = self.log_alpha(t)
        log_sigma = 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))
        return log_alpha - log_sigma

    def time_of_half_log_snr(self, half_log_snr: Tensor) -> Tensor:
        """The continuous time t whose lambda_t is `half_log_snr` (any shape) -> [numel]."""
        zero = torch.zeros((1,), dtype=half_log_snr.dtype, device=half_log_snr.device)
        log_alpha = -0.5 * torch.logaddexp(zero, -2.0 * half_log_snr)
        knots_x = torch.flip(self.knot_log_alpha, [0]).to(half_log_snr.device)
        knots_y = torch.flip(self.knot_times, [0]).to(half_log_snr.device)
        return _piecewise_linear(log_alpha.reshape(-1), knots_x, knots_y)

    def model_time(self, t: Tensor) -> Tensor:
        """The (fractional) diffusion step the denoiser is given: (t - 1/N) * N."""
        steps = self.total_steps
        return (t - 1.0 / steps) * steps

    def uniform_time_grid(self, steps: int, device: torch.device | None = None) -> Tensor:
        """[steps + 1] float32 times from 1 down to 1/N, evenly spaced ('time_uniform')."""
        grid = torch.linspace(1.0, 1.0 / self.total_steps, steps + 1)
        return grid.to(device) if device is not None else grid


def check_solver_steps(steps: int, sampler: str) -> None:
    """InputError unless a second-order multistep sampler gets at least 2 steps.

    sampler: the sampler's name for the message ("DPM-Solver", "UniPC").
    """
    if steps < SOLVER_ORDER:
        raise InputError(
            f"{sampler} needs at least {SOLVER_ORDER} sampling steps, got {steps}",
            hint="use k_step >= 2 * speedup (steps = k_step // speedup), or the ddim method",
        )


def continuous_model(
    schedule: DiscreteVPSchedule,
    denoise: Callable[[Tensor, Tensor], Tensor],
    batch: int,
    *,
    predict_data: bool,
) -> Callable[[Tensor, Tensor], Tensor]:
    """The denoiser as a model of continuous time: (x [B,1,M,T], t scalar) -> [B,1,M,T].

    denoise: (x [B,1,M,T], diffusion step [B] float32) -> predicted noise [B,1,M,T]; the
        step is fractional, `schedule.model_time(t)`, the same for the whole batch.
    batch: B. predict_data: return the clean-sample prediction
        (x - sigma_t * noise) / alpha_t instead of the noise.
    """

    def model(sample: Tensor, t: Tensor) -> Tensor:
        noise = denoise(sample, schedule.model_time(t).expand(batch))
        if not predict_data:
            return noise
        return (sample - schedule.sigma(t) * noise) / schedule.alpha(t)

    return model
