"""Paths and arrays of the so-vits-svc 4.1 cluster / retrieval fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FIXTURES, load_npz

CLUSTER = FIXTURES / "sovits41-extras" / "cluster"
KMEANS_PT = CLUSTER / "kmeans_10000.pt"
INDEX_PKL = CLUSTER / "feature_and_index.pkl"
SPEAKERS = ("spk_a", "spk_b")
SPEAKER_IDS = {"spk_a": 0, "spk_b": 1}
RATIOS = (0.0, 0.3, 0.5, 1.0)


@pytest.fixture(scope="session")
def cluster_npz() -> dict[str, np.ndarray]:
    return load_npz(CLUSTER / "cluster_fixtures.npz")
