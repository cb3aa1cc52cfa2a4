"""The resample and slice dataset steps over a small generated dataset_raw with bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits.data.prepare import ResampleSettings, resample_dataset, slice_audio
from sovits.errors import InputError


def _tone(seconds: float, rate: int, frequency: float, amplitude: float) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * frequency * t) * np.minimum(1.0, 5 * t)
    return wave.astype(np.float32)


def make_dataset_raw(root: Path) -> Path:
    """dataset_raw with 2 speakers: good files (stereo 48 kHz, flac 22.05 kHz, too loud
    float) and bad ones (corrupt, zero bytes, silence only, a text file)."""
    raw = root / "dataset_raw"
    alice, bob = raw / "alice", raw / "bob"
    alice.mkdir(parents=True)
    bob.mkdir()
    left = _tone(1.5, 48000, 220.0, 0.4)
    silence = np.zeros(24000, dtype=np.float32)
    stereo = np.stack([np.concatenate([silence, left]), np.concatenate([silence, 0.5 * left])], 1)
    soundfile.write(alice / "stereo48k.wav", stereo, 48000)
    soundfile.write(alice / "low_rate.flac", _tone(1.0, 22050, 330.0, 0.2), 22050)
    (alice / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    soundfile.write(bob / "too_loud.wav", _tone(1.0, 44100, 150.0, 1.6), 44100, subtype="FLOAT")
    (bob / "empty.wav").write_bytes(b"")
    soundfile.write(bob / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (bob / "notes.txt").write_text("not audio")
    (raw / "stray.wav").write_bytes(b"")
    return raw


def _original_resample(path: Path, rate: int = 44100) -> np.ndarray:
    """so-vits-svc 4.1's resample.py steps for one file with --skip_loudnorm."""
    librosa = pytest.importorskip("librosa")
    wave, source_rate = librosa.load(path, sr=None)
    wave, _ = librosa.effects.trim(wave, top_db=40)
    peak = np.abs(wave).max()
    if peak > 1.0:
        wave = 0.98 * wave / peak
    wave = librosa.resample(wave, orig_sr=source_rate, target_sr=rate)
    return (wave * np.iinfo(np.int16).max).astype(np.int16)


def test_good_files_are_processed_and_bad_ones_reported(tmp_path: Path) -> None:
    raw = make_dataset_raw(tmp_path)
    out = tmp_path / "dataset" / "44k"
    report = resample_dataset(raw, out, num_processes=1)
    names = sorted(path.relative_to(out).as_posix() for path in report.written)
    assert names == ["alice/low_rate.wav", "alice/stereo48k.wav", "bob/too_loud.wav"]
    failed = {problem.path.name: problem.message for problem in report.failed}
    assert set(failed) == {"corrupt.wav", "empty.wav", "silent.wav"}
    assert "silence only" in failed["silent.wav"]
    assert "cannot read" in failed["corrupt.wav"]
    assert {path.name for path in report.ignored} == {"notes.txt", "stray.wav"}
    assert not report.ok
    assert any("upsampled from 22050 Hz" in note.message for note in report.notes)
    assert sorted(p.name for p in (out / "bob").iterdir()) == ["too_loud.wav"]
    pyloudnorm = pytest.importorskip("pyloudnorm")
    for path in report.written:
        info = soundfile.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        wave, rate = soundfile.read(path)
        assert pyloudnorm.Meter(rate).integrated_loudness(wave) == pytest.approx(-23.0, abs=0.05)


def test_second_run_skips_finished_files(tmp_path: Path) -> None:
    raw = make_dataset_raw(tmp_path)
    out = tmp_path / "out"
    first = resample_dataset(raw, out, num_processes=1)
    stamps = {path: path.stat().st_mtime_ns for path in first.written}
    second = resample_dataset(raw, out, num_processes=1)
    assert second.written == ()
    assert sorted(second.skipped) == sorted(first.written)
    assert {p.path.name for p in second.failed} == {"corrupt.wav", "empty.wav", "silent.wav"}
    assert {path: path.stat().st_mtime_ns for path in first.written} == stamps
    third = resample_dataset(raw, out, num_processes=1, overwrite=True)
    assert sorted(third.written) == sorted(first.written)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # librosa's audioread import
