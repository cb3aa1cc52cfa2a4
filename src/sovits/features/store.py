"""The feature cache: per-clip feature files beside each wav, and a manifest that
describes them.

File names and layouts are so-vits-svc 4.1's, so a dataset preprocessed by the original
trains unchanged and the original can read what sovits writes (one exception below):

| kind       | file                     | content                                      |
| ---------- | ------------------------ | -------------------------------------------- |
| content    | `<clip>.wav.soft.pt`     | torch tensor [1, D, T_units] float32         |
| f0         | `<clip>.wav.f0.npy`      | npy float32 [2, T]: row 0 f0 (Hz, unvoiced   |
|            |                          | frames interpolated), row 1 voiced (1 / 0)   |
| spec       | `<clip>.spec.pt`         | torch tensor [n_fft // 2 + 1, T] float32     |
| volume     | `<clip>.wav.vol.npy`     | npy float32 [T]                              |
| mel        | `<clip>.wav.mel.npy`     | npy float32 [T, n_mels] (vocoder log-mel)    |
| aug_mel    | `<clip>.wav.aug_mel.npz` | npz: `mel` [T, n_mels] float32 and           |
|            |                          | `keyshift` (semitones); the original wrote   |
|            |                          | `<clip>.wav.aug_mel.npy`, a pickled (mel,    |
|            |                          | keyshift) object array, which sovits reads   |
| aug_volume | `<clip>.wav.aug_vol.npy` | npy float32 [T]                              |

Everything sovits writes loads without pickle (`torch.load(weights_only=True)`,
`np.load(allow_pickle=False)`). The original wrote `.f0.npy` (and `.aug_mel.npy`) as
pickled numpy object arrays; those are read by `_NumpyOnlyUnpickler`, which rebuilds
numpy arrays and scalars and refuses every other global, so reading them runs no code.
so-vits-svc 4.0's `.f0.npy` (a bare f0 track, 0 = unvoiced) is read too.

The manifest is one JSON-lines file per folder of clips, `<folder>/sovits-features.jsonl`
(inside the speaker folder, where the original's scripts ignore it): a header line, then
one record per (clip, kind) with the frame clock (sample rate, hop), frame count, shape,
the settings that made it (encoder, f0 method, FFT sizes), the size, mtime and SHA-256
of the source wav and of the feature file, and who made it. Records are appended as
clips finish, so an interrupted run keeps what it did; later lines win;
`FeatureStore.compact` rewrites each file with one line per feature. `FeatureStore.check`
decides whether a cached feature can be reused: a feature is stale when its settings or
its source audio changed, corrupt when its file is gone or its bytes changed, fresh
otherwise (sizes and mtimes first; hashes only when they differ, or always with
`verify`). Feature files without a record (written by so-vits-svc, or by a run that was
killed before it recorded them) are loaded and checked (shape, frame count, finite
values) and then adopted, or else recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from sovits.dsp.f0 import interpolate_f0
from sovits.errors import InputError
from sovits.files import atomic_write

__all__ = [
    "FEATURE_KINDS",
    "MANIFEST_NAME",
    "ClipSource",
    "FeatureCheck",
    "FeatureKind",
    "FeatureManifest",
    "FeatureRecord",
    "FeatureSpec",
    "FeatureStore",
    "FileState",
    "adopt_feature",
    "check_record",
    "encode_feature",
    "feature_path",
    "file_state",
    "load_feature",
    "read_aug_mel",
    "read_aug_volume",
    "read_content",
    "read_f0",
    "read_mel",
    "read_spec",
    "read_volume",
    "validate_feature",
    "write_feature",
]

logger = logging.getLogger(__name__)

FeatureKind = Literal["content", "f0", "spec", "volume", "mel", "aug_mel", "aug_volume"]
FEATURE_KINDS: tuple[str, ...] = get_args(FeatureKind)

MANIFEST_NAME = "sovits-features.jsonl"
"""Name of the manifest file in each folder of clips."""
MANIFEST_FORMAT = "sovits-features"
MANIFEST_VERSION = 1

Origin = Literal["sovits", "so-vits-svc"]

_SUFFIXES: Mapping[str, str] = MappingProxyType(
    {
        "content": ".soft.pt",
        "f0": ".f0.npy",
        "volume": ".vol.npy",
        "mel": ".mel.npy",
        "aug_mel": ".aug_mel.npz",
        "aug_volume": ".aug_vol.npy",
    }
)
_LEGACY_AUG_MEL_SUFFIX = ".aug_mel.npy"
_CHUNK = 1 << 20
_REGENERATE = "run `sovits preprocess` again: it recomputes damaged features"


# --------------------------------------------------------------------------- paths


def _unknown_kind(kind: str) -> InputError:
    return InputError(f"unknown feature kind {kind!r}", hint="one of " + ", ".join(FEATURE_KINDS))


def feature_path(wav: str | os.PathLike[str], kind: FeatureKind, *, legacy: bool = False) -> Path:
    """Where feature `kind` of clip `wav` lives (the original's names; see the module doc).

    `legacy` gives the original's `.aug_mel.npy` name for kind "aug_mel" (sovits writes
    `.aug_mel.npz`); for the other kinds it changes nothing.
    """
    wav = Path(wav)
    if kind == "spec":
        return wav.with_name(wav.stem + ".spec.pt")
    if kind == "aug_mel" and legacy:
        return wav.with_name(wav.name + _LEGACY_AUG_MEL_SUFFIX)
    if kind not in _SUFFIXES:
        raise _unknown_kind(kind)
    return wav.with_name(wav.name + _SUFFIXES[kind])


# --------------------------------------------------------------------------- file states


@dataclass(frozen=True)
class FileState:
    """Identity of a file: size (bytes), modification time (ns) and SHA-256 (hex, or
    None when it was not computed)."""

    size: int
    mtime_ns: int
    sha256: str | None = None

    def same_stat(self, other: FileState) -> bool:
        """True when size and mtime agree (the cheap test that skips hashing)."""
        return self.size == other.size and self.mtime_ns == other.mtime_ns

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileState:
        sha = data.get("sha256")
        return cls(int(data["size"]), int(data["mtime_ns"]), None if sha is None else str(sha))


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_state(path: str | os.PathLike[str], *, hashed: bool = True) -> FileState:
    """Size, mtime and (with `hashed`) SHA-256 of `path`. OSError if it cannot be read."""
    path = Path(path)
    stat = path.stat()
    sha = _sha256_of(path) if hashed else None
    return FileState(stat.st_size, stat.st_mtime_ns, sha)


class ClipSource:
    """A source clip whose SHA-256 is computed only when first asked for.

    Its size and mtime are read on construction (OSError if it cannot be).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        stat = self.path.stat()
        self.size = stat.st_size
        self.mtime_ns = stat.st_mtime_ns
        self._sha256: str | None = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = _sha256_of(self.path)
        return self._sha256

    @property
    def hashed(self) -> bool:
        """True once the hash has been computed."""
        return self._sha256 is not None

    def state(self) -> FileState:
        """Size, mtime and SHA-256 (computed now if needed)."""
        return FileState(self.size, self.mtime_ns, self.sha256)

    def stat_state(self) -> FileState:
        """Size and mtime only."""
        return FileState(self.size, self.mtime_ns)


