"""`preprocess_dataset` over a tiny generated two-speaker dataset: what it writes, what a
rerun reuses, and what it recomputes (stale, corrupt, changed settings)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sovits.config import SvcConfig
from sovits.data.filelists import build_svc_config
from sovits.data.preprocess import (
    PreprocessSettings,
    feature_specs,
    list_clips,
    preprocess_dataset,
    worker_devices,
)
from sovits.errors import ConfigError, InputError, MissingFileError
from sovits.features.store import (
    MANIFEST_NAME,
    FeatureManifest,
    feature_path,
    load_feature,
    read_aug_mel,
    read_aug_volume,
)

RATE = 44100
HOP = 512


def harmonic_tone(seconds: float, f0: float, rate: int = RATE, vibrato: float = 0.04) -> np.ndarray:
    """A voiced-sounding test clip: 8 harmonics of a slowly wobbling f0, float32 [N]."""
    t = np.arange(round(seconds * rate)) / rate
    track = f0 * (1.0 + vibrato * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(track) / rate
    wave = sum((0.25 / k) * np.sin(k * phase) for k in range(1, 9))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) * 20.0)
    return (wave * fade).astype(np.float32)


def make_dataset(root: Path, clips_per_speaker: int = 3) -> Path:
    """root/dataset/44k with speakers alice (220 Hz) and bob (130 Hz), 16-bit wavs of
    1.0 s, 1.2 s, 1.4 s, ..."""
    dataset = root / "dataset" / "44k"
    for speaker, f0 in (("alice", 220.0), ("bob", 130.0)):
        folder = dataset / speaker
        folder.mkdir(parents=True)
        for index in range(clips_per_speaker):
            wave = harmonic_tone(1.0 + 0.2 * index, f0 * (1 + 0.03 * index))
            soundfile.write(folder / f"{speaker}_{index}.wav", wave, RATE, subtype="PCM_16")
    return dataset


def small_config(*, vol: bool = False, encoder: str = "spectral") -> SvcConfig:
    """The 4.1 template for speakers alice and bob with the download-free encoder."""
    return build_svc_config({"alice": 0, "bob": 1}, speech_encoder=encoder, vol_aug=vol)


DIO = PreprocessSettings(f0_method="dio")


def _mtimes(dataset: Path) -> dict[str, int]:
    return {
        str(path): path.stat().st_mtime_ns
        for path in dataset.rglob("*")
        if path.is_file() and path.name != MANIFEST_NAME
    }


def test_first_run_writes_every_feature_in_safe_formats(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    config = small_config()
    report = preprocess_dataset(dataset, config, DIO)
    assert report.ok and report.clips == 6
    assert report.computed == {"content": 6, "f0": 6, "spec": 6}
    assert report.reused == report.adopted == 0 and report.recomputed == ()
    for wav in list_clips(dataset):
        samples = soundfile.info(wav).frames
        content = torch.load(feature_path(wav, "content"), weights_only=True)
        assert content.dtype == torch.float32 and content.shape[:2] == (1, 64)
        assert abs(content.shape[2] - round(samples * 16000 / RATE) // 320) <= 1
        f0 = np.load(feature_path(wav, "f0"), allow_pickle=False)
        assert f0.shape == (2, samples // HOP) and f0.dtype == np.float32
        assert set(np.unique(f0[1])) <= {0.0, 1.0} and f0[1].mean() > 0.5
        spec = torch.load(feature_path(wav, "spec"), weights_only=True)
        assert spec.shape == (1025, samples // HOP)
        assert not feature_path(wav, "volume").exists()
    manifest = FeatureManifest(dataset / "alice")
    record = manifest.get("alice_0.wav", "f0")
    assert record is not None and record.params == {"method": "dio"}
    assert (record.sample_rate, record.hop_length, record.origin) == (RATE, HOP, "sovits")
    assert record.frames == RATE // HOP


def test_a_second_run_recomputes_nothing(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=2)
    config = small_config()
    preprocess_dataset(dataset, config, DIO)
    before = _mtimes(dataset)
    again = preprocess_dataset(dataset, config, DIO)
    assert again.computed == {} and again.reused == 12 and again.ok
    assert _mtimes(dataset) == before
    verified = preprocess_dataset(dataset, config, PreprocessSettings(f0_method="dio", verify=True))
    assert verified.computed == {} and verified.reused == 12


def test_an_interrupted_run_resumes_without_redoing_work(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=2)
    config = small_config()
    calls: list[tuple[int, int]] = []
    first = list_clips(dataset)[:3]
    preprocess_dataset(dataset, config, DIO, clips=first, progress=lambda *a: calls.append(a))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    # killed after writing the features of the first clip but before recording them
    (dataset / "alice" / MANIFEST_NAME).unlink()
    report = preprocess_dataset(dataset, config, DIO)
    assert report.adopted == 6 and report.reused == 3 and report.computed == {
        "content": 1, "f0": 1, "spec": 1,
    }


def test_corrupt_stale_and_changed_features_are_recomputed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=2)
    config = small_config()
    preprocess_dataset(dataset, config, DIO)
    alice0 = dataset / "alice" / "alice_0.wav"
    bob1 = dataset / "bob" / "bob_1.wav"
    feature_path(alice0, "content").write_bytes(b"garbage")
    spec_file = feature_path(bob1, "spec")
    spec_file.unlink()
    soundfile.write(dataset / "alice" / "alice_1.wav", harmonic_tone(1.1, 300.0), RATE)

    report = preprocess_dataset(dataset, config, DIO)
    reasons = {str(problem) for problem in report.recomputed}
    assert report.computed == {"content": 2, "f0": 1, "spec": 2}
    assert any("alice_0.wav: content: corrupt" in reason for reason in reasons)
    assert any("alice_1.wav: f0: stale: the audio changed" in reason for reason in reasons)
    assert any("bob_1.wav: spec: corrupt: the feature file is gone" in reason for reason in reasons)
    content = torch.load(feature_path(alice0, "content"), weights_only=True)
    assert content.shape[1] == 64 and spec_file.exists()

    switched = preprocess_dataset(dataset, config, PreprocessSettings(f0_method="pm"))
    assert switched.computed == {"f0": 4} and switched.reused == 8
    assert all("made with other settings" in str(p) for p in switched.recomputed)


def test_bit_rot_with_same_size_and_mtime_is_found_by_verify(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    config = small_config()
    preprocess_dataset(dataset, config, DIO)
    wav = dataset / "bob" / "bob_0.wav"
    path = feature_path(wav, "f0")
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert preprocess_dataset(dataset, config, DIO).computed == {}
    report = preprocess_dataset(dataset, config, PreprocessSettings(f0_method="dio", verify=True))
    assert report.computed == {"f0": 1}
    assert "bytes changed" in str(report.recomputed[0])


def _write_original_features(wav: Path, *, content_dim: int, volume: bool) -> None:
    """Feature files as so-vits-svc 4.1's preprocess_hubert_f0.py writes them."""
    audio, rate = soundfile.read(wav, dtype="float32")
    frames = len(audio) // HOP
    units = len(audio) * 16000 // rate // 320
    generator = torch.Generator().manual_seed(len(audio))
    torch.save(torch.randn(1, content_dim, units, generator=generator), str(wav) + ".soft.pt")
    f0 = np.linspace(180.0, 220.0, frames)
    uv = np.ones(frames, dtype=np.float32)
    np.save(str(wav) + ".f0.npy", np.asanyarray((f0, uv), dtype=object))
    spec = torch.rand(1025, frames, generator=generator)
    torch.save(spec, str(wav).replace(".wav", ".spec.pt"))
    if volume:
        np.save(str(wav) + ".vol.npy", np.full(frames, 0.1, dtype=np.float32))


