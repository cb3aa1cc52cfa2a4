"""DPM-Solver, DPM-Solver++ and UniPC against so-vits-svc 4.1's diffusion runs.

The k_step 10 runs carry every denoiser call: a replay denoiser checks each (x, t) the
sampler asks for and answers with the recorded noise, so the sampler is tested alone.
The k_step 100 runs (10 steps: no lower-order final step for DPM-Solver) and the
pure-noise run carry no trace; they use a small functional copy of the tiny WaveNet
denoiser, which is first checked against the traces.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import InputError
from sovits.models.diffusion.dpm_solver import sample_dpm_solver
from sovits.models.diffusion.schedule_vp import DiscreteVPSchedule
from sovits.models.diffusion.unipc import sample_unipc
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import (
    DEEP_SAMPLED_MEL,
    INTERMEDIATE,
    NOISE_SAMPLED,
    SAMPLED_MEL,
    assert_close,
)

Denoiser = Callable[[Tensor, Tensor], Tensor]
Sampler = Callable[[Denoiser, Tensor, Tensor, int], Tensor]

DIFFUSION = FIXTURES / "sovits41-extras" / "diffusion"
SAMPLERS: dict[str, Sampler] = {
    "dpm_solver": lambda d, x, b, n: sample_dpm_solver(d, x, b, steps=n, algorithm="dpmsolver"),
    "dpm_solverpp": lambda d, x, b, n: sample_dpm_solver(d, x, b, steps=n, algorithm="dpmsolver++"),
    "unipc": lambda d, x, b, n: sample_unipc(d, x, b, steps=n),
}
# Same op order as the reference: the replayed inputs are bit-identical on the fixtures'
# kernels; other CPUs round differently (tests/tolerance.py).
SAME_ORDER = INTERMEDIATE


@pytest.fixture(scope="module")
def sampling() -> dict[str, np.ndarray]:
    return load_npz(DIFFUSION / "sampling_tiny_2spk.npz")


@pytest.fixture(scope="module")
def state() -> dict[str, Tensor]:
    path = DIFFUSION / "tiny_2spk" / "model_2000.pt"
    return dict(torch.load(path, map_location="cpu", weights_only=True)["model"])


def shallow_start(
    state: dict[str, Tensor], gt_spec: np.ndarray, noise: np.ndarray, k_step: int
) -> Tensor:
    """q_sample(norm(gt_spec), k_step - 1, noise) as the reference computes it: [1,1,M,T]."""
    low, high = state["decoder.spec_min"], state["decoder.spec_max"]
    normed = ((torch.from_numpy(gt_spec) - low) / (high - low) * 2 - 1).transpose(1, 2)[:, None]
    signal = state["decoder.sqrt_alphas_cumprod"][k_step - 1]
    spread = state["decoder.sqrt_one_minus_alphas_cumprod"][k_step - 1]
    return signal * normed + spread * torch.from_numpy(noise)


def denormalise(state: dict[str, Tensor], x: Tensor) -> np.ndarray:
    """[B,1,M,T] normalised -> [B,T,M] log-mel, as the reference returns it."""
    low, high = state["decoder.spec_min"], state["decoder.spec_max"]
    return ((x.squeeze(1).transpose(1, 2) + 1) / 2 * (high - low) + low).numpy()


def replay(xs: np.ndarray, ts: np.ndarray, eps: np.ndarray) -> tuple[Denoiser, list[float]]:
    """A denoiser that checks each call against the trace and returns the recorded noise.

    xs, eps: [calls, B, 1, M, T]; ts: [calls] (the reference's float32 times, as float64).
    """
    differences: list[float] = []

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        index = len(differences)
        assert index < len(xs), "more denoiser calls than the reference made"
        assert t.dtype == torch.float32 and t.shape == (x.shape[0],)
        assert_close(t, np.full(t.shape, ts[index]), SAME_ORDER, what=f"call {index}: t")
        assert_close(x, xs[index], SAME_ORDER, what=f"call {index}: x")
        difference = float(np.abs(x.numpy() - xs[index]).max())
        differences.append(difference)
        return torch.from_numpy(eps[index].copy())

    return denoise, differences


def tiny_wavenet(state: dict[str, Tensor], cond: Tensor) -> Denoiser:
    """The reference WaveNet denoiser written out for the tiny checkpoint (test only).

    cond: [1, n_hidden, T]. Returns denoise(spec [1,1,M,T], step [1]) -> noise [1,1,M,T].
    """
    weights = {
        key.removeprefix("decoder.denoise_fn."): value
        for key, value in state.items()
        if key.startswith("decoder.denoise_fn.")
    }

    def conv(name: str, x: Tensor, padding: int = 0) -> Tensor:
        return F.conv1d(x, weights[name + ".weight"], weights[name + ".bias"], padding=padding)

    def linear(name: str, x: Tensor) -> Tensor:
        return F.linear(x, weights[name + ".weight"], weights[name + ".bias"])

    layers = sum(1 for key in weights if key.endswith("dilated_conv.weight"))
    channels = weights["input_projection.weight"].shape[0]
    half = channels // 2
    frequencies = torch.exp(torch.arange(half) * -(math.log(10000) / (half - 1)))

    def denoise(spec: Tensor, step: Tensor) -> Tensor:
        x = F.relu(conv("input_projection", spec.squeeze(1)))
        angles = step[:, None] * frequencies[None, :]
        embedding = torch.cat((angles.sin(), angles.cos()), dim=-1)
        embedding = linear("mlp.2", F.mish(linear("mlp.0", embedding)))
        skips = []
        for i in range(layers):
            name = f"residual_layers.{i}"
            step_term = linear(f"{name}.diffusion_projection", embedding)[..., None]
            cond_term = conv(f"{name}.conditioner_projection", cond)
            y = conv(f"{name}.dilated_conv", x + step_term, padding=1) + cond_term
            gate, filt = y.split(channels, dim=1)
            y = conv(f"{name}.output_projection", torch.sigmoid(gate) * torch.tanh(filt))
            residual, skip = y.split(channels, dim=1)
            x = (x + residual) / math.sqrt(2.0)
            skips.append(skip)
        x = torch.sum(torch.stack(skips), dim=0) / math.sqrt(layers)
        x = F.relu(conv("skip_projection", x))
        return conv("output_projection", x)[:, None]

    return denoise


@pytest.fixture(scope="module")
def wavenet(state: dict[str, Tensor]) -> Denoiser:
    # cond_embed was made from the same units/f0/volume as the sampling runs (spk 1).
    cond = load_npz(DIFFUSION / "cond_embed_tiny_2spk.npz")["cond_spk1"]
    return tiny_wavenet(state, torch.from_numpy(cond).transpose(1, 2))


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_replayed_k10_speedup2(
    method: str, sampling: dict[str, np.ndarray], state: dict[str, Tensor]
) -> None:
    key = f"{method}_k10_s2"
    xs, eps = sampling[f"trace_x_{key}"], sampling[f"trace_eps_{key}"]
    ts = sampling[f"trace_t_{key}"][:, 0]
    start = shallow_start(state, sampling["gt_spec"], sampling[f"noise_q_{key}"], 10)
    assert_close(start, xs[0], SAME_ORDER, what="shallow start")

    denoise, differences = replay(xs, ts, eps)
    result = SAMPLERS[method](denoise, start, state["decoder.betas"][:10], 10 // 2)

    assert len(differences) == len(xs) == 5
    assert result.shape == start.shape and result.dtype == torch.float32
    # README tolerance for a shallow sampler's final mel: atol 1e-4 (observed here: 0.0).
    assert_close(denormalise(state, result), sampling[f"out_{key}"], SAMPLED_MEL, what=key)


def test_tiny_wavenet_matches_traces(
    sampling: dict[str, np.ndarray], wavenet: Denoiser
) -> None:
    for method in SAMPLERS:
        key = f"{method}_k10_s2"
        trace = zip(
            sampling[f"trace_x_{key}"],
            sampling[f"trace_t_{key}"],
            sampling[f"trace_eps_{key}"],
            strict=True,
        )
        for x, t, eps in trace:
            out = wavenet(torch.from_numpy(x), torch.from_numpy(t.astype(np.float32)))
            assert_close(out, eps, SAME_ORDER, what=f"{key} eps")


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_k100_speedup10(
    method: str, sampling: dict[str, np.ndarray], state: dict[str, Tensor], wavenet: Denoiser
) -> None:
    key = f"{method}_k100_s10"
    start = shallow_start(state, sampling["gt_spec"], sampling[f"noise_q_{key}"], 100)
    times: list[float] = []

    def counting(x: Tensor, t: Tensor) -> Tensor:
        times.append(float(t[0]))
        return wavenet(x, t)

    result = SAMPLERS[method](counting, start, state["decoder.betas"][:100], 100 // 10)
    assert len(times) == 10
    assert times[0] == 99.0
    # README tolerance for k_step 100: atol 2e-4 (observed here: 0.0).
    assert_close(denormalise(state, result), sampling[f"out_{key}"], DEEP_SAMPLED_MEL, what=key)


def test_pure_noise_dpm_solverpp_k1000(
    sampling: dict[str, np.ndarray], state: dict[str, Tensor], wavenet: Denoiser
) -> None:
    key = "dpm_solverpp_k1000_s10_nogt"
    start = torch.from_numpy(sampling[f"noise_init_{key}"])
    result = sample_dpm_solver(
        wavenet, start, state["decoder.betas"], steps=1000 // 10, algorithm="dpmsolver++"
    )
    expected = sampling[f"out_{key}"]
    # README tolerance for pure-noise runs: rtol 1e-5 of max, or atol 0.05.
    assert_close(denormalise(state, result), expected, NOISE_SAMPLED, what=key)


@pytest.mark.parametrize("method", list(SAMPLERS))
def test_fewer_than_two_steps_is_an_input_error(method: str) -> None:
    def never(x: Tensor, t: Tensor) -> Tensor:
        raise AssertionError("the denoiser must not be called")

    x, betas = torch.zeros(1, 1, 4, 3), torch.linspace(1e-4, 0.02, 10)
    for steps in (0, 1):
        with pytest.raises(InputError, match="at least 2"):
            SAMPLERS[method](never, x, betas, steps)


def test_unknown_dpm_algorithm_is_an_input_error() -> None:
    x, betas = torch.zeros(1, 1, 4, 3), torch.full((10,), 0.01)
    with pytest.raises(InputError, match="ddim"):
        sample_dpm_solver(lambda x, t: x, x, betas, steps=5, algorithm="ddim")


def test_batch_rows_are_independent(wavenet: Denoiser, state: dict[str, Tensor]) -> None:
    # Each row of a batch goes through the same schedule; the denoiser gets t as [B].
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 128, 20, generator=generator)

    def per_row(sample: Tensor, t: Tensor) -> Tensor:
        assert t.shape == (2,) and bool(t[0] == t[1])
        return torch.cat([wavenet(row[None], t[:1]) for row in sample])

    betas = state["decoder.betas"][:10]
    for method, sampler in SAMPLERS.items():
        both = sampler(per_row, x, betas, 5)
        first = sampler(wavenet, x[:1], betas, 5)
        torch.testing.assert_close(both[:1], first, rtol=0, atol=1e-6, msg=method)


def test_schedule_round_trips_and_clips() -> None:
    betas64 = np.linspace(1e-4, 0.02, 1000)
    schedule = DiscreteVPSchedule.from_betas(torch.from_numpy(betas64).float(), clip_lambda=-5.1)
    assert schedule.total_steps == 1000  # the linear schedule never goes below -5.1
    times = torch.tensor([0.001, 0.0123, 0.5, 0.87, 1.0])
    torch.testing.assert_close(
        schedule.alpha(times) ** 2 + schedule.sigma(times) ** 2, torch.ones(5)
    )
    round_trip = schedule.time_of_half_log_snr(schedule.half_log_snr(times))
    torch.testing.assert_close(round_trip, times, atol=1e-5, rtol=0)
    # At the knots t = (n + 1) / N, alpha_t^2 is alphas_cumprod[n].
    cumprod = torch.from_numpy(np.cumprod(1 - betas64)).float()
    knots = torch.tensor([0.001, 0.5, 1.0])
    torch.testing.assert_close(schedule.alpha(knots) ** 2, cumprod[[0, 499, 999]])
    torch.testing.assert_close(schedule.model_time(knots), torch.tensor([0.0, 499.0, 999.0]))
    # A schedule that reaches a much lower SNR loses its trailing steps.
    clipped = DiscreteVPSchedule.from_betas(torch.full((100,), 0.2), clip_lambda=-5.1)
    assert 0 < clipped.total_steps < 100
    assert float(clipped.half_log_snr(torch.tensor(1.0))) >= -5.1
    unclipped = DiscreteVPSchedule.from_betas(torch.full((100,), 0.2))
    assert unclipped.total_steps == 100