# --------------------------------------------------------------------------- formats


def _torch_bytes(tensor: Tensor) -> bytes:
    buffer = io.BytesIO()
    # clone: a view would drag its whole storage into the file
    torch.save(tensor.detach().to("cpu", torch.float32).contiguous().clone(), buffer)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().to("cpu", torch.float32).numpy()
    return np.asarray(value, dtype=np.float32)


def encode_feature(kind: FeatureKind, value: Any) -> bytes:
    """The bytes sovits writes for feature `kind`.

    value: content Tensor [D, T]; f0 a pair (f0 [T] Hz, voiced [T]); spec Tensor [F, T];
    volume / aug_volume [T]; mel [T, M]; aug_mel a pair (mel [T, M], keyshift in
    semitones). Arrays may be NumPy or torch; they are stored as float32.
    """
    if kind == "content":
        content = torch.as_tensor(value)
        if content.dim() != 2:
            raise InputError(f"content must be [D, T], got shape {list(content.shape)}")
        return _torch_bytes(content[None])
    if kind == "spec":
        return _torch_bytes(torch.as_tensor(value))
    if kind == "f0":
        f0, voiced = value
        return _npy_bytes(np.stack([_as_numpy(f0), _as_numpy(voiced)]))
    if kind in ("volume", "aug_volume", "mel"):
        return _npy_bytes(_as_numpy(value))
    if kind == "aug_mel":
        mel, keyshift = value
        buffer = io.BytesIO()
        np.savez(buffer, mel=_as_numpy(mel), keyshift=np.float64(keyshift))
        return buffer.getvalue()
    raise _unknown_kind(kind)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and scalars (what `np.save` of an object array holds)
    and refuses every other global."""

    def __init__(self, file: IO[bytes]):
        super().__init__(file)
        reconstruct = np.zeros(1).__reduce__()[0]
        scalar = np.float64(0).__reduce__()[0]
        self._allowed: dict[tuple[str, str], Any] = {
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            self._allowed[(module, "_reconstruct")] = reconstruct
            self._allowed[(module, "scalar")] = scalar

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def _load_object_npy(path: Path) -> np.ndarray:
    """An .npy file holding a pickled object array, read with `_NumpyOnlyUnpickler`."""
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            _, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if not dtype.hasobject:
            raise ValueError("expected an object array")
        array = _NumpyOnlyUnpickler(handle).load()
    if not isinstance(array, np.ndarray):
        raise ValueError(f"the pickle holds a {type(array).__name__}, not an array")
    return array


def _load_npy(path: Path) -> np.ndarray:
    try:
        array: np.ndarray = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise
        return _load_object_npy(path)
    return array


def _float_array(value: Any) -> np.ndarray:
    return np.asarray(np.asarray(value, dtype=np.float64), dtype=np.float32)


def _unreadable(path: Path, error: BaseException) -> InputError:
    return InputError(
        f"cannot read the feature file: {type(error).__name__}: {error}",
        where=path,
        hint=_REGENERATE,
    )


def load_feature(kind: FeatureKind, path: str | os.PathLike[str]) -> Any:
    """Read one feature file of `kind` in sovits's or the original's layout.

    Returns content Tensor [D, T]; f0 a pair of float32 arrays (f0 [T], voiced [T]);
    spec Tensor [F, T]; volume / aug_volume / mel float32 arrays; aug_mel a pair
    (mel [T, M] float32, keyshift float). Raises InputError naming the file when it is
    missing, cannot be read or has an unexpected layout. A so-vits-svc 4.0 `.f0.npy`
    (the raw track only) comes back with voiced = f0 > 0 and its unvoiced frames
    filled by linear interpolation, as 4.0's data loader did.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("feature file not found", where=path, hint="run `sovits preprocess`")
    try:
        if kind in ("content", "spec"):
            tensor = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(tensor, Tensor):
                raise ValueError(f"holds a {type(tensor).__name__}, not a tensor")
            tensor = tensor.to(torch.float32)
            if kind == "content":
                if tensor.dim() == 3 and tensor.shape[0] == 1:
                    tensor = tensor[0]
                if tensor.dim() != 2:
                    raise ValueError(f"expected [1, D, T] or [D, T], got {list(tensor.shape)}")
            elif tensor.dim() != 2:
                raise ValueError(f"expected [F, T], got {list(tensor.shape)}")
            return tensor
        if kind == "f0":
            array = _load_npy(path)
            if array.ndim == 1 and array.dtype != object:
                # so-vits-svc 4.0: the raw track, 0 = unvoiced
                filled, voiced = interpolate_f0(_float_array(array))
                return _float_array(filled), _float_array(voiced)
            if array.shape[0] != 2:
                raise ValueError(f"expected (f0, voiced) rows, got shape {array.shape}")
            f0, voiced = _float_array(list(array[0])), _float_array(list(array[1]))
            if f0.ndim != 1 or f0.shape != voiced.shape:
                raise ValueError(f"f0 and voiced differ in shape: {f0.shape} vs {voiced.shape}")
            return f0, voiced
        if kind in ("volume", "aug_volume", "mel"):
            array = _float_array(_load_npy(path))
            expected = 2 if kind == "mel" else 1
            if array.ndim != expected:
                raise ValueError(f"expected {expected} dimensions, got shape {array.shape}")
            return array
        if kind == "aug_mel":
            with path.open("rb") as handle:
                zipped = handle.read(4) == b"PK\x03\x04"
            if zipped:
                with np.load(path, allow_pickle=False) as data:
                    mel = _float_array(data["mel"])
                    keyshift = float(data["keyshift"])
            else:
                pair = _load_object_npy(path)
                if pair.shape != (2,):
                    raise ValueError(f"expected a (mel, keyshift) pair, got shape {pair.shape}")
                mel, keyshift = _float_array(pair[0]), float(pair[1])
            if mel.ndim != 2:
                raise ValueError(f"expected mel [T, M], got shape {mel.shape}")
            return mel, keyshift
    except InputError:
        raise
    except Exception as error:  # garbage bytes make the unpicklers fail in many ways
        raise _unreadable(path, error) from None
    raise _unknown_kind(kind)


