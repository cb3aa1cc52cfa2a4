"""k-means cluster models: per-speaker centres, their files, training, and the unit blend.

A cluster model holds, for each speaker NAME (the dataset folder name, as in
so-vits-svc 4.1), the centres [K, C] float32 of a k-means over that speaker's content
units. At conversion the units are pulled towards the speaker's centres:

    label_t = argmin_k ||x_t - centre_k||,   x'_t = r * centre[label_t] + (1 - r) * x_t

Files read (`read_cluster_model`, told apart by their bytes, not their names):

* so-vits-svc 4.1's `kmeans_10000.pt`: a torch pickle of
  `{speaker: {"n_features_in_": int, "_n_threads": int, "cluster_centers_": ndarray}}`.
  The numpy arrays in it need numpy's rebuild helpers, so a plain
  `torch.load(weights_only=True)` refuses the file and the original's
  `torch.load(weights_only=False)` would run any code the pickle names. It is loaded
  with `weights_only=True` and only the numpy helpers allowed (`_reconstruct` under
  its numpy 1.x and 2.x module names, `ndarray`, `dtype`, the float dtype classes,
  `scalar`); any other global stops the load with a CheckpointError before it is
  called. Nothing needs to be opted into.
* sovits's own format, a safetensors file (`.safetensors`): one tensor
  `centers.<i>` [K, C] float32 per speaker, and in the header metadata
  `format` = "sovits-kmeans", `format_version` = "1" and `speakers` = the JSON list of
  speaker names, the i-th name owning `centers.<i>`. Loading it runs no code.

`write_cluster_model` writes the safetensors format, or the original's `.pt` layout
when the path ends in `.pt` / `.pth` (for so-vits-svc 4.1 itself to read).
"""

from __future__ import annotations

import difflib
import io
import json
import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sovits.errors import CheckpointError, InputError, missing_extra
from sovits.files import atomic_write

__all__ = [
    "CLUSTER_FORMAT",
    "CLUSTER_FORMAT_VERSION",
    "ClusterModel",
    "blend_with_clusters",
    "nearest_centers",
    "read_cluster_model",
    "train_cluster_model",
    "write_cluster_model",
]

logger = logging.getLogger(__name__)

CLUSTER_FORMAT = "sovits-kmeans"
CLUSTER_FORMAT_VERSION = "1"

_DISTANCE_BLOCK = 1 << 22
"""Most elements of the [frames, K] float64 distance block computed at once (32 MiB)."""

