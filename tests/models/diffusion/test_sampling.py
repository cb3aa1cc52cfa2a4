"""Shallow and pure-noise sampling of Unit2Mel against so-vits-svc 4.1 runs.

The original's random draws are injected with ReplayNoise: the q_sample noise (shallow),
the start noise (pure noise), and one draw per step for DDPM. Tolerances are the
README's (shallow atol 1e-4, pure noise atol 0.05 or 1e-5 of the peak), named in
tests/tolerance.py; the runs match far closer. The
k_step 10 runs also carry every denoiser call, checked call by call.
"""

from __future__ import annotations

import pytest
import torch

from sovits.errors import InputError
from sovits.models.diffusion.gaussian import DIFFUSION_METHODS
from sovits.models.noise import NoiseSource, ReplayNoise
from tests.conftest import FIXTURES, load_npz
from tests.models.diffusion.test_unit2mel import tiny_1spk_kmax100, tiny_2spk
from tests.tolerance import (
    DEEP_SAMPLED_MEL,
    INTERMEDIATE,
    NOISE_SAMPLED,
    SAMPLED_MEL,
    assert_close,
)

DIFFUSION = FIXTURES / "sovits41-extras" / "diffusion"

# case -> (method, k_step, speedup, shallow)
CASES = {
    "ddim_k10_s2": ("ddim", 10, 2, True),
    "ddim_k100_s10": ("ddim", 100, 10, True),
    "pndm_k10_s2": ("pndm", 10, 2, True),
    "pndm_k100_s10": ("pndm", 100, 10, True),
    "ddim_k10_s1": ("ddim", 10, 1, True),  # speedup 1: plain DDPM
    "ddim_k1000_s100_nogt": ("ddim", 1000, 100, False),
    "dpm_solverpp_k1000_s10_nogt": ("dpm-solver++", 1000, 10, False),
}


@pytest.fixture(scope="module")
def npz():
    return load_npz(DIFFUSION / "sampling_tiny_2spk.npz")


@pytest.fixture(scope="module")
def model():
    return tiny_2spk()


def _inputs(data):
    return tuple(torch.from_numpy(data[key]) for key in ("units", "f0", "volume"))


def _draws(data, case, shallow):
    draws = [torch.from_numpy(data[("noise_q_" if shallow else "noise_init_") + case])]
    if f"noise_steps_{case}" in data:
        draws.extend(torch.from_numpy(step) for step in data[f"noise_steps_{case}"])
    return draws


@pytest.mark.parametrize("case", list(CASES))
def test_sampling_matches_the_original(npz, model, case):
    method, k_step, speedup, shallow = CASES[case]
    noise = ReplayNoise(_draws(npz, case, shallow))
    out = model.infer(
        *_inputs(npz),
        speaker=torch.from_numpy(npz["spk_id"]),
        gt_spec=torch.from_numpy(npz["gt_spec"]) if shallow else None,
        k_step=k_step,
        speedup=speedup,
        method=method,
        noise=noise,
    )
    assert out.shape == (1, 20, 128)
    assert noise._draws == []  # every recorded draw was used
    tolerance = SAMPLED_MEL if shallow else NOISE_SAMPLED
    assert_close(out, npz[f"out_{case}"], tolerance, what=f"out_{case}")


@pytest.mark.parametrize("case", ["ddim_k10_s2", "pndm_k10_s2", "ddim_k10_s1"])
def test_denoiser_calls_match_the_trace(npz, model, case):
    method, k_step, speedup, _ = CASES[case]
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = model.decoder.denoise_fn.register_forward_pre_hook(
        lambda _, args: calls.append((args[0].clone(), args[1].clone()))
    )
    try:
        model.infer(
            *_inputs(npz), speaker=1, gt_spec=torch.from_numpy(npz["gt_spec"]), k_step=k_step,
            speedup=speedup, method=method, noise=ReplayNoise(_draws(npz, case, True)),
        )
    finally:
        hook.remove()
    assert len(calls) == len(npz[f"trace_t_{case}"])
    for index, (x, steps) in enumerate(calls):
        assert steps.dtype == torch.long
        assert steps.tolist() == npz[f"trace_t_{case}"][index].tolist()
        assert_close(x, npz[f"trace_x_{case}"][index], INTERMEDIATE,
                     what=f"trace_x_{case}[{index}]")


