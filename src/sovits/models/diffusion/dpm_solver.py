"""Multistep DPM-Solver (noise prediction) and DPM-Solver++ (data prediction), order 2.

Exactly the configuration so-vits-svc 4.1 samples with for the methods 'dpm-solver' and
'dpm-solver++': the discrete schedule from betas[:k_step] with lambda clipping at -5.1,
a 'time_uniform' grid from t = 1 to t = 1/N, a first-order first step, second-order
multistep updates ('dpmsolver' solver type) after it, and a first-order last step only
when there are fewer than 10 steps. Every step calls the denoiser once, except the last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from sovits.errors import InputError
from sovits.models.diffusion.schedule_vp import (
    SOLVER_ORDER,
    DiscreteVPSchedule,
    check_solver_steps,
    continuous_model,
)

DpmAlgorithm = Literal["dpmsolver", "dpmsolver++"]

_LAMBDA_CLIP = -5.1


@torch.no_grad()
def sample_dpm_solver(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    betas: Tensor,
    *,
    steps: int,
    algorithm: str,
) -> Tensor:
    """Solve the diffusion ODE from t = 1 (step N-1) to t = 1/N (step 0).

    denoise: (x [B,1,M,T], fractional diffusion step [B] float32) -> predicted noise
        [B,1,M,T], see `schedule_vp.continuous_model`.
    x: [B,1,M,T] the (normalised) sample at step N-1.
    betas: [N] float32 per-step noise variances (the model's betas[:k_step]).
    steps: number of solver steps (k_step // speedup), at least 2.
    algorithm: 'dpmsolver' (noise prediction) or 'dpmsolver++' (data prediction).
    Returns the (normalised) sample at step 0, [B,1,M,T].
    """
    if algorithm not in ("dpmsolver", "dpmsolver++"):
        raise InputError(
            f"unknown DPM-Solver algorithm {algorithm!r}", hint="use 'dpmsolver' or 'dpmsolver++'"
        )
    check_solver_steps(steps, "DPM-Solver")
    schedule = DiscreteVPSchedule.from_betas(betas, clip_lambda=_LAMBDA_CLIP)
    predict_data = algorithm == "dpmsolver++"
    model = continuous_model(schedule, denoise, x.shape[0], predict_data=predict_data)

    times = schedule.uniform_time_grid(steps, x.device)
    previous_times = [times[0]]
    previous_outputs = [model(x, times[0])]
    last = steps
    for step in range(1, steps + 1):
        t = times[step]
        order = 1 if step == 1 or (steps < 10 and step == last) else SOLVER_ORDER
        x = _update(schedule, x, previous_outputs, previous_times, t, order, predict_data)
        previous_times = [*previous_times, t][-SOLVER_ORDER:]
        if step < last:
            previous_outputs = [*previous_outputs, model(x, t)][-SOLVER_ORDER:]
    return x


def _update(
    schedule: DiscreteVPSchedule,
    x: Tensor,
    outputs: list[Tensor],
    times: list[Tensor],
    t: Tensor,
    order: int,
    predict_data: bool,
) -> Tensor:
    """One multistep update from times[-1] to t, of the given order (1 or 2)."""
    s = times[-1]
    lambda_s, lambda_t = schedule.half_log_snr(s), schedule.half_log_snr(t)
    log_alpha_s, log_alpha_t = schedule.log_alpha(s), schedule.log_alpha(t)
    sigma_s, sigma_t = schedule.sigma(s), schedule.sigma(t)
    alpha_t = torch.exp(log_alpha_t)
    h = lambda_t - lambda_s
    output_s = outputs[-1]

    if predict_data:
        phi = torch.expm1(-h)
        x_t = (sigma_t / sigma_s) * x - (alpha_t * phi) * output_s
        weight = alpha_t * phi
    else:
        phi = torch.expm1(h)
        x_t = torch.exp(log_alpha_t - log_alpha_s) * x - (sigma_t * phi) * output_s
        weight = sigma_t * phi
    if order == 1:
        return x_t

    lambda_before = schedule.half_log_snr(times[-2])
    ratio = (lambda_s - lambda_before) / h
    difference = (1.0 / ratio) * (output_s - outputs[-2])
    return x_t - (0.5 * weight) * difference
