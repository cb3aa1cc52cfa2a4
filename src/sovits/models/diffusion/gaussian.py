"""Gaussian diffusion over normalised mels: schedule, forward noising, samplers, loss.

`GaussianDiffusion` is so-vits-svc 4.1's `diffusion/diffusion.py` model: a linear beta
schedule (1e-4 .. 0.02, computed in float64 and stored as float32 buffers under the
original's names), mel normalisation to [-1, 1] between spec_min -12 and spec_max 2,
`q_sample`, and the samplers the original offers:

* 'ddim' and 'pndm' (PLMS) on the grid `reversed(range(0, start, speedup))`;
* 'dpm-solver', 'dpm-solver++' and 'unipc' (in `dpm_solver.py` / `unipc.py`, imported
  when used) with `k_step // speedup` steps;
* plain DDPM ancestral sampling over every step when speedup is 1.

Two crashes of the original are fixed: PNDM now works for batch > 1 and when the first
step is below the speedup (the original takes a Python `max` of a tensor and an int).
Every other result equals the original's. Random draws come from a `NoiseSource`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.errors import InputError
from sovits.models.diffusion.denoiser import WaveNet
from sovits.models.diffusion.schedule_vp import SOLVER_ORDER
from sovits.models.noise import NoiseSource

DiffusionMethod = Literal["ddim", "pndm", "dpm-solver", "dpm-solver++", "unipc"]
"""Sampler names of the diffusion config's `infer.method` (used when speedup > 1)."""

DIFFUSION_METHODS: tuple[str, ...] = get_args(DiffusionMethod)

Denoise = Callable[[Tensor, Tensor], Tensor]
"""(x [B, 1, M, T], diffusion step [B]) -> predicted noise [B, 1, M, T]."""

SPEC_MIN = -12.0
SPEC_MAX = 2.0
MAX_BETA = 0.02
MIN_BETA = 1e-4
_PNDM_HISTORY = 3

K_STEP_TOO_LARGE = (
    "The shallow diffusion k_step is greater than the maximum diffusion k_step(k_step_max)!"
)
SHALLOW_ONLY = "This model can only be used for shallow diffusion and can not infer alone!"


def effective_k_step_max(k_step_max: int, timesteps: int) -> int:
    """The deepest step a model is trained for: k_step_max if 0 < k_step_max < timesteps,
    else timesteps (the original's rule; 0 means the full chain)."""
    return k_step_max if 0 < k_step_max < timesteps else timesteps


def _at(values: Tensor, steps: Tensor) -> Tensor:
    """values[steps] shaped [B, 1, 1, 1] to broadcast over [B, 1, M, T]."""
    return values.gather(-1, steps).reshape(steps.shape[0], 1, 1, 1)


