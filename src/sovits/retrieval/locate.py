"""Finding the cluster model or feature index that belongs to a model.

`sovits train-cluster` writes `kmeans_<n>.safetensors` (or `.pt`) and `sovits
train-index` a `feature_index/` folder (or so-vits-svc 4.1's `feature_and_index.pkl`).
When a user converts with a cluster ratio (-cr) but names no file (-cm), sovits looks
for what was written next to the model first (whatever the cluster count), then at the
seed's fixed defaults under `logs/44k/` (relative to the working folder).
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = [
    "CLUSTER_PATTERNS",
    "DEFAULT_CLUSTER_MODELS",
    "DEFAULT_INDEXES",
    "find_timbre_model",
    "timbre_candidates",
]

logger = logging.getLogger(__name__)

CLUSTER_PATTERNS = ("kmeans_*.safetensors", "kmeans_*.pt", "kmeans_*.pth")
"""Names of cluster models `train-cluster` (or so-vits-svc's train_cluster.py) writes."""
DEFAULT_CLUSTER_MODELS = (
    Path("logs/44k/kmeans_10000.safetensors"),
    Path("logs/44k/kmeans_10000.pt"),
)
"""The seed's fixed defaults for -cm (sovits's format, then the original's)."""
DEFAULT_INDEXES = (Path("logs/44k/feature_index"), Path("logs/44k/feature_and_index.pkl"))
"""The same for a feature index (-fr)."""

_INDEX_FILE_NAME = "feature_index.json"
"""The manifest inside a sovits index folder (`sovits.retrieval.index.INDEX_FILE_NAME`)."""


def _model_folder(model_path: Path) -> Path:
    """The folder a model lives in: the path itself when it is a folder."""
    return model_path if model_path.is_dir() else model_path.parent


def _newest_first(paths: list[Path]) -> list[Path]:
    """Most recently written first (the latest `train-cluster` run wins), then by name."""
    return sorted(paths, key=lambda path: (-path.stat().st_mtime, path.name))


def _cluster_models(folder: Path) -> list[Path]:
    found = {
        path for pattern in CLUSTER_PATTERNS for path in folder.glob(pattern) if path.is_file()
    }
    return _newest_first(list(found))


def _indexes(folder: Path) -> list[Path]:
    preferred = folder / "feature_index"
    folders = [preferred] if (preferred / _INDEX_FILE_NAME).is_file() else []
    others = [
        entry for entry in folder.iterdir()
        if entry.is_dir() and entry != preferred and (entry / _INDEX_FILE_NAME).is_file()
    ] if folder.is_dir() else []
    pickle = folder / "feature_and_index.pkl"
    return folders + _newest_first(others) + ([pickle] if pickle.is_file() else [])


def timbre_candidates(model_path: Path, *, feature_retrieval: bool) -> list[Path]:
    """Every cluster model (or, with `feature_retrieval`, feature index) found next to
    `model_path` (a model file or its folder), best first. `inspect` lists these."""
    folder = _model_folder(Path(model_path))
    if not folder.is_dir():
        return []
    return _indexes(folder) if feature_retrieval else _cluster_models(folder)


def find_timbre_model(model_path: Path, *, feature_retrieval: bool) -> Path | None:
    """The cluster model (or feature index, with `feature_retrieval`) to use with the
    model at `model_path` when the user names none, or None when there is none.

    Looks next to the model first: any `kmeans_*.safetensors` / `kmeans_*.pt`
    (`train-cluster --n-clusters N` writes `kmeans_N...`; the newest wins), or a
    `feature_index/` folder (any folder holding `feature_index.json`) then
    `feature_and_index.pkl`; then the seed's defaults under `logs/44k/`.
    """
    found = timbre_candidates(model_path, feature_retrieval=feature_retrieval)
    if found:
        if len(found) > 1:
            logger.info("several %s next to the model; using %s",
                        "feature indexes" if feature_retrieval else "cluster models", found[0])
        return found[0]
    defaults = DEFAULT_INDEXES if feature_retrieval else DEFAULT_CLUSTER_MODELS
    return next((path for path in defaults if path.exists()), None)
