"""Finding the cluster model / feature index that train-cluster / train-index wrote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sovits.retrieval.locate import find_timbre_model, timbre_candidates


def _touch(path: Path, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_cluster_model_with_any_count_next_to_the_model(tmp_path: Path) -> None:
    model = _touch(tmp_path / "logs" / "44k" / "G_800.pth")
    kmeans = _touch(model.parent / "kmeans_100.safetensors")
    assert find_timbre_model(model, feature_retrieval=False) == kmeans
    assert find_timbre_model(model.parent, feature_retrieval=False) == kmeans  # a folder too
    assert find_timbre_model(model, feature_retrieval=True) is None


def test_newest_cluster_model_wins(tmp_path: Path) -> None:
    model = _touch(tmp_path / "G_1.pth")
    _touch(tmp_path / "kmeans_10000.pt", mtime=1_000_000)
    newer = _touch(tmp_path / "kmeans_50.safetensors", mtime=2_000_000)
    assert find_timbre_model(model, feature_retrieval=False) == newer
    assert len(timbre_candidates(model, feature_retrieval=False)) == 2


def test_feature_index_folder_then_pickle(tmp_path: Path) -> None:
    model = _touch(tmp_path / "G_1.pth")
    pickle = _touch(tmp_path / "feature_and_index.pkl")
    assert find_timbre_model(model, feature_retrieval=True) == pickle
    other = tmp_path / "my_index"
    _touch(other / "feature_index.json")
    assert find_timbre_model(model, feature_retrieval=True) == other
    _touch(tmp_path / "feature_index" / "feature_index.json")
    assert find_timbre_model(model, feature_retrieval=True) == tmp_path / "feature_index"
    # a folder without the manifest is not an index
    assert tmp_path / "empty" not in timbre_candidates(model, feature_retrieval=True)


def test_falls_back_to_the_seed_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _touch(tmp_path / "models" / "alto" / "G_1.pth")
    assert find_timbre_model(model, feature_retrieval=False) is None
    _touch(tmp_path / "logs" / "44k" / "kmeans_10000.pt")
    assert find_timbre_model(model, feature_retrieval=False) == Path("logs/44k/kmeans_10000.pt")
    (tmp_path / "logs" / "44k" / "feature_index").mkdir()
    assert find_timbre_model(model, feature_retrieval=True) == Path("logs/44k/feature_index")
