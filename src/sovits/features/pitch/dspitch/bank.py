"""The DiffSinger pitch bank folder (`pretrain/ds_enhance`): where it is and what it holds.

A bank is the `dspitch` folder of an OpenUtau DiffSinger voicebank (or the DiffSinger
exporter's output) plus an ONNX export of SOME (openvpi/SOME), all in one folder.

Folder lookup (`find_bank_folder`), first match wins:

1. the folder the caller names (`--dspitch-folder`); it must hold dsconfig.yaml;
2. `$SOVITS_HOME/pretrain/ds_enhance` (the project's resolver: an explicitly set
   variable beats the working directory);
3. `./pretrain/ds_enhance` relative to the working directory, where the
   diffsinger-sovits fork and its users keep it;
4. `<user cache>/pretrain/ds_enhance`.

A folder counts only when it holds `dsconfig.yaml`, so the fork's empty placeholder
folder does not hide a real bank further down the list.

Files inside the folder (`read_bank`), each with the fork's fixed name as a fallback
(a `*` pattern must match exactly one file):

| what | dsconfig key | then |
| --- | --- | --- |
| linguistic model | `linguistic` | `ds_linguistic.onnx`, `linguistic.onnx`, `*.linguistic.onnx` |
| pitch model | `pitch` | `ds_pitch.onnx`, `pitch.onnx`, `*.pitch.onnx` |
| phonemes | `phonemes` | `phonemes.txt`, `phonemes.json`, `*.phonemes.json` / `.txt` |
| languages | `languages` | `languages.json`, `*.languages.json` (only when used) |
| speakers | `speakers` | `<name>.emb` per listed name |
| SOME | - | `SOME.onnx` (fork), `some.yaml` (OpenUtau: `model`, `sample_rate`), `some.onnx` |

Every missing file raises one MissingFileError naming the file, the folder, and how to
make it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sovits.errors import ConfigError, InputError, MissingFileError

__all__ = [
    "BANK_HINT",
    "DEFAULT_FOLDER",
    "SOME_HINT",
    "DsBank",
    "DsConfig",
    "bank_search_folders",
    "find_bank_folder",
    "read_bank",
    "read_languages",
    "read_phonemes",
    "read_speaker_embedding",
]

DEFAULT_FOLDER = "pretrain/ds_enhance"
"""Where the bank lives below the working directory, $SOVITS_HOME or the user cache."""

BANK_HINT = (
    "copy every file of an OpenUtau DiffSinger voicebank's dspitch folder (dsconfig.yaml, "
    "phonemes, linguistic and pitch .onnx, speaker .emb files) into this folder, or pass "
    "--dspitch-folder"
)
SOME_HINT = (
    "export SOME (github.com/openvpi/SOME) to ONNX with `python export.py --model "
    "<checkpoint>.ckpt --out SOME.onnx` in its repository and put SOME.onnx in this folder"
)
_SOME_SAMPLE_RATE = 44100


@dataclass(frozen=True)
class DsConfig:
    """The dsconfig.yaml keys the pitch source reads (OpenUtau's defaults when absent).

    sample_rate, hop_size: the pitch model's frame grid (Hz, samples).
    hidden_size: encoder width, the length of a speaker embedding.
    speakers: speaker names; each has `<name>.emb` in the folder.
    use_lang_id: whether the linguistic model takes `languages` (a cross-check only:
        the graph's declared inputs decide).
    raw: every key as read.
    """

    sample_rate: int = 44100
    hop_size: int = 512
    hidden_size: int = 256
    speakers: tuple[str, ...] = ()
    use_lang_id: bool = False
    raw: Mapping[str, Any] | None = None

    @property
    def frame_seconds(self) -> float:
        """Length of one pitch-model frame, seconds."""
        return self.hop_size / self.sample_rate


@dataclass(frozen=True)
class DsBank:
    """The files of one bank folder, resolved.

    folder: the bank folder.
    config: its dsconfig.yaml.
    linguistic, pitch: the two DiffSinger ONNX models.
    phonemes: phoneme name -> token id.
    languages_path: languages.json if the folder has one, else None.
    some: the SOME ONNX model; some_sample_rate: the rate SOME expects, Hz.
    """

    folder: Path
    config: DsConfig
    linguistic: Path
    pitch: Path
    phonemes: Mapping[str, int]
    languages_path: Path | None
    some: Path
    some_sample_rate: int


def bank_search_folders() -> list[Path]:
    """Every folder `find_bank_folder(None)` checks, in order."""
    from sovits.features.pretrained import HOME_VARIABLE, user_cache_dir

    relative = Path(*DEFAULT_FOLDER.split("/"))
    folders = []
    home = os.environ.get(HOME_VARIABLE)
    if home:
        folders.append(Path(home).expanduser() / relative)
    folders.append(Path.cwd() / relative)
    folders.append(user_cache_dir() / relative)
    return folders


def find_bank_folder(explicit: str | Path | None = None) -> Path:
    """The bank folder: `explicit` if given, else the first of `bank_search_folders()` that
    holds dsconfig.yaml. Raises MissingFileError naming the places searched."""
    if explicit is not None:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            raise MissingFileError(
                "DiffSinger pitch bank folder not found", where=folder, hint=BANK_HINT
            )
        if not (folder / "dsconfig.yaml").is_file():
            raise MissingFileError(
                "dsconfig.yaml of the DiffSinger pitch model not found", where=folder,
                hint=BANK_HINT,
            )
        return folder
    folders = bank_search_folders()
    for folder in folders:
        if (folder / "dsconfig.yaml").is_file():
            return folder
    places = " or ".join(str(folder) for folder in folders)
    raise MissingFileError(
        f"no DiffSinger pitch bank (a folder with dsconfig.yaml) found; put it at {places}",
        hint=BANK_HINT.replace("into this folder", "into one of them"),
    )


def _read_config(path: Path) -> DsConfig:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read dsconfig.yaml: {error}", where=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("dsconfig.yaml must be a mapping of keys to values", where=path)

    def number(key: str, default: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}", where=path)
        return value

    speakers = raw.get("speakers") or []
    if not isinstance(speakers, list) or not all(isinstance(s, str) for s in speakers):
        raise ConfigError(f"speakers must be a list of names, got {speakers!r}", where=path)
    return DsConfig(
        sample_rate=number("sample_rate", 44100),
        hop_size=number("hop_size", 512),
        hidden_size=number("hidden_size", 256),
        speakers=tuple(speakers),
        use_lang_id=bool(raw.get("use_lang_id", False)),
        raw=raw,
    )


def _find(
    folder: Path, what: str, configured: object, names: Sequence[str], patterns: Sequence[str],
    hint: str, *, required: bool = True,
) -> Path | None:
    """First existing file among the dsconfig value, `names` and a unique glob match."""
    if isinstance(configured, str) and configured:
        path = folder / configured
        if path.is_file():
            return path
    for name in names:
        if (folder / name).is_file():
            return folder / name
    for pattern in patterns:
        matches = sorted(folder.glob(pattern))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            listed = ", ".join(match.name for match in matches)
            raise InputError(
                f"several {what} files match {pattern}: {listed}", where=folder,
                hint="name the one to use in dsconfig.yaml",
            )
    if not required:
        return None
    tried = ([str(configured)] if isinstance(configured, str) and configured else []) + [
        *names, *patterns
    ]
    raise MissingFileError(
        f"the {what} ({' / '.join(tried)}) is missing from the DiffSinger pitch bank",
        where=folder,
        hint=hint,
    )


def read_phonemes(path: Path) -> dict[str, int]:
    """Phoneme name -> token id from phonemes.txt (line i = id i) or phonemes.json
    ({name: id}). Raises ConfigError for an unreadable or malformed file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the phoneme list: {error}", where=path) from None
    if path.suffix.lower() == ".json":
        try:
            table = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"invalid JSON: {error}", where=path) from None
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in table.items()
        ):
            raise ConfigError("expected a JSON object of phoneme names to token ids", where=path)
        return dict(table)
    return {line.strip(): index for index, line in enumerate(text.splitlines()) if line.strip()}


