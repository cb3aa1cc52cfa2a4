"""SvcDataset and collate_batch: items from cached features (sovits's and the
original's), the crop and volume augmentation, and the padded Batch."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader

from sovits.config import SvcConfig, parse_svc_config
from sovits.data.batch import Batch
from sovits.data.dataset import SvcDataset, TrainingItem, collate_batch
from sovits.data.filelists import preprocess_config
from sovits.data.preprocess import PreprocessSettings, preprocess_dataset
from sovits.dsp.alignment import repeat_expand_2d
from sovits.dsp.spectrogram import spectrogram
from sovits.errors import InputError
from sovits.features.store import feature_path
from tests.data.test_preprocess import HOP, RATE, harmonic_tone, make_dataset, small_config

DIO = PreprocessSettings(f0_method="dio")


def _project(tmp_path: Path, *, vol: bool = False, clips: int = 2) -> SvcConfig:
    """A project folder (cwd-relative filelists, as the seed) with features computed."""
    make_dataset(tmp_path, clips_per_speaker=clips)
    report = preprocess_config(
        "dataset/44k" if Path.cwd() == tmp_path else tmp_path / "dataset" / "44k",
        train_list=tmp_path / "filelists" / "train.txt",
        val_list=tmp_path / "filelists" / "val.txt",
        config_path=tmp_path / "configs" / "config.json",
        speech_encoder="spectral",
        vol_aug=vol,
        val_per_speaker=1,
    )
    preprocess_dataset(tmp_path / "dataset" / "44k", report.config, DIO)
    return report.config


def _all_clips(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "dataset" / "44k").glob("*/*.wav"))


def test_a_batch_from_preprocessed_features(tmp_path: Path) -> None:
    config = _project(tmp_path, clips=3)
    dataset = SvcDataset(_all_clips(tmp_path), config, vol_aug=False)
    assert len(dataset) == 6
    items = [dataset[index] for index in range(len(dataset))]
    batch = collate_batch(items)
    assert isinstance(batch, Batch) and batch.volume is None
    frames = max(item.frames for item in items)
    assert batch.content.shape == (6, 64, frames)
    assert batch.f0.shape == batch.uv.shape == (6, frames)
    assert batch.spec.shape == (6, 1025, frames)
    assert batch.wave.shape == (6, 1, frames * HOP)
    assert batch.speaker.dtype == batch.lengths.dtype == torch.int64
    assert batch.lengths.tolist() == sorted((item.frames for item in items), reverse=True)
    for row in range(6):
        length = int(batch.lengths[row])
        item = next(i for i in items if i.frames == length and i.speaker == batch.speaker[row])
        assert item.path.parent.name == ("alice", "bob")[int(batch.speaker[row])]
        assert torch.equal(batch.f0[row, :length], item.f0)
        assert torch.equal(batch.wave[row, 0, : length * HOP], item.wave[0])
        assert not batch.spec[row, :, length:].any() and not batch.content[row, :, length:].any()
    item = items[0]
    audio, _ = soundfile.read(item.path, dtype="float32")
    assert torch.equal(item.wave[0], torch.from_numpy(audio[: item.frames * HOP]))
    assert torch.allclose(
        item.spec, spectrogram(torch.from_numpy(audio)[None], n_fft=2048, hop_length=512,
                               win_length=2048)[0][:, : item.frames]
    )


def test_filelists_with_relative_paths_and_a_dataloader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _project(tmp_path)
    assert config.data.training_files.endswith("filelists/train.txt")
    train = SvcDataset(tmp_path / "filelists" / "train.txt", config)
    assert all(path.is_absolute() for path in train.paths)
    assert not str(train.paths[0].relative_to(tmp_path)).startswith("..")
    loader = DataLoader(train, batch_size=2, collate_fn=collate_batch)
    batch = next(iter(loader))
    assert isinstance(batch, Batch) and batch.content.shape[0] == 2
    other_root = SvcDataset(["dataset/44k/bob/bob_0.wav"], config, root=tmp_path)
    assert other_root.paths == [tmp_path / "dataset" / "44k" / "bob" / "bob_0.wav"]


def test_the_filelist_order_is_the_seeds_fixed_shuffle(tmp_path: Path) -> None:
    config = _project(tmp_path, clips=3)
    clips = [str(path) for path in _all_clips(tmp_path)]
    expected = list(clips)
    random.Random(1234).shuffle(expected)
    assert [str(path) for path in SvcDataset(clips, config).paths] == expected


def _write_original_features(wav: Path, content_dim: int) -> tuple[torch.Tensor, np.ndarray]:
    """What so-vits-svc 4.1's preprocess_hubert_f0.py leaves beside a clip."""
    audio, rate = soundfile.read(wav, dtype="float32")
    frames = len(audio) // HOP
    units = torch.randn(1, content_dim, len(audio) * 16000 // rate // 320,
                        generator=torch.Generator().manual_seed(3))
    torch.save(units, str(wav) + ".soft.pt")
    f0 = np.linspace(150.0, 250.0, frames)
    uv = (np.arange(frames) % 5 != 0).astype(np.float32)
    np.save(str(wav) + ".f0.npy", np.asanyarray((f0, uv), dtype=object))
    wave = torch.from_numpy(audio)[None]
    spec = spectrogram(wave, n_fft=2048, hop_length=HOP, win_length=2048)[0]
    torch.save(spec, str(wav).replace(".wav", ".spec.pt"))
    np.save(str(wav) + ".vol.npy", np.linspace(0.0, 0.3, frames, dtype=np.float32))
    return units, f0


