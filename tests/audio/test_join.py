"""Crossfade join of overlapping chunks (so-vits-svc's slice_inference join)."""

from __future__ import annotations

import numpy as np
import pytest

from sovits.audio.join import crossfade_join
from sovits.errors import InputError


def _join_by_list(chunks: list[np.ndarray], overlap: int, retain: float) -> np.ndarray:
    """The join done the way so-vits-svc does it: grow a Python list, splice the fade."""
    fade = int(overlap * retain)
    before = (overlap - fade) // 2
    after = overlap - fade - before
    weights = np.linspace(0, 1, fade)
    joined: list[float] = []
    for index, chunk in enumerate(chunks):
        values = [float(v) for v in chunk]
        if index and overlap:
            tail_start = len(joined) - fade - after
            old = np.array(joined[tail_start : tail_start + fade])
            new = np.array(values[before : before + fade])
            joined = joined[:tail_start] + list(old * (1 - weights) + new * weights)
            values = values[before + fade :]
        joined.extend(values)
    return np.array(joined)


def test_full_overlap_fade_by_hand() -> None:
    joined = crossfade_join([np.ones(10), np.zeros(10)], 4)
    assert joined.dtype == np.float64 and joined.shape == (16,)
    np.testing.assert_array_equal(joined[:6], 1.0)
    np.testing.assert_allclose(joined[6:10], [1.0, 2 / 3, 1 / 3, 0.0])
    np.testing.assert_array_equal(joined[10:], 0.0)


def test_partial_retain_keeps_the_overlap_edges() -> None:
    first = np.arange(10, dtype=np.float32)
    second = np.arange(100, 110, dtype=np.float32)
    joined = crossfade_join([first, second], 4, retain=0.5)
    # fade of 2 samples; one overlap sample before it from `first`, one after from `second`
    np.testing.assert_array_equal(joined[:7], first[:7])
    np.testing.assert_allclose(joined[7:9], [first[7], second[2]])
    np.testing.assert_array_equal(joined[9:], second[3:])


@pytest.mark.parametrize("retain", [1.0, 0.75, 0.3, 0.01])
def test_matches_the_list_splicing_join(retain: float) -> None:
    rng = np.random.default_rng(int(retain * 100))
    overlap = 37
    chunks = [rng.standard_normal(int(n)).astype(np.float32) for n in rng.integers(40, 200, 6)]
    expected = _join_by_list(chunks, overlap, retain)
    joined = crossfade_join(chunks, overlap, retain=retain)
    assert joined.shape == (sum(len(c) for c in chunks) - overlap * 5,)
    np.testing.assert_array_equal(joined, expected)


def test_no_overlap_and_edge_cases() -> None:
    chunks = [np.ones(3, dtype=np.float32), np.zeros(2, dtype=np.float32)]
    np.testing.assert_array_equal(crossfade_join(chunks, 0), [1, 1, 1, 0, 0])
    assert crossfade_join([], 5).shape == (0,)
    np.testing.assert_array_equal(crossfade_join([np.ones(3)], 5), np.ones(3))


def test_bad_arguments_raise_input_error() -> None:
    with pytest.raises(InputError, match="fewer than the overlap"):
        crossfade_join([np.ones(10), np.ones(3)], 4)
    with pytest.raises(InputError, match="retain"):
        crossfade_join([np.ones(10), np.ones(10)], 4, retain=0.0)
    with pytest.raises(InputError, match="1-D"):
        crossfade_join([np.ones((2, 10)), np.ones(10)], 4)
    with pytest.raises(InputError, match="overlap"):
        crossfade_join([np.ones(10)], -1)