def validate_feature(
    kind: FeatureKind,
    value: Any,
    *,
    frames: int | None = None,
    dim: int | None = None,
    tolerance: int = 2,
) -> str | None:
    """What is wrong with a loaded feature (None when nothing is).

    frames: expected frame count (None: not checked), allowed to differ by `tolerance`;
    dim: expected feature size (content D, spec bins, mel bands). Values must be finite.
    """
    array = _as_numpy(value[0]) if kind in ("f0", "aug_mel") else _as_numpy(value)
    if not np.all(np.isfinite(array)):
        return "holds NaN or infinite values"
    if kind == "f0" and not np.all(np.isfinite(_as_numpy(value[1]))):
        return "holds NaN or infinite values"
    if kind in ("content", "spec"):
        size, count = array.shape
    elif kind in ("mel", "aug_mel"):
        count, size = array.shape
    else:
        size, count = None, array.shape[0]
    if count == 0:
        return "has no frames"
    if dim is not None and size is not None and size != dim:
        return f"has {size} channels, expected {dim}"
    if frames is not None and abs(count - frames) > tolerance:
        return f"has {count} frames, expected {frames}"
    return None


def _frames_and_shape(kind: FeatureKind, value: Any) -> tuple[int, tuple[int, ...]]:
    array = value[0] if kind in ("f0", "aug_mel") else value
    shape = tuple(int(size) for size in array.shape)
    if kind in ("content", "spec"):
        return shape[1], shape
    return shape[0], shape


