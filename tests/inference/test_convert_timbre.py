"""Converter with -cm/-cr (k-means centres) and -fr (feature retrieval).

The blends themselves are tested against the original's numbers in tests/retrieval;
here: the converter hands the blended units to the synthesizer, per speaker, only
when the ratio is not 0, and refuses a ratio without a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sovits.errors import InputError
from sovits.inference.converter import Converter
from sovits.inference.options import ConvertOptions
from sovits.retrieval.index import train_feature_index, write_feature_index
from sovits.retrieval.kmeans import ClusterModel, write_cluster_model
from tests.inference.test_converter import MODEL_DIR, RATE, spectral_config, tone

DIM = 64  # ssl_dim of the a_default fixture


@pytest.fixture(scope="module")
def converter(tmp_path_factory: pytest.TempPathFactory) -> Converter:
    folder = tmp_path_factory.mktemp("timbre")
    return Converter(MODEL_DIR / "G_0_release.pth", spectral_config(folder), device="cpu")


def _content_seen(converter: Converter, options: ConvertOptions, monkeypatch: Any) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    infer = converter.synthesizer.infer

    def spy(content: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append(content.clone())
        return infer(content, *args, **kwargs)

    monkeypatch.setattr(converter.synthesizer, "infer", spy)
    converter.convert(tone(0.6), RATE, options=options)
    monkeypatch.undo()
    assert len(seen) == 1
    return seen[0]


def test_cluster_ratio_one_gives_only_centres(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    centres = {name: rng.normal(size=(4, DIM)).astype(np.float32) for name in ("spk_a", "spk_b")}
    path = tmp_path / "kmeans.safetensors"
    write_cluster_model(ClusterModel(centres), path)
    plain = _content_seen(converter, ConvertOptions(speaker="spk_b"), monkeypatch)
    options = ConvertOptions(speaker="spk_b", cluster_model_path=path, cluster_ratio=1.0)
    blended = _content_seen(converter, options, monkeypatch)
    assert blended.shape == plain.shape
    frames = blended[0].T.numpy()
    # every frame is one of spk_b's centres, the one nearest its own units
    distances = ((plain[0].T.numpy()[:, None, :] - centres["spk_b"][None]) ** 2).sum(-1)
    np.testing.assert_allclose(frames, centres["spk_b"][distances.argmin(1)], atol=1e-6)
    half = ConvertOptions(speaker="spk_b", cluster_model_path=path, cluster_ratio=0.5)
    mixed = _content_seen(converter, half, monkeypatch)
    torch.testing.assert_close(mixed, 0.5 * blended + 0.5 * plain)


def test_feature_retrieval_pulls_units_to_the_speakers_own(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    stored = {0: rng.normal(size=(400, DIM)).astype(np.float32),
              1: rng.normal(size=(400, DIM)).astype(np.float32) + 3.0}
    index = train_feature_index(stored, seed=0)
    path = tmp_path / "feature_index"
    write_feature_index(index, path)
    plain = _content_seen(converter, ConvertOptions(speaker="spk_b"), monkeypatch)
    options = ConvertOptions(
        speaker="spk_b", cluster_model_path=path, cluster_ratio=1.0, feature_retrieval=True
    )
    retrieved = _content_seen(converter, options, monkeypatch)
    assert torch.isfinite(retrieved).all()
    # speaker 1's stored units sit around +3: retrieval moves every frame there
    assert abs(retrieved.mean().item() - 3.0) < 0.5 < abs(plain.mean().item() - 3.0)


def test_a_ratio_without_a_model_is_refused(converter: Converter) -> None:
    with pytest.raises(InputError, match="-cm"):
        options = ConvertOptions(speaker="spk_a", cluster_ratio=0.3)
        converter.convert(tone(0.3), RATE, options=options)


def test_a_speaker_missing_from_the_cluster_model_is_clear(
    converter: Converter, tmp_path: Path
) -> None:
    path = tmp_path / "kmeans.safetensors"
    write_cluster_model(ClusterModel({"spk_a": np.zeros((2, DIM), np.float32)}), path)
    options = ConvertOptions(speaker="spk_c", cluster_model_path=path, cluster_ratio=0.5)
    with pytest.raises(InputError, match="spk_c"):
        converter.convert(tone(0.3), RATE, options=options)
