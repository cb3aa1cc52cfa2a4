"""Reading and writing audio files: formats, channels, rates, and every bad-file case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits.audio.io import audio_info, load_audio, save_audio, save_audio_blocks
from sovits.errors import InputError


def _tone(
    seconds: float, rate: int, frequency: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_stereo_file_is_mixed_down_by_averaging(tmp_path: Path) -> None:
    left = _tone(0.2, 48000, 440.0)
    right = _tone(0.2, 48000, 660.0, 0.25)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 48000, subtype="FLOAT")
    wave, rate = load_audio(path)
    assert rate == 48000
    assert wave.dtype == np.float32 and wave.shape == left.shape
    np.testing.assert_array_equal(wave, (left + right) / np.float32(2))
    channels, _ = load_audio(path, mono=False)
    assert channels.shape == (2, left.shape[0])
    np.testing.assert_array_equal(channels[1], right)


def test_load_resamples_to_the_asked_rate(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    soundfile.write(path, _tone(0.5, 48000), 48000)
    wave, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000
    assert wave.shape == (8000,)
    assert wave.dtype == np.float32


def test_pcm16_write_is_so_vits_svc_conversion_with_clipping(tmp_path: Path) -> None:
    wave = np.array([0.0, 0.5, -0.5, 0.99999, -1.0, 1.7, -3.0, 1e-5], dtype=np.float32)
    path = save_audio(tmp_path / "out.wav", wave, 44100)
    stored, rate = soundfile.read(path, dtype="int16")
    assert rate == 44100
    # scaled by 32767 and truncated toward zero; beyond full scale clipped, not wrapped
    expected = np.array([0, 16383, -16383, 32766, -32767, 32767, -32767, 0], dtype=np.int16)
    np.testing.assert_array_equal(stored, expected)
    assert audio_info(path) == (8, 44100, 1, "PCM_16")


def test_pcm16_write_of_a_long_stereo_wave_converts_every_block_alike(tmp_path: Path) -> None:
    # Longer than one conversion block (2 ** 18 samples), not a multiple of it.
    wave = np.random.default_rng(1).uniform(-1.5, 1.5, size=(2, 600_001)).astype(np.float32)
    path = save_audio(tmp_path / "long.wav", wave, 44100)
    stored, _ = soundfile.read(path, dtype="int16", always_2d=True)
    expected = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).T
    np.testing.assert_array_equal(stored, expected)


def test_float_write_round_trips_exactly_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    wave = np.random.default_rng(0).uniform(-1, 1, size=(2, 500)).astype(np.float32)
    path = save_audio(tmp_path / "sub" / "out.wav", wave, 22050, subtype="FLOAT")
    back, rate = load_audio(path, mono=False)
    assert rate == 22050
    np.testing.assert_array_equal(back, wave)
    assert [p.name for p in path.parent.iterdir()] == ["out.wav"]


def test_mp3_is_read_through_libsndfile(tmp_path: Path) -> None:
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile has no mp3 support")
    path = tmp_path / "a.mp3"
    soundfile.write(path, _tone(1.0, 44100), 44100, format="MP3")
    wave, rate = load_audio(path)
    assert rate == 44100
    assert abs(wave.shape[0] - 44100) < 44100 * 0.1
    assert 0.3 < float(np.max(np.abs(wave))) < 0.7


def _assert_names(error: pytest.ExceptionInfo[InputError], path: Path) -> None:
    assert error.value.where == str(path)


def test_missing_corrupt_and_empty_files_raise_input_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.wav"
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    no_frames = tmp_path / "frames.wav"
    soundfile.write(no_frames, np.zeros(0, dtype=np.float32), 16000)
    for path in (missing, corrupt, zero_bytes, no_frames):
        with pytest.raises(InputError) as error:
            load_audio(path)
        _assert_names(error, path)
    with pytest.raises(InputError, match="no samples"):
        load_audio(no_frames)


def test_nan_samples_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    wave = np.zeros(100, dtype=np.float32)
    wave[10] = np.nan
    soundfile.write(path, wave, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN") as error:
        load_audio(path)
    _assert_names(error, path)
    with pytest.raises(InputError, match="NaN"):
        save_audio(tmp_path / "out.wav", wave, 16000)
    assert not (tmp_path / "out.wav").exists()


def test_save_refuses_bad_suffix_shape_and_unwritable_folder(tmp_path: Path) -> None:
    wave = np.zeros(10, dtype=np.float32)
    with pytest.raises(InputError, match="suffix"):
        save_audio(tmp_path / "out.xyz", wave, 16000)
    with pytest.raises(InputError, match="shape"):
        save_audio(tmp_path / "out.wav", np.zeros((1, 2, 3), dtype=np.float32), 16000)
    with pytest.raises(InputError, match="float"):
        save_audio(tmp_path / "out.wav", np.zeros(10, dtype=np.int16), 16000)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot write"):
        save_audio(blocker / "out.wav", wave, 16000)


def test_failed_write_keeps_the_existing_file(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "out.wav", np.full(10, 0.5, dtype=np.float32), 16000)
    before = path.read_bytes()
    with pytest.raises(InputError):
        save_audio(path, np.full(10, 0.5, dtype=np.float32), 16000, subtype="NOT_A_SUBTYPE")
    assert path.read_bytes() == before


@pytest.mark.parametrize(("suffix", "subtype"), [(".wav", "PCM_16"), (".flac", "PCM_24"),
                                                 (".wav", "FLOAT")])
def test_blocks_are_written_as_their_concatenation(
    tmp_path: Path, suffix: str, subtype: str
) -> None:
    rng = np.random.default_rng(0)
    blocks = [rng.uniform(-1.1, 1.1, size).astype(np.float32) for size in (700, 0, 1, 3000)]
    whole = save_audio(tmp_path / f"whole{suffix}", np.concatenate(blocks), 16000,
                       subtype=subtype)
    streamed = save_audio_blocks(tmp_path / f"blocks{suffix}", iter(blocks), 16000,
                                 subtype=subtype)
    expected, _ = soundfile.read(whole, dtype="float32")
    written, rate = soundfile.read(streamed, dtype="float32")
    assert rate == 16000
    np.testing.assert_array_equal(written, expected)  # the same file content, exactly


def test_a_failure_while_blocks_come_leaves_no_file(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "out.wav", np.full(10, 0.5, dtype=np.float32), 16000)
    before = path.read_bytes()

    def failing() -> object:
        yield np.zeros(100, dtype=np.float32)
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a conversion

    with pytest.raises(KeyboardInterrupt):
        save_audio_blocks(path, failing(), 16000)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    nan = [np.zeros(10, np.float32), np.array([np.nan], np.float32)]
    with pytest.raises(InputError, match="NaN"):
        save_audio_blocks(tmp_path / "nan.wav", nan, 16000)
    with pytest.raises(InputError, match="no samples"):
        save_audio_blocks(tmp_path / "empty.wav", [np.zeros(0, np.float32)], 16000)
    with pytest.raises(InputError, match="shape"):
        save_audio_blocks(tmp_path / "mixed.wav", [np.zeros((2, 5)), np.zeros(5)], 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
