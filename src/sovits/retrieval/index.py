"""faiss feature retrieval: per-speaker IVF-Flat indexes, their files, training, and the blend.

A feature index holds, for each speaker ID (the value of the config's `spk` map, as in
so-vits-svc 4.1), a faiss `IndexIVFFlat` over that speaker's training units. At
conversion each frame is replaced in part by a weighted mean of its k nearest stored
units (squared-L2 scores s_j, weights (1/s_j)^2 normalised per frame):

    x'_t = r * sum_j w_tj * stored[id_tj] + (1 - r) * x_t

Files read (`read_feature_index`):

* so-vits-svc 4.1's `feature_and_index.pkl`: a plain pickle of `{speaker_id: index}`,
  each index pickled as faiss's `IndexIVFFlat` class with the state
  `{"this": faiss.serialize_index(index)}`. Unpickling it normally would run any code
  the file names. It is read with a restricted unpickler: the faiss `IndexIVFFlat`
  class (under the module names `faiss`, `faiss.swigfaiss`, `faiss.swigfaiss_avx2`,
  `faiss.swigfaiss_avx512`, ...) becomes an inert holder that only keeps the state's
  bytes, and every other global is refused before it can be called. The bytes are then
  handed to `faiss.deserialize_index`, a binary parser that runs no Python. So reading
  the original file runs no code from it, and needs no opt-in.
* sovits's own format, a folder holding `feature_index.json` and one faiss native
  index file per speaker (`speaker_<id>.faiss`, as `faiss.write_index` writes it). The
  JSON holds `format` ("sovits-feature-index"), `format_version` (1) and per speaker
  its `id`, `name` (or null), `file`, `sha256` of the file, `dim`, `ntotal`, `nlist`
  and `nprobe`; every field is checked against the index on reading.

`write_feature_index` writes the folder, or the original's pickle when the path ends in
`.pkl` (for so-vits-svc 4.1 itself to read).

Exact matches: the original's weights (1/0)^2 / inf are NaN when a frame equals a stored
unit. sovits gives such a frame's weight to its exact matches (shared equally), so the
retrieved unit is the matching stored unit. Likewise, a frame whose weights overflow or
underflow float32 is weighted in float64, and a frame with no neighbour at all (the
probed list is empty) keeps its own unit. Every other frame gets the original's
numbers bit for bit.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np
import torch
from torch import Tensor

from sovits.errors import CheckpointError, InputError, missing_extra
from sovits.files import atomic_write

__all__ = [
    "INDEX_FILE_NAME",
    "INDEX_FORMAT",
    "INDEX_FORMAT_VERSION",
    "FeatureIndex",
    "blend_with_retrieval",
    "read_feature_index",
    "retrieval_weights",
    "train_feature_index",
    "write_feature_index",
]

logger = logging.getLogger(__name__)

INDEX_FORMAT = "sovits-feature-index"
INDEX_FORMAT_VERSION = 1
INDEX_FILE_NAME = "feature_index.json"
"""Name of the JSON file in a sovits feature-index folder."""

_IVF_FLAT_FOURCC = b"IwFl"
_FAISS_MODULE = re.compile(r"faiss(\.swigfaiss\w*)?")
_ADD_BATCH = 8192
_MAX_TRAINING_VECTORS = 200_000
_REDUCED_VECTORS = 10_000
_SEARCH_BLOCK = 1024
"""Frames whose neighbours are gathered at once ([block, k, C] float32)."""


# --------------------------------------------------------------------------- the index


def _faiss() -> Any:
    """The faiss module, or MissingExtraError naming `pip install "sovits[retrieval]"`."""
    try:
        import faiss
    except ImportError as error:
        raise missing_extra("faiss-cpu", "retrieval", "feature retrieval") from error
    return faiss


def _minibatch_kmeans() -> Any:
    """sklearn's MiniBatchKMeans, or MissingExtraError naming the retrieval extra."""
    try:
        from sklearn.cluster import MiniBatchKMeans
    except ImportError as error:
        raise missing_extra("scikit-learn", "retrieval", "reducing a large index") from error
    return MiniBatchKMeans