def read_languages(path: Path) -> dict[str, int]:
    """Language name -> id from languages.json. Raises ConfigError."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read the language list: {error}", where=path) from None
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in table.items()
    ):
        raise ConfigError("expected a JSON object of language names to ids", where=path)
    return dict(table)


def read_speaker_embedding(bank: DsBank, speaker: str, width: int) -> np.ndarray:
    """The embedding of `speaker` (a dsconfig `speakers` name, or the part after its last
    dot when that is unique), float32 [width], from `<name>.emb` (raw little-endian
    float32). Raises InputError for an unknown speaker (listing the speakers),
    MissingFileError for a missing file, CheckpointError for a wrong length."""
    from sovits.errors import CheckpointError

    names = bank.config.speakers
    name = resolve_speaker(names, speaker)
    path = bank.folder / f"{name}.emb"
    if not path.is_file():
        raise MissingFileError(
            f"the embedding of speaker {name!r} ({path.name}) is missing", where=bank.folder,
            hint="copy the voicebank's .emb files together with its dsconfig.yaml",
        )
    embedding = np.fromfile(path, dtype="<f4")
    if embedding.shape[0] != width:
        raise CheckpointError(
            f"speaker embedding has {embedding.shape[0]} values but the pitch model needs "
            f"{width} (hidden_size)",
            where=path,
        )
    return embedding.astype(np.float32)


def resolve_speaker(names: Sequence[str], speaker: str) -> str:
    """The dsconfig speaker name `speaker` refers to: an exact name, or a unique suffix
    after a dot or slash ("tenor" for "bank.tenor" or "embeds/tenor"). InputError
    listing the names otherwise."""
    if speaker in names:
        return speaker
    matches = [
        name for name in names if name.rsplit("/", 1)[-1].rsplit(".", 1)[-1] == speaker
    ]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(names) if names else "none (the bank is single-speaker)"
    raise InputError(
        f"unknown DiffSinger speaker {speaker!r}; the bank's speakers: {listed}"
    )


def _read_some(folder: Path) -> tuple[Path, int]:
    """SOME's model file and sample rate: SOME.onnx, or some.yaml's `model`, or some.onnx."""
    fixed = folder / "SOME.onnx"
    if fixed.is_file():
        return fixed, _SOME_SAMPLE_RATE
    described = folder / "some.yaml"
    if described.is_file():
        import yaml

        try:
            raw = yaml.safe_load(described.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read some.yaml: {error}", where=described) from None
        if not isinstance(raw, dict):
            raise ConfigError("some.yaml must be a mapping", where=described)
        model = folder / str(raw.get("model", "model.onnx"))
        rate = raw.get("sample_rate", _SOME_SAMPLE_RATE)
        if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            raise ConfigError(f"sample_rate must be a positive integer, got {rate!r}",
                              where=described)
        if not model.is_file():
            raise MissingFileError(
                f"the SOME model {model.name} named by some.yaml is missing", where=model.parent,
                hint=SOME_HINT,
            )
        return model, rate
    for name in ("some.onnx", "Some.onnx"):
        if (folder / name).is_file():
            return folder / name, _SOME_SAMPLE_RATE
    raise MissingFileError(
        "the SOME note extractor (SOME.onnx) is missing from the DiffSinger pitch bank",
        where=folder,
        hint=SOME_HINT,
    )


def read_bank(folder: Path, *, some_model: Path | None = None) -> DsBank:
    """Resolve every file of the bank in `folder` (see the module doc). `some_model`
    overrides the SOME file (its rate is then 44100 Hz, SOME's own)."""
    config = _read_config(folder / "dsconfig.yaml")
    raw = config.raw or {}
    linguistic = _find(
        folder, "linguistic model", raw.get("linguistic"),
        ("ds_linguistic.onnx", "linguistic.onnx"), ("*.linguistic.onnx",), BANK_HINT,
    )
    pitch = _find(
        folder, "pitch model", raw.get("pitch"), ("ds_pitch.onnx", "pitch.onnx"),
        ("*.pitch.onnx",), BANK_HINT,
    )
    phoneme_path = _find(
        folder, "phoneme list", raw.get("phonemes"), ("phonemes.txt", "phonemes.json"),
        ("*.phonemes.json", "*.phonemes.txt"), BANK_HINT,
    )
    languages = _find(
        folder, "language list", raw.get("languages"), ("languages.json",),
        ("*.languages.json",), BANK_HINT, required=False,
    )
    assert linguistic is not None and pitch is not None and phoneme_path is not None
    if some_model is not None:
        some = Path(some_model).expanduser()
        if not some.is_file():
            raise MissingFileError("the SOME model is missing", where=some, hint=SOME_HINT)
        some_rate = _SOME_SAMPLE_RATE
    else:
        some, some_rate = _read_some(folder)
    return DsBank(
        folder=folder,
        config=config,
        linguistic=linguistic,
        pitch=pitch,
        phonemes=read_phonemes(phoneme_path),
        languages_path=languages,
        some=some,
        some_sample_rate=some_rate,
    )
