"""The diffusion training dataset: cached features of a filelist's clips, random
crops with pitch augmentation, and their collation into a typed `DiffusionBatch`.

`DiffusionDataset` is so-vits-svc 4.1's diffusion AudioDataset over the features
`sovits preprocess --use-diff` (or the original's preprocess_hubert_f0.py with
`--use_diff`) wrote beside each clip: units (`.soft.pt`), f0 (`.f0.npy`), volume
(`.vol.npy`), the vocoder log-mel (`.mel.npy`) and the augmented mel and volume
(`.aug_mel.npz`, or the original's pickled `.aug_mel.npy`; `.aug_vol.npy`):

* a clip's speaker is the name of its folder, looked up in the speaker map when the
  model has several speakers (a folder that is not in the map is an error; the
  original silently used speaker 0), else 0;
* units are stretched to the f0 frame count with `repeat_expand_2d` in "left" mode
  (the original's training loader does not use `unit_interpolate_mode`);
* training items (`whole_clips` False): clips shorter than `duration` + 0.1 s are left
  out (listed in a warning; an error when none is left; the original's item lookup
  skipped them by taking the next clip). An item is a window of int(duration / frame
  period) frames starting at frame int(u / frame period), u uniform in
  [0, clip seconds - duration - 0.1]; then, with `use_aug`, with probability 1/2 the
  augmented version: the augmented mel and volume, f0 multiplied by 2^(keyshift / 12)
  and `aug_shift` = keyshift semitones (else 0);
* validation items (`whole_clips` True): the whole clip, never augmented;
* with `cache_all_data` every feature is read once, at construction, onto
  `cache_device` (mel, augmented mel and units in float16 with `cache_fp16`); without
  it only f0, volumes and keyshift are kept and the rest is read per item. Items are
  always float32.

Randomness: an item's draws come from a NumPy generator seeded with the dataset's
`seed` and a per-item draw seed. `DiffusionSampler` hands out (index, draw seed)
pairs in a shuffled order that depends only on its seed and the epoch, so a run is
reproducible with any number of loader workers; a plain index uses a draw seed
derived from the index alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from sovits.data.dataset import check_clip_files
from sovits.errors import InputError

__all__ = [
    "MIN_EXTRA_SECONDS",
    "DiffusionBatch",
    "DiffusionDataset",
    "DiffusionItem",
    "DiffusionSampler",
    "collate_diffusion",
]

logger = logging.getLogger(__name__)

MIN_EXTRA_SECONDS = 0.1
"""A training clip must be at least `duration` + this long (the original's margin)."""

_REPROCESS = "run `sovits preprocess --use-diff`, and check the filelist's paths"
_SEED_RANGE = 2**63 - 1

ItemKey = int | tuple[int, int]
"""An item index, or (index, draw seed) as `DiffusionSampler` yields them."""


@dataclass(frozen=True)
class DiffusionItem:
    """One training window (or whole validation clip), sharing the frame axis T.

    units [T, C]; f0 [T, 1] Hz (already shifted for augmented items); volume [T, 1];
    mel [T, M] vocoder log-mel; speaker id; aug_shift in semitones (0 unless
    augmented); the clip's path. All float32.
    """

    units: Tensor
    f0: Tensor
    volume: Tensor
    mel: Tensor
    speaker: int
    aug_shift: float
    path: Path

    @property
    def frames(self) -> int:
        return int(self.units.shape[0])


@dataclass(frozen=True)
class DiffusionBatch:
    """A batch in the layout Unit2Mel takes.

    units [B, T, C]; f0 [B, T, 1] Hz; volume [B, T, 1]; mel [B, T, M]; speaker [B, 1]
    int64; aug_shift [B, 1, 1] semitones; paths of the clips.
    """

    units: Tensor
    f0: Tensor
    volume: Tensor
    mel: Tensor
    speaker: Tensor
    aug_shift: Tensor
    paths: tuple[Path, ...]

    @property
    def frames(self) -> int:
        return int(self.units.shape[1])

    def to(self, device: torch.device | str) -> DiffusionBatch:
        """The same batch with every tensor moved to `device`."""
        return DiffusionBatch(
            units=self.units.to(device),
            f0=self.f0.to(device),
            volume=self.volume.to(device),
            mel=self.mel.to(device),
            speaker=self.speaker.to(device),
            aug_shift=self.aug_shift.to(device),
            paths=self.paths,
        )


def collate_diffusion(items: Sequence[DiffusionItem]) -> DiffusionBatch:
    """Stack `items` into a DiffusionBatch; items of different lengths are cut to the
    shortest (training windows all have the same length)."""
    if not items:
        raise InputError("cannot collate an empty batch")
    frames = min(item.frames for item in items)
    return DiffusionBatch(
        units=torch.stack([item.units[:frames] for item in items]),
        f0=torch.stack([item.f0[:frames] for item in items]),
        volume=torch.stack([item.volume[:frames] for item in items]),
        mel=torch.stack([item.mel[:frames] for item in items]),
        speaker=torch.tensor([[item.speaker] for item in items], dtype=torch.int64),
        aug_shift=torch.tensor([[[item.aug_shift]] for item in items], dtype=torch.float32),
        paths=tuple(item.path for item in items),
    )


@dataclass
class _Clip:
    """What is kept of one clip between accesses (tensors on the cache device)."""

    path: Path
    speaker: int
    seconds: float
    f0: Tensor
    volume: Tensor
    aug_volume: Tensor | None
    keyshift: float
    mel: Tensor | None = None
    aug_mel: Tensor | None = None
    units: Tensor | None = None


def _resolve(entry: str | os.PathLike[str], root: Path) -> Path:
    path = Path(os.fspath(entry).replace("\\", "/"))
    return path if path.is_absolute() else root / path


def _tensor(array: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


class DiffusionDataset(Dataset[DiffusionItem]):
    """Items of the clips in a filelist, read from their cached diffusion features.

    filelist: a filelist file (one clip path per line) or a sequence of clip paths;
        relative paths (of the filelist and in it) are taken from `root` (default: the
        current folder, as the original's train_diff.py).
    duration: training window length, seconds (`data.duration`).
    hop_length / sample_rate: the feature frame clock (`data.block_size`,
        `data.sampling_rate`).
    speakers: folder name -> id (the yaml's `spk`); n_speakers: `model.n_spk`.
    whole_clips: validation mode (whole clips, no augmentation, no length filter).
    use_aug: draw augmented items half of the time (training only).
    cache_all_data, cache_device, cache_fp16: see the module doc.
    seed: seed of the crops and augmentation draws.

    Raises InputError at construction when the filelist is missing or empty, a clip
    or one of its feature files is missing (all listed), a folder is not a speaker,
    a feature cannot be read, or no training clip is long enough.
    """

    def __init__(
        self,
        filelist: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        duration: float,
        hop_length: int,
        sample_rate: int,
        speakers: Mapping[str, int],
        n_speakers: int = 1,
        whole_clips: bool = False,
        use_aug: bool = False,
        cache_all_data: bool = True,
        cache_device: str | torch.device = "cpu",
        cache_fp16: bool = False,
        seed: int = 1234,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        from sovits.data.filelists import read_filelist

        if duration <= 0 and not whole_clips:
            raise InputError(f"the training duration must be positive, got {duration} s")
        if hop_length < 1 or sample_rate < 1:
            raise InputError(f"bad frame clock: hop {hop_length}, rate {sample_rate} Hz")
        base = Path(root) if root is not None else Path.cwd()
        if isinstance(filelist, str | os.PathLike):
            self.source = str(filelist)
            entries: list[str | os.PathLike[str]] = list(read_filelist(_resolve(filelist, base)))
        else:
            self.source = "<clip list>"
            entries = list(filelist)
        if not entries:
            raise InputError("the filelist names no clip", where=self.source)
        self.duration = float(duration)
        self.hop_length = hop_length
        self.sample_rate = sample_rate
        self.speakers = dict(speakers)
        self.n_speakers = n_speakers
        self.whole_clips = whole_clips
        self.use_aug = use_aug and not whole_clips
        self.cache_all_data = cache_all_data
        self.cache_device = torch.device(cache_device)
        self.cache_fp16 = cache_fp16
        self.seed = seed
        paths = [_resolve(entry, base) for entry in entries]
        self._check_files(paths)
        clips = [self._load_clip(path) for path in paths]
        if not whole_clips:
            shortest = self.duration + MIN_EXTRA_SECONDS
            short = [clip for clip in clips if clip.seconds < shortest]
            clips = [clip for clip in clips if clip.seconds >= shortest]
            if short:
                names = ", ".join(f"{clip.path} ({clip.seconds:.2f} s)" for clip in short[:10])
                logger.warning(
                    "%s: %d clips shorter than duration + %.1f s = %.2f s are not used "
                    "for training: %s%s",
                    self.source, len(short), MIN_EXTRA_SECONDS, shortest, names,
                    " ..." if len(short) > 10 else "",
                )
            if not clips:
                raise InputError(
                    f"no clip of the filelist is at least {shortest:.2f} s long "
                    f"(data.duration {self.duration:g} s + {MIN_EXTRA_SECONDS} s)",
                    where=self.source,
                    hint="lower data.duration in diffusion.yaml or add longer clips",
                )
        self.clips = clips
        self.skipped = tuple(path for path in paths if path not in {c.path for c in clips})

    # ------------------------------------------------------------------ construction

    @property
    def paths(self) -> list[Path]:
        """The clips items are drawn from (after the length filter)."""
        return [clip.path for clip in self.clips]

    def _kinds(self) -> list[str]:
        kinds = ["content", "f0", "volume", "mel"]
        if self.use_aug:
            kinds += ["aug_mel", "aug_volume"]
        return kinds

    def _check_files(self, paths: Sequence[Path]) -> None:
        from sovits.features.store import feature_path

        def features_of(path: Path) -> list[Path]:
            targets = []
            for kind in self._kinds():
                target = feature_path(path, kind)  # type: ignore[arg-type]
                if kind == "aug_mel" and not target.exists():
                    legacy = feature_path(path, "aug_mel", legacy=True)
                    target = legacy if legacy.exists() else target
                targets.append(target)
            return targets

        check_clip_files(paths, features_of, where=self.source, hint=_REPROCESS)

    def _speaker_of(self, path: Path) -> int:
        if self.n_speakers <= 1:
            return 0
        name = path.parent.name
        if name not in self.speakers:
            raise InputError(
                f"the clip's folder {name!r} is not a speaker of the diffusion config "
                f"({', '.join(sorted(self.speakers))})",
                where=path,
                hint="clips must be <dataset>/<speaker>/<clip>.wav; add the speaker to `spk`",
            )
        speaker = self.speakers[name]
        if not 0 <= speaker < self.n_speakers:
            raise InputError(
                f"speaker {name!r} has id {speaker}, outside 0..{self.n_speakers - 1} "
                f"(model.n_spk {self.n_speakers})",
                where=path,
                hint="fix `spk` or model.n_spk in diffusion.yaml",
            )
        return speaker

    def _load_clip(self, path: Path) -> _Clip:
        from sovits.audio.io import audio_info
        from sovits.features.store import read_aug_mel, read_aug_volume, read_f0, read_volume

        samples, rate, _, _ = audio_info(path)
        speaker = self._speaker_of(path)
        device = self.cache_device
        f0, _ = read_f0(path)
        clip = _Clip(
            path=path,
            speaker=speaker,
            seconds=samples / rate,
            f0=_tensor(f0, device),
            volume=_tensor(read_volume(path), device),
            aug_volume=None,
            keyshift=0.0,
        )
        if self.use_aug:
            clip.aug_volume = _tensor(read_aug_volume(path), device)
            aug_mel, clip.keyshift = read_aug_mel(path)
            if self.cache_all_data:
                clip.aug_mel = self._cached(_tensor(aug_mel, device))
        if self.cache_all_data:
            clip.mel = self._cached(self._read_mel(path))
            clip.units = self._cached(self._read_units(path, clip.f0.shape[0]))
        return clip

    def _cached(self, tensor: Tensor) -> Tensor:
        return tensor.half() if self.cache_fp16 else tensor

    def _read_mel(self, path: Path) -> Tensor:
        from sovits.features.store import read_mel

        return _tensor(read_mel(path), self.cache_device)

    def _read_units(self, path: Path, frames: int) -> Tensor:
        from sovits.dsp.alignment import repeat_expand_2d
        from sovits.features.store import read_content

        units = repeat_expand_2d(read_content(path), frames, mode="left")
        return units.t().contiguous().to(self.cache_device, torch.float32)

    # ------------------------------------------------------------------ items

    def __len__(self) -> int:
        return len(self.clips)

    def _rng(self, key: ItemKey) -> tuple[int, np.random.Generator]:
        if isinstance(key, tuple):
            index, draw_seed = int(key[0]), int(key[1])
        else:
            index, draw_seed = int(key), int(key)
        return index, np.random.default_rng([self.seed, draw_seed, index])

    def __getitem__(self, key: ItemKey) -> DiffusionItem:
        index, rng = self._rng(key)
        if not 0 <= index < len(self.clips):
            raise IndexError(f"item {index} of {len(self.clips)}")
        return self.item(index, rng)

    def item(self, index: int, rng: np.random.Generator) -> DiffusionItem:
        """Item `index` with its random draws from `rng` (see the module doc)."""
        clip = self.clips[index]
        period = self.hop_length / self.sample_rate
        start = 0
        window: int | None = None
        if not self.whole_clips:
            offset = float(rng.uniform(0.0, clip.seconds - self.duration - MIN_EXTRA_SECONDS))
            start = int(offset / period)
            window = int(self.duration / period)
        augmented = self.use_aug and bool(rng.random() < 0.5)
        mel = (clip.aug_mel if augmented else clip.mel)
        if mel is None:
            mel = (
                _tensor(self._read_aug_mel(clip.path), self.cache_device)
                if augmented
                else self._read_mel(clip.path)
            )
        units = clip.units
        if units is None:
            units = self._read_units(clip.path, clip.f0.shape[0])
        volume = clip.aug_volume if augmented else clip.volume
        assert volume is not None
        available = min(units.shape[0], clip.f0.shape[0], volume.shape[0], mel.shape[0])
        if window is None:
            window = available
        start = min(start, available - window)
        if start < 0 or window < 1:
            raise InputError(
                f"the features have {available} frames, fewer than the {window} a window needs",
                where=clip.path,
                hint="the features were made with other settings; " + _REPROCESS,
            )
        end = start + window
        shift = clip.keyshift if augmented else 0.0
        f0 = clip.f0[start:end].float()
        if augmented:
            f0 = f0 * 2.0 ** (shift / 12.0)
        return DiffusionItem(
            units=units[start:end].float(),
            f0=f0.unsqueeze(-1),
            volume=volume[start:end].float().unsqueeze(-1),
            mel=mel[start:end].float(),
            speaker=clip.speaker,
            aug_shift=float(shift),
            path=clip.path,
        )

    @staticmethod
    def _read_aug_mel(path: Path) -> np.ndarray:
        from sovits.features.store import read_aug_mel

        mel, _ = read_aug_mel(path)
        return mel


class DiffusionSampler(Sampler[tuple[int, int]]):
    """Every item once per epoch as (index, draw seed), shuffled (or in order).

    The order and the draw seeds depend only on `seed` and what `begin_epoch` set
    (epoch and run, 0 until then), never on the global RNG.
    """

    def __init__(self, length: int, *, seed: int = 1234, shuffle: bool = True) -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.run = 0

    def begin_epoch(self, epoch: int, *, run: int = 0) -> None:
        """Draw the next iteration's order and seeds for `epoch` of `run` (any key that
        tells runs apart, such as their first step; both >= 0)."""
        if epoch < 0 or run < 0:
            raise ValueError(f"epoch and run must be >= 0, got {epoch}, {run}")
        self.epoch = epoch
        self.run = run

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = np.random.default_rng([self.seed, self.run, self.epoch])
        order = generator.permutation(self.length) if self.shuffle else np.arange(self.length)
        draws = generator.integers(0, _SEED_RANGE, size=self.length)
        for index, draw in zip(order.tolist(), draws.tolist(), strict=True):
            yield int(index), int(draw)
