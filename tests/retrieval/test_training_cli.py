"""Training from a preprocessed dataset folder, and `sovits train-cluster` / `train-index`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from sovits.cli.retrieval import register
from sovits.config import save_svc_config, template_config
from sovits.errors import InputError
from sovits.features.store import encode_feature
from sovits.retrieval.index import blend_with_retrieval, read_feature_index
from sovits.retrieval.kmeans import blend_with_clusters, read_cluster_model
from sovits.retrieval.training import (
    load_speaker_features,
    speaker_folders,
    train_cluster_from_dataset,
    train_index_from_dataset,
)

DIM = 8


def _write_clip(folder: Path, name: str, frames: int, seed: int) -> np.ndarray:
    """A `<name>.wav.soft.pt` of [1, DIM, frames] units; returns them as [frames, DIM]."""
    units = torch.from_numpy(
        np.random.default_rng(seed).standard_normal((DIM, frames)).astype(np.float32)
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.wav.soft.pt").write_bytes(encode_feature("content", units))
    return units.T.numpy()


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset" / "44k"
    _write_clip(root / "bob", "b1", 40, 3)
    _write_clip(root / "alice", "a2", 30, 2)
    _write_clip(root / "alice", "a1", 50, 1)
    # the original's own layout: a torch.save of [1, C, T]
    torch.save(torch.zeros(1, DIM, 5), root / "bob" / "b0.wav.soft.pt")
    (root / ".ipynb_checkpoints").mkdir()
    (root / "alice" / "a1.wav.f0.npy").write_bytes(b"ignored")
    return root


def test_features_are_gathered_per_speaker_in_file_order(dataset: Path) -> None:
    assert [folder.name for folder in speaker_folders(dataset)] == ["alice", "bob"]
    alice = load_speaker_features(dataset / "alice")
    first = np.random.default_rng(1).standard_normal((DIM, 50)).astype(np.float32).T
    assert alice.shape == (80, DIM) and alice.dtype == np.float32
    np.testing.assert_array_equal(alice[:50], first)  # a1 before a2
    bob = load_speaker_features(dataset / "bob")
    assert bob.shape == (45, DIM)
    np.testing.assert_array_equal(bob[:5], 0)  # b0 (original layout) before b1


def test_gathering_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        speaker_folders(tmp_path / "nowhere")
    (dataset / "carol").mkdir()
    with pytest.raises(InputError, match="no content features"):
        load_speaker_features(dataset / "carol")
    _write_clip(dataset / "carol", "c1", 5, 0)
    torch.save(torch.zeros(1, DIM + 1, 5), dataset / "carol" / "c2.wav.soft.pt")
    with pytest.raises(InputError, match="channels"):
        load_speaker_features(dataset / "carol")


def test_train_from_dataset(dataset: Path, tmp_path: Path) -> None:
    model = train_cluster_from_dataset(dataset, tmp_path / "km.safetensors", n_clusters=4,
                                       seed=0)
    assert model.speakers == ("alice", "bob")
    assert read_cluster_model(tmp_path / "km.safetensors").centers["bob"].shape == (4, DIM)
    index = train_index_from_dataset(dataset, {"bob": 1, "alice": 0}, tmp_path / "ix", seed=0)
    assert index.speaker_ids == (1, 0)  # the config's order, as train_index.py
    assert index.speaker_names == {1: "bob", 0: "alice"}
    assert read_feature_index(tmp_path / "ix").index_of(0).ntotal == 80
    with pytest.raises(InputError, match="'dave'"):
        train_index_from_dataset(dataset, {"dave": 0}, None)
    with pytest.raises(InputError, match="share"):
        train_index_from_dataset(dataset, {"alice": 0, "bob": 0}, None)


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_train_cluster_with_the_seed_defaults(dataset: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(dataset.parent.parent)
    result = CliRunner().invoke(_app(), ["train-cluster", "--n-clusters", "4"])
    assert result.exit_code == 0, result.output
    assert "alice: 4 centres x 8 channels" in result.output
    path = Path("logs/44k/kmeans_4.safetensors")
    model = read_cluster_model(path)
    units = torch.randn(1, DIM, 3)
    assert blend_with_clusters(model, units, "alice", 0.5).shape == units.shape
    # the seed's --output was a folder; a .pt file gets so-vits-svc's layout
    result = CliRunner().invoke(
        _app(), ["train-cluster", "--n-clusters", "3", "--output", "out", "--minibatch"]
    )
    assert result.exit_code == 0, result.output
    assert read_cluster_model("out/kmeans_3.safetensors").centers["bob"].shape == (3, DIM)
    result = CliRunner().invoke(_app(), ["train-cluster", "--n-clusters", "3", "-o", "k.pt"])
    assert result.exit_code == 0, result.output
    assert read_cluster_model("k.pt").speakers == ("alice", "bob")


def test_cli_train_cluster_errors(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["train-cluster", "--dataset", str(dataset), "--n-clusters", "1000",
                 "-o", str(tmp_path / "k.safetensors")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert "fewer than the 1000 clusters" in str(result.exception)
    assert not (tmp_path / "k.safetensors").exists()


def test_cli_train_index(dataset: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(template_config(tiny=True), spk={"alice": 0, "bob": 1})
    config_path = tmp_path / "config.json"
    save_svc_config(config, config_path)
    output = tmp_path / "logs" / "feature_index"
    result = CliRunner().invoke(
        _app(),
        ["train-index", "--root_dir", str(dataset), "-c", str(config_path),
         "--output", str(output), "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "alice (id 0): 80 vectors, 2 lists" in result.output
    assert "bob (id 1): 45 vectors, 1 lists" in result.output
    index = read_feature_index(output)
    units = torch.randn(1, DIM, 4)
    blended = blend_with_retrieval(index, units, 1, 0.5)
    assert blended.shape == units.shape and torch.isfinite(blended).all()
    # a .pkl output is the original's pickle, which sovits reads back
    pkl = tmp_path / "feature_and_index.pkl"
    result = CliRunner().invoke(
        _app(), ["train-index", "--dataset", str(dataset), "-c", str(config_path),
                 "-o", str(pkl), "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    again = read_feature_index(pkl)
    np.testing.assert_array_equal(again.vectors(0), index.vectors(0))


def test_cli_json_prints_the_api_job_object(dataset: Path, tmp_path: Path) -> None:
    import json

    output = tmp_path / "k.safetensors"
    result = CliRunner().invoke(
        _app(), ["train-cluster", "--dataset", str(dataset), "--n-clusters", "2",
                 "-o", str(output), "--json"]
    )
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert (view["kind"], view["state"], view["error"]) == ("train-cluster", "done", None)
    assert view["results"] == [str(output.resolve())]
    assert view["params"]["n_clusters"] == 2
    assert "alice: 2 centres x 8 channels" in view["log"]
    result = CliRunner().invoke(
        _app(), ["train-index", "--dataset", str(dataset), "-c", str(tmp_path / "none.json"),
                 "-o", str(tmp_path / "index"), "--json"]
    )
    assert result.exit_code == 2
    view = json.loads(result.output)
    assert view["state"] == "failed" and view["error"]["code"] == "config"