def _check_ivf_flat(index: Any, what: str) -> None:
    faiss = _faiss()
    if not isinstance(index, faiss.IndexIVFFlat):
        raise InputError(f"{what} is a {type(index).__name__}, not a faiss IndexIVFFlat")
    if index.metric_type != faiss.METRIC_L2:
        raise InputError(f"{what} does not use the L2 metric")
    if not index.is_trained or index.ntotal < 1:
        raise InputError(f"{what} is untrained or empty")


class FeatureIndex:
    """Per-speaker faiss IVF-Flat indexes of training units.

    indexes: speaker id -> faiss `IndexIVFFlat` (L2, trained, non-empty).
    speaker_names: optional speaker id -> name, kept in sovits's file format.
    The stored units of a speaker are reconstructed once, on first use.
    """

    def __init__(
        self,
        indexes: Mapping[int, Any],
        *,
        speaker_names: Mapping[int, str] | None = None,
    ):
        if not indexes:
            raise InputError("a feature index needs at least one speaker")
        self._indexes: dict[int, Any] = {}
        for speaker_id, index in indexes.items():
            if isinstance(speaker_id, bool) or not isinstance(speaker_id, (int, np.integer)):
                raise InputError(f"speaker ids must be integers, got {speaker_id!r}")
            _check_ivf_flat(index, f"the index of speaker {speaker_id}")
            self._indexes[int(speaker_id)] = index
        names = dict(speaker_names or {})
        unknown = set(names) - set(self._indexes)
        if unknown:
            raise InputError(f"names given for speaker ids without an index: {sorted(unknown)}")
        self.speaker_names: dict[int, str] = {int(key): str(value) for key, value in
                                              names.items()}
        self._vectors: dict[int, np.ndarray] = {}

    @property
    def speaker_ids(self) -> tuple[int, ...]:
        """Speaker ids, in file order."""
        return tuple(self._indexes)

    def index_of(self, speaker_id: int) -> Any:
        """The faiss index of `speaker_id` (InputError if there is none)."""
        if isinstance(speaker_id, bool) or not isinstance(speaker_id, (int, np.integer)):
            raise InputError(f"feature retrieval needs a speaker id (int), got {speaker_id!r}")
        try:
            return self._indexes[int(speaker_id)]
        except KeyError:
            raise InputError(
                f"speaker id {speaker_id} has no feature index "
                f"(it has ids {', '.join(map(str, self._indexes))})",
                hint="train the index with the model's config (`sovits train-index -c`)",
            ) from None

    def dim(self, speaker_id: int) -> int:
        """Unit dimension C of the index of `speaker_id`."""
        return int(self.index_of(speaker_id).d)

    def vectors(self, speaker_id: int) -> np.ndarray:
        """The stored units [N, C] float32 of `speaker_id`, row i = faiss id i."""
        index = self.index_of(speaker_id)
        key = int(speaker_id)
        if key not in self._vectors:
            vectors = np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
            vectors.setflags(write=False)
            self._vectors[key] = vectors
        return self._vectors[key]

    def search(
        self, features: np.ndarray, speaker_id: int, k: int = 8
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest stored units of each row of `features` [T, C].

        Returns (scores [T, k] float32 squared-L2 distances, ids [T, k] int64), nearest
        first, probing the index's own `nprobe` lists. Slots the probed lists cannot
        fill have id -1 and score FLT_MAX (faiss's convention).
        """
        index = self.index_of(speaker_id)
        if k < 1:
            raise InputError(f"k must be positive, got {k}")
        query = np.ascontiguousarray(features, dtype=np.float32)
        if query.ndim != 2 or query.shape[1] != index.d:
            raise InputError(
                f"features must be [T, {index.d}] for speaker id {speaker_id}, "
                f"got {list(query.shape)}",
                hint="use an index trained on features of the model's speech encoder",
            )
        scores, ids = index.search(query, k)
        return np.asarray(scores, dtype=np.float32), np.asarray(ids, dtype=np.int64)


# --------------------------------------------------------------------------- the blend


def _fallback_weights(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Weights of one frame whose (1/s)^2 normalisation is not finite."""
    weights = np.zeros(scores.shape, dtype=np.float64)
    valid = ids >= 0
    if not valid.any():
        return weights.astype(np.float32)
    exact = valid & (scores == 0)
    if exact.any():
        weights[exact] = 1.0 / exact.sum()
    else:
        distances = scores[valid].astype(np.float64)
        relative = np.square(distances.min() / distances)
        weights[valid] = relative / relative.sum()
    return weights.astype(np.float32)


def retrieval_weights(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per-neighbour weights [T, k] float32 from search `scores` and `ids` [T, k].

    so-vits-svc 4.1's `(1/score)^2` normalised per frame, in float32 (ids of -1 come
    with score FLT_MAX and so get weight 0). Frames where that is not finite get the
    rules of the module doc: exact matches share the weight; else float64 weights;
    a frame with no neighbour gets all-zero weights.
    """
    scores = np.asarray(scores, dtype=np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
        weights = np.square(1 / scores)
        weights /= weights.sum(axis=1, keepdims=True)
    for row in np.flatnonzero(~np.isfinite(weights).all(axis=1)):
        weights[row] = _fallback_weights(scores[row], ids[row])
    return weights


def blend_with_retrieval(
    index: FeatureIndex,
    units: Tensor,
    speaker_id: int,
    ratio: float,
    k: int = 8,
) -> Tensor:
    """Pull content units towards their nearest stored units of `speaker_id`.

    units: [C, T] or [1, C, T] (channels first, frames at the f0 frame rate), any
    device. Returns the same shape, dtype and device:
    `ratio * sum_j w_j * stored[id_j] + (1 - ratio) * units`, with the weights of
    `retrieval_weights`, computed in float32 NumPy in the original's order. ratio 0
    returns `units` itself, as the original skips the step. InputError for an unknown
    speaker id, a unit dimension that differs from the index's, or a ratio outside
    [0, 1].
    """
    if not 0.0 <= ratio <= 1.0:
        raise InputError(f"the cluster / retrieval ratio must be in [0, 1], got {ratio}")
    if ratio == 0:
        return units
    if units.dim() == 3 and units.shape[0] == 1:
        channels_first = units[0]
    elif units.dim() == 2:
        channels_first = units
    else:
        raise InputError(f"units must be [C, T] or [1, C, T], got shape {list(units.shape)}")
    features = np.ascontiguousarray(
        channels_first.detach().to("cpu", torch.float32).numpy().T
    )
    stored = index.vectors(speaker_id)
    scores, ids = index.search(features, speaker_id, k)
    weights = retrieval_weights(scores, ids)
    retrieved = np.empty_like(features)
    for start in range(0, features.shape[0], _SEARCH_BLOCK):
        block = slice(start, start + _SEARCH_BLOCK)
        neighbours = stored[ids[block]]
        retrieved[block] = np.sum(neighbours * np.expand_dims(weights[block], axis=2), axis=1)
    lonely = ~(weights > 0).any(axis=1)
    if lonely.any():
        logger.warning("feature retrieval: %d frames found no stored unit and are kept",
                       int(lonely.sum()))
        retrieved[lonely] = features[lonely]
    blended = np.float32(ratio) * retrieved + np.float32(1 - ratio) * features
    result = torch.from_numpy(np.ascontiguousarray(blended.T))
    return result.to(device=units.device, dtype=units.dtype).reshape(units.shape)


# --------------------------------------------------------------------------- reading


class _PickledFaissIndex:
    """What the restricted unpickler makes of a pickled faiss index: its bytes only."""

    __slots__ = ("data",)

    def __new__(cls, *args: object) -> _PickledFaissIndex:
        if args:
            raise pickle.UnpicklingError("a faiss index is built without arguments")
        holder = object.__new__(cls)
        holder.data = b""
        return holder

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict) or set(state) != {"this"}:
            raise pickle.UnpicklingError("a faiss index state must be {'this': bytes}")
        data = state["this"]
        if not isinstance(data, (bytes, bytearray)):
            raise pickle.UnpicklingError(
                f"a faiss index state holds {type(data).__name__}, not bytes"
            )
        self.data = bytes(data)


def _reconstructor(cls: object, base: object, state: object) -> _PickledFaissIndex:
    """copyreg._reconstructor (protocol 0/1 pickles), for the faiss holder only."""
    if cls is not _PickledFaissIndex or base is not object or state is not None:
        raise pickle.UnpicklingError("copyreg._reconstructor is only allowed for faiss indexes")
    return _PickledFaissIndex()


def _latin1_bytes(text: object, encoding: object = "latin1") -> bytes:
    """_codecs.encode as protocol 0-2 pickles of bytes use it: (str, "latin1") only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin-1 bytes")
    return text.encode("latin1")


def _empty_bytes(*args: object) -> bytes:
    """bytes(), as protocol 2 pickles an empty bytes object; arguments are refused."""
    if args:
        raise pickle.UnpicklingError("bytes(...) is only allowed without arguments")
    return b""


class _FaissIndexUnpickler(pickle.Unpickler):
    """Unpickles `{int: faiss IndexIVFFlat}` into inert holders; refuses any other global.

    Besides the faiss class, only the helpers protocols 0-2 need are given, each
    narrowed to its harmless use: `copyreg._reconstructor` (for the holder),
    `_codecs.encode` (latin-1 bytes), `bytes()` and `object`.
    """

    def find_class(self, module: str, name: str) -> Any:
        if _FAISS_MODULE.fullmatch(module) and name == "IndexIVFFlat":
            return _PickledFaissIndex
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return _reconstructor
        if module in ("builtins", "__builtin__") and name == "object":
            return object
        if module in ("builtins", "__builtin__") and name == "bytes":
            return _empty_bytes
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid: Any) -> NoReturn:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _deserialize(data: bytes, what: str, path: Path) -> Any:
    if data[:4] != _IVF_FLAT_FOURCC:
        raise CheckpointError(
            f"{what} is not a faiss IndexIVFFlat (header {data[:4]!r})", where=path
        )
    faiss = _faiss()
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as error:
        raise CheckpointError(f"{what} is damaged ({str(error).splitlines()[0]})",
                              where=path) from None
    try:
        _check_ivf_flat(index, what)
    except InputError as error:
        raise CheckpointError(error.message, where=path) from None
    return index


def _read_pickle(path: Path) -> FeatureIndex:
    try:
        with path.open("rb") as handle:
            data = _FaissIndexUnpickler(handle).load()
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load the feature index: it asks for code sovits does not run "
            f"({error})",
            where=path,
            hint="only so-vits-svc feature_and_index.pkl files (faiss IndexIVFFlat) are "
            "accepted; retrain with `sovits train-index` if the file is not trusted",
        ) from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError) as error:
        raise CheckpointError(f"cannot read the feature index ({type(error).__name__}: "
                              f"{error})", where=path) from None
    if not isinstance(data, dict) or not data:
        raise CheckpointError(
            f"expected a dict of speaker id -> faiss index, got {type(data).__name__}",
            where=path,
        )
    indexes: dict[int, Any] = {}
    for speaker_id, holder in data.items():
        if isinstance(speaker_id, bool) or not isinstance(speaker_id, int):
            raise CheckpointError(f"speaker key {speaker_id!r} is not an integer id",
                                  where=path)
        if not isinstance(holder, _PickledFaissIndex) or not holder.data:
            raise CheckpointError(f"speaker {speaker_id} does not hold a faiss index",
                                  where=path)
        indexes[speaker_id] = _deserialize(holder.data, f"the index of speaker {speaker_id}",
                                           path)
    return FeatureIndex(indexes)