def read_content(wav: str | os.PathLike[str]) -> Tensor:
    """Content units of clip `wav`: float32 [D, T_units] (InputError if unusable)."""
    content: Tensor = load_feature("content", feature_path(wav, "content"))
    return content


def read_f0(wav: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """(f0 [T] Hz, voiced [T] 1 / 0) of clip `wav`, float32 (InputError if unusable)."""
    pair: tuple[np.ndarray, np.ndarray] = load_feature("f0", feature_path(wav, "f0"))
    return pair


def read_spec(wav: str | os.PathLike[str]) -> Tensor | None:
    """Linear spectrogram [F, T] of clip `wav`, or None when it has none (old datasets)."""
    path = feature_path(wav, "spec")
    if not path.exists():
        return None
    spec: Tensor = load_feature("spec", path)
    return spec


def read_volume(wav: str | os.PathLike[str]) -> np.ndarray:
    """Volume envelope [T] of clip `wav`, float32 (InputError if unusable)."""
    volume: np.ndarray = load_feature("volume", feature_path(wav, "volume"))
    return volume


def read_mel(wav: str | os.PathLike[str]) -> np.ndarray:
    """Vocoder log-mel [T, M] of clip `wav`, float32 (InputError if unusable)."""
    mel: np.ndarray = load_feature("mel", feature_path(wav, "mel"))
    return mel


def read_aug_mel(wav: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
    """(augmented mel [T, M], keyshift in semitones) of clip `wav`: sovits's `.aug_mel.npz`
    or, when absent, the original's `.aug_mel.npy`."""
    path = feature_path(wav, "aug_mel")
    if not path.exists() and feature_path(wav, "aug_mel", legacy=True).exists():
        path = feature_path(wav, "aug_mel", legacy=True)
    pair: tuple[np.ndarray, float] = load_feature("aug_mel", path)
    return pair


def read_aug_volume(wav: str | os.PathLike[str]) -> np.ndarray:
    """Volume [T] of the augmented clip `wav` (its level shift matches the aug mel)."""
    volume: np.ndarray = load_feature("aug_volume", feature_path(wav, "aug_volume"))
    return volume


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FeatureSpec:
    """What a cached feature must have been made with to be reused.

    sample_rate / hop_length: the frame clock (Hz, samples per frame): the clip's rate
    and the model hop for most kinds, 16000 / 320 for content units. params: the
    settings that change the values (encoder name, f0 method, FFT sizes, ...); JSON
    values only.
    """

    kind: FeatureKind
    sample_rate: int
    hop_length: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(_json_clean(dict(self.params))))


def _json_clean(value: Any) -> Any:
    """`value` as it comes back from JSON (tuples become lists), for comparisons."""
    result: Any = json.loads(json.dumps(value))
    return result


@dataclass(frozen=True)
class FeatureRecord:
    """One manifest entry: feature `kind` of clip `wav` (a file name in the manifest's
    folder), stored in `file` (same folder).

    frames / shape: of the feature's values (content [D, T_units], without the file's
    leading 1; f0: the f0 row; aug_mel: the mel).
    source / output: the clip's and the feature file's state when recorded.
    origin: "sovits", or "so-vits-svc" for adopted files of the original.
    extra: values drawn while computing (aug_mel / aug_volume: keyshift, log10 level).
    """

    wav: str
    kind: FeatureKind
    file: str
    sample_rate: int
    hop_length: int
    params: Mapping[str, Any]
    frames: int
    shape: tuple[int, ...]
    source: FileState
    output: FileState
    origin: Origin = "sovits"
    extra: Mapping[str, float] = field(default_factory=dict)

    def matches(self, spec: FeatureSpec) -> bool:
        """True when the record was made with `spec`'s clock and settings."""
        return (
            self.kind == spec.kind
            and self.sample_rate == spec.sample_rate
            and self.hop_length == spec.hop_length
            and _json_clean(dict(self.params)) == dict(spec.params)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "wav": self.wav,
            "kind": self.kind,
            "file": self.file,
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "params": dict(self.params),
            "frames": self.frames,
            "shape": list(self.shape),
            "source": self.source.to_json(),
            "output": self.output.to_json(),
            "origin": self.origin,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureRecord:
        kind = str(data["kind"])
        origin = str(data.get("origin", "sovits"))
        if kind not in FEATURE_KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if origin not in get_args(Origin):
            raise ValueError(f"unknown origin {origin!r}")
        return cls(
            wav=str(data["wav"]),
            kind=kind,  # type: ignore[arg-type]
            file=str(data["file"]),
            sample_rate=int(data["sample_rate"]),
            hop_length=int(data["hop_length"]),
            params=dict(data.get("params", {})),
            frames=int(data["frames"]),
            shape=tuple(int(size) for size in data["shape"]),
            source=FileState.from_json(data["source"]),
            output=FileState.from_json(data["output"]),
            origin=origin,  # type: ignore[arg-type]
            extra={str(key): float(value) for key, value in data.get("extra", {}).items()},
        )


class FeatureManifest:
    """The manifest of one folder of clips (`<folder>/sovits-features.jsonl`).

    Lines that cannot be parsed (a run killed mid-write, a hand edit) are skipped with
    a warning; their features then count as unrecorded.
    """

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.records: dict[tuple[str, str], FeatureRecord] = {}
        self._lines = 0
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            logger.warning("%s: unreadable manifest, ignored: %s", self.path, error)
            return
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            self._lines += 1
            try:
                data = json.loads(line)
                if data.get("format") == MANIFEST_FORMAT:
                    if data.get("version") != MANIFEST_VERSION:
                        logger.warning("%s: manifest version %s, expected %s; ignored",
                                       self.path, data.get("version"), MANIFEST_VERSION)
                        self.records.clear()
                        return
                    continue
                record = FeatureRecord.from_json(data)
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                logger.warning("%s:%d: bad manifest line skipped (%s)", self.path, number, error)
                continue
            self.records[(record.wav, record.kind)] = record

    def get(self, wav_name: str, kind: str) -> FeatureRecord | None:
        """The latest record of feature `kind` of clip `wav_name`, if any."""
        return self.records.get((wav_name, kind))

    def append(self, records: Iterable[FeatureRecord]) -> None:
        """Record `records` (appended to the file at once, flushed to disk)."""
        lines = []
        for record in records:
            self.records[(record.wav, record.kind)] = record
            lines.append(json.dumps(record.to_json(), ensure_ascii=False))
        if not lines:
            return
        new_file = not self.path.exists()
        if new_file:
            header = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION}
            lines.insert(0, json.dumps(header))
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._lines += len(lines)

    def compact(self, keep: Iterable[str] | None = None) -> None:
        """Rewrite the file with one line per feature (atomically).

        keep: clip names whose records stay; None keeps every clip that still exists.
        """
        kept = set(keep) if keep is not None else None
        records = [
            record
            for record in self.records.values()
            if (record.wav in kept if kept is not None else (self.folder / record.wav).exists())
        ]
        records.sort(key=lambda record: (record.wav, FEATURE_KINDS.index(record.kind)))
        self.records = {(record.wav, record.kind): record for record in records}
        if not records and not self.path.exists():
            return
        header = json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION})
        lines = [header] + [json.dumps(r.to_json(), ensure_ascii=False) for r in records]
        text = "\n".join(lines) + "\n"
        atomic_write(self.path, lambda handle: handle.write(text.encode("utf-8")))
        self._lines = len(lines)

    @property
    def superseded_lines(self) -> int:
        """Lines in the file beyond one per record (what `compact` would drop)."""
        return max(0, self._lines - len(self.records) - 1)