_GPU_MAX_ITER = 500
_GPU_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True, eq=False)
class ClusterModel:
    """Per-speaker k-means centres.

    centers: speaker name -> centres [K, C] float32 (K may differ between speakers;
    C is the content-unit dimension). The arrays are copied and made read-only.
    """

    centers: Mapping[str, np.ndarray]
    _tensors: Mapping[str, Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.centers:
            raise InputError("a cluster model needs at least one speaker")
        checked: dict[str, np.ndarray] = {}
        tensors: dict[str, Tensor] = {}
        for name, value in self.centers.items():
            if not isinstance(name, str):
                raise InputError(f"cluster speaker names must be strings, got {name!r}")
            array = np.asarray(value)
            if array.dtype.kind != "f" or array.ndim != 2 or 0 in array.shape:
                raise InputError(
                    f"centres of speaker {name!r} must be a non-empty float [K, C] array, "
                    f"got {array.dtype} {list(array.shape)}"
                )
            tensor = torch.tensor(array, dtype=torch.float32)
            if not torch.isfinite(tensor).all():
                raise InputError(f"centres of speaker {name!r} hold NaN or infinite values")
            view = tensor.numpy()
            view.setflags(write=False)
            checked[name] = view
            tensors[name] = tensor
        object.__setattr__(self, "centers", MappingProxyType(checked))
        object.__setattr__(self, "_tensors", MappingProxyType(tensors))

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speaker names, in file order."""
        return tuple(self.centers)

    def centers_of(self, speaker: str) -> np.ndarray:
        """Centres [K, C] float32 of `speaker` (InputError naming close names if unknown)."""
        self.center_tensor(speaker)  # the error for unknown speakers
        return self.centers[speaker]

    def center_tensor(self, speaker: str) -> Tensor:
        """Centres [K, C] float32 of `speaker` as a CPU tensor (do not modify it)."""
        try:
            return self._tensors[speaker]
        except KeyError:
            close = difflib.get_close_matches(str(speaker), list(self.centers), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else None
            raise InputError(
                f"speaker {speaker!r} is not in the cluster model "
                f"(it has {', '.join(map(repr, self.centers))})",
                hint=hint,
            ) from None

    def predict(self, features: Tensor | np.ndarray, speaker: str) -> np.ndarray:
        """Nearest-centre labels int64 [T] of `features` [T, C] for `speaker`."""
        centers = self.center_tensor(speaker)
        labels = nearest_centers(torch.as_tensor(features, dtype=torch.float32), centers)
        result: np.ndarray = labels.cpu().numpy()
        return result


def nearest_centers(features: Tensor, centers: Tensor) -> Tensor:
    """Index int64 [T] of the nearest centre (L2) to each row of `features` [T, C].

    `centers` [K, C]. The squared distances are formed in float64 (as
    ||c||^2 - 2 x.c, the same argmin as sklearn's `KMeans.predict`) in blocks of rows,
    so no [T, K] matrix is held at once for long inputs. Ties go to the lowest index.
    Runs on the device of `features`.
    """
    if features.dim() != 2 or centers.dim() != 2 or features.shape[1] != centers.shape[1]:
        raise InputError(
            f"features [T, C] and centres [K, C] do not fit: "
            f"{list(features.shape)} vs {list(centers.shape)}"
        )
    centers64 = centers.to(features.device, torch.float64)
    center_norms = (centers64 * centers64).sum(dim=1)
    rows = max(1, _DISTANCE_BLOCK // max(1, centers64.shape[0]))
    labels = []
    for start in range(0, features.shape[0], rows):
        block = features[start : start + rows].to(torch.float64)
        distances = center_norms[None, :] - 2.0 * (block @ centers64.T)
        labels.append(distances.argmin(dim=1))
    if not labels:
        return torch.zeros(0, dtype=torch.int64, device=features.device)
    return torch.cat(labels)


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise InputError(f"the cluster / retrieval ratio must be in [0, 1], got {ratio}")


def _channels_first(units: Tensor) -> Tensor:
    """[C, T] view of `units` given as [C, T] or [1, C, T]."""
    if units.dim() == 3 and units.shape[0] == 1:
        return units[0]
    if units.dim() == 2:
        return units
    raise InputError(f"units must be [C, T] or [1, C, T], got shape {list(units.shape)}")


def blend_with_clusters(
    model: ClusterModel, units: Tensor, speaker: str, ratio: float
) -> Tensor:
    """Pull content units towards the nearest k-means centres of `speaker`.

    units: [C, T] or [1, C, T] (channels first, frames at the f0 frame rate), any
    device. Returns the same shape, dtype and device:
    `ratio * centre[label] + (1 - ratio) * units`, computed in float32 in the
    original's order (so it matches so-vits-svc 4.1 bit for bit). ratio 0 returns
    `units` itself, as the original skips the step. InputError for an unknown speaker,
    a unit dimension that differs from the centres', or a ratio outside [0, 1].
    """
    _check_ratio(ratio)
    if ratio == 0:
        return units
    frames_first = _channels_first(units)
    centers = model.center_tensor(speaker).to(units.device)
    if centers.shape[1] != frames_first.shape[0]:
        raise InputError(
            f"the units have {frames_first.shape[0]} channels but the cluster model of "
            f"{speaker!r} has {centers.shape[1]}",
            hint="use a cluster model trained on features of the model's speech encoder",
        )
    source = frames_first.to(torch.float32)
    labels = nearest_centers(source.T, centers)
    cluster_units = centers[labels].T
    blended = ratio * cluster_units + (1 - ratio) * source
    return blended.to(units.dtype).reshape(units.shape)


# --------------------------------------------------------------------------- reading


def _numpy_safe_globals() -> list[Any]:
    """The numpy rebuild helpers a pickled float ndarray needs, under every module name
    numpy 1.x and 2.x pickles them with."""
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float32(0).__reduce__()[0]
    allowed: list[Any] = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((reconstruct, f"{module}._reconstruct"))
        allowed.append((scalar, f"{module}.scalar"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    if dtypes is not None:
        for name in ("Float16DType", "Float32DType", "Float64DType", "Int32DType", "Int64DType"):
            if hasattr(dtypes, name):
                allowed.append(getattr(dtypes, name))
    return allowed


def _is_safetensors(head: bytes) -> bool:
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1


def _read_original(path: Path) -> ClusterModel:
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load the cluster model: it asks for code sovits does not run "
            f"({str(error).splitlines()[0]})",
            where=path,
            hint="only so-vits-svc k-means files (numpy centres) are accepted; "
            "retrain with `sovits train-cluster` if the file is not trusted",
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"cannot read the cluster model ({error})", where=path) from None
    if not isinstance(data, Mapping) or not data:
        raise CheckpointError(
            f"expected a dict of speaker -> k-means state, got {type(data).__name__}",
            where=path,
        )
    centers: dict[str, np.ndarray] = {}
    for speaker, state in data.items():
        if not isinstance(speaker, str) or not isinstance(state, Mapping):
            raise CheckpointError(
                f"entry {speaker!r} is not speaker name -> k-means state", where=path
            )
        value = state.get("cluster_centers_")
        if isinstance(value, Tensor):
            value = value.numpy()
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.ndim != 2:
            raise CheckpointError(
                f"speaker {speaker!r} has no float [K, C] 'cluster_centers_'", where=path
            )
        features_in = state.get("n_features_in_")
        if features_in is not None and int(features_in) != value.shape[1]:
            raise CheckpointError(
                f"speaker {speaker!r}: n_features_in_ {features_in} != centre width "
                f"{value.shape[1]}",
                where=path,
            )
        centers[speaker] = value
    try:
        return ClusterModel(centers)
    except InputError as error:
        raise CheckpointError(error.message, where=path) from None


def _read_safetensors(path: Path) -> ClusterModel:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            keys = set(handle.keys())
            if metadata.get("format") != CLUSTER_FORMAT:
                raise CheckpointError(
                    f"not a sovits cluster model (format {metadata.get('format')!r})",
                    where=path,
                )
            if metadata.get("format_version") != CLUSTER_FORMAT_VERSION:
                raise CheckpointError(
                    f"unsupported cluster model version {metadata.get('format_version')!r}",
                    where=path,
                    hint="upgrade sovits",
                )
            speakers = json.loads(metadata.get("speakers", "null"))
            if not isinstance(speakers, list) or not all(isinstance(s, str) for s in speakers):
                raise CheckpointError("the 'speakers' metadata is not a list of names",
                                      where=path)
            expected = {f"centers.{index}" for index in range(len(speakers))}
            if keys != expected:
                raise CheckpointError(
                    f"tensors {sorted(keys)} do not match the {len(speakers)} speakers",
                    where=path,
                )
            centers = {
                name: handle.get_tensor(f"centers.{index}") for index, name in
                enumerate(speakers)
            }
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read the cluster model ({error})", where=path) from None
    if len(centers) != len(speakers):
        raise CheckpointError("speaker names repeat", where=path)
    try:
        return ClusterModel(centers)
    except InputError as error:
        raise CheckpointError(error.message, where=path) from None


def read_cluster_model(path: str | os.PathLike[str]) -> ClusterModel:
    """Read a cluster model: so-vits-svc's `kmeans_10000.pt` or sovits's safetensors.

    The format is told from the file's bytes. Neither runs code from the file (see the
    module doc). CheckpointError when the file is missing, damaged, or asks the
    unpickler for anything but numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("cluster model file not found", where=path,
                              hint="train one with `sovits train-cluster`")
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise CheckpointError(f"cannot read the cluster model ({error})", where=path) from None
    if _is_safetensors(head):
        return _read_safetensors(path)
    return _read_original(path)


# --------------------------------------------------------------------------- writing


def write_cluster_model(model: ClusterModel, path: str | os.PathLike[str]) -> None:
    """Write `model` atomically.

    A path ending in `.pt` / `.pth` gets so-vits-svc 4.1's layout (a torch pickle
    holding numpy arrays, for the original to read); any other gets sovits's
    safetensors format (the module doc). The parent folder is created.
    CheckpointError if the file cannot be written.
    """
    path = Path(path)
    if path.suffix.lower() in (".pt", ".pth"):
        original = {
            name: {
                "n_features_in_": int(centers.shape[1]),
                "_n_threads": int(os.cpu_count() or 1),
                "cluster_centers_": np.array(centers),
            }
            for name, centers in model.centers.items()
        }
        buffer = io.BytesIO()
        torch.save(original, buffer)
        data = buffer.getvalue()
    else:
        from safetensors.numpy import save

        tensors = {f"centers.{index}": np.array(centers) for index, centers in
                   enumerate(model.centers.values())}
        metadata = {
            "format": CLUSTER_FORMAT,
            "format_version": CLUSTER_FORMAT_VERSION,
            "speakers": json.dumps(list(model.centers), ensure_ascii=False),
        }
        data = save(tensors, metadata=metadata)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(data))
    except OSError as error:
        raise CheckpointError(f"cannot write the cluster model ({error})", where=path) from None


