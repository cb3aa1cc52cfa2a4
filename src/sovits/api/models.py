"""The models under a models root, and a bounded cache of loaded converters.

Each model is a folder directly under the root holding a model file (G_*.pth, a
release .pth / .safetensors, or an exported .onnx) and its config.json, optionally
with a cluster model / feature index and a diffusion model (diffusion/model_*.pt with
its config.yaml). Folder names are the models' names in every shell.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovits.api.errors import PathNotAllowedError, UnknownModelError
from sovits.errors import InputError, SovitsError

if TYPE_CHECKING:
    from sovits.inference.converter import Converter

__all__ = [
    "ConverterCache",
    "ModelInfo",
    "discover_models",
    "model_file_in",
    "model_info_for_file",
    "resolve_model",
]

logger = logging.getLogger(__name__)

_MODEL_SUFFIXES = (".pth", ".safetensors", ".onnx")
_NOT_MODELS = re.compile(r"^(D_|kmeans_|model_\d|feature_and_index|enhancer|diffusion)", re.I)
_STEP = re.compile(r"^G_(\d+)")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


@dataclass(frozen=True)
class ModelInfo:
    """One model folder under the models root, as every shell lists it.

    name: the folder name (what requests name); path: the folder; model_file and
    config: the files a conversion loads; speakers: the config's `spk` names in id
    order; sample_rate (Hz) and encoder: from the config; cluster_model /
    feature_index / diffusion_model / diffusion_config: the optional files found next
    to the model (None when absent); inspect: a short `sovits inspect` summary (None
    until asked for, or with the error it raised).
    """

    name: str
    path: Path
    model_file: Path
    config: Path | None
    speakers: tuple[str, ...]
    sample_rate: int | None
    encoder: str | None
    cluster_model: Path | None = None
    feature_index: Path | None = None
    diffusion_model: Path | None = None
    diffusion_config: Path | None = None
    inspect: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: paths as text."""
        data: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            data[item.name] = value
        return data


def model_file_in(folder: Path) -> Path | None:
    """The model file of `folder`: the G_ checkpoint of the highest step, else the one
    release / exported file (shortest name first), else None."""
    candidates = [
        path for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in _MODEL_SUFFIXES
        and not _NOT_MODELS.match(path.name)
    ]
    if not candidates:
        return None

    def rank(path: Path) -> tuple[int, int, int, str]:
        step = _STEP.match(path.name)
        onnx = path.suffix.lower() == ".onnx"
        return (int(onnx), -(int(step.group(1)) if step else -1), len(path.name), path.name)

    return sorted(candidates, key=rank)[0]


def _read_config(config: Path | None) -> tuple[tuple[str, ...], int | None, str | None]:
    """(speakers by id, sample rate, encoder) of a config.json; empty when unreadable."""
    if config is None:
        return (), None, None
    from sovits.config import load_svc_config

    try:
        cfg = load_svc_config(config)
    except SovitsError as error:
        logger.warning("%s: %s", config, error)
        return (), None, None
    speakers = tuple(name for name, _ in sorted(cfg.spk.items(), key=lambda item: item[1]))
    return speakers, cfg.data.sampling_rate, cfg.model.speech_encoder


def _model_info(folder: Path) -> ModelInfo | None:
    model = model_file_in(folder)
    if model is None:
        return None
    config = folder / "config.json"
    config_path = config if config.is_file() else None
    speakers, rate, encoder = _read_config(config_path)
    from sovits.retrieval.locate import timbre_candidates

    clusters = timbre_candidates(folder, feature_retrieval=False)
    indexes = timbre_candidates(folder, feature_retrieval=True)
    diffusion_folder = folder / "diffusion"
    diffusion_models = (
        sorted(diffusion_folder.glob("model_*.pt")) if diffusion_folder.is_dir() else []
    )
    diffusion_config = diffusion_folder / "config.yaml"
    return ModelInfo(
        name=folder.name,
        path=folder,
        model_file=model,
        config=config_path,
        speakers=speakers,
        sample_rate=rate,
        encoder=encoder,
        cluster_model=clusters[0] if clusters else None,
        feature_index=indexes[0] if indexes else None,
        diffusion_model=diffusion_models[-1] if diffusion_models else None,
        diffusion_config=diffusion_config if diffusion_config.is_file() else None,
    )


