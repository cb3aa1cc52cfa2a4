"""sovits.dsp.alignment.repeat_expand_2d against the original (helpers.npz) and its loop."""

from __future__ import annotations

import pytest
import torch

from sovits.dsp.alignment import repeat_expand_2d
from sovits.errors import InputError
from tests.tolerance import INTERMEDIATE, assert_close


def _left_loop(source_len: int, target_len: int) -> list[int]:
    """Source index per target frame, walked the way the original's loop walks it."""
    # float32 thresholds as the original computes them (exact as Python floats)
    thresholds = (torch.arange(source_len + 1) * target_len / source_len).tolist()
    position = 0
    picked = []
    for frame in range(target_len):
        if not frame < thresholds[position + 1]:
            position += 1
        picked.append(position)
    return picked


@pytest.mark.parametrize("mode", ["left", "nearest", "linear"])
@pytest.mark.parametrize("target_len", [7, 10, 17, 35, 5])
def test_matches_reference(helpers_npz, mode: str, target_len: int) -> None:
    content = torch.from_numpy(helpers_npz["repeat_expand_2d.in"])
    out = repeat_expand_2d(content, target_len, mode)  # type: ignore[arg-type]
    expected = helpers_npz[f"repeat_expand_2d.{mode}.{target_len}"]
    assert out.shape == expected.shape
    assert_close(out, expected, INTERMEDIATE, what=f"repeat_expand_2d.{mode}.{target_len}")


@pytest.mark.parametrize(
    ("source_len", "target_len"),
    [
        (1, 1),
        (1, 9),
        (9, 1),
        (3, 7),
        (7, 3),
        (49, 86),
        (86, 49),
        (50, 173),
        (211, 211),
        (1000, 1001),
        (1001, 1000),
        (30000, 30011),
        (99991, 100003),
    ],
)
def test_left_equals_the_loop(source_len: int, target_len: int) -> None:
    # (30000, 30011) and (99991, 100003) hit float32 thresholds less than one frame
    # apart, where the loop's one-step-per-frame walk lags behind the threshold count.
    content = torch.arange(source_len, dtype=torch.float32)[None].repeat(2, 1)
    out = repeat_expand_2d(content, target_len, "left")
    expected = _left_loop(source_len, target_len)
    assert out[0].long().tolist() == expected
    assert out[1].long().tolist() == expected


def test_default_mode_is_left(helpers_npz) -> None:
    content = torch.from_numpy(helpers_npz["repeat_expand_2d.in"])
    torch.testing.assert_close(repeat_expand_2d(content, 17), repeat_expand_2d(content, 17, "left"))


def test_keeps_dtype() -> None:
    content = torch.randn(3, 5, dtype=torch.float64)
    assert repeat_expand_2d(content, 8).dtype == torch.float64
    assert repeat_expand_2d(content, 8, "nearest").dtype == torch.float64


def test_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        repeat_expand_2d(torch.zeros(2, 3), 4, "cubic")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        repeat_expand_2d(torch.zeros(1, 2, 3), 4)
    with pytest.raises(InputError):
        repeat_expand_2d(torch.zeros(2, 3), 0)
