"""Shared test helpers: where the reference fixtures live and how to read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# The reference fixtures were made with one thread, and tiny ops on a shared 2-core
# machine run far faster single-threaded.
torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
SOVITS41 = FIXTURES / "sovits41"
VARIANTS = (
    "a_default",
    "b_vol",
    "c_dsconv_share",
    "d_transformer_flow",
    "e_snake",
    "f_resblock2_nof0pred",
)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an npz file, without pickle."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def helpers_npz() -> dict[str, np.ndarray]:
    return load_npz(SOVITS41 / "common" / "helpers.npz")