# --------------------------------------------------------------------------- the store


FeatureStatus = Literal["fresh", "missing", "stale", "corrupt", "unrecorded"]


@dataclass(frozen=True)
class FeatureCheck:
    """Whether a cached feature can be reused.

    status: "fresh" (reuse), "missing", "stale" (settings or source audio changed),
    "corrupt" (the file's bytes changed, or it is gone), "unrecorded" (a file exists
    without a record: load and validate it before adopting it). reason: one line for
    reports. refreshed: for "fresh", a record with updated file states when the cheap
    size/mtime test failed but the hashes agreed (to be recorded), else None.
    """

    status: FeatureStatus
    reason: str = ""
    refreshed: FeatureRecord | None = None

    @property
    def reusable(self) -> bool:
        return self.status == "fresh"


class FeatureStore:
    """Feature files beside the clips plus their per-folder manifests.

    One store serves clips in any number of folders; each folder's manifest is read
    the first time one of its clips is looked at. Not safe for two processes writing
    the same folder at once (sovits preprocess records from one process).
    """

    def __init__(self) -> None:
        self._manifests: dict[Path, FeatureManifest] = {}

    def manifest(self, folder: str | os.PathLike[str]) -> FeatureManifest:
        """The manifest of `folder` (read once, then cached)."""
        key = Path(folder).absolute()
        if key not in self._manifests:
            self._manifests[key] = FeatureManifest(folder)
        return self._manifests[key]

    def record_of(self, wav: str | os.PathLike[str], kind: str) -> FeatureRecord | None:
        """The manifest record of feature `kind` of clip `wav`, if any."""
        wav = Path(wav)
        return self.manifest(wav.parent).get(wav.name, kind)

    def records_of(self, wav: str | os.PathLike[str]) -> dict[str, FeatureRecord]:
        """Every recorded feature of clip `wav`, by kind."""
        wav = Path(wav)
        manifest = self.manifest(wav.parent)
        found = {kind: manifest.get(wav.name, kind) for kind in FEATURE_KINDS}
        return {kind: record for kind, record in found.items() if record is not None}

    def add(self, records: Iterable[FeatureRecord], folder: str | os.PathLike[str]) -> None:
        """Append `records` (of clips in `folder`) to that folder's manifest."""
        self.manifest(folder).append(records)

    def compact(self) -> None:
        """Rewrite every manifest this store has touched that holds superseded lines."""
        for manifest in self._manifests.values():
            if manifest.superseded_lines:
                manifest.compact()


