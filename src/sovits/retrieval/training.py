"""Training cluster models and feature indexes from a preprocessed dataset folder.

The training units are the content features `sovits preprocess` (or so-vits-svc's
preprocess_hubert_f0.py) cached beside each clip: `<dataset>/<speaker>/<clip>.wav.soft.pt`,
[1, C, T] float32, read with `sovits.features.store.load_feature` (no pickle code runs).
Each speaker's files are read in sorted order and their frames stacked into [N, C].

* k-means (`train_cluster_from_dataset`, so-vits-svc's cluster/train_cluster.py):
  every speaker folder of the dataset, keyed by folder name.
* feature index (`train_index_from_dataset`, so-vits-svc's train_index.py): every
  speaker of the model config's `spk` map, in the map's order, keyed by its id; the
  speaker's folder must exist.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sovits.data.prepare import DEFAULT_RESAMPLED_DIR
from sovits.errors import InputError
from sovits.features.store import load_feature
from sovits.retrieval.index import FeatureIndex, train_feature_index, write_feature_index
from sovits.retrieval.kmeans import ClusterModel, train_cluster_model, write_cluster_model

__all__ = [
    "CONTENT_PATTERN",
    "DEFAULT_DATASET",
    "content_files",
    "load_speaker_features",
    "speaker_folders",
    "train_cluster_from_dataset",
    "train_index_from_dataset",
]

logger = logging.getLogger(__name__)

DEFAULT_DATASET = DEFAULT_RESAMPLED_DIR
"""The preprocessed dataset folder the seed's scripts read (`dataset/44k`)."""
CONTENT_PATTERN = "*.wav.soft.pt"
"""Content-feature files of a speaker folder."""

_PREPROCESS_HINT = "run `sovits preprocess` first"


def speaker_folders(dataset: str | os.PathLike[str] = DEFAULT_DATASET) -> list[Path]:
    """The speaker folders of `dataset`, sorted (hidden ones such as
    `.ipynb_checkpoints` skipped). InputError when the folder is missing or has none."""
    root = Path(dataset)
    if not root.is_dir():
        raise InputError("dataset folder not found", where=root, hint=_PREPROCESS_HINT)
    folders = sorted(
        entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )
    if not folders:
        raise InputError("no speaker folders found (expected <speaker>/*.wav.soft.pt)",
                         where=root)
    return folders


def content_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The content-feature files `<clip>.wav.soft.pt` of one speaker folder, sorted."""
    return sorted(path for path in Path(folder).glob(CONTENT_PATTERN)
                  if path.is_file() and not path.name.startswith("."))


def load_speaker_features(folder: str | os.PathLike[str]) -> np.ndarray:
    """Every content frame of one speaker folder: [N, C] float32 (files in sorted order).

    InputError when the folder has no feature files, a file is unreadable, or the
    files disagree on C.
    """
    folder = Path(folder)
    files = content_files(folder)
    if not files:
        raise InputError(f"no content features ({CONTENT_PATTERN}) in the speaker folder",
                         where=folder, hint=_PREPROCESS_HINT)
    parts: list[np.ndarray] = []
    for path in files:
        content = load_feature("content", path)  # [C, T]
        if parts and content.shape[0] != parts[0].shape[1]:
            raise InputError(
                f"has {content.shape[0]} channels, other clips have {parts[0].shape[1]}",
                where=path, hint="preprocess the whole dataset with one speech encoder",
            )
        parts.append(content.T.numpy())
    features = np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=np.float32)
    logger.info("%s: %d frames x %d channels from %d files", folder.name, *features.shape,
                len(files))
    return features


def train_cluster_from_dataset(
    dataset: str | os.PathLike[str] = DEFAULT_DATASET,
    output: str | os.PathLike[str] | None = None,
    *,
    n_clusters: int = 10000,
    seed: int = 0,
    use_minibatch: bool = False,
    use_gpu: bool = False,
) -> ClusterModel:
    """Fit a k-means of every speaker folder of `dataset` and write it to `output`.

    See `train_cluster_model` for the options; `output` None writes nothing (the path's
    suffix picks the format, see `write_cluster_model`). Returns the model.
    """
    features = {folder.name: load_speaker_features(folder)
                for folder in speaker_folders(dataset)}
    model = train_cluster_model(features, n_clusters, seed=seed, use_minibatch=use_minibatch,
                                use_gpu=use_gpu)
    if output is not None:
        write_cluster_model(model, output)
    return model


def train_index_from_dataset(
    dataset: str | os.PathLike[str],
    speakers: Mapping[str, int],
    output: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
) -> FeatureIndex:
    """Build the feature index of every speaker of `speakers` (name -> id, the model
    config's `spk` map) from `dataset/<name>` and write it to `output`.

    See `train_feature_index`; `output` None writes nothing (a `.pkl` path gets the
    original pickle, any other a sovits folder). InputError when a speaker has no
    folder or features.
    """
    root = Path(dataset)
    if not root.is_dir():
        raise InputError("dataset folder not found", where=root, hint=_PREPROCESS_HINT)
    if not speakers:
        raise InputError("the config has no speakers (`spk` is empty)")
    missing = [name for name in speakers if not (root / name).is_dir()]
    if missing:
        raise InputError(
            f"no dataset folder for speaker(s) {', '.join(map(repr, missing))}",
            where=root, hint="the config's `spk` names must be the dataset's folder names",
        )
    ids = list(speakers.values())
    if len(set(ids)) != len(ids):
        raise InputError("two speakers share one id in the config's `spk` map")
    features = {speakers[name]: load_speaker_features(root / name) for name in speakers}
    names = {speaker_id: name for name, speaker_id in speakers.items()}
    index = train_feature_index(features, seed=seed, speaker_names=names)
    if output is not None:
        write_feature_index(index, output)
    return index