def test_skip_loudnorm_writes_the_seeds_samples(tmp_path: Path) -> None:
    raw = make_dataset_raw(tmp_path)
    out = tmp_path / "out"
    settings = ResampleSettings(loudness_normalization=False)
    report = resample_dataset(raw, out, settings, num_processes=1)
    sources = {
        "alice/stereo48k.wav": raw / "alice" / "stereo48k.wav",
        "alice/low_rate.wav": raw / "alice" / "low_rate.flac",
        "bob/too_loud.wav": raw / "bob" / "too_loud.wav",
    }
    assert len(report.written) == len(sources)
    for name, source in sources.items():
        written, rate = soundfile.read(out / name, dtype="int16")
        assert rate == 44100
        np.testing.assert_array_equal(written, _original_resample(source))


def test_worker_processes_give_the_same_files(tmp_path: Path) -> None:
    raw = make_dataset_raw(tmp_path)
    serial = resample_dataset(raw, tmp_path / "serial", num_processes=1)
    parallel = resample_dataset(raw, tmp_path / "parallel", num_processes=2)
    assert len(parallel.written) == len(serial.written) == 3
    assert [p.path for p in parallel.failed] == [p.path for p in serial.failed]
    for path in serial.written:
        twin = tmp_path / "parallel" / path.relative_to(tmp_path / "serial")
        assert twin.read_bytes() == path.read_bytes()


def test_same_output_name_is_reported_not_overwritten(tmp_path: Path) -> None:
    speaker = tmp_path / "raw" / "alice"
    speaker.mkdir(parents=True)
    soundfile.write(speaker / "take.wav", _tone(0.5, 16000, 200.0, 0.3), 16000)
    soundfile.write(speaker / "take.flac", _tone(0.5, 16000, 300.0, 0.3), 16000)
    report = resample_dataset(tmp_path / "raw", tmp_path / "out", num_processes=1)
    assert len(report.written) == 1
    (problem,) = report.failed
    assert "same output name" in problem.message


def test_missing_folder_and_missing_speaker_folders_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        resample_dataset(tmp_path / "nowhere", tmp_path / "out")
    flat = tmp_path / "flat"
    flat.mkdir()
    soundfile.write(flat / "a.wav", _tone(0.5, 16000, 200.0, 0.3), 16000)
    with pytest.raises(InputError, match="speaker folders"):
        resample_dataset(flat, tmp_path / "out")
    with pytest.raises(InputError, match="input folder"):
        resample_dataset(flat, flat / ".." / "flat", overwrite=True)


def test_slice_a_folder_mirrors_speakers_and_reports_bad_files(tmp_path: Path) -> None:
    source = tmp_path / "long"
    (source / "alice").mkdir(parents=True)
    phrase = _tone(6.0, 16000, 220.0, 0.4)
    pause = np.zeros(16000, dtype=np.float32)
    soundfile.write(source / "alice" / "song.wav", np.concatenate([phrase, pause, phrase]), 16000)
    soundfile.write(source / "alice" / "hush.wav", np.zeros(48000, dtype=np.float32), 16000)
    (source / "alice" / "broken.flac").write_bytes(b"fLaC broken")
    report = slice_audio(source, tmp_path / "clips")
    assert sorted(p.relative_to(tmp_path / "clips").as_posix() for p in report.written) == [
        "alice/song_0.wav",
        "alice/song_1.wav",
    ]
    assert [p.name for p in report.empty] == ["hush.wav"]
    assert [p.path.name for p in report.failed] == ["broken.flac"]
    assert report.sources == 3
    with pytest.raises(InputError, match="inside"):
        slice_audio(source, source / "clips")
    with pytest.raises(InputError, match="not found"):
        slice_audio(tmp_path / "missing.wav", tmp_path / "clips")