def model_info_for_file(name: str, model_file: Path, config: Path | None = None) -> ModelInfo:
    """The ModelInfo of a model file named by the server's operator (`sovits serve -m
    FILE -c CONFIG`), wherever it lies; the config defaults to config.json beside it."""
    model_file = Path(model_file).resolve()
    if not model_file.is_file():
        raise InputError("the model file does not exist", where=model_file)
    if config is None and (model_file.parent / "config.json").is_file():
        config = model_file.parent / "config.json"
    if config is not None and not Path(config).is_file():
        raise InputError("the config file does not exist", where=config)
    config = Path(config).resolve() if config is not None else None
    speakers, rate, encoder = _read_config(config)
    return ModelInfo(name=name, path=model_file.parent, model_file=model_file, config=config,
                     speakers=speakers, sample_rate=rate, encoder=encoder)


def discover_models(root: Path) -> list[ModelInfo]:
    """Every model folder directly under `root`, by name; folders without a model file
    are skipped."""
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.name.startswith("."):
            info = _model_info(folder)
            if info is not None:
                found.append(info)
    return found


def resolve_model(root: Path, name: str) -> ModelInfo:
    """The model folder `name` directly under `root`.

    Raises PathNotAllowedError for names that are not a plain folder name (separators,
    "..") and UnknownModelError when no model of that name exists.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise PathNotAllowedError(
            f"model name {name!r} is not a folder name under the models root",
            hint="use a name listed by GET /api/v1/models",
        )
    folder = root / name
    info = _model_info(folder) if folder.is_dir() else None
    if info is None:
        raise UnknownModelError(
            f"no model {name!r} under the models root",
            hint="use a name listed by GET /api/v1/models (a folder with a G_*.pth and "
            "config.json)",
        )
    return info


class ConverterCache:
    """Loaded converters, keyed by (model file, its mtime, config, its mtime, device,
    diffusion files), least recently used dropped beyond `size`.

    `get` returns the converter and a lock that serialises its use: one converter runs
    one conversion at a time.
    """

    def __init__(self, size: int = 2, *, device: str | None = None) -> None:
        if size < 1:
            raise InputError(f"model cache size must be at least 1, got {size}")
        self.size = size
        self.device = device
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], tuple[Converter, threading.Lock]] = (
            OrderedDict()
        )
        self.loads = 0
        """How many converters were loaded (not found in the cache)."""

    @staticmethod
    def _stamp(path: Path | None) -> tuple[str, int] | None:
        if path is None:
            return None
        return (os.fspath(path.resolve()), path.stat().st_mtime_ns)

    def get(
        self,
        info: ModelInfo,
        *,
        only_diffusion: bool = False,
        diffusion: tuple[Path | None, Path | None] = (None, None),
        build: Callable[[], Converter] | None = None,
    ) -> tuple[Converter, threading.Lock]:
        """The converter of `info` (loaded on first use); `build` overrides how."""
        key = (
            self._stamp(None if only_diffusion else info.model_file),
            self._stamp(info.config),
            self._stamp(diffusion[0]) if only_diffusion else None,
            self._stamp(diffusion[1]) if only_diffusion else None,
            self.device,
        )
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
        from sovits.inference.converter import Converter

        if build is not None:
            converter = build()
        elif only_diffusion:
            converter = Converter.diffusion_only(diffusion[0], diffusion[1], device=self.device)
        else:
            converter = Converter(info.model_file, info.config, device=self.device)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = (converter, threading.Lock())
                self._entries[key] = entry
                self.loads += 1
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
            self._entries.move_to_end(key)
            return entry

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
