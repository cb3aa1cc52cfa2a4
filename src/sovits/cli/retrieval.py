"""`sovits train-cluster` and `sovits train-index`: timbre-leakage models from a dataset.

so-vits-svc's cluster/train_cluster.py and train_index.py, over the content features
that `sovits preprocess` cached in `dataset/44k/<speaker>/`. The seed's flags are kept
as aliases (`--root_dir`, `-c`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption

_CLUSTER_SUFFIXES = (".safetensors", ".pt", ".pth")


def _cluster_output(output: Path | None, n_clusters: int) -> Path:
    """A file path as given, or `kmeans_<n>.safetensors` inside a folder (the seed's
    `--output` was the folder)."""
    name = f"kmeans_{n_clusters}.safetensors"
    if output is None:
        return Path("logs") / "44k" / name
    if output.suffix.lower() in _CLUSTER_SUFFIXES:
        return output
    return output / name


def train_cluster(
    dataset: Annotated[
        Path, typer.Option("--dataset", help="Preprocessed dataset: <speaker>/*.wav.soft.pt.")
    ] = Path("dataset/44k"),
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (.safetensors, or .pt for so-vits-svc 4.1), or a folder "
            "for kmeans_<n>.safetensors. Default: logs/44k/kmeans_<n>.safetensors.",
        ),
    ] = None,
    n_clusters: Annotated[
        int, typer.Option("--n-clusters", min=1, help="Clusters per speaker.")
    ] = 10000,
    minibatch: Annotated[
        bool, typer.Option("--minibatch", help="MiniBatchKMeans: much faster on large sets.")
    ] = False,
    gpu: Annotated[bool, typer.Option("--gpu", help="k-means in torch on CUDA.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (runs repeat).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Fit a k-means cluster model of each speaker's content units (for -cm / -cr)."""
    from sovits.retrieval.training import train_cluster_from_dataset

    path = _cluster_output(output, n_clusters)
    params = {"dataset": dataset, "output": path, "n_clusters": n_clusters,
              "minibatch": minibatch, "gpu": gpu, "seed": seed}
    with CommandJob("train-cluster", params, as_json=as_json) as job:
        model = train_cluster_from_dataset(
            dataset, path, n_clusters=n_clusters, seed=seed, use_minibatch=minibatch,
            use_gpu=gpu,
        )
        for speaker, centers in model.centers.items():
            job.say(f"{speaker}: {centers.shape[0]} centres x {centers.shape[1]} channels")
        job.say(f"cluster model written to {job.result(path)}")


def train_index(
    dataset: Annotated[
        Path,
        typer.Option("--dataset", "--root_dir", "--root-dir",
                     help="Preprocessed dataset: <speaker>/*.wav.soft.pt."),
    ] = Path("dataset/44k"),
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="The model's config.json (its spk map gives ids)."),
    ] = Path("configs/config.json"),
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Index folder to write, or a .pkl file for so-vits-svc 4.1.",
        ),
    ] = Path("logs/44k/feature_index"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed (runs repeat).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Build the faiss feature-retrieval index of each speaker (for -cm with -fr)."""
    from sovits.config import load_svc_config
    from sovits.retrieval.training import train_index_from_dataset

    params = {"dataset": dataset, "config": config, "output": output, "seed": seed}
    with CommandJob("train-index", params, as_json=as_json) as job:
        speakers = load_svc_config(config).spk
        index = train_index_from_dataset(dataset, speakers, output, seed=seed)
        for speaker_id in index.speaker_ids:
            faiss_index = index.index_of(speaker_id)
            name = index.speaker_names.get(speaker_id, "")
            job.say(
                f"{name} (id {speaker_id}): {faiss_index.ntotal} vectors, "
                f"{faiss_index.nlist} lists"
            )
        job.say(f"feature index written to {job.result(output)}")


def register(app: typer.Typer) -> None:
    """Add `train-cluster` and `train-index` to `app`."""
    app.command("train-cluster")(train_cluster)
    app.command("train-index")(train_index)
