"""sovits.dsp.f0 against the original's numbers (common/helpers.npz)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sovits.dsp import f0 as f0_module
from sovits.dsp.f0 import (
    f0_to_coarse,
    f0_to_lf0,
    interpolate_f0,
    lf0_to_f0,
    normalize_f0,
    post_process_f0,
    resize_f0,
    shift_f0,
)
from sovits.errors import InputError
from tests.conftest import SOVITS41
from tests.tolerance import HZ, INTERMEDIATE, assert_close


def _helpers_call(call_id: str) -> dict:
    manifest = json.loads((SOVITS41 / "manifest.json").read_text())
    entry = next(f for f in manifest["fixtures"] if f["id"] == "common/helpers")
    return next(c for c in entry["calls"] if c["id"] == call_id)


def test_coarse_constants_match_manifest() -> None:
    constants = _helpers_call("f0_to_coarse")["constants"]
    assert constants["f0_bin"] == f0_module.F0_BIN
    assert constants["f0_min"] == f0_module.F0_MIN
    assert constants["f0_max"] == f0_module.F0_MAX
    assert constants["f0_mel_min"] == f0_module.F0_MEL_MIN
    assert constants["f0_mel_max"] == f0_module.F0_MEL_MAX


@pytest.mark.parametrize(
    ("dtype", "key"),
    [
        (torch.float32, "f0_to_coarse.out"),
        (torch.float16, "f0_to_coarse.out_from_f16"),
        (torch.float64, "f0_to_coarse.out_from_f64"),
    ],
)
def test_f0_to_coarse_matches_reference(helpers_npz, dtype: torch.dtype, key: str) -> None:
    f0 = torch.from_numpy(helpers_npz["f0_to_coarse.in"]).to(dtype)
    coarse = f0_to_coarse(f0)
    assert coarse.dtype == torch.int64
    np.testing.assert_array_equal(coarse.numpy(), helpers_npz[key])


def test_f0_to_coarse_edges() -> None:
    f0 = torch.tensor([-10.0, 0.0, 50.0, 51.0, 1100.0, 1103.0, 1104.0, 5000.0])
    # values rounding to >= 256 wrap to 0 (the original's clamping slip)
    assert f0_to_coarse(f0).tolist() == [1, 1, 1, 1, 255, 255, 0, 0]


def test_shift_f0_matches_reference(helpers_npz) -> None:
    f0 = torch.from_numpy(helpers_npz["pitch_shift.in"])
    shifted = torch.stack([shift_f0(f0, int(t)) for t in helpers_npz["pitch_shift.tran"]])
    assert_close(shifted, helpers_npz["pitch_shift.out"], HZ, what="pitch_shift.out")
    as_numpy = shift_f0(helpers_npz["pitch_shift.in"], 12)
    assert_close(as_numpy, helpers_npz["pitch_shift.out"][7], HZ, what="pitch_shift.out")


def test_lf0_round_trip_matches_reference(helpers_npz) -> None:
    f0 = torch.from_numpy(helpers_npz["lf0.in_f0"])
    lf0 = f0_to_lf0(f0)
    assert lf0.shape == (1, 1, 6)
    assert_close(lf0, helpers_npz["lf0.out"], INTERMEDIATE, what="lf0.out")
    back = lf0_to_f0(lf0)
    assert back.shape == (1, 6)
    assert_close(back, helpers_npz["lf0.inverse"], HZ, what="lf0.inverse")


def _normalize_inputs(helpers_npz) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.from_numpy(helpers_npz["normalize_f0.in_f0"]),
        torch.from_numpy(helpers_npz["normalize_f0.in_mask"]),
        torch.from_numpy(helpers_npz["normalize_f0.in_uv"]),
    )


def test_normalize_f0_matches_reference(helpers_npz) -> None:
    lf0, mask, uv = _normalize_inputs(helpers_npz)
    assert uv[1].sum() == 0  # the all-unvoiced row divides by 9999
    out = normalize_f0(lf0, mask, uv)
    assert_close(out, helpers_npz["normalize_f0.out"], INTERMEDIATE, what="normalize_f0.out")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_normalize_f0_random_scale_uses_generator(helpers_npz) -> None:
    lf0, mask, uv = _normalize_inputs(helpers_npz)
    plain = normalize_f0(lf0, mask, uv)
    first = normalize_f0(lf0, mask, uv, random_scale=True, generator=_generator(7))
    again = normalize_f0(lf0, mask, uv, random_scale=True, generator=_generator(7))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    factor = torch.empty(2, 1).uniform_(0.8, 1.2, generator=_generator(7))
    torch.testing.assert_close(first, plain * factor[:, :, None])
    assert ((factor > 0.8) & (factor < 1.2)).all()


def test_normalize_f0_rejects_nan(helpers_npz) -> None:
    lf0, mask, uv = _normalize_inputs(helpers_npz)
    lf0[0, 0, 3] = float("nan")
    with pytest.raises(InputError):
        normalize_f0(lf0, mask, uv)


@pytest.mark.parametrize("case", ["typical", "all_zero", "single", "float32_input"])
def test_interpolate_f0_matches_reference(helpers_npz, case: str) -> None:
    source = helpers_npz[f"interpolate_f0.{case}.in"]
    kept = source.copy()
    f0, vuv = interpolate_f0(source)
    expected_f0 = helpers_npz[f"interpolate_f0.{case}.f0"]
    expected_vuv = helpers_npz[f"interpolate_f0.{case}.vuv"]
    assert f0.dtype == expected_f0.dtype
    assert vuv.dtype == expected_vuv.dtype
    np.testing.assert_array_equal(f0, expected_f0)
    np.testing.assert_array_equal(vuv, expected_vuv)
    np.testing.assert_array_equal(source, kept)  # input untouched


def test_interpolate_f0_single_voiced_first_frame() -> None:
    f0, vuv = interpolate_f0(np.array([150.0, 0.0, 0.0]))
    np.testing.assert_array_equal(f0, [150.0, 150.0, 150.0])
    np.testing.assert_array_equal(vuv, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("target_len", [7, 10, 23])
def test_resize_f0_matches_reference(helpers_npz, target_len: int) -> None:
    source = helpers_npz["resize_f0.in"]
    kept = source.copy()
    out = resize_f0(source, target_len)
    expected = helpers_npz[f"resize_f0.len{target_len}"]
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(source, kept)


def test_post_process_f0_matches_reference(helpers_npz) -> None:
    call = _helpers_call("rmvpe_post_process")["call"]
    assert "pad_to=37" in call and "hop_length=512" in call and "44100" in call
    f0, vuv = post_process_f0(helpers_npz["rmvpe_post.in"], 37, hop_length=512, sampling_rate=44100)
    assert f0.dtype == np.float64
    assert vuv.dtype == np.float32
    np.testing.assert_array_equal(f0, helpers_npz["rmvpe_post.f0"])
    np.testing.assert_array_equal(vuv, helpers_npz["rmvpe_post.vuv"])
    from_tensor, _ = post_process_f0(torch.from_numpy(helpers_npz["rmvpe_post.in"]), 37)
    np.testing.assert_array_equal(from_tensor, helpers_npz["rmvpe_post.f0"])


def test_post_process_f0_degenerate_tracks() -> None:
    f0, vuv = post_process_f0(np.zeros(4, dtype=np.float32), 8)
    np.testing.assert_array_equal(f0, np.zeros(8))
    np.testing.assert_array_equal(vuv, np.zeros(8))
    f0, vuv = post_process_f0(np.array([0.0, 210.0, 0.0, 0.0], dtype=np.float32), 8)
    np.testing.assert_array_equal(f0, np.full(8, 210.0))
    np.testing.assert_array_equal(vuv, [0, 0, 1, 1, 0, 0, 0, 0])
