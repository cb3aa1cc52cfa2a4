"""faiss feature retrieval: parity with so-vits-svc 4.1, edge cases, file formats, training."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError, InputError
from sovits.retrieval import index as index_module
from sovits.retrieval.index import (
    INDEX_FILE_NAME,
    FeatureIndex,
    blend_with_retrieval,
    read_feature_index,
    retrieval_weights,
    train_feature_index,
    write_feature_index,
)
from tests.retrieval.conftest import INDEX_PKL, RATIOS, SPEAKER_IDS, SPEAKERS
from tests.tolerance import INTERMEDIATE, assert_close, assert_neighbours

FLT_MAX = np.finfo(np.float32).max


def _units(query: np.ndarray) -> torch.Tensor:
    """[T, C] fixture query -> [1, C, T] units as the converter holds them."""
    return torch.from_numpy(np.ascontiguousarray(query.T))[None]


@pytest.fixture(scope="module")
def original() -> FeatureIndex:
    return read_feature_index(INDEX_PKL)


def _serialized(index: FeatureIndex, speaker_id: int) -> bytes:
    return bytes(faiss.serialize_index(index.index_of(speaker_id)).tobytes())


def test_reads_the_original_pickle(original: FeatureIndex, cluster_npz: dict) -> None:
    assert original.speaker_ids == (0, 1)
    for speaker in SPEAKERS:
        speaker_id = SPEAKER_IDS[speaker]
        faiss_index = original.index_of(speaker_id)
        assert isinstance(faiss_index, faiss.IndexIVFFlat)
        assert (faiss_index.d, faiss_index.ntotal, faiss_index.nlist) == (256, 200, 5)
        assert faiss_index.nprobe == cluster_npz[f"index_{speaker}_nprobe"]
        sizes = [faiss_index.invlists.list_size(i) for i in range(faiss_index.nlist)]
        np.testing.assert_array_equal(sizes, cluster_npz[f"index_{speaker}_list_sizes"])
        np.testing.assert_array_equal(faiss_index.quantizer.reconstruct_n(0, 5),
                                      cluster_npz[f"index_{speaker}_coarse_centroids"])
        assert original.vectors(speaker_id).shape == (200, 256)
        assert original.dim(speaker_id) == 256


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_search_and_weights_match_the_reference(original: FeatureIndex, cluster_npz: dict,
                                                speaker: str) -> None:
    scores, ids = original.search(cluster_npz["query"], SPEAKER_IDS[speaker], k=8)
    assert_neighbours(ids, scores, cluster_npz[f"retrieval_{speaker}_ix"],
                      cluster_npz[f"retrieval_{speaker}_score"], what=f"retrieval_{speaker}")
    assert_close(retrieval_weights(scores, ids), cluster_npz[f"retrieval_{speaker}_weight"],
                 INTERMEDIATE, what=f"retrieval_{speaker}_weight")


@pytest.mark.parametrize("speaker", SPEAKERS)
@pytest.mark.parametrize("ratio", RATIOS)
def test_blend_matches_the_reference(original: FeatureIndex, cluster_npz: dict,
                                     speaker: str, ratio: float) -> None:
    units = _units(cluster_npz["query"])
    blended = blend_with_retrieval(original, units, SPEAKER_IDS[speaker], ratio)
    assert blended.shape == units.shape and blended.dtype == torch.float32
    assert_close(blended, cluster_npz[f"retrieval_{speaker}_ratio{ratio}"], INTERMEDIATE,
                 what=f"retrieval_{speaker}_ratio{ratio}")
    flat = blend_with_retrieval(original, units[0], SPEAKER_IDS[speaker], ratio)
    np.testing.assert_array_equal(flat.numpy(), blended[0].numpy())


def test_short_list_pads_with_minus_one_and_weight_zero(original: FeatureIndex,
                                                        cluster_npz: dict) -> None:
    query = np.repeat(cluster_npz["short_list_query"], 2, axis=0)
    scores, ids = original.search(query, 1)
    assert_neighbours(ids[:1], scores[:1], cluster_npz["short_list_spk_b_ix"],
                      cluster_npz["short_list_spk_b_score"], what="short_list_spk_b")
    assert (ids == -1).any() and (scores[ids == -1] == FLT_MAX).all()
    weights = retrieval_weights(scores, ids)
    assert (weights[ids == -1] == 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1, rtol=1e-6)
    blended = blend_with_retrieval(original, _units(query), 1, 0.5)
    assert_close(blended, cluster_npz["short_list_retrieval_spk_b_ratio0.5"], INTERMEDIATE,
                 what="short_list_retrieval_spk_b_ratio0.5")


def test_exact_match_gives_the_stored_unit_not_nan(original: FeatureIndex,
                                                   cluster_npz: dict) -> None:
    query = cluster_npz["exact_match_query"]
    assert np.isnan(cluster_npz["exact_match_retrieval_spk_a_ratio0.5"]).all()  # the original
    scores, ids = original.search(query, 0)
    assert (scores[:, 0] == 0).all()
    weights = retrieval_weights(scores, ids)
    assert np.isfinite(weights).all()
    np.testing.assert_array_equal(weights[:, 0], 1)
    np.testing.assert_array_equal(weights[:, 1:], 0)
    for ratio in (0.5, 1.0):
        blended = blend_with_retrieval(original, _units(query), 0, ratio)
        assert torch.isfinite(blended).all()
        assert_close(blended[0], query.T, INTERMEDIATE, what="exact-match blend")


def test_weights_edge_rules() -> None:
    scores = np.array(
        [
            [0.0, 0.0, 4.0],  # two exact matches share the weight
            [1e-30, 2e-30, 4e-30],  # (1/s)^2 overflows float32
            [FLT_MAX, FLT_MAX, FLT_MAX],  # nothing found
            [1.0, 2.0, FLT_MAX],  # the reference rule
        ],
        dtype=np.float32,
    )
    ids = np.array([[3, 5, 1], [0, 1, 2], [-1, -1, -1], [7, 8, -1]])
    weights = retrieval_weights(scores, ids)
    assert np.isfinite(weights).all()
    np.testing.assert_array_equal(weights[0], [0.5, 0.5, 0])
    np.testing.assert_allclose(weights[1], np.array([1, 1 / 4, 1 / 16]) / (1 + 1 / 4 + 1 / 16),
                               rtol=1e-6)
    np.testing.assert_array_equal(weights[2], 0)
    np.testing.assert_allclose(weights[3], [0.8, 0.2, 0], rtol=1e-6)


def test_a_frame_with_no_neighbour_is_kept(monkeypatch: pytest.MonkeyPatch,
                                           original: FeatureIndex, cluster_npz: dict) -> None:
    query = cluster_npz["query"][:3]

    def nothing(self: FeatureIndex, features: np.ndarray, speaker_id: int,
                k: int = 8) -> tuple[np.ndarray, np.ndarray]:
        shape = (features.shape[0], k)
        return np.full(shape, FLT_MAX, np.float32), np.full(shape, -1, np.int64)

    monkeypatch.setattr(FeatureIndex, "search", nothing)
    blended = blend_with_retrieval(original, _units(query), 0, 0.7)
    np.testing.assert_allclose(blended[0].numpy(), query.T, rtol=0, atol=1e-6)


def test_ratio_zero_and_errors(original: FeatureIndex) -> None:
    units = torch.randn(1, 256, 4)
    assert blend_with_retrieval(original, units, 0, 0.0) is units
    with pytest.raises(InputError, match="speaker id 7"):
        blend_with_retrieval(original, units, 7, 0.5)
    with pytest.raises(InputError, match="int"):
        blend_with_retrieval(original, units, "spk_a", 0.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"\[T, 256\]"):
        blend_with_retrieval(original, torch.randn(1, 768, 4), 0, 0.5)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        blend_with_retrieval(original, units, 0, -0.1)


def test_long_inputs_are_gathered_in_blocks(monkeypatch: pytest.MonkeyPatch,
                                            original: FeatureIndex, cluster_npz: dict) -> None:
    units = _units(cluster_npz["query"])
    whole = blend_with_retrieval(original, units, 1, 0.5)
    monkeypatch.setattr(index_module, "_SEARCH_BLOCK", 7)
    np.testing.assert_array_equal(blend_with_retrieval(original, units, 1, 0.5).numpy(),
                                  whole.numpy())


def test_retraining_reproduces_the_original_file_byte_for_byte(original: FeatureIndex) -> None:
    # The fixture was made by train_index.py after np.random.seed(0): undo its shuffles.
    rng = np.random.RandomState(0)
    unshuffled = {}
    for speaker_id in (0, 1):
        stored = original.vectors(speaker_id)
        order = np.arange(len(stored))
        rng.shuffle(order)
        rows = np.empty_like(stored)
        rows[order] = stored
        unshuffled[speaker_id] = rows
    retrained = train_feature_index(unshuffled, seed=0)
    for speaker_id in (0, 1):
        assert _serialized(retrained, speaker_id) == _serialized(original, speaker_id)


@pytest.mark.parametrize("target", ["folder", "index.pkl"])
def test_write_read_round_trip(original: FeatureIndex, cluster_npz: dict, tmp_path: Path,
                               target: str) -> None:
    path = tmp_path / "out" / target
    original.speaker_names.update({0: "spk_a", 1: "spk_b"})
    try:
        write_feature_index(original, path)
    finally:
        original.speaker_names.clear()
    again = read_feature_index(path)
    assert again.speaker_ids == (0, 1)
    if target == "folder":
        assert again.speaker_names == {0: "spk_a", 1: "spk_b"}
        assert read_feature_index(path / INDEX_FILE_NAME).speaker_ids == (0, 1)
    units = _units(cluster_npz["query"])
    for speaker in SPEAKERS:
        speaker_id = SPEAKER_IDS[speaker]
        assert _serialized(again, speaker_id) == _serialized(original, speaker_id)
        # a round trip compares with what was written, bit for bit
        np.testing.assert_array_equal(
            blend_with_retrieval(again, units, speaker_id, 0.5).numpy(),
            blend_with_retrieval(original, units, speaker_id, 0.5).numpy(),
        )


def test_the_folder_format_detects_damage(original: FeatureIndex, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    write_feature_index(original, folder)
    meta = json.loads((folder / INDEX_FILE_NAME).read_text())
    assert meta["format"] == "sovits-feature-index" and meta["format_version"] == 1
    assert meta["speakers"][0] | {"sha256": ""} == {
        "id": 0, "name": None, "file": "speaker_0.faiss", "sha256": "", "dim": 256,
        "ntotal": 200, "nlist": 5, "nprobe": 1,
    }
    speaker_file = folder / "speaker_1.faiss"
    data = bytearray(speaker_file.read_bytes())
    data[-1] ^= 0xFF
    speaker_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        read_feature_index(folder)
    meta["speakers"][0]["file"] = "../escape.faiss"
    (folder / INDEX_FILE_NAME).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="file name"):
        read_feature_index(folder)
    with pytest.raises(CheckpointError, match=r"feature_index\.json"):
        read_feature_index(tmp_path)


def test_protocol0_pickles_are_read(original: FeatureIndex, tmp_path: Path) -> None:
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps({0: original.index_of(0)}, protocol=0))
    again = read_feature_index(path)
    assert _serialized(again, 0) == _serialized(original, 0)


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_feature_index(tmp_path / "missing.pkl")
    not_ivf = tmp_path / "flat.pkl"
    not_ivf.write_bytes(pickle.dumps({0: faiss.IndexFlatL2(4)}))
    with pytest.raises(CheckpointError, match="IndexFlatL2"):
        read_feature_index(not_ivf)
    string_key = tmp_path / "string_key.pkl"
    string_key.write_bytes(pickle.dumps({"spk_a": 1}))
    with pytest.raises(CheckpointError):
        read_feature_index(string_key)
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(INDEX_PKL.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        read_feature_index(truncated)


def test_damaged_index_bytes_are_a_checkpoint_error(tmp_path: Path) -> None:
    data = INDEX_PKL.read_bytes()
    start = data.index(b"IwFl")
    damaged = bytearray(data)
    damaged[start + 4 : start + 8] = (2**31 - 1).to_bytes(4, "little")  # absurd dimension
    path = tmp_path / "damaged.pkl"
    path.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError):
        read_feature_index(path)


def _speaker_features(seed: int, count: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)


def test_training_follows_the_original_rule(tmp_path: Path) -> None:
    features = {3: _speaker_features(0, 400), 5: torch.from_numpy(_speaker_features(1, 100))}
    trained = train_feature_index(features, seed=1, speaker_names={3: "x", 5: "y"})
    assert trained.speaker_ids == (3, 5)
    for speaker_id, count in ((3, 400), (5, 100)):
        faiss_index = trained.index_of(speaker_id)
        nlist = min(int(16 * np.sqrt(count)), count // 39)
        assert (faiss_index.ntotal, faiss_index.nlist, faiss_index.nprobe) == (count, nlist, 1)
    # the stored order is the seeded shuffle of the rows
    order = np.arange(400)
    np.random.RandomState(1).shuffle(order)
    np.testing.assert_array_equal(trained.vectors(3), features[3][order])
    write_feature_index(trained, tmp_path / "index")
    again = read_feature_index(tmp_path / "index")
    units = torch.from_numpy(_speaker_features(2, 6).T.copy())
    np.testing.assert_array_equal(blend_with_retrieval(again, units, 5, 0.4).numpy(),
                                  blend_with_retrieval(trained, units, 5, 0.4).numpy())
    # a unit equal to a stored one is pulled onto itself
    stored = torch.from_numpy(trained.vectors(5)[:2].T.copy())
    np.testing.assert_allclose(blend_with_retrieval(again, stored, 5, 1.0).numpy(),
                               stored.numpy(), rtol=0, atol=1e-6)


def test_training_large_sets_reduces_to_kmeans_centres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "_MAX_TRAINING_VECTORS", 300)
    monkeypatch.setattr(index_module, "_REDUCED_VECTORS", 80)
    trained = train_feature_index({0: _speaker_features(0, 400)}, seed=0)
    assert trained.index_of(0).ntotal == 80
    assert trained.index_of(0).nlist == min(int(16 * np.sqrt(80)), 80 // 39)


def test_training_errors() -> None:
    with pytest.raises(InputError, match="39"):
        train_feature_index({0: _speaker_features(0, 30)}, seed=0)
    with pytest.raises(InputError):
        train_feature_index({0: np.zeros((0, 8), np.float32)}, seed=0)
    with pytest.raises(InputError, match="integers"):
        FeatureIndex({"a": object()})  # type: ignore[dict-item]