# --------------------------------------------------------------------------- training


def _kmeans_plus_plus(data: Tensor, n_clusters: int, *, seed: int) -> Tensor:
    """k-means++ seeding: `n_clusters` rows of `data` [N, C], each drawn with
    probability proportional to its squared distance to the nearest row drawn before."""
    generator = torch.Generator(device=data.device).manual_seed(seed)
    count = data.shape[0]
    centers = torch.empty((n_clusters, data.shape[1]), dtype=data.dtype, device=data.device)
    first = torch.randint(count, (1,), generator=generator, device=data.device)
    centers[0] = data[first[0]]
    closest = (data - centers[0]).pow(2).sum(dim=1).double()
    for number in range(1, n_clusters):
        cumulative = closest.cumsum(0)
        draw = torch.rand(1, generator=generator, device=data.device, dtype=torch.float64)
        pick = torch.searchsorted(cumulative, draw * cumulative[-1], right=True)
        pick = pick.clamp(max=count - 1)
        centers[number] = data[pick[0]]
        distance = (data - centers[number]).pow(2).sum(dim=1).double()
        closest = torch.minimum(closest, distance)
    return centers


def _torch_kmeans(
    features: np.ndarray,
    n_clusters: int,
    *,
    seed: int,
    device: str,
    max_iter: int = _GPU_MAX_ITER,
    tolerance: float = _GPU_TOLERANCE,
) -> np.ndarray:
    """Lloyd's k-means in torch on `device`: centres [K, C] float32.

    Starts from k-means++ seeding drawn with `seed` (so-vits-svc's GPU k-means starts
    from random rows, which often leaves clusters empty); stops when the largest centre
    moves less than `tolerance` times the data's RMS norm, or after `max_iter` rounds.
    A cluster left empty keeps its centre.
    """
    data = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
    centers = _kmeans_plus_plus(data, n_clusters, seed=seed)
    scale = float(data.pow(2).sum(dim=1).mean().sqrt()) or 1.0
    for _ in range(max_iter):
        labels = nearest_centers(data, centers)
        sums = torch.zeros_like(centers).index_add_(0, labels, data)
        counts = torch.bincount(labels, minlength=n_clusters).to(data.dtype)
        filled = counts > 0
        updated = centers.clone()
        updated[filled] = sums[filled] / counts[filled, None]
        shift = float((updated - centers).norm(dim=1).max())
        centers = updated
        if shift <= tolerance * scale:
            break
    result: np.ndarray = centers.cpu().numpy().astype(np.float32)
    return result