def check_record(
    record: FeatureRecord | None,
    spec: FeatureSpec,
    clip: ClipSource,
    *,
    verify: bool = False,
) -> FeatureCheck:
    """Decide whether the feature `record` describes can be reused for `spec`.

    Sizes and mtimes of the clip and the feature file are compared first; only when
    they differ from the record's (or with `verify`) are the clip and the file hashed.
    """
    wav = clip.path
    path = feature_path(wav, spec.kind) if record is None else wav.with_name(record.file)
    if record is None:
        legacy = feature_path(wav, spec.kind, legacy=True)
        if path.exists() or legacy.exists():
            return FeatureCheck("unrecorded", "a feature file without a manifest record")
        return FeatureCheck("missing", "no feature file")
    if not record.matches(spec):
        return FeatureCheck("stale", "made with other settings")
    try:
        output = file_state(path, hashed=False)
    except OSError:
        return FeatureCheck("corrupt", "the feature file is gone")
    cheap = clip.stat_state().same_stat(record.source) and output.same_stat(record.output)
    if cheap and not verify:
        return FeatureCheck("fresh")
    if clip.sha256 != record.source.sha256:
        return FeatureCheck("stale", "the audio changed")
    try:
        output = file_state(path)
    except OSError as error:
        return FeatureCheck("corrupt", f"the feature file cannot be read ({error})")
    if output.sha256 != record.output.sha256 or output.size != record.output.size:
        return FeatureCheck("corrupt", "the feature file's bytes changed")
    if cheap:
        return FeatureCheck("fresh")
    return FeatureCheck("fresh", refreshed=replace(record, source=clip.state(), output=output))


