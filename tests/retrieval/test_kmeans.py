"""k-means cluster models: parity with so-vits-svc 4.1, file formats, training."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError, InputError
from sovits.retrieval import kmeans
from sovits.retrieval.kmeans import (
    ClusterModel,
    blend_with_clusters,
    nearest_centers,
    read_cluster_model,
    train_cluster_model,
    write_cluster_model,
)
from tests.retrieval.conftest import KMEANS_PT, RATIOS, SPEAKERS
from tests.tolerance import INTERMEDIATE, assert_close


def _units(query: np.ndarray) -> torch.Tensor:
    """[T, C] fixture query -> [1, C, T] units as the converter holds them."""
    return torch.from_numpy(np.ascontiguousarray(query.T))[None]


@pytest.fixture(scope="module")
def original() -> ClusterModel:
    return read_cluster_model(KMEANS_PT)


def test_reads_the_original_file(original: ClusterModel, cluster_npz: dict) -> None:
    assert original.speakers == SPEAKERS
    for speaker in SPEAKERS:
        np.testing.assert_array_equal(original.centers[speaker],
                                      cluster_npz[f"kmeans_{speaker}_centers"])
        assert original.centers[speaker].dtype == np.float32


@pytest.mark.parametrize("speaker", SPEAKERS)
def test_labels_match_sklearn_predict(original: ClusterModel, cluster_npz: dict,
                                      speaker: str) -> None:
    labels = original.predict(cluster_npz["query"], speaker)
    np.testing.assert_array_equal(labels, cluster_npz[f"kmeans_{speaker}_labels"])


@pytest.mark.parametrize("speaker", SPEAKERS)
@pytest.mark.parametrize("ratio", RATIOS)
def test_blend_matches_the_reference(original: ClusterModel, cluster_npz: dict,
                                     speaker: str, ratio: float) -> None:
    units = _units(cluster_npz["query"])
    blended = blend_with_clusters(original, units, speaker, ratio)
    assert blended.shape == units.shape and blended.dtype == torch.float32
    expected = cluster_npz[f"kmeans_{speaker}_ratio{ratio}"]
    assert_close(blended, expected, INTERMEDIATE, what=f"kmeans_{speaker}_ratio{ratio}")
    # channels-first [C, T] gives the same numbers
    flat = blend_with_clusters(original, units[0], speaker, ratio)
    np.testing.assert_array_equal(flat.numpy(), blended[0].numpy())


def test_ratio_zero_returns_the_units_untouched(original: ClusterModel) -> None:
    units = torch.randn(1, 256, 5)
    assert blend_with_clusters(original, units, "spk_a", 0.0) is units


def test_blend_errors(original: ClusterModel) -> None:
    units = torch.randn(1, 256, 5)
    with pytest.raises(InputError, match="spk_a"):
        blend_with_clusters(original, units, "spk_c", 0.5)
    with pytest.raises(InputError, match="channels"):
        blend_with_clusters(original, torch.randn(1, 768, 5), "spk_a", 0.5)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        blend_with_clusters(original, units, "spk_a", 1.5)
    with pytest.raises(InputError, match="shape"):
        blend_with_clusters(original, torch.randn(2, 256, 5), "spk_a", 0.5)


def test_nearest_centers_in_blocks_equals_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(37, 6, generator=generator)
    centers = torch.randn(11, 6, generator=generator)
    brute = torch.cdist(features.double(), centers.double()).argmin(dim=1)
    monkeypatch.setattr(kmeans, "_DISTANCE_BLOCK", 11 * 4)  # 4 frames per block
    np.testing.assert_array_equal(nearest_centers(features, centers).numpy(), brute.numpy())
    assert nearest_centers(features[:0], centers).shape == (0,)


def _with_numpy1_names(data: bytes) -> bytes:
    """The fixture re-packed as numpy 1.x writes it (`numpy.core.multiarray`)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    target = io.BytesIO()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            content = source.read(info)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in content
                content = content.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            out.writestr(info, content)
    return target.getvalue()


def test_reads_numpy1_and_legacy_torch_files(original: ClusterModel, tmp_path: Path) -> None:
    numpy1 = tmp_path / "numpy1.pt"
    numpy1.write_bytes(_with_numpy1_names(KMEANS_PT.read_bytes()))
    legacy = tmp_path / "legacy.pt"
    layout = {name: {"n_features_in_": 256, "_n_threads": 4,
                     "cluster_centers_": np.array(centers)}
              for name, centers in original.centers.items()}
    torch.save(layout, legacy, _use_new_zipfile_serialization=False)
    for path in (numpy1, legacy):
        model = read_cluster_model(path)
        for speaker in SPEAKERS:
            np.testing.assert_array_equal(model.centers[speaker], original.centers[speaker])


