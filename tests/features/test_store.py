"""The feature cache: file names and formats (sovits's and the original's), the safe
reader of the original's pickled .npy files, the manifest and the freshness checks."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import InputError
from sovits.features.store import (
    MANIFEST_NAME,
    ClipSource,
    FeatureManifest,
    FeatureRecord,
    FeatureSpec,
    FeatureStore,
    FileState,
    adopt_feature,
    check_record,
    encode_feature,
    feature_path,
    load_feature,
    read_aug_mel,
    read_content,
    read_f0,
    read_spec,
    validate_feature,
    write_feature,
)

SPEC = FeatureSpec("f0", 44100, 512, {"method": "dio"})


def _clip(folder: Path, name: str = "a.wav", data: bytes = b"RIFF fake wav bytes") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _f0_value(frames: int = 10) -> tuple[np.ndarray, np.ndarray]:
    f0 = np.linspace(100.0, 200.0, frames, dtype=np.float32)
    return f0, (np.arange(frames) % 3 != 0).astype(np.float32)


def test_feature_files_have_the_original_names(tmp_path: Path) -> None:
    wav = tmp_path / "nen" / "x.wav"
    names = {kind: feature_path(wav, kind).name for kind in
             ("content", "f0", "spec", "volume", "mel", "aug_mel", "aug_volume")}
    assert names == {
        "content": "x.wav.soft.pt",
        "f0": "x.wav.f0.npy",
        "spec": "x.spec.pt",
        "volume": "x.wav.vol.npy",
        "mel": "x.wav.mel.npy",
        "aug_mel": "x.wav.aug_mel.npz",
        "aug_volume": "x.wav.aug_vol.npy",
    }
    assert feature_path(wav, "aug_mel", legacy=True).name == "x.wav.aug_mel.npy"
    with pytest.raises(InputError, match="unknown feature kind"):
        feature_path(wav, "pitch")  # type: ignore[arg-type]


def test_every_kind_round_trips_and_loads_without_pickle(tmp_path: Path) -> None:
    content = torch.randn(64, 7)
    spec = torch.rand(1025, 12)
    mel = np.random.default_rng(0).standard_normal((12, 128)).astype(np.float32)
    values = {
        "content": content,
        "f0": _f0_value(12),
        "spec": spec,
        "volume": np.full(12, 0.5, dtype=np.float32),
        "mel": mel,
        "aug_mel": (mel, -2.5),
        "aug_volume": np.full(12, 0.25, dtype=np.float32),
    }
    for kind, value in values.items():
        path = tmp_path / f"feature_{kind}"
        path.write_bytes(encode_feature(kind, value))  # type: ignore[arg-type]
        loaded = load_feature(kind, path)  # type: ignore[arg-type]
        if kind in ("content", "spec"):
            assert torch.equal(loaded, value)
            assert torch.load(path, weights_only=True).dtype == torch.float32
        elif kind in ("f0", "aug_mel"):
            np.testing.assert_array_equal(loaded[0], value[0])
            np.testing.assert_array_equal(loaded[1], value[1])
        else:
            np.testing.assert_array_equal(loaded, value)
    # content is stored as the original's [1, D, T]; f0 as one float32 [2, T] array
    assert torch.load(tmp_path / "feature_content", weights_only=True).shape == (1, 64, 7)
    stacked = np.load(tmp_path / "feature_f0", allow_pickle=False)
    assert stacked.shape == (2, 12) and stacked.dtype == np.float32
    with np.load(tmp_path / "feature_aug_mel", allow_pickle=False) as archive:
        assert float(archive["keyshift"]) == -2.5


def test_the_originals_pickled_files_are_read_safely(tmp_path: Path) -> None:
    wav = _clip(tmp_path / "nen")
    f0 = np.array([0.0, 110.5, 220.25, 0.0], dtype=np.float64)
    uv = np.array([0, 1, 1, 0], dtype=np.float32)
    np.save(str(wav) + ".f0.npy", np.asanyarray((f0, uv), dtype=object))
    mel = np.arange(24, dtype=np.float32).reshape(3, 8)
    np.save(str(wav) + ".aug_mel.npy", np.asanyarray((mel, 1.75), dtype=object))
    torch.save(torch.arange(12.0).reshape(1, 3, 4), str(wav) + ".soft.pt")
    got_f0, got_uv = read_f0(wav)
    np.testing.assert_array_equal(got_f0, f0.astype(np.float32))
    np.testing.assert_array_equal(got_uv, uv)
    got_mel, keyshift = read_aug_mel(wav)
    np.testing.assert_array_equal(got_mel, mel)
    assert keyshift == 1.75
    assert read_content(wav).shape == (3, 4)
    assert read_spec(wav) is None


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    wav = _clip(tmp_path / "nen")
    marker = tmp_path / "pwned"
    array = np.empty(2, dtype=object)
    array[0] = _Exploit(marker)
    array[1] = 1.0
    np.save(str(wav) + ".f0.npy", array, allow_pickle=True)
    with pytest.raises(InputError, match=r"refused global (posix|os|nt)\.system"):
        read_f0(wav)
    assert not marker.exists()


def test_a_so_vits_svc_40_f0_track_is_interpolated(tmp_path: Path) -> None:
    wav = _clip(tmp_path / "nen")
    np.save(str(wav) + ".f0.npy", np.array([0.0, 100.0, 0.0, 200.0, 0.0]))
    f0, uv = read_f0(wav)
    np.testing.assert_array_equal(uv, [0, 1, 0, 1, 0])
    np.testing.assert_allclose(f0, [100.0, 100.0, 150.0, 200.0, 200.0], rtol=1e-6)


def test_unreadable_files_raise_input_errors_naming_them(tmp_path: Path) -> None:
    wav = _clip(tmp_path / "nen")
    with pytest.raises(InputError, match="feature file not found"):
        read_content(wav)
    feature_path(wav, "content").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read the feature file") as raised:
        read_content(wav)
    assert raised.value.where == str(feature_path(wav, "content"))
    torch.save({"weights": torch.zeros(1)}, feature_path(wav, "content"))
    with pytest.raises(InputError, match="not a tensor"):
        read_content(wav)
    np.save(feature_path(wav, "f0"), np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(InputError, match="expected \\(f0, voiced\\) rows"):
        read_f0(wav)


def test_validate_feature() -> None:
    assert validate_feature("content", torch.zeros(64, 10), frames=11, dim=64) is None
    assert validate_feature("content", torch.zeros(64, 10), frames=13, dim=64) == (
        "has 10 frames, expected 13"
    )
    assert validate_feature("spec", torch.zeros(513, 10), dim=1025) == (
        "has 513 channels, expected 1025"
    )
    bad = np.array([1.0, np.nan], dtype=np.float32)
    assert validate_feature("f0", (bad, np.ones(2)), frames=2) == "holds NaN or infinite values"
    assert validate_feature("mel", np.zeros((0, 128)), dim=128) == "has no frames"


def test_manifest_appends_reloads_and_compacts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "nen"
    wav = _clip(folder)
    clip = ClipSource(wav)
    first = write_feature(clip, SPEC, _f0_value())
    manifest = FeatureManifest(folder)
    manifest.append([first])
    second = write_feature(clip, FeatureSpec("f0", 44100, 512, {"method": "pm"}), _f0_value())
    manifest.append([second])
    with (folder / MANIFEST_NAME).open("a", encoding="utf-8") as handle:
        handle.write('{"wav": "a.wav", "kind": "f0", "trunc')
    reloaded = FeatureManifest(folder)
    assert reloaded.get("a.wav", "f0") == second
    assert "bad manifest line skipped" in caplog.text
    assert reloaded.superseded_lines == 2
    reloaded.compact()
    lines = (folder / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and '"sovits-features"' in lines[0]
    assert FeatureManifest(folder).get("a.wav", "f0") == second
    wav.unlink()
    FeatureManifest(folder).compact()
    assert FeatureManifest(folder).records == {}


def test_records_round_trip_through_json() -> None:
    record = FeatureRecord(
        wav="a.wav", kind="aug_mel", file="a.wav.aug_mel.npz", sample_rate=44100, hop_length=512,
        params={"n_mels": 128, "fmax": 16000.0}, frames=5, shape=(5, 128),
        source=FileState(1, 2, "ab"), output=FileState(3, 4, "cd"),
        extra={"keyshift": 1.5},
    )
    assert FeatureRecord.from_json(record.to_json()) == record


def test_check_record_statuses(tmp_path: Path) -> None:
    folder = tmp_path / "nen"
    wav = _clip(folder)
    assert check_record(None, SPEC, ClipSource(wav)).status == "missing"
    record = write_feature(ClipSource(wav), SPEC, _f0_value())
    assert check_record(record, SPEC, ClipSource(wav)).status == "fresh"
    other = FeatureSpec("f0", 44100, 256, {"method": "dio"})
    assert check_record(record, other, ClipSource(wav)).reason == "made with other settings"

    # touched but identical: fresh, with a refreshed record to store
    os.utime(wav, ns=(0, 10**18))
    check = check_record(record, SPEC, ClipSource(wav))
    assert check.status == "fresh" and check.refreshed is not None
    assert check.refreshed.source.mtime_ns == 10**18
    record = check.refreshed

    wav.write_bytes(b"RIFF other audio")
    check = check_record(record, SPEC, ClipSource(wav))
    assert (check.status, check.reason) == ("stale", "the audio changed")
    record = write_feature(ClipSource(wav), SPEC, _f0_value())
    feature_path(wav, "f0").write_bytes(b"x" * record.output.size)
    assert check_record(record, SPEC, ClipSource(wav)).status == "corrupt"
    feature_path(wav, "f0").unlink()
    assert check_record(record, SPEC, ClipSource(wav)).reason == "the feature file is gone"
    np.save(feature_path(wav, "f0"), np.zeros((2, 3), dtype=np.float32))
    assert check_record(None, SPEC, ClipSource(wav)).status == "unrecorded"


def test_adopt_feature_validates_before_recording(tmp_path: Path) -> None:
    wav = _clip(tmp_path / "nen")
    np.save(str(wav) + ".f0.npy", np.asanyarray(_f0_value(10), dtype=object))
    adopted = adopt_feature(ClipSource(wav), SPEC, frames=10, dim=None)
    assert isinstance(adopted, FeatureRecord) and adopted.origin == "so-vits-svc"
    assert adopted.frames == 10 and dict(adopted.params) == {"method": "dio"}
    assert adopt_feature(ClipSource(wav), SPEC, frames=20, dim=None) == "has 10 frames, expected 20"
    feature_path(wav, "f0").write_bytes(pickle.dumps([1, 2]))
    problem = adopt_feature(ClipSource(wav), SPEC, frames=10, dim=None)
    assert isinstance(problem, str) and "cannot read the feature file" in problem


def test_store_serves_many_folders(tmp_path: Path) -> None:
    store = FeatureStore()
    for speaker in ("a", "b"):
        wav = _clip(tmp_path / speaker, "x.wav")
        store.add([write_feature(ClipSource(wav), SPEC, _f0_value())], wav.parent)
    assert set(store.records_of(tmp_path / "a" / "x.wav")) == {"f0"}
    assert store.record_of(tmp_path / "b" / "x.wav", "content") is None
    assert FeatureStore().record_of(tmp_path / "b" / "x.wav", "f0") is not None
