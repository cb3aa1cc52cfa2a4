"""Fixtures of the dspitch tests: fake banks (built once per session) and the test wave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tests.features.dspitch._bank import VARIANTS, sine_wave, write_bank


@pytest.fixture(scope="session")
def banks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One fake bank per export variant (fork layout), by variant name."""
    root = tmp_path_factory.mktemp("banks")
    return {name: write_bank(root / name, name) for name in VARIANTS}


@pytest.fixture(scope="session")
def wave() -> np.ndarray:
    """3 s of a 220 Hz sine at 44.1 kHz, silent from 1.2 s to 1.8 s."""
    return sine_wave()