class GaussianDiffusion(nn.Module):
    """The diffusion decoder of Unit2Mel (the original's `GaussianDiffusion`).

    denoise_fn: the noise predictor (state-dict prefix `denoise_fn.`); n_mels: M;
    timesteps: length of the schedule; k_step_max: deepest trained step (0 = all).
    """

    betas: Tensor
    alphas_cumprod: Tensor
    alphas_cumprod_prev: Tensor
    sqrt_alphas_cumprod: Tensor
    sqrt_one_minus_alphas_cumprod: Tensor
    log_one_minus_alphas_cumprod: Tensor
    sqrt_recip_alphas_cumprod: Tensor
    sqrt_recipm1_alphas_cumprod: Tensor
    posterior_variance: Tensor
    posterior_log_variance_clipped: Tensor
    posterior_mean_coef1: Tensor
    posterior_mean_coef2: Tensor
    spec_min: Tensor
    spec_max: Tensor

    def __init__(
        self,
        denoise_fn: WaveNet,
        *,
        n_mels: int = 128,
        timesteps: int = 1000,
        k_step_max: int = 0,
        spec_min: float = SPEC_MIN,
        spec_max: float = SPEC_MAX,
    ):
        super().__init__()
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        self.denoise_fn = denoise_fn
        self.n_mels = n_mels
        self.num_timesteps = timesteps
        self.k_step_max = effective_k_step_max(k_step_max, timesteps)

        # float64 like the original (numpy), stored as float32.
        betas = np.linspace(MIN_BETA, MAX_BETA, timesteps)
        alphas = 1.0 - betas
        alphas_cumprod = np.cumprod(alphas, axis=0)
        alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        schedule = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
            "log_one_minus_alphas_cumprod": np.log(1.0 - alphas_cumprod),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1),
            "posterior_variance": posterior_variance,
            "posterior_log_variance_clipped": np.log(np.maximum(posterior_variance, 1e-20)),
            "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
            "posterior_mean_coef2": (1.0 - alphas_cumprod_prev)
            * np.sqrt(alphas)
            / (1.0 - alphas_cumprod),
        }
        for name, values in schedule.items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32))
        self.register_buffer("spec_min", torch.full((1, 1, 1), spec_min, dtype=torch.float32))
        self.register_buffer("spec_max", torch.full((1, 1, 1), spec_max, dtype=torch.float32))

    # ------------------------------------------------------------------ pieces

    def norm_spec(self, mel: Tensor) -> Tensor:
        """Log-mel [B, T, M] -> [-1, 1] range."""
        return (mel - self.spec_min) / (self.spec_max - self.spec_min) * 2 - 1

    def denorm_spec(self, x: Tensor) -> Tensor:
        """Inverse of `norm_spec`."""
        return (x + 1) / 2 * (self.spec_max - self.spec_min) + self.spec_min

    def q_sample(self, x_start: Tensor, steps: Tensor, noise: Tensor) -> Tensor:
        """x_start [B, 1, M, T] noised to steps ([B] or [1] int64) with noise [B, 1, M, T]."""
        return (
            _at(self.sqrt_alphas_cumprod, steps) * x_start
            + _at(self.sqrt_one_minus_alphas_cumprod, steps) * noise
        )

    def denoiser(self, cond: Tensor) -> Denoise:
        """The noise predictor bound to cond [B, H, T] (projected once for all calls)."""
        projected = self.denoise_fn.project_condition(cond)

        def denoise(x: Tensor, steps: Tensor) -> Tensor:
            return self.denoise_fn(x, steps, projected_condition=projected)

        return denoise

    # ------------------------------------------------------------------ samplers

    def _steps(self, x: Tensor, step: int) -> Tensor:
        return torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)

    def sample_ddim(self, denoise: Denoise, x: Tensor, *, start: int, interval: int) -> Tensor:
        """DDIM (eta 0) from step `start - 1`'s sample over steps start-interval.., no clamp.

        Steps are `reversed(range(0, start, interval))`; each goes to
        max(i - interval, 0), so the last one lands on alphas_cumprod[0], not 1.
        """
        for i in reversed(range(0, start, interval)):
            steps = self._steps(x, i)
            a_t = _at(self.alphas_cumprod, steps)
            a_prev = _at(self.alphas_cumprod, (steps - interval).clamp(min=0))
            eps = denoise(x, steps)
            x = a_prev.sqrt() * (
                x / a_t.sqrt() + (((1 - a_prev) / a_prev).sqrt() - ((1 - a_t) / a_t).sqrt()) * eps
            )
        return x

    def _plms_transfer(self, x: Tensor, eps: Tensor, steps: Tensor, previous: Tensor) -> Tensor:
        a_t = _at(self.alphas_cumprod, steps)
        a_prev = _at(self.alphas_cumprod, previous)
        a_t_sq, a_prev_sq = a_t.sqrt(), a_prev.sqrt()
        delta = (a_prev - a_t) * (
            (1 / (a_t_sq * (a_t_sq + a_prev_sq))) * x
            - 1 / (a_t_sq * (((1 - a_prev) * a_t).sqrt() + ((1 - a_t) * a_prev).sqrt())) * eps
        )
        return x + delta

    def sample_pndm(self, denoise: Denoise, x: Tensor, *, start: int, interval: int) -> Tensor:
        """PNDM / PLMS on the DDIM grid: a two-call first step, then Adams-Bashforth
        combinations of up to four noise predictions."""
        history: list[Tensor] = []
        for i in reversed(range(0, start, interval)):
            steps = self._steps(x, i)
            previous = (steps - interval).clamp(min=0)
            eps = denoise(x, steps)
            if not history:
                x_pred = self._plms_transfer(x, eps, steps, previous)
                eps_prime = (eps + denoise(x_pred, previous)) / 2
            elif len(history) == 1:
                eps_prime = (3 * eps - history[-1]) / 2
            elif len(history) == 2:
                eps_prime = (23 * eps - 16 * history[-1] + 5 * history[-2]) / 12
            else:
                eps_prime = (
                    55 * eps - 59 * history[-1] + 37 * history[-2] - 9 * history[-3]
                ) / 24
            x = self._plms_transfer(x, eps_prime, steps, previous)
            history.append(eps)
            del history[:-_PNDM_HISTORY]
        return x

    def sample_ddpm(self, denoise: Denoise, x: Tensor, *, start: int, noise: NoiseSource) -> Tensor:
        """Ancestral DDPM over steps start-1 .. 0, with x0 clamped to [-1, 1].

        Each step draws one normal [B, 1, M, T] (the last one too, multiplied by 0).
        """
        batch = x.shape[0]
        for i in reversed(range(0, start)):
            steps = self._steps(x, i)
            eps = denoise(x, steps)
            x_recon = _at(self.sqrt_recip_alphas_cumprod, steps) * x - _at(
                self.sqrt_recipm1_alphas_cumprod, steps
            ) * eps
            x_recon = x_recon.clamp(-1.0, 1.0)
            mean = (
                _at(self.posterior_mean_coef1, steps) * x_recon
                + _at(self.posterior_mean_coef2, steps) * x
            )
            log_variance = _at(self.posterior_log_variance_clipped, steps)
            z = noise.normal(x.shape, like=x)
            nonzero = (1 - (steps == 0).to(x.dtype)).reshape(batch, 1, 1, 1)
            x = mean + nonzero * (0.5 * log_variance).exp() * z
        return x

    # ------------------------------------------------------------------ inference

    def _check_request(
        self,
        cond: Tensor,
        gt_spec: Tensor | None,
        k_step: int,
        speedup: int,
        method: str | None,
    ) -> None:
        if method is not None and method not in DIFFUSION_METHODS:
            raise InputError(
                f"unknown diffusion sampler {method!r}",
                hint="use one of " + ", ".join(DIFFUSION_METHODS),
            )
        if isinstance(speedup, bool) or not isinstance(speedup, int) or speedup < 1:
            raise InputError(f"diffusion speedup must be an integer >= 1, got {speedup!r}")
        if cond.dim() != 3:
            raise InputError(f"diffusion condition must be [B, H, T], got {list(cond.shape)}")
        if gt_spec is not None:
            if isinstance(k_step, bool) or not isinstance(k_step, int) or k_step < 1:
                raise InputError(
                    f"shallow diffusion k_step must be an integer >= 1, got {k_step!r}"
                )
            if k_step > self.k_step_max:
                raise InputError(
                    f"{K_STEP_TOO_LARGE} (k_step {k_step} > k_step_max {self.k_step_max})",
                    hint=f"use a k_step of at most {self.k_step_max}",
                )
            expected = (cond.shape[0], cond.shape[2], self.n_mels)
            if tuple(gt_spec.shape) != expected:
                raise InputError(
                    f"shallow diffusion mel must be [B, T, M] = {list(expected)}, "
                    f"got {list(gt_spec.shape)}"
                )
        elif self.k_step_max != self.num_timesteps:
            raise InputError(
                f"{SHALLOW_ONLY} (k_step_max {self.k_step_max} < timesteps {self.num_timesteps})",
                hint="give the mel to refine (shallow diffusion), or use a model trained "
                "with k_step_max 0",
            )

    @torch.no_grad()
    def sample(
        self,
        cond: Tensor,
        *,
        gt_spec: Tensor | None,
        k_step: int,
        speedup: int,
        method: str | None,
        noise: NoiseSource,
    ) -> Tensor:
        """Sample a log-mel [B, T, M] for cond [B, H, T].

        Shallow (gt_spec [B, T, M] given): start from gt_spec noised to step k_step - 1
        (one normal draw) and denoise k_step steps. From noise (gt_spec None): start
        from a normal draw and denoise all `timesteps` steps; k_step is ignored and the
        model must have k_step_max 0. speedup 1 (or method None) runs DDPM; otherwise
        `method` picks the sampler. Raises InputError for requests the model or the
        sampler cannot serve.
        """
        self._check_request(cond, gt_spec, k_step, speedup, method)
        shape = (cond.shape[0], 1, self.n_mels, cond.shape[2])
        if gt_spec is None:
            start = self.k_step_max
            x = noise.normal(shape, like=cond)
        else:
            start = k_step
            x_start = self.norm_spec(gt_spec).transpose(1, 2)[:, None, :, :]
            steps = torch.tensor([start - 1], dtype=torch.long, device=cond.device)
            x = self.q_sample(x_start, steps, noise.normal(x_start.shape, like=x_start))

        denoise = self.denoiser(cond)
        if method is None or speedup == 1:
            x = self.sample_ddpm(denoise, x, start=start, noise=noise)
        elif method == "ddim":
            x = self.sample_ddim(denoise, x, start=start, interval=speedup)
        elif method == "pndm":
            x = self.sample_pndm(denoise, x, start=start, interval=speedup)
        else:
            solver_steps = start // speedup
            if solver_steps < SOLVER_ORDER:
                raise InputError(
                    f"the {method} sampler needs at least {SOLVER_ORDER} steps, but "
                    f"k_step {start} // speedup {speedup} = {solver_steps}",
                    hint="lower the speedup, raise k_step, or use ddim / pndm",
                )
            betas = self.betas[:start]
            if method == "unipc":
                from sovits.models.diffusion.unipc import sample_unipc

                x = sample_unipc(denoise, x, betas, steps=solver_steps)
            else:
                from sovits.models.diffusion.dpm_solver import sample_dpm_solver

                algorithm = "dpmsolver++" if method == "dpm-solver++" else "dpmsolver"
                x = sample_dpm_solver(denoise, x, betas, steps=solver_steps, algorithm=algorithm)
        return self.denorm_spec(x[:, 0].transpose(1, 2))

    # ------------------------------------------------------------------ training

    def training_loss(
        self,
        cond: Tensor,
        mel: Tensor,
        *,
        steps: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Mean squared error between the noise and its prediction (scalar).

        cond: [B, H, T]; mel: [B, T, M] log-mel. steps [B] int64 in [0, k_step_max)
        and noise [B, 1, M, T] are drawn (in that order, like the original) from
        `generator`, or the global RNG, when not given.
        """
        x_start = self.norm_spec(mel).transpose(1, 2)[:, None, :, :]
        batch = cond.shape[0]
        if steps is None:
            steps = torch.randint(
                0, self.k_step_max, (batch,), device=cond.device, generator=generator
            )
        if noise is None:
            noise = torch.randn(
                x_start.shape, device=x_start.device, dtype=x_start.dtype, generator=generator
            )
        x_noisy = self.q_sample(x_start, steps, noise)
        return F.mse_loss(noise, self.denoise_fn(x_noisy, steps, cond))