def test_a_dataset_in_the_originals_layout_trains_unchanged(tmp_path: Path) -> None:
    make_dataset(tmp_path, clips_per_speaker=1)
    data = small_config(vol=True, encoder="vec256l9").to_dict()
    config = parse_svc_config(data)
    wav = tmp_path / "dataset" / "44k" / "alice" / "alice_0.wav"
    units, f0 = _write_original_features(wav, 256)
    (tmp_path / "train.txt").write_text(f"{wav}\n", encoding="utf-8")
    dataset = SvcDataset(tmp_path / "train.txt", config, vol_aug=False)
    item = dataset[0]
    frames = soundfile.info(wav).frames // HOP
    assert item.frames == frames and item.volume is not None
    np.testing.assert_array_equal(item.f0.numpy(), f0.astype(np.float32))
    expanded = repeat_expand_2d(units[0], frames, mode=config.data.unit_interpolate_mode)
    assert torch.equal(item.content, expanded)
    np.testing.assert_allclose(item.volume.numpy(), np.linspace(0.0, 0.3, frames), rtol=1e-6)
    batch = collate_batch([item])
    assert batch.volume is not None and batch.volume.shape == (1, frames)


def test_crop_keeps_every_tensor_aligned(tmp_path: Path) -> None:
    config = _project(tmp_path, clips=1)
    dataset = SvcDataset(_all_clips(tmp_path), config, max_frames=40, crop_frames=30, seed=5)
    full = dataset.load_item(0)
    rng = random.Random(11)
    for _ in range(5):
        item = dataset.augment(full, rng)
        assert item.frames == 30 and item.wave.shape == (1, 30 * HOP)
        start = next(
            offset for offset in range(full.frames - 29)
            if torch.equal(full.f0[offset : offset + 30], item.f0)
            and torch.equal(full.content[:, offset : offset + 30], item.content)
        )
        assert torch.equal(item.spec, full.spec[:, start : start + 30])
        assert torch.equal(item.wave, full.wave[:, start * HOP : (start + 30) * HOP])
    assert dataset.augment(full, rng).frames == 30
    uncropped = SvcDataset(_all_clips(tmp_path), config)
    assert uncropped[0].frames == uncropped.load_item(0).frames


def test_volume_augmentation_scales_wave_volume_and_spectrogram(tmp_path: Path) -> None:
    config = _project(tmp_path, vol=True, clips=1)
    assert config.train.vol_aug and config.model.vol_embedding
    dataset = SvcDataset(_all_clips(tmp_path), config, seed=0)
    full = dataset.load_item(0)
    assert full.volume is not None
    rng = random.Random(2)
    scaled: TrainingItem | None = None
    for _ in range(20):
        item = dataset.augment(full, rng)
        if not torch.equal(item.wave, full.wave):
            scaled = item
            break
    assert scaled is not None and scaled.volume is not None
    gain = float(scaled.wave.abs().max() / full.wave.abs().max())
    assert 0.1 - 1e-6 <= gain <= 10.0
    assert torch.allclose(scaled.volume, full.volume * gain, rtol=1e-4, atol=1e-7)
    expected = spectrogram(scaled.wave, n_fft=2048, hop_length=HOP, win_length=2048)[0]
    assert torch.equal(scaled.spec, expected)
    assert float(scaled.wave.abs().max()) <= 10.0
    validation = SvcDataset(_all_clips(tmp_path), config, vol_aug=False)
    assert all(torch.equal(validation[0].wave, full.wave) for _ in range(5))


def test_all_in_mem_serves_the_same_items(tmp_path: Path) -> None:
    config = _project(tmp_path)
    lazy = SvcDataset(_all_clips(tmp_path), config, vol_aug=False)
    cached = SvcDataset(_all_clips(tmp_path), config, vol_aug=False, all_in_mem=True)
    for index in range(len(lazy)):
        assert torch.equal(lazy[index].content, cached[index].content)
        assert torch.equal(lazy[index].spec, cached[index].spec)


def test_missing_and_bad_items_are_reported(tmp_path: Path) -> None:
    config = _project(tmp_path)
    clips = _all_clips(tmp_path)
    feature_path(clips[0], "f0").unlink()
    with pytest.raises(InputError, match=r"0 clips and 1 feature files .* are missing") as raised:
        SvcDataset(clips, config)
    assert "alice_0.wav.f0.npy" in str(raised.value) and "sovits preprocess" in str(raised.value)
    with pytest.raises(InputError, match="1 clips and 0 feature files"):
        SvcDataset([tmp_path / "dataset" / "44k" / "bob" / "gone.wav"], config)
    stranger = tmp_path / "dataset" / "44k" / "carol" / "c.wav"
    stranger.parent.mkdir()
    soundfile.write(stranger, harmonic_tone(1.0, 200.0), RATE)
    with pytest.raises(InputError, match="'carol' is not a speaker of the config"):
        SvcDataset([stranger], config)
    feature_path(clips[1], "content").write_bytes(b"broken")
    dataset = SvcDataset([clips[1]], config)
    with pytest.raises(InputError, match="cannot read the feature file") as raised:
        dataset[0]
    assert raised.value.where == str(feature_path(clips[1], "content"))
    with pytest.raises(InputError, match="names no clip"):
        SvcDataset([], config)


def test_features_that_disagree_with_the_audio_are_reported(tmp_path: Path) -> None:
    config = _project(tmp_path, clips=1)
    clip = _all_clips(tmp_path)[0]
    soundfile.write(clip, harmonic_tone(2.0, 200.0), RATE)
    with pytest.raises(InputError, match=r"features disagree|the audio has"):
        SvcDataset([clip], config)[0]


def test_collate_rejects_an_empty_batch() -> None:
    with pytest.raises(InputError):
        collate_batch([])
