"""`sovits preprocess-config`: filelists, speaker map, config.json and diffusion.yaml.

so-vits-svc's preprocess_flist_config.py over a resampled dataset
(`dataset/44k/<speaker>/*.wav`):

* every speaker folder gets an id (sovits numbers them in sorted name order; the seed
  used the file system's listing order), including folders without usable clips;
* a speaker's clips are its `.wav` files (hidden files and other suffixes ignored);
  clips shorter than 0.3 s are left out; names outside [A-Za-z0-9._/] are reported
  (the seed warned that they may cause errors);
* each speaker's clips are shuffled (a seeded `random.Random`, so the split is
  reproducible; the seed's was not) and the first two go to validation, the rest to
  training. When a speaker has two clips or fewer the seed put them all in
  validation; sovits keeps at least one for training and says so;
* both lists are shuffled again and written one path per line, as
  `<source_dir>/<speaker>/<file>` with forward slashes (the seed's line format);
* config.json comes from the 4.1 template (or the tiny one) with `spk`,
  `model.n_speakers`, `model.speech_encoder` and the unit width of that encoder
  (`ssl_dim`, and `filter_channels` / `gin_channels` as the seed sets them), volume
  embedding and augmentation with `vol_aug`; unlike the seed, `data.training_files`
  and `data.validation_files` name the lists actually written;
* diffusion.yaml comes from the 4.1 diffusion template with the speaker map, the
  encoder and its width, and the same lists.

Writing YAML needs PyYAML.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import re
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovits.config import SvcConfig, parse_svc_config, save_svc_config, template_config
from sovits.data.prepare import DEFAULT_RESAMPLED_DIR, FileProblem
from sovits.errors import ConfigError, InputError
from sovits.files import atomic_write

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_DIFFUSION_CONFIG_PATH",
    "DEFAULT_TRAIN_LIST",
    "DEFAULT_VAL_LIST",
    "MIN_CLIP_SECONDS",
    "DatasetSplit",
    "PreprocessConfigReport",
    "build_diffusion_config",
    "build_svc_config",
    "diffusion_template",
    "preprocess_config",
    "read_filelist",
    "save_diffusion_config",
    "split_dataset",
    "write_filelist",
]

logger = logging.getLogger(__name__)

DEFAULT_TRAIN_LIST = Path("filelists") / "train.txt"
DEFAULT_VAL_LIST = Path("filelists") / "val.txt"
DEFAULT_CONFIG_PATH = Path("configs") / "config.json"
DEFAULT_DIFFUSION_CONFIG_PATH = Path("configs") / "diffusion.yaml"
MIN_CLIP_SECONDS = 0.3
"""Clips shorter than this are left out of the lists (the seed's rule)."""
DEFAULT_VAL_PER_SPEAKER = 2
DEFAULT_SPLIT_SEED = 1234

_PLAIN_NAME = re.compile(r"^[.a-zA-Z0-9_/]+$")

# (ssl_dim, filter_channels or None when the seed leaves it, gin_channels) per encoder,
# as preprocess_flist_config.py sets them.
_SEED_WIDTHS: Mapping[str, tuple[int, int | None, int]] = {
    "vec768l12": (768, 768, 768),
    "dphubert": (768, 768, 768),
    "wavlmbase+": (768, 768, 768),
    "vec256l9": (256, None, 256),
    "hubertsoft": (256, None, 256),
    "whisper-ppg": (1024, 1024, 1024),
    "cnhubertlarge": (1024, 1024, 1024),
    "whisper-ppg-large": (1280, 1280, 1280),
}
_TINY_FILTER_CHANNELS = 512

_DIFFUSION_TEMPLATE: dict[str, Any] = {
    "data": {
        "sampling_rate": 44100,
        "block_size": 512,
        "duration": 2,
        "encoder": "vec768l12",
        "cnhubertsoft_gate": 10,
        "encoder_sample_rate": 16000,
        "encoder_hop_size": 320,
        "encoder_out_channels": 768,
        "training_files": "filelists/train.txt",
        "validation_files": "filelists/val.txt",
        "extensions": ["wav"],
        "unit_interpolate_mode": "nearest",
    },
    "model": {
        "type": "Diffusion",
        "n_layers": 20,
        "n_chans": 512,
        "n_hidden": 256,
        "use_pitch_aug": True,
        "timesteps": 1000,
        "k_step_max": 0,
        "n_spk": 1,
    },
    "device": "cuda",
    "vocoder": {"type": "nsf-hifigan", "ckpt": "pretrain/nsf_hifigan/model"},
    "infer": {"speedup": 10, "method": "dpm-solver++"},
    "env": {"expdir": "logs/44k/diffusion", "gpu_id": 0},
    "train": {
        "num_workers": 4,
        "amp_dtype": "fp32",
        "batch_size": 48,
        "cache_all_data": True,
        "cache_device": "cpu",
        "cache_fp16": True,
        "epochs": 100000,
        "interval_log": 10,
        "interval_val": 2000,
        "interval_force_save": 5000,
        "lr": 0.0001,
        "decay_step": 100000,
        "gamma": 0.5,
        "weight_decay": 0,
        "save_opt": False,
    },
    "spk": {"nyaru": 0},
}


def diffusion_template() -> dict[str, Any]:
    """A fresh copy of so-vits-svc 4.1's configs_template/diffusion_template.yaml."""
    return copy.deepcopy(_DIFFUSION_TEMPLATE)


# --------------------------------------------------------------------------- split


@dataclass(frozen=True)
class DatasetSplit:
    """The train / validation lists of a dataset and its speaker map.

    train, val: filelist lines (`<source_dir>/<speaker>/<file>`). speakers: name -> id.
    skipped: clips left out, with the reason. notes: things worth knowing (odd file
    names, speakers with too few clips).
    """

    train: tuple[str, ...]
    val: tuple[str, ...]
    speakers: Mapping[str, int]
    skipped: tuple[FileProblem, ...] = ()
    notes: tuple[str, ...] = ()


def _clip_seconds(path: Path) -> float:
    """Length of a wav file in seconds, from its header."""
    try:
        with wave.open(str(path), "rb") as handle:
            return handle.getnframes() / float(handle.getframerate())
    except (wave.Error, EOFError, OSError):
        from sovits.audio.io import audio_info

        frames, rate, _, _ = audio_info(path)
        return frames / float(rate)


def _line(source_dir: str, speaker: str, name: str) -> str:
    return "/".join([source_dir.replace(os.sep, "/").rstrip("/") or ".", speaker, name])


def split_dataset(
    source_dir: str | os.PathLike[str] = DEFAULT_RESAMPLED_DIR,
    *,
    val_per_speaker: int = DEFAULT_VAL_PER_SPEAKER,
    min_seconds: float = MIN_CLIP_SECONDS,
    seed: int | None = DEFAULT_SPLIT_SEED,
) -> DatasetSplit:
    """Split `source_dir/<speaker>/*.wav` into training and validation lists.

    val_per_speaker: clips of each speaker for validation (fewer when the speaker has
    that many or fewer, so one remains for training). seed: the shuffles' seed (None:
    a different split every time, as the seed did). Raises InputError when the folder
    does not exist or holds no speaker folder.
    """
    root = Path(source_dir)
    if not root.is_dir():
        raise InputError(
            "dataset folder not found",
            where=root,
            hint="run `sovits resample` first, or give the folder of <speaker>/*.wav",
        )
    speakers = sorted(
        entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )
    if not speakers:
        raise InputError("no speaker folders found", where=root,
                         hint="the dataset must hold one folder per speaker: <speaker>/*.wav")
    rng = random.Random(seed)
    prefix = os.fspath(source_dir)
    train: list[str] = []
    val: list[str] = []
    skipped: list[FileProblem] = []
    notes: list[str] = []
    for speaker in speakers:
        clips: list[str] = []
        for path in sorted((root / speaker).iterdir()):
            if path.name.startswith(".") or not path.name.endswith("wav") or not path.is_file():
                continue
            if not _PLAIN_NAME.match(f"{speaker}/{path.name}"):
                notes.append(f"{path}: characters outside A-Z a-z 0-9 . _ in the name; "
                             "so-vits-svc may stumble on it (sovits does not)")
            try:
                seconds = _clip_seconds(path)
            except InputError as error:
                skipped.append(FileProblem(path, error.message))
                continue
            if seconds < min_seconds:
                skipped.append(FileProblem(path, f"too short ({seconds:.2f} s < {min_seconds} s)"))
                continue
            clips.append(_line(prefix, speaker, path.name))
        rng.shuffle(clips)
        count = min(val_per_speaker, max(len(clips) - 1, 0))
        if not clips:
            notes.append(f"speaker {speaker!r} has no usable clip")
        elif count < val_per_speaker:
            notes.append(f"speaker {speaker!r} has {len(clips)} clip(s): {count} for validation, "
                         f"{len(clips) - count} for training")
        val += clips[:count]
        train += clips[count:]
    rng.shuffle(train)
    rng.shuffle(val)
    return DatasetSplit(
        train=tuple(train),
        val=tuple(val),
        speakers={name: index for index, name in enumerate(speakers)},
        skipped=tuple(skipped),
        notes=tuple(notes),
    )


def write_filelist(lines: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Write a filelist (one path per line, UTF-8) atomically; parent folders are made."""
    path = Path(path)
    text = "".join(f"{line}\n" for line in lines)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as error:
        raise InputError(f"cannot write the filelist: {error}", where=path) from None
    return path


def read_filelist(path: str | os.PathLike[str]) -> list[str]:
    """The clip paths of a filelist: the part of each non-empty line before the first
    "|" (the seed's `load_filepaths_and_text`), with backslashes turned into slashes."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("filelist not found", where=path,
                         hint="run `sovits preprocess-config` to write it") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the filelist: {error}", where=path) from None
    entries = (line.strip().split("|")[0].strip() for line in text.splitlines())
    return [entry.replace("\\", "/") for entry in entries if entry]


# --------------------------------------------------------------------------- configs


def _encoder_dim(speech_encoder: str) -> int:
    from sovits.features.content.registry import encoder_spec

    return encoder_spec(speech_encoder).dim


def build_svc_config(
    speakers: Mapping[str, int],
    *,
    speech_encoder: str = "vec768l12",
    vol_aug: bool = False,
    tiny: bool = False,
    training_files: str = "filelists/train.txt",
    validation_files: str = "filelists/val.txt",
    base: SvcConfig | None = None,
) -> SvcConfig:
    """The config.json preprocess-config writes.

    base: the config to start from (default: the 4.1 template, or the tiny one with
    `tiny`). Raises InputError for an unknown encoder and ConfigError when there is no
    speaker.
    """
    if not speakers:
        raise ConfigError("no speakers: the config needs at least one")
    dim = _encoder_dim(speech_encoder)
    data = (base or template_config(tiny)).to_dict()
    model = data["model"]
    data["spk"] = dict(speakers)
    model["n_speakers"] = len(speakers)
    model["speech_encoder"] = speech_encoder
    ssl_dim, filter_channels, gin_channels = _SEED_WIDTHS.get(speech_encoder, (dim, None, None))
    model["ssl_dim"] = ssl_dim
    if filter_channels is not None:
        model["filter_channels"] = filter_channels
    if gin_channels is not None:
        model["gin_channels"] = gin_channels
    if vol_aug:
        data["train"]["vol_aug"] = True
        model["vol_embedding"] = True
    if tiny:
        model["filter_channels"] = _TINY_FILTER_CHANNELS
    data["data"]["training_files"] = training_files
    data["data"]["validation_files"] = validation_files
    return parse_svc_config(data, source="preprocess-config")


def build_diffusion_config(
    speakers: Mapping[str, int],
    config: SvcConfig,
    *,
    training_files: str | None = None,
    validation_files: str | None = None,
) -> dict[str, Any]:
    """The diffusion.yaml preprocess-config writes, as a dict: the 4.1 template with
    the speakers, `config`'s encoder and unit width, rate, hop and filelists."""
    result = diffusion_template()
    result["model"]["n_spk"] = len(speakers)
    result["spk"] = dict(speakers)
    data = result["data"]
    data["encoder"] = config.model.speech_encoder
    data["encoder_out_channels"] = config.model.ssl_dim
    data["sampling_rate"] = config.data.sampling_rate
    data["block_size"] = config.data.hop_length
    data["unit_interpolate_mode"] = config.data.unit_interpolate_mode
    data["training_files"] = training_files or config.data.training_files
    data["validation_files"] = validation_files or config.data.validation_files
    return result


def save_diffusion_config(config: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a diffusion config as YAML (UTF-8, template key order), atomically."""
    try:
        import yaml
    except ImportError:
        raise InputError(
            "writing diffusion.yaml needs PyYAML", hint="pip install pyyaml"
        ) from None
    path = Path(path)
    text = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True,
                          default_flow_style=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
    except OSError as error:
        raise ConfigError(f"cannot write the diffusion config ({error})", where=path) from None
    return path


# --------------------------------------------------------------------------- the step


@dataclass(frozen=True)
class PreprocessConfigReport:
    """What `preprocess_config` wrote: the split and the four files."""

    split: DatasetSplit
    config: SvcConfig
    train_list: Path
    val_list: Path
    config_path: Path
    diffusion_config_path: Path

    def summary(self) -> str:
        """One line: speakers, clips per list, clips left out."""
        return (
            f"{len(self.split.speakers)} speakers, {len(self.split.train)} training clips, "
            f"{len(self.split.val)} validation clips, {len(self.split.skipped)} left out"
        )


def preprocess_config(
    source_dir: str | os.PathLike[str] = DEFAULT_RESAMPLED_DIR,
    *,
    train_list: str | os.PathLike[str] = DEFAULT_TRAIN_LIST,
    val_list: str | os.PathLike[str] = DEFAULT_VAL_LIST,
    config_path: str | os.PathLike[str] = DEFAULT_CONFIG_PATH,
    diffusion_config_path: str | os.PathLike[str] | None = None,
    speech_encoder: str = "vec768l12",
    vol_aug: bool = False,
    tiny: bool = False,
    seed: int | None = DEFAULT_SPLIT_SEED,
    val_per_speaker: int = DEFAULT_VAL_PER_SPEAKER,
    base: SvcConfig | None = None,
) -> PreprocessConfigReport:
    """Split the dataset, then write the two filelists, config.json and diffusion.yaml.

    diffusion_config_path: default `diffusion.yaml` beside `config_path`. The config's
    `data.training_files` / `validation_files` are the list paths as given. Existing
    files are replaced. Raises InputError for a missing or empty dataset or an unknown
    encoder, ConfigError when a config cannot be written.
    """
    split = split_dataset(source_dir, val_per_speaker=val_per_speaker, seed=seed)
    for note in split.notes:
        logger.info("%s", note)
    train_name = Path(train_list).as_posix()
    val_name = Path(val_list).as_posix()
    config = build_svc_config(
        split.speakers,
        speech_encoder=speech_encoder,
        vol_aug=vol_aug,
        tiny=tiny,
        training_files=train_name,
        validation_files=val_name,
        base=base,
    )
    config_file = Path(config_path)
    diffusion_file = (
        Path(diffusion_config_path)
        if diffusion_config_path is not None
        else config_file.with_name(DEFAULT_DIFFUSION_CONFIG_PATH.name)
    )
    written_train = write_filelist(split.train, train_list)
    written_val = write_filelist(split.val, val_list)
    try:
        config_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create the config folder ({error})", where=config_file) from None
    save_svc_config(config, config_file)
    save_diffusion_config(build_diffusion_config(split.speakers, config), diffusion_file)
    return PreprocessConfigReport(
        split=split,
        config=config,
        train_list=written_train,
        val_list=written_val,
        config_path=config_file,
        diffusion_config_path=diffusion_file,
    )