def _field(entry: Mapping[str, Any], key: str, kind: type, where: Path) -> Any:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise CheckpointError(f"speaker entry field {key!r} is {value!r}, not a "
                              f"{kind.__name__}", where=where)
    return value


def _read_folder(folder: Path) -> FeatureIndex:
    manifest = folder / INDEX_FILE_NAME
    if not manifest.is_file():
        raise CheckpointError(f"no {INDEX_FILE_NAME} in the feature index folder",
                              where=folder)
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"cannot read the feature index ({error})",
                              where=manifest) from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise CheckpointError("not a sovits feature index", where=manifest)
    if meta.get("format_version") != INDEX_FORMAT_VERSION:
        raise CheckpointError(
            f"unsupported feature index version {meta.get('format_version')!r}",
            where=manifest, hint="upgrade sovits",
        )
    entries = meta.get("speakers")
    if not isinstance(entries, list) or not entries:
        raise CheckpointError("'speakers' is not a non-empty list", where=manifest)
    indexes: dict[int, Any] = {}
    names: dict[int, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise CheckpointError("a speaker entry is not an object", where=manifest)
        speaker_id = _field(entry, "id", int, manifest)
        file_name = _field(entry, "file", str, manifest)
        if Path(file_name).name != file_name or file_name.startswith("."):
            raise CheckpointError(f"bad index file name {file_name!r}", where=manifest)
        if speaker_id in indexes:
            raise CheckpointError(f"speaker id {speaker_id} repeats", where=manifest)
        path = folder / file_name
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"cannot read the index file ({error})", where=path) from None
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise CheckpointError("the index file's bytes changed (SHA-256 differs)",
                                  where=path, hint="retrain with `sovits train-index`")
        index = _deserialize(data, f"the index of speaker {speaker_id}", path)
        found = {"dim": index.d, "ntotal": index.ntotal, "nlist": index.nlist,
                 "nprobe": index.nprobe}
        for key, value in found.items():
            if _field(entry, key, int, manifest) != value:
                raise CheckpointError(f"{key} is {value} in the index but {entry[key]} in "
                                      f"{INDEX_FILE_NAME}", where=path)
        indexes[speaker_id] = index
        name = entry.get("name")
        if name is not None:
            names[speaker_id] = str(name)
    return FeatureIndex(indexes, speaker_names=names)