def test_single_speaker_k_step_max_100_model():
    data = load_npz(DIFFUSION / "sampling_tiny_1spk_kmax100.npz")
    noise = ReplayNoise([torch.from_numpy(data["noise_q"])])
    out = tiny_1spk_kmax100().infer(
        *_inputs(data), speaker=torch.tensor([[0]]), gt_spec=torch.from_numpy(data["gt_spec"]),
        k_step=100, speedup=10, method="ddim", noise=noise,
    )
    assert_close(out, data["out_ddim_k100_s10"], DEEP_SAMPLED_MEL, what="out_ddim_k100_s10")


def test_methods_list():
    assert DIFFUSION_METHODS == ("ddim", "pndm", "dpm-solver", "dpm-solver++", "unipc")


# --------------------------------------------------------------------------- errors


def test_k_step_above_k_step_max(npz):
    with pytest.raises(InputError, match="greater than the maximum diffusion k_step"):
        tiny_1spk_kmax100().infer(
            *_inputs(npz), gt_spec=torch.from_numpy(npz["gt_spec"]), k_step=101,
            speedup=10, method="ddim", noise=NoiseSource(seed=0),
        )


def test_shallow_only_model_cannot_sample_from_noise(npz):
    with pytest.raises(InputError, match="can only be used for shallow diffusion"):
        tiny_1spk_kmax100().infer(*_inputs(npz), gt_spec=None, speedup=10, method="ddim")


@pytest.mark.parametrize(
    ("method", "k_step", "speedup"),
    [("unipc", 10, 10), ("dpm-solver", 10, 6), ("dpm-solver++", 3, 2)],
)
def test_solvers_need_two_steps(npz, model, method, k_step, speedup):
    with pytest.raises(InputError, match="at least 2 steps"):
        model.infer(*_inputs(npz), speaker=0, gt_spec=torch.from_numpy(npz["gt_spec"]),
                    k_step=k_step, speedup=speedup, method=method)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "euler"}, "unknown diffusion sampler"),
        ({"speedup": 0}, "speedup"),
        ({"k_step": 0}, "k_step"),
    ],
)
def test_bad_options(npz, model, options, message):
    arguments = {"k_step": 10, "speedup": 2, "method": "ddim", **options}
    with pytest.raises(InputError, match=message):
        model.infer(*_inputs(npz), speaker=0, gt_spec=torch.from_numpy(npz["gt_spec"]),
                    **arguments)


def test_gt_spec_shape_is_checked(npz, model):
    with pytest.raises(InputError, match="mel must be"):
        model.infer(*_inputs(npz), speaker=0, gt_spec=torch.zeros(1, 19, 128), k_step=10,
                    speedup=2, method="ddim")


# --------------------------------------------------------------------------- fixed crashes


def _batch_run(model, npz, method, k_step, speedup, speakers):
    """One batched run and the same rows run one by one, with the same noise."""
    units, f0, volume = _inputs(npz)
    gt = torch.from_numpy(npz["gt_spec"])
    batch = len(speakers)
    gt_batch = torch.cat([gt, gt.flip(1)])[:batch]
    noise_q = torch.randn(batch, 1, 128, 20, generator=torch.Generator().manual_seed(3))
    expand = [value.expand(batch, -1, -1) for value in (units, f0, volume)]
    batched = model.infer(
        *expand, speaker=torch.tensor(speakers)[:, None], gt_spec=gt_batch, k_step=k_step,
        speedup=speedup, method=method, noise=ReplayNoise([noise_q]),
    )
    rows = [
        model.infer(units, f0, volume, speaker=speaker, gt_spec=gt_batch[i : i + 1],
                    k_step=k_step, speedup=speedup, method=method,
                    noise=ReplayNoise([noise_q[i : i + 1]]))
        for i, speaker in enumerate(speakers)
    ]
    return batched, torch.cat(rows)


