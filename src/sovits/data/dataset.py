"""The training dataset: cached features of the clips of a filelist, and their collation
into a typed `Batch`.

`SvcDataset` is so-vits-svc 4.1's TextAudioSpeakerLoader over the features that
`sovits preprocess` (or the original's preprocess_hubert_f0.py) wrote beside each clip:

* the filelist's clips are put in a fixed shuffled order (`random.Random(1234)`, the
  order the original's `random.seed(1234); random.shuffle(...)` gives);
* a clip's speaker is the name of its folder, looked up in the config's `spk`;
* an item holds the clip as read from the wav (int16 / 32768), its spectrogram (read
  from `.spec.pt`, or computed when a dataset lacks it), f0 and voicing, the content
  units stretched to the f0 frame count (`repeat_expand_2d` with the config's
  `unit_interpolate_mode`) and, with a volume embedding, the volume; all are cut to
  the shorter of units and spectrogram, which must agree within 2 frames, and the
  audio to that many hops;
* each access may scale the clip's level (volume augmentation, when the config's
  `train.vol_aug` and the dataset's `vol_aug` are on and the model has a volume
  embedding: with probability 1/2, by 10**u with u uniform in [-1, min(1, -log10
  peak)], the spectrogram then recomputed) and then, for clips longer than
  `max_frames` (800) frames, takes a random window of `crop_frames` (790) frames.
  These are the original's fixed numbers: it does not use `train.max_speclen`.

Randomness comes from a `random.Random` per process: seeded with `seed` in the main
process and with the DataLoader's per-worker seed in worker processes, so workers
draw different windows and a run is reproducible under `torch.manual_seed`.

`collate_batch` pads items to the longest one (zeros) after sorting them by frame
count, longest first, as TextAudioCollate.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from sovits.config import SvcConfig
from sovits.data.batch import Batch
from sovits.errors import InputError

__all__ = [
    "CROP_FRAMES",
    "MAX_FRAMES",
    "SvcDataset",
    "TrainingItem",
    "check_clip_files",
    "collate_batch",
]

logger = logging.getLogger(__name__)

MAX_FRAMES = 800
"""Items longer than this (frames) are cropped (the original's fixed threshold)."""
CROP_FRAMES = 790
"""Frames kept by the crop (the original's fixed window)."""
_FRAME_SLACK = 3
_SHUFFLE_SEED = 1234


@dataclass(frozen=True)
class TrainingItem:
    """One clip's training tensors, sharing the frame axis T.

    content [D, T]; f0 [T] Hz; uv [T] (1 voiced, 0 not); spec [F, T] linear magnitude;
    wave [1, T * hop] in [-1, 1]; speaker id; volume [T] or None; path of the clip.
    """

    content: Tensor
    f0: Tensor
    uv: Tensor
    spec: Tensor
    wave: Tensor
    speaker: int
    volume: Tensor | None
    path: Path

    @property
    def frames(self) -> int:
        return int(self.content.shape[1])


def check_clip_files(
    paths: Sequence[Path],
    features_of: Callable[[Path], Iterable[Path]],
    *,
    where: str,
    hint: str,
) -> None:
    """InputError unless every clip in `paths` and every feature file
    `features_of(clip)` of the clips that exist are there.

    The error counts both and names the first five of each; `where` names the filelist.
    """
    absent = [path for path in paths if not path.is_file()]
    missing = [
        feature
        for path in paths
        if path.is_file()
        for feature in features_of(path)
        if not feature.exists()
    ]
    if not absent and not missing:
        return
    shown = [f"clip not found: {path}" for path in absent[:5]]
    shown += [f"feature file not found: {path}" for path in missing[:5]]
    more = " ..." if len(absent) > 5 or len(missing) > 5 else ""
    raise InputError(
        f"{len(absent)} clips and {len(missing)} feature files of the filelist are missing: "
        + "; ".join(shown)
        + more,
        where=where,
        hint=hint,
    )


def _resolve(entry: str, root: Path) -> Path:
    path = Path(entry.replace("\\", "/"))
    return path if path.is_absolute() else root / path


class SvcDataset(Dataset[TrainingItem]):
    """Training items of the clips in a filelist, read from their cached features.

    filelist: a filelist file (one clip path per line, the seed's format) or a
        sequence of clip paths. Relative paths are taken from `root` (default: the
        current folder, as the seed's train.py).
    config: the model config (rates, hop, FFT sizes, speakers, unit interpolation,
        volume embedding, `train.vol_aug`).
    all_in_mem: load every item once at construction (the seed's `all_in_mem`).
    vol_aug: allow volume augmentation (False for validation sets, as the seed).
    seed: seed of the random crops and level shifts in the main process.
    max_frames / crop_frames: the crop rule (see the module doc).

    Raises InputError at construction when the filelist is missing or empty, a clip's
    folder is not a speaker of the config, or clips lack their feature files (all
    such clips are listed); and when an item is read, when its files cannot be read or
    disagree with each other.
    """

    def __init__(
        self,
        filelist: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        config: SvcConfig,
        *,
        all_in_mem: bool = False,
        vol_aug: bool = True,
        root: str | os.PathLike[str] | None = None,
        seed: int = 1234,
        max_frames: int = MAX_FRAMES,
        crop_frames: int = CROP_FRAMES,
    ):
        from sovits.data.filelists import read_filelist

        if not 0 < crop_frames <= max_frames:
            raise InputError(f"need 0 < crop_frames <= max_frames, got {crop_frames}, {max_frames}")
        base = Path(root) if root is not None else Path.cwd()
        if isinstance(filelist, str | os.PathLike):
            source = str(filelist)
            entries = read_filelist(filelist)
        else:
            source = "<clip list>"
            entries = [os.fspath(entry) for entry in filelist]
        if not entries:
            raise InputError("the filelist names no clip", where=source)
        random.Random(_SHUFFLE_SEED).shuffle(entries)
        self.paths = [_resolve(entry, base) for entry in entries]
        self.config = config
        self.hop_length = config.data.hop_length
        self.use_volume = config.model.vol_embedding
        self.vol_aug = config.train.vol_aug and vol_aug
        self.seed = seed
        self.max_frames = max_frames
        self.crop_frames = crop_frames
        self.speakers = [self._speaker_of(path) for path in self.paths]
        self._check_files(source)
        self._rng: random.Random | None = None
        self._rng_key: int | None = None
        self._cache: list[TrainingItem] | None = None
        if all_in_mem:
            self._cache = [self.load_item(index) for index in range(len(self.paths))]

    def _speaker_of(self, path: Path) -> int:
        name = path.parent.name
        if name not in self.config.spk:
            raise InputError(
                f"the clip's folder {name!r} is not a speaker of the config "
                f"({', '.join(self.config.speaker_names)})",
                where=path,
                hint="clips must be <dataset>/<speaker>/<clip>.wav; rerun "
                "`sovits preprocess-config` after adding speakers",
            )
        return self.config.spk[name]

    def _check_files(self, source: str) -> None:
        from sovits.features.store import FeatureKind, feature_path

        kinds: list[FeatureKind] = ["content", "f0"]
        if self.use_volume:
            kinds.append("volume")
        check_clip_files(
            self.paths,
            lambda path: [feature_path(path, kind) for kind in kinds],
            where=source,
            hint="run `sovits preprocess` (and check the filelist's paths)",
        )

    def __len__(self) -> int:
        return len(self.paths)

    def load_item(self, index: int) -> TrainingItem:
        """Item `index` as stored, before augmentation and cropping."""
        from sovits.audio.io import load_audio
        from sovits.dsp.alignment import repeat_expand_2d
        from sovits.features.store import read_content, read_f0, read_spec, read_volume

        path = self.paths[index]
        data = self.config.data
        audio, rate = load_audio(path)
        if rate != data.sampling_rate:
            raise InputError(
                f"sample rate {rate} Hz, but the config's is {data.sampling_rate} Hz", where=path
            )
        wave = torch.from_numpy(audio)[None]
        spec = read_spec(path)
        if spec is None:
            spec = self._spectrogram(wave)
        f0_array, uv_array = read_f0(path)
        f0 = torch.from_numpy(np.ascontiguousarray(f0_array, dtype=np.float32))
        uv = torch.from_numpy(np.ascontiguousarray(uv_array, dtype=np.float32))
        content = repeat_expand_2d(read_content(path), f0.shape[0], mode=data.unit_interpolate_mode)
        volume = None
        if self.use_volume:
            volume = torch.from_numpy(np.ascontiguousarray(read_volume(path), dtype=np.float32))
        frames = min(content.shape[1], spec.shape[1])
        if abs(content.shape[1] - spec.shape[1]) >= _FRAME_SLACK:
            raise InputError(
                f"features disagree: f0 / units have {content.shape[1]} frames, the spectrogram "
                f"{spec.shape[1]}",
                where=path,
                hint="the features were made with other settings; run `sovits preprocess`",
            )
        if abs(wave.shape[1] - frames * self.hop_length) >= _FRAME_SLACK * self.hop_length:
            raise InputError(
                f"the audio has {wave.shape[1]} samples but the features {frames} frames of "
                f"{self.hop_length}",
                where=path,
                hint="the audio changed after preprocessing; run `sovits preprocess`",
            )
        if volume is not None:
            if volume.shape[0] < frames:
                raise InputError(
                    f"the volume has {volume.shape[0]} frames, expected {frames}", where=path,
                    hint="run `sovits preprocess`",
                )
            volume = volume[:frames]
        return TrainingItem(
            content=content[:, :frames].to(torch.float32),
            f0=f0[:frames],
            uv=uv[:frames],
            spec=spec[:, :frames],
            wave=wave[:, : frames * self.hop_length],
            speaker=self.speakers[index],
            volume=volume,
            path=path,
        )

    def _spectrogram(self, wave: Tensor) -> Tensor:
        from sovits.dsp.spectrogram import spectrogram

        data = self.config.data
        return spectrogram(
            wave, n_fft=data.filter_length, hop_length=data.hop_length, win_length=data.win_length
        )[0]

    def _random(self) -> random.Random:
        info = get_worker_info()
        key = None if info is None else int(info.seed)
        if self._rng is None or self._rng_key != key:
            self._rng = random.Random(self.seed if key is None else key)
            self._rng_key = key
        return self._rng

    def augment(self, item: TrainingItem, rng: random.Random) -> TrainingItem:
        """The item after volume augmentation and the random crop (see the module doc)."""
        wave, spec, volume = item.wave, item.spec, item.volume
        if rng.choice([True, False]) and self.vol_aug and volume is not None:
            peak = float(wave.abs().max()) + 1e-5
            shift = rng.uniform(-1.0, min(1.0, math.log10(1.0 / peak)))
            gain = 10.0**shift
            wave = wave * gain
            volume = volume * gain
            spec = self._spectrogram(wave)
        content, f0, uv = item.content, item.f0, item.uv
        frames = spec.shape[1]
        if frames > self.max_frames:
            start = rng.randint(0, frames - self.max_frames)
            end = start + self.crop_frames
            content, spec = content[:, start:end], spec[:, start:end]
            f0, uv = f0[start:end], uv[start:end]
            wave = wave[:, start * self.hop_length : end * self.hop_length]
            if volume is not None:
                volume = volume[start:end]
        return TrainingItem(content, f0, uv, spec, wave, item.speaker, volume, item.path)

    def __getitem__(self, index: int) -> TrainingItem:
        item = self._cache[index] if self._cache is not None else self.load_item(index)
        return self.augment(item, self._random())


def collate_batch(items: Sequence[TrainingItem]) -> Batch:
    """Pad `items` into a Batch, longest first (TextAudioCollate).

    content, f0, uv, spec and volume are zero-padded to the most frames, wave to the
    most samples; lengths are the frame counts. volume is None when any item has none.
    """
    if not items:
        raise InputError("cannot collate an empty batch")
    order = sorted(range(len(items)), key=lambda index: -items[index].frames)
    count = len(items)
    frames = max(item.frames for item in items)
    samples = max(item.wave.shape[1] for item in items)
    first = items[0]
    content = torch.zeros(count, first.content.shape[0], frames)
    f0 = torch.zeros(count, frames)
    uv = torch.zeros(count, frames)
    spec = torch.zeros(count, first.spec.shape[0], frames)
    wave = torch.zeros(count, 1, samples)
    speaker = torch.zeros(count, dtype=torch.int64)
    lengths = torch.zeros(count, dtype=torch.int64)
    with_volume = all(item.volume is not None for item in items)
    volume = torch.zeros(count, frames) if with_volume else None
    for row, index in enumerate(order):
        item = items[index]
        length = item.frames
        content[row, :, :length] = item.content
        f0[row, :length] = item.f0
        uv[row, :length] = item.uv
        spec[row, :, :length] = item.spec
        wave[row, :, : item.wave.shape[1]] = item.wave
        speaker[row] = item.speaker
        lengths[row] = length
        if volume is not None and item.volume is not None:
            volume[row, :length] = item.volume
    return Batch(
        content=content,
        f0=f0,
        uv=uv,
        spec=spec,
        wave=wave,
        speaker=speaker,
        lengths=lengths,
        volume=volume,
    )