def test_a_dataset_preprocessed_by_the_original_is_adopted_not_recomputed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    config = small_config(vol=True)
    for wav in list_clips(dataset):
        _write_original_features(wav, content_dim=64, volume=True)
    report = preprocess_dataset(dataset, config, DIO)
    assert report.computed == {} and report.adopted == 8 and report.ok
    record = FeatureManifest(dataset / "alice").get("alice_0.wav", "f0")
    assert record is not None and record.origin == "so-vits-svc"
    assert preprocess_dataset(dataset, config, DIO).reused == 8


def test_unusable_unrecorded_files_are_recomputed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    for wav in list_clips(dataset):
        _write_original_features(wav, content_dim=256, volume=False)
    report = preprocess_dataset(dataset, small_config(), DIO)
    assert report.computed == {"content": 2} and report.adopted == 4
    assert "has 256 channels, expected 64" in str(report.recomputed[0])


def test_diffusion_features_and_volume(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    config = small_config()
    settings = PreprocessSettings(f0_method="dio", use_diff=True)
    report = preprocess_dataset(dataset, config, settings)
    assert report.computed == {
        "content": 2, "f0": 2, "spec": 2, "volume": 2, "mel": 2, "aug_mel": 2, "aug_volume": 2,
    }
    wav = dataset / "alice" / "alice_0.wav"
    frames = soundfile.info(wav).frames // HOP
    mel = np.load(feature_path(wav, "mel"), allow_pickle=False)
    assert mel.shape == (frames, 128)
    aug_mel, keyshift = read_aug_mel(wav)
    assert aug_mel.shape == (frames, 128) and -5.0 <= keyshift <= 5.0
    volume = np.load(feature_path(wav, "volume"), allow_pickle=False)
    aug_volume = read_aug_volume(wav)
    record = FeatureManifest(wav.parent).get(wav.name, "aug_volume")
    assert record is not None and record.extra["keyshift"] == keyshift
    level = 10.0 ** record.extra["log10_level_shift"]
    np.testing.assert_allclose(aug_volume, volume * level, rtol=1e-3, atol=1e-6)
    # the draws are seeded: a forced recompute gives the same augmentation
    feature_path(wav, "aug_mel").unlink()
    again = preprocess_dataset(dataset, config, settings)
    assert again.computed == {"aug_mel": 1, "aug_volume": 1}
    assert read_aug_mel(wav)[1] == keyshift


def test_volume_is_computed_for_volume_embedding_models(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    report = preprocess_dataset(dataset, small_config(vol=True), DIO)
    assert report.computed["volume"] == 2
    wav = dataset / "bob" / "bob_0.wav"
    volume = load_feature("volume", feature_path(wav, "volume"))
    assert volume.shape == (soundfile.info(wav).frames // HOP,)


def test_bad_clips_are_reported_and_the_rest_processed(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    soundfile.write(dataset / "bob" / "low.wav", harmonic_tone(1.0, 200.0, 22050), 22050)
    (dataset / "alice" / "broken.wav").write_bytes(b"RIFF....not a wav")
    report = preprocess_dataset(dataset, small_config(), DIO)
    assert not report.ok and report.computed["content"] == 2
    failed = {problem.path.name: problem.message for problem in report.failed}
    assert "sample rate 22050 Hz" in failed["low.wav"]
    assert "cannot read the audio" in failed["broken.wav"]


def test_missing_rmvpe_weights_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOVITS_HOME", str(tmp_path / "no_weights"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no_cache"))
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    assert PreprocessSettings().f0_method == "rmvpe"
    with pytest.raises(MissingFileError, match="rmvpe"):
        preprocess_dataset(dataset, small_config(), PreprocessSettings())


def test_config_problems_are_caught_before_any_work(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=1)
    data = small_config().to_dict()
    data["model"]["ssl_dim"] = 768
    from sovits.config import parse_svc_config

    with pytest.raises(ConfigError, match=r"64-dim units but model\.ssl_dim is 768"):
        preprocess_dataset(dataset, parse_svc_config(data), DIO)
    with pytest.raises(InputError, match="unknown f0 method"):
        PreprocessSettings(f0_method="yin")
    with pytest.raises(InputError, match="dataset folder not found"):
        preprocess_dataset(tmp_path / "nowhere", small_config(), DIO)
    assert not any(dataset.rglob("*.pt"))


def test_worker_processes_give_the_same_features(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, clips_per_speaker=2)
    serial = tmp_path / "serial"
    make_dataset(serial, clips_per_speaker=2)
    config = small_config()
    report = preprocess_dataset(
        dataset, config, PreprocessSettings(f0_method="dio", num_processes=2)
    )
    assert report.ok and report.computed == {"content": 4, "f0": 4, "spec": 4}
    preprocess_dataset(serial / "dataset" / "44k", config, DIO)
    for wav in list_clips(dataset):
        twin = serial / "dataset" / "44k" / wav.parent.name / wav.name
        for kind in ("content", "spec"):
            assert torch.equal(load_feature(kind, feature_path(wav, kind)),
                               load_feature(kind, feature_path(twin, kind)))
    assert len(FeatureManifest(dataset / "bob").records) == 6


def test_worker_devices_round_robin() -> None:
    assert worker_devices(3, "cpu") == ["cpu", "cpu", "cpu"]
    if not torch.cuda.is_available():
        assert worker_devices(2) == ["cpu", "cpu"]
    else:
        count = torch.cuda.device_count()
        assert worker_devices(count + 1)[count] == "cuda:0"


def test_feature_specs_follow_the_config() -> None:
    specs = feature_specs(small_config(vol=True), PreprocessSettings(f0_method="harvest"))
    assert list(specs) == ["content", "f0", "spec", "volume"]
    assert specs["content"].sample_rate == 16000 and specs["content"].hop_length == 320
    assert dict(specs["spec"].params) == {"n_fft": 2048, "win_length": 2048}