@pytest.mark.parametrize("name", ["kmeans_8.safetensors", "kmeans_8.pt", "no_suffix"])
def test_write_read_round_trip(original: ClusterModel, cluster_npz: dict, tmp_path: Path,
                               name: str) -> None:
    path = tmp_path / "sub" / name
    write_cluster_model(original, path)
    again = read_cluster_model(path)
    assert again.speakers == original.speakers
    units = _units(cluster_npz["query"])
    for speaker in SPEAKERS:
        np.testing.assert_array_equal(again.centers[speaker], original.centers[speaker])
        np.testing.assert_array_equal(blend_with_clusters(again, units, speaker, 0.5).numpy(),
                                      cluster_npz[f"kmeans_{speaker}_ratio0.5"])
    assert not list(path.parent.glob(".*.tmp"))


def test_the_pt_export_has_the_original_layout(original: ClusterModel, tmp_path: Path) -> None:
    path = tmp_path / "kmeans.pt"
    write_cluster_model(original, path)
    with torch.serialization.safe_globals(kmeans._numpy_safe_globals()):
        data = torch.load(path, weights_only=True)
    assert set(data) == set(SPEAKERS)
    state = data["spk_a"]
    assert state["n_features_in_"] == 256 and isinstance(state["_n_threads"], int)
    assert isinstance(state["cluster_centers_"], np.ndarray)
    assert state["cluster_centers_"].shape == (8, 256)


def test_safetensors_speaker_names_survive(tmp_path: Path) -> None:
    model = ClusterModel({"Hatsune Miku": np.ones((2, 3)), "初音.v2": np.zeros((4, 3))})
    path = tmp_path / "names.safetensors"
    write_cluster_model(model, path)
    again = read_cluster_model(path)
    assert again.speakers == ("Hatsune Miku", "初音.v2")
    assert again.centers["初音.v2"].shape == (4, 3)


def test_model_arrays_are_read_only(original: ClusterModel) -> None:
    with pytest.raises(ValueError):
        original.centers["spk_a"][0, 0] = 1.0
    with pytest.raises(TypeError):
        original.centers["new"] = np.zeros((1, 1))  # type: ignore[index]


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_cluster_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError):
        read_cluster_model(junk)
    wrong = tmp_path / "wrong.pt"
    torch.save({"spk": {"cluster_centers_": torch.zeros(2)}}, wrong)
    with pytest.raises(CheckpointError, match="cluster_centers_"):
        read_cluster_model(wrong)
    with pytest.raises(InputError):
        ClusterModel({"spk": np.full((2, 2), np.nan)})


def _blobs(seed: int, count: int = 60, dim: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    offsets = np.array([[-5.0] * dim, [0.0] * dim, [5.0] * dim])
    return (offsets[rng.integers(0, 3, count)] + 0.1 * rng.standard_normal((count, dim))
            ).astype(np.float32)


@pytest.mark.parametrize(
    "options",
    [{}, {"use_minibatch": True}, {"use_gpu": True, "device": "cpu"}],
    ids=["kmeans", "minibatch", "torch"],
)
def test_training_finds_the_blobs(tmp_path: Path, options: dict) -> None:
    features = {"a": _blobs(0), "b": torch.from_numpy(_blobs(1))}
    model = train_cluster_model(features, 3, seed=0, **options)
    assert model.speakers == ("a", "b")
    for centers in model.centers.values():
        assert centers.shape == (3, 4)
        np.testing.assert_allclose(np.sort(centers[:, 0]), [-5, 0, 5], atol=0.1)
    again = train_cluster_model(features, 3, seed=0, **options)
    for speaker in model.speakers:  # seeded: runs repeat
        np.testing.assert_array_equal(again.centers[speaker], model.centers[speaker])
    path = tmp_path / "trained.safetensors"
    write_cluster_model(model, path)
    units = torch.from_numpy(_blobs(2, 10).T.copy())
    blended = blend_with_clusters(read_cluster_model(path), units, "a", 1.0)
    assert torch.all(blended[0].abs().sub(5).abs().lt(0.1) | blended[0].abs().lt(0.1))


def test_training_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="fewer"):
        train_cluster_model({"a": _blobs(0, 5)}, 8, seed=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA"):
        train_cluster_model({"a": _blobs(0)}, 3, seed=0, use_gpu=True)
    with pytest.raises(InputError, match="either"):
        train_cluster_model({"a": _blobs(0)}, 3, seed=0, use_gpu=True, use_minibatch=True)