def read_feature_index(path: str | os.PathLike[str]) -> FeatureIndex:
    """Read a feature index: so-vits-svc's `feature_and_index.pkl` or a sovits folder.

    path: the pickle file, or the sovits folder (or its `feature_index.json`).
    Neither format runs code from the file, so the original pickle is read without an
    opt-in (the module doc says how). CheckpointError when the file is missing,
    damaged, or names anything but faiss IVF-Flat indexes.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if path.name == INDEX_FILE_NAME and path.is_file():
        return _read_folder(path.parent)
    if not path.is_file():
        raise CheckpointError("feature index not found", where=path,
                              hint="train one with `sovits train-index`")
    return _read_pickle(path)


# --------------------------------------------------------------------------- writing


def _write_bytes(handle: IO[bytes], data: bytes) -> None:
    handle.write(data)


def _serialize(index: Any) -> bytes:
    return bytes(np.asarray(_faiss().serialize_index(index), dtype=np.uint8).tobytes())


def write_feature_index(index: FeatureIndex, path: str | os.PathLike[str]) -> None:
    """Write `index`: sovits's folder format, or the original pickle for a `.pkl` path.

    The folder (created if needed) gets one `speaker_<id>.faiss` per speaker and then
    `feature_index.json`, each written atomically. CheckpointError if a file cannot be
    written.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".pkl":
            buffer = io.BytesIO()
            pickle.dump({speaker_id: index.index_of(speaker_id)
                         for speaker_id in index.speaker_ids}, buffer)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda handle: handle.write(buffer.getvalue()))
            return
        path.mkdir(parents=True, exist_ok=True)
        entries = []
        for speaker_id in index.speaker_ids:
            faiss_index = index.index_of(speaker_id)
            data = _serialize(faiss_index)
            file_name = f"speaker_{speaker_id}.faiss"
            atomic_write(path / file_name, functools.partial(_write_bytes, data=data))
            entries.append({
                "id": speaker_id,
                "name": index.speaker_names.get(speaker_id),
                "file": file_name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "dim": int(faiss_index.d),
                "ntotal": int(faiss_index.ntotal),
                "nlist": int(faiss_index.nlist),
                "nprobe": int(faiss_index.nprobe),
            })
        meta = {"format": INDEX_FORMAT, "format_version": INDEX_FORMAT_VERSION,
                "speakers": entries}
        text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
        atomic_write(path / INDEX_FILE_NAME, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as error:
        raise CheckpointError(f"cannot write the feature index ({error})",
                              where=path) from None


# --------------------------------------------------------------------------- training


def _train_one(features: np.ndarray, rng: np.random.RandomState) -> Any:
    """One speaker's IVF-Flat index, trained as so-vits-svc's `utils.train_index`."""
    faiss = _faiss()
    order = np.arange(features.shape[0])
    rng.shuffle(order)
    vectors = features[order]
    if vectors.shape[0] > _MAX_TRAINING_VECTORS:
        MiniBatchKMeans = _minibatch_kmeans()
        logger.info("reducing %d vectors to %d k-means centres", vectors.shape[0],
                    _REDUCED_VECTORS)
        kmeans = MiniBatchKMeans(
            n_clusters=_REDUCED_VECTORS,
            batch_size=256 * (os.cpu_count() or 1),
            compute_labels=False,
            init="random",
            random_state=rng,
        )
        vectors = np.ascontiguousarray(kmeans.fit(vectors).cluster_centers_, np.float32)
    count = vectors.shape[0]
    nlist = min(int(16 * np.sqrt(count)), count // 39)
    if nlist < 1:
        raise InputError(
            f"{count} vectors are too few for an IVF index (at least 39 are needed)",
            hint="preprocess more audio for this speaker",
        )
    index = faiss.index_factory(vectors.shape[1], f"IVF{nlist},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(vectors)
    for start in range(0, count, _ADD_BATCH):
        index.add(vectors[start : start + _ADD_BATCH])
    return index


def train_feature_index(
    features_by_speaker_id: Mapping[int, np.ndarray | Tensor],
    *,
    seed: int = 0,
    speaker_names: Mapping[int, str] | None = None,
) -> FeatureIndex:
    """Build each speaker's IVF-Flat index as so-vits-svc's `train_index.py`.

    features_by_speaker_id: speaker id -> training units [N, C] (frames x channels).
    Per speaker, in the given order: the rows are shuffled; more than 200000 rows are
    replaced by 10000 `MiniBatchKMeans` centres; then `IVF{nlist},Flat` with
    `nlist = min(int(16 sqrt(N)), N // 39)`, nprobe 1, trained on the rows and filled
    in batches of 8192. One `numpy.random.RandomState(seed)` draws for all speakers in
    turn, so seed s gives what the original gives after `np.random.seed(s)`.
    InputError for fewer than 39 rows.
    """
    rng = np.random.RandomState(seed)
    indexes: dict[int, Any] = {}
    for speaker_id, value in features_by_speaker_id.items():
        features = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
        features = np.ascontiguousarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[0] == 0:
            raise InputError(f"features of speaker id {speaker_id} must be a non-empty "
                             f"[N, C] array, got {features.shape}")
        logger.info("feature index of speaker id %s: %d x %d", speaker_id, *features.shape)
        indexes[speaker_id] = _train_one(features, rng)
    return FeatureIndex(indexes, speaker_names=speaker_names)