def write_feature(
    clip: ClipSource,
    spec: FeatureSpec,
    value: Any,
    *,
    extra: Mapping[str, float] | None = None,
) -> FeatureRecord:
    """Write feature `spec.kind` of `clip` atomically (value as for `encode_feature`);
    return its manifest record. Raises InputError when the file cannot be written.
    """
    wav = clip.path
    path = feature_path(wav, spec.kind)
    data = encode_feature(spec.kind, value)
    try:
        atomic_write(path, lambda handle: handle.write(data))
        stat = path.stat()
    except OSError as error:
        raise InputError(f"cannot write the feature file: {error}", where=path) from None
    frames, shape = _frames_and_shape(spec.kind, value)
    return FeatureRecord(
        wav=wav.name,
        kind=spec.kind,
        file=path.name,
        sample_rate=spec.sample_rate,
        hop_length=spec.hop_length,
        params=dict(spec.params),
        frames=frames,
        shape=shape,
        source=clip.state(),
        output=FileState(len(data), stat.st_mtime_ns, hashlib.sha256(data).hexdigest()),
        extra=dict(extra or {}),
    )


def adopt_feature(
    clip: ClipSource,
    spec: FeatureSpec,
    *,
    frames: int | None,
    dim: int | None,
    tolerance: int = 2,
) -> FeatureRecord | str:
    """Load and validate an unrecorded feature file of `clip`; its record, or the
    reason it cannot be used (a str).

    The record takes `spec`'s settings (the file's own cannot be known) and origin
    "so-vits-svc".
    """
    wav = clip.path
    path = feature_path(wav, spec.kind)
    if spec.kind == "aug_mel" and not path.exists():
        path = feature_path(wav, spec.kind, legacy=True)
    try:
        value = load_feature(spec.kind, path)
        output = file_state(path)
    except InputError as error:
        return error.message
    except OSError as error:
        return f"cannot read it ({error})"
    if spec.kind == "f0":
        value = (value[0], value[1])
    problem = validate_feature(spec.kind, value, frames=frames, dim=dim, tolerance=tolerance)
    if problem is not None:
        return problem
    count, shape = _frames_and_shape(spec.kind, value)
    extra = {"keyshift": float(value[1])} if spec.kind == "aug_mel" else {}
    return FeatureRecord(
        wav=wav.name,
        kind=spec.kind,
        file=path.name,
        sample_rate=spec.sample_rate,
        hop_length=spec.hop_length,
        params=dict(spec.params),
        frames=count,
        shape=shape,
        source=clip.state(),
        output=output,
        origin="so-vits-svc",
        extra=extra,
    )
