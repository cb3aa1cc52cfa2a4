"""The tolerance helper itself: it passes float32 rounding, and nothing much larger."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tolerance import (
    AUDIO,
    DISTANCE,
    HZ,
    INTERMEDIATE,
    SHARPNESS,
    Tolerance,
    assert_close,
    assert_neighbours,
)


def _reference() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32)


def test_float32_steps_pass_and_a_1e_3_change_fails() -> None:
    expected = _reference()
    one_step = np.nextafter(expected, np.float32(np.inf))
    assert_close(torch.from_numpy(one_step), expected, INTERMEDIATE, what="one step")
    for tolerance in (INTERMEDIATE, HZ):
        with pytest.raises(AssertionError, match=r"moved.*differs beyond"):
            assert_close(expected * (1 + SHARPNESS), expected, tolerance, what="moved")
    audio = 0.8 * expected / np.abs(expected).max()
    with pytest.raises(AssertionError):
        assert_close(audio * (1 + SHARPNESS), audio, AUDIO)


def test_small_values_among_large_ones_get_the_array_scale() -> None:
    # AVX-512 vs AVX2: 1.6e-6 on a value of 0.026 in an array reaching 5.6
    expected = np.array([0.026, 5.6, -3.0])
    assert_close(expected + np.array([1.6e-6, 0, 0]), expected, INTERMEDIATE)
    with pytest.raises(AssertionError, match=r"worst at \(0,\)"):
        assert_close(expected + np.array([1e-4, 0, 0]), expected, INTERMEDIATE)


def test_shape_and_nan_positions_must_match() -> None:
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.zeros(3), np.zeros((1, 3)))
    with pytest.raises(AssertionError, match="NaN"):
        assert_close([np.nan, 1.0], [1.0, 1.0])
    assert_close([np.nan, 1.0], [np.nan, 1.0])


def test_neighbour_ids_may_swap_only_where_distances_tie() -> None:
    ids = np.array([[4, 7, 9, 2]])
    distances = np.array([[10.0, 20.0, 20.0, 30.0]], dtype=np.float32)
    assert_neighbours(ids, distances, ids, distances)
    swapped = np.array([[4, 9, 7, 2]])  # a tie at 20.0: another CPU may order it so
    assert_neighbours(swapped, distances, ids, distances)
    other_last = np.array([[4, 7, 9, 5]])  # the last column's tie may lie past k
    assert_neighbours(other_last, distances, ids, distances)
    wrong = np.array([[7, 4, 9, 2]])  # 10 vs 20 is no tie
    with pytest.raises(AssertionError, match="row 0 column 0"):
        assert_neighbours(wrong, distances, ids, distances, DISTANCE)
    with pytest.raises(AssertionError, match="distances"):
        assert_neighbours(ids, distances * 1.001, ids, distances)


def test_log_and_perturb_switches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("SOVITS_TOLERANCE_LOG", str(log))
    expected = _reference()
    assert_close(expected, expected, INTERMEDIATE, what="same")
    assert_close(np.zeros(3), np.zeros(3), Tolerance("ZERO", 0.0, 1e-9), what="zeros")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["what"] for r in records] == ["same", "zeros"]
    assert records[0]["sharp"] is True and records[0]["max_abs"] == 0.0
    assert records[1]["sharp"] is None  # no relative change moves an all-zero reference
    monkeypatch.setenv("SOVITS_TOLERANCE_PERTURB", str(SHARPNESS))
    with pytest.raises(AssertionError):
        assert_close(expected, expected, INTERMEDIATE)
