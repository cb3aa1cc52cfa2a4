"""DiffusionDataset over a tiny preprocessed dataset: crops, augmentation, speakers,
caching, reproducibility, the original's pickled `.aug_mel.npy`, collation."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.data.diffusion_dataset import (
    DiffusionDataset,
    DiffusionSampler,
    collate_diffusion,
)
from sovits.dsp.alignment import repeat_expand_2d
from sovits.errors import InputError
from sovits.features.store import (
    feature_path,
    read_aug_mel,
    read_aug_volume,
    read_content,
    read_f0,
    read_mel,
    read_volume,
)
from tests.training.diffusion_tiny import HOP, N_MELS, RATE, SHORT_CLIP, SPEAKERS, UNIT_DIM
from tests.training.diffusion_tiny import build_project as _build_project

DURATION = 0.5
WINDOW = int(DURATION / (HOP / RATE))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return _build_project(tmp_path_factory.mktemp("diffusion_data"))


def _dataset(project: Path, filelist: str = "filelists/train.txt", **options) -> DiffusionDataset:
    settings = {
        "duration": DURATION,
        "hop_length": HOP,
        "sample_rate": RATE,
        "speakers": SPEAKERS,
        "n_speakers": 2,
        "root": project,
    }
    settings.update(options)
    return DiffusionDataset(filelist, **settings)


def test_short_clips_are_left_out_of_training_and_reported(project, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = _dataset(project)
    assert len(dataset) == 6
    assert project / "dataset" / "44k" / SHORT_CLIP not in dataset.paths
    assert dataset.skipped == (project / "dataset" / "44k" / SHORT_CLIP,)
    assert "alice_short.wav (0.50 s)" in caplog.text
    with pytest.raises(InputError, match=r"no clip of the filelist is at least 1\.70 s"):
        _dataset(project, duration=1.6)  # longer than every clip


def _expected(path: Path, start: int, frames: int, augmented: bool):
    f0, _ = read_f0(path)
    units = repeat_expand_2d(read_content(path), len(f0), mode="left").t()
    if augmented:
        mel, keyshift = read_aug_mel(path)
        volume = read_aug_volume(path)
        f0 = f0 * 2 ** (keyshift / 12)
    else:
        mel, keyshift, volume = read_mel(path), 0.0, read_volume(path)
    window = slice(start, start + frames)
    return units[window], f0[window], volume[window], mel[window], keyshift if augmented else 0.0


def test_training_items_are_random_windows_half_of_them_augmented(project):
    dataset = _dataset(project, use_aug=True)
    period = HOP / RATE
    augmented_seen = plain_seen = 0
    for draw in range(12):
        index = draw % len(dataset)
        item = dataset[(index, draw)]
        clip = dataset.clips[index]
        # the draws, in the dataset's order: window start, then augmentation
        rng = np.random.default_rng([dataset.seed, draw, index])
        start = int(rng.uniform(0.0, clip.seconds - DURATION - 0.1) / period)
        augmented = bool(rng.random() < 0.5)
        units, f0, volume, mel, shift = _expected(clip.path, start, WINDOW, augmented)
        assert item.frames == WINDOW and item.path == clip.path
        assert item.speaker == SPEAKERS[clip.path.parent.name]
        assert item.units.shape == (WINDOW, UNIT_DIM) and item.mel.shape == (WINDOW, N_MELS)
        assert item.f0.shape == item.volume.shape == (WINDOW, 1)
        torch.testing.assert_close(item.units, units)
        np.testing.assert_allclose(item.f0[:, 0].numpy(), f0, rtol=1e-6)
        np.testing.assert_array_equal(item.volume[:, 0].numpy(), volume)
        np.testing.assert_array_equal(item.mel.numpy(), mel)
        assert item.aug_shift == pytest.approx(shift) and (shift != 0) == augmented
        augmented_seen += augmented
        plain_seen += not augmented
    assert augmented_seen and plain_seen
    # the same key gives the same item; without use_aug nothing is augmented
    again = dataset[(3, 7)]
    torch.testing.assert_close(again.mel, dataset[(3, 7)].mel)
    plain = _dataset(project)
    assert all(plain[(i, i)].aug_shift == 0.0 for i in range(len(plain)))


def test_validation_items_are_whole_clips(project):
    dataset = _dataset(project, "filelists/val.txt", whole_clips=True, use_aug=True)
    assert [path.name for path in dataset.paths] == ["alice_0.wav", "bob_0.wav"]
    for index, path in enumerate(dataset.paths):
        item = dataset[index]
        frames = min(len(read_f0(path)[0]), len(read_mel(path)), len(read_volume(path)))
        assert item.frames == frames and item.aug_shift == 0.0
        units, f0, volume, mel, _ = _expected(path, 0, frames, False)
        torch.testing.assert_close(item.units, units)
        np.testing.assert_array_equal(item.mel.numpy(), mel)
        np.testing.assert_array_equal(item.volume[:, 0].numpy(), volume)
        np.testing.assert_allclose(item.f0[:, 0].numpy(), f0)


def test_cache_modes_give_the_same_items(project):
    cached = _dataset(project, use_aug=True)
    lazy = _dataset(project, use_aug=True, cache_all_data=False)
    half = _dataset(project, use_aug=True, cache_fp16=True)
    for key in [(0, 1), (2, 5), (5, 11)]:
        a, b, c = cached[key], lazy[key], half[key]
        for name in ("units", "f0", "volume", "mel"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name))
            assert getattr(c, name).dtype == torch.float32
        torch.testing.assert_close(c.mel, a.mel, atol=1e-2, rtol=1e-3)
        torch.testing.assert_close(c.units, a.units, atol=1e-2, rtol=1e-3)
        torch.testing.assert_close(c.f0, a.f0)


def test_the_sampler_is_reproducible_and_changes_with_the_epoch_and_run():
    sampler = DiffusionSampler(10, seed=3)
    first = list(sampler)
    assert sorted(index for index, _ in first) == list(range(10))
    assert list(DiffusionSampler(10, seed=3)) == first
    sampler.begin_epoch(2)
    second = list(sampler)
    sampler.begin_epoch(2, run=36)
    third = list(sampler)
    assert second != first and third != second
    ordered = DiffusionSampler(4, seed=3, shuffle=False)
    assert [index for index, _ in ordered] == [0, 1, 2, 3]


def test_speakers_come_from_the_folder_name(project, tmp_path):
    single = _dataset(project, n_speakers=1, speakers={})
    assert {single[i].speaker for i in range(len(single))} == {0}
    with pytest.raises(InputError, match="'bob' is not a speaker"):
        _dataset(project, speakers={"alice": 0})
    with pytest.raises(InputError, match=r"outside 0\.\.1"):
        _dataset(project, speakers={"alice": 0, "bob": 2})


def test_missing_features_are_listed(project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    wav = copy / "dataset" / "44k" / "bob" / "bob_2.wav"
    feature_path(wav, "mel").unlink()
    with pytest.raises(InputError, match=r"1 feature files .*bob_2\.wav\.mel\.npy"):
        _dataset(copy)


def test_the_originals_pickled_aug_mel_is_read(project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    wav = copy / "dataset" / "44k" / "alice" / "alice_2.wav"
    mel, keyshift = read_aug_mel(wav)
    feature_path(wav, "aug_mel").unlink()
    # preprocess_hubert_f0.py: np.save(path, np.asanyarray((aug_mel, keyshift), dtype=object))
    np.save(feature_path(wav, "aug_mel", legacy=True), np.asanyarray((mel, keyshift), dtype=object))
    dataset = _dataset(copy, use_aug=True)
    index = dataset.paths.index(wav)
    assert dataset.clips[index].keyshift == pytest.approx(keyshift)
    np.testing.assert_array_equal(dataset.clips[index].aug_mel.numpy(), mel)


def test_collate_stacks_items_in_the_unit2mel_layout(project):
    dataset = _dataset(project, use_aug=True)
    batch = collate_diffusion([dataset[(i, i)] for i in range(3)])
    assert batch.units.shape == (3, WINDOW, UNIT_DIM) and batch.mel.shape == (3, WINDOW, N_MELS)
    assert batch.f0.shape == batch.volume.shape == (3, WINDOW, 1)
    assert batch.speaker.shape == (3, 1) and batch.speaker.dtype == torch.int64
    assert batch.aug_shift.shape == (3, 1, 1) and batch.frames == WINDOW
    assert batch.paths == tuple(dataset.paths[:3])
    whole = _dataset(project, "filelists/val.txt", whole_clips=True)
    shortest = min(whole[0].frames, whole[1].frames)
    assert collate_diffusion([whole[0], whole[1]]).frames == shortest
    with pytest.raises(InputError):
        collate_diffusion([])