@pytest.mark.parametrize("method", ["pndm", "ddim"])
def test_batch_of_two_equals_two_single_runs(npz, model, method):
    batched, rows = _batch_run(model, npz, method, 10, 2, [0, 1])
    torch.testing.assert_close(batched, rows, rtol=0, atol=1e-5)


def test_pndm_batch_one_still_matches_with_a_batch(npz, model):
    # Row 0 of a batch of two is the fixture's run.
    units, f0, volume = (value.expand(2, -1, -1) for value in _inputs(npz))
    noise_q = torch.from_numpy(npz["noise_q_pndm_k10_s2"]).expand(2, -1, -1, -1)
    out = model.infer(
        units, f0, volume, speaker=1, gt_spec=torch.from_numpy(npz["gt_spec"]).expand(2, -1, -1),
        k_step=10, speedup=2, method="pndm", noise=ReplayNoise([noise_q]),
    )
    for row in out:
        assert_close(row, npz["out_pndm_k10_s2"][0], SAMPLED_MEL, what="out_pndm_k10_s2")


def test_pndm_with_k_step_below_speedup(npz, model):
    # One step at t = 0 going to t = 0: the PLMS transfer is the identity, so the
    # result is the q-sampled start (the original crashes here).
    gt = torch.from_numpy(npz["gt_spec"])
    noise_q = torch.randn(1, 1, 128, 20, generator=torch.Generator().manual_seed(5))
    out = model.infer(*_inputs(npz), speaker=1, gt_spec=gt, k_step=1, speedup=4,
                      method="pndm", noise=ReplayNoise([noise_q]))
    decoder = model.decoder
    start = decoder.q_sample(decoder.norm_spec(gt).transpose(1, 2)[:, None],
                             torch.tensor([0]), noise_q)
    torch.testing.assert_close(out, decoder.denorm_spec(start[:, 0].transpose(1, 2)),
                               rtol=0, atol=1e-5)
    # k_step 3, speedup 4 runs too (first step at t = 0 as well).
    out = model.infer(*_inputs(npz), speaker=1, gt_spec=gt, k_step=3, speedup=4,
                      method="pndm", noise=ReplayNoise([noise_q]))
    assert torch.isfinite(out).all()


def test_seeded_noise_is_reproducible(npz, model):
    arguments = {"speaker": 1, "gt_spec": torch.from_numpy(npz["gt_spec"]), "k_step": 10,
                 "speedup": 1, "method": None}
    first = model.infer(*_inputs(npz), seed=11, **arguments)
    second = model.infer(*_inputs(npz), noise=NoiseSource.from_seed(11), **arguments)
    third = model.infer(*_inputs(npz), seed=12, **arguments)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_seeded_noise_equals_the_original_global_rng_draws(npz, model):
    # The original draws randn_like (q_sample), then one randn per DDPM step, from the
    # global RNG; a seeded NoiseSource gives the same draws.
    torch.manual_seed(21)
    draws = [torch.randn(1, 1, 128, 20) for _ in range(11)]
    replayed = model.infer(*_inputs(npz), speaker=1, gt_spec=torch.from_numpy(npz["gt_spec"]),
                           k_step=10, speedup=1, method="ddim", noise=ReplayNoise(draws))
    seeded = model.infer(*_inputs(npz), speaker=1, gt_spec=torch.from_numpy(npz["gt_spec"]),
                         k_step=10, speedup=1, method="ddim", seed=21)
    assert torch.equal(replayed, seeded)