def train_cluster_model(
    features_by_speaker: Mapping[str, np.ndarray | Tensor],
    n_clusters: int = 10000,
    *,
    seed: int = 0,
    use_minibatch: bool = False,
    use_gpu: bool = False,
    device: str | None = None,
) -> ClusterModel:
    """Fit k-means to each speaker's content features.

    features_by_speaker: speaker name -> features [N, C] (frames x channels).
    The default is scikit-learn's `KMeans(n_clusters)` as so-vits-svc's
    `train_cluster.py` runs it (seeded here with `seed`); `use_minibatch` takes
    `MiniBatchKMeans(batch_size=4096, max_iter=80)` (much faster on large sets);
    `use_gpu` runs Lloyd's k-means in torch on CUDA (InputError without a CUDA device;
    `device` overrides the device, e.g. "cpu" for tests). Speakers get seeds
    `seed`, `seed + 1`, ... in order. InputError when a speaker has fewer frames than
    `n_clusters`.
    """
    if n_clusters < 1:
        raise InputError(f"n_clusters must be positive, got {n_clusters}")
    if use_gpu and use_minibatch:
        raise InputError("choose either the GPU k-means or the mini-batch k-means, not both")
    if use_gpu and device is None:
        if not torch.cuda.is_available():
            raise InputError(
                "--gpu asks for CUDA, but torch sees no CUDA device",
                hint="run without --gpu (scikit-learn on the CPU)",
            )
        device = "cuda"
    centers: dict[str, np.ndarray] = {}
    for offset, (speaker, value) in enumerate(features_by_speaker.items()):
        features = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise InputError(f"features of {speaker!r} must be [N, C], got {features.shape}")
        if features.shape[0] < n_clusters:
            raise InputError(
                f"speaker {speaker!r} has {features.shape[0]} frames, fewer than the "
                f"{n_clusters} clusters asked for",
                hint="use fewer clusters (--n-clusters) or more data",
            )
        logger.info("k-means of %s: %d frames x %d channels -> %d clusters",
                    speaker, features.shape[0], features.shape[1], n_clusters)
        speaker_seed = seed + offset
        if use_gpu or device is not None:
            centers[speaker] = _torch_kmeans(
                features, n_clusters, seed=speaker_seed, device=device or "cuda"
            )
            continue
        try:
            from sklearn.cluster import KMeans, MiniBatchKMeans
        except ImportError as error:
            raise missing_extra("scikit-learn", "retrieval", "training a cluster model") from error

        estimator: Any
        if use_minibatch:
            estimator = MiniBatchKMeans(
                n_clusters=n_clusters, batch_size=4096, max_iter=80, random_state=speaker_seed
            )
        else:
            estimator = KMeans(n_clusters=n_clusters, random_state=speaker_seed)
        centers[speaker] = np.asarray(estimator.fit(features).cluster_centers_, np.float32)
    return ClusterModel(centers)
