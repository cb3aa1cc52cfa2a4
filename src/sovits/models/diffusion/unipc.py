"""Multistep UniPC (variant B(h) = e^h - 1, 'bh2'), data prediction, order 2.

Exactly the configuration so-vits-svc 4.1 samples with for the method 'unipc': the
discrete schedule from betas[:k_step] without lambda clipping, a 'time_uniform' grid from
t = 1 to t = 1/N, a first-order first step, second-order predictor-corrector steps after
it, and a first-order last step without corrector. The corrector reuses the denoiser
call made at the predicted sample, so every step but the last calls the denoiser once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sovits.models.diffusion.schedule_vp import (
    SOLVER_ORDER,
    DiscreteVPSchedule,
    check_solver_steps,
    continuous_model,
)


@torch.no_grad()
def sample_unipc(
    denoise: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    betas: Tensor,
    *,
    steps: int,
) -> Tensor:
    """Solve the diffusion ODE from t = 1 (step N-1) to t = 1/N (step 0) with UniPC.

    denoise: (x [B,1,M,T], fractional diffusion step [B] float32) -> predicted noise
        [B,1,M,T], see `schedule_vp.continuous_model`.
    x: [B,1,M,T] the (normalised) sample at step N-1.
    betas: [N] float32 per-step noise variances (the model's betas[:k_step]).
    steps: number of solver steps (k_step // speedup), at least 2.
    Returns the (normalised) sample at step 0, [B,1,M,T].
    """
    check_solver_steps(steps, "UniPC")
    schedule = DiscreteVPSchedule.from_betas(betas)
    predict_data = continuous_model(schedule, denoise, x.shape[0], predict_data=True)

    times = schedule.uniform_time_grid(steps, x.device)
    previous_times = [times[0]]
    previous_outputs = [predict_data(x, times[0])]
    for step in range(1, steps + 1):
        t = times[step]
        last = step == steps
        order = 1 if step == 1 or last else SOLVER_ORDER
        corrector = None if last else predict_data
        x, output_t = _update(schedule, x, previous_outputs, previous_times, t, order, corrector)
        previous_times = [*previous_times, t][-SOLVER_ORDER:]
        if output_t is not None:
            previous_outputs = [*previous_outputs, output_t][-SOLVER_ORDER:]
    return x


def _update(
    schedule: DiscreteVPSchedule,
    x: Tensor,
    outputs: list[Tensor],
    times: list[Tensor],
    t: Tensor,
    order: int,
    corrector: Callable[[Tensor, Tensor], Tensor] | None,
) -> tuple[Tensor, Tensor | None]:
    """One UniPC step from times[-1] to t of the given order (1 or 2).

    With a corrector (the data-prediction model), the predicted sample is evaluated and
    the step is redone with that evaluation; returns (x_t, data prediction at the
    predicted x_t), else (predicted x_t, None).
    """
    s = times[-1]
    lambda_s, lambda_t = schedule.half_log_snr(s), schedule.half_log_snr(t)
    sigma_s, sigma_t = schedule.sigma(s), schedule.sigma(t)
    alpha_t = torch.exp(schedule.log_alpha(t))
    output_s = outputs[-1]

    minus_h = -(lambda_t - lambda_s)
    h_phi_1 = torch.expm1(minus_h)
    weight = alpha_t * h_phi_1  # alpha_t * B(h) with B(h) = expm1(-h) for 'bh2'
    x_first_order = (sigma_t / sigma_s) * x - weight * output_s

    if order == 1:
        if corrector is None:
            return x_first_order, None
        output_t = corrector(x_first_order, t)
        return x_first_order - weight * (0.5 * (output_t - output_s)), output_t

    ratio = (schedule.half_log_snr(times[-2]) - lambda_s) / (lambda_t - lambda_s)
    difference = (outputs[-2] - output_s) / ratio
    x_t = x_first_order - weight * (0.5 * difference)
    if corrector is None:
        return x_t, None

    # Solve [[1, 1], [r, 1]] rho = b with b_k = k! * h phi_{k+1}(h) / B(h).
    h_phi_2 = h_phi_1 / minus_h - 1
    h_phi_3 = h_phi_2 / minus_h - 1 / 2
    rhs = torch.cat([h_phi_2 * 1 / h_phi_1, h_phi_3 * 2 / h_phi_1])
    matrix = torch.stack([torch.ones_like(rhs), torch.cat([ratio, torch.ones_like(ratio)])])
    rho = torch.linalg.solve(matrix, rhs)
    output_t = corrector(x_t, t)
    correction = rho[0] * difference + rho[1] * (output_t - output_s)
    return x_first_order - weight * correction, output_t
