"""A song read range by range: decoding to a temporary file equals loading it whole,
the slicer's RMS and segments are the same from a file as from an array, and bad files
are clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

import sovits.audio.slicer as slicer
import sovits.audio.song as song
from sovits.audio.io import load_audio
from sovits.audio.slicer import frame_rms, samples_frame_rms, segments
from sovits.audio.song import ArraySamples, decode_song
from sovits.errors import InputError
from tests.tolerance import INTERMEDIATE, assert_close


def _phrases(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """[N, C] float32: notes of 0.4-1.2 s with pauses of 0.3-0.9 s between them."""
    rng = np.random.default_rng(seed)
    parts = []
    while sum(part.shape[0] for part in parts) < seconds * rate:
        length = int(rng.uniform(0.4, 1.2) * rate)
        times = np.arange(length) / rate
        note = 0.3 * np.sin(2 * np.pi * rng.uniform(110, 440) * times)
        parts += [note, rng.standard_normal(int(rng.uniform(0.3, 0.9) * rate)) * 1e-4]
    wave = np.concatenate(parts)[: int(seconds * rate)]
    spread = [wave * (1.0 - 0.3 * channel) for channel in range(channels)]
    return np.stack(spread, axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("file_rate", "channels"), [(44100, 1), (44100, 2), (48000, 2), (22050, 1), (16000, 1)]
)
def test_decoded_song_equals_the_loaded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_rate: int, channels: int
) -> None:
    """Block by block (several blocks here), mixed down and stream-resampled, the song
    holds what `load_audio` returns, to the sample count."""
    monkeypatch.setattr(song, "_DECODE_BLOCK", 10007)
    path = tmp_path / "song.wav"
    soundfile.write(path, _phrases(1.7, file_rate, channels), file_rate, subtype="FLOAT")
    expected, _ = load_audio(path, sample_rate=44100)
    with decode_song(path, 44100, scratch_dir=tmp_path) as samples:
        assert samples.length == expected.shape[0]
        assert_close(samples.read(0, samples.length), expected, INTERMEDIATE, what="song")
        assert_close(samples.read(12345, 23456), expected[12345:23456], INTERMEDIATE,
                     what="a range")
        assert samples.read(500, 500).shape == (0,)
        with pytest.raises(IndexError):
            samples.read(0, samples.length + 1)
    assert os.listdir(tmp_path) == ["song.wav"]  # the temporary file left no name behind


@pytest.mark.parametrize("suffix", ["flac", "ogg", "mp3"])
def test_compressed_songs_decode_as_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """Compressed formats too, read in several blocks. For mp3 this needs reads with no
    seek between them: after `SoundFile.blocks`' seeks libsndfile's mpg123 decoder got
    this gated sine up to 0.36 off."""
    if suffix.upper() not in soundfile.available_formats():
        pytest.skip(f"this libsndfile has no {suffix} support")
    monkeypatch.setattr(song, "_DECODE_BLOCK", 1 << 16)
    times = np.arange(8 * 48000) / 48000
    gated = 0.3 * np.sin(2 * np.pi * 220 * times) * (np.sin(2 * np.pi * 0.3 * times) > 0)
    path = tmp_path / f"song.{suffix}"
    soundfile.write(path, np.stack([gated, 0.5 * gated], axis=1).astype(np.float32), 48000)
    expected, _ = load_audio(path, sample_rate=44100)
    with decode_song(path, 44100) as samples:
        assert samples.length == expected.shape[0]
        assert_close(samples.read(0, samples.length), expected, INTERMEDIATE, what="song")


class _PublicOnly:
    """A SoundFile seen through its public methods only (no libsndfile handle)."""

    def __init__(self, audio: soundfile.SoundFile) -> None:
        self.channels = audio.channels
        self.read = audio.read


def test_blocks_without_the_binding_read_the_file_whole(tmp_path: Path) -> None:
    """Should soundfile's cffi binding move, the blocks come from one whole read, split:
    the same samples as the successive reads."""
    path = tmp_path / "song.flac"
    soundfile.write(path, _phrases(1.3, 44100, channels=2), 44100)
    with soundfile.SoundFile(path) as audio:
        successive = list(song._sequential_blocks(audio, 10007))
    with soundfile.SoundFile(path) as audio:
        split = list(song._sequential_blocks(_PublicOnly(audio), 10007))
    assert [block.shape for block in split] == [block.shape for block in successive]
    assert_close(np.concatenate(split), np.concatenate(successive), INTERMEDIATE,
                 what="blocks")


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    broken = tmp_path / "nan.wav"
    wave = np.full(300000, 0.1, np.float32)
    wave[250000] = np.nan  # in a later block
    soundfile.write(broken, wave, 16000, subtype="FLOAT")
    cases = [(corrupt, "cannot read"), (empty, "no samples"), (broken, "NaN"),
             (tmp_path / "missing.wav", "not found"), (tmp_path, "is a folder")]
    for path, message in cases:
        with pytest.raises(InputError, match=message), decode_song(path, 16000):
            pass
    with pytest.raises(InputError, match="temporary file"), decode_song(
        empty, 16000, scratch_dir=tmp_path / "no such folder"
    ):
        pass


@pytest.mark.parametrize(("frame", "hop"), [(3528, 882), (2048, 512), (1102, 441)])
def test_rms_read_in_chunks_equals_the_whole_array(
    monkeypatch: pytest.MonkeyPatch, frame: int, hop: int
) -> None:
    """Chunks of a few frames (so ranges reach past both ends of the signal) give the
    RMS of the padded array."""
    monkeypatch.setattr(slicer, "_FRAMES_PER_CHUNK", 7)
    for length in (1, frame // 2 + 3, 20001, 44100):
        wave = _phrases(length / 44100 + 0.01, 44100)[:length, 0]
        half = frame // 2
        padded = np.pad(wave, (half, half))
        starts = range(0, padded.shape[0] - frame + 1, hop)
        expected = np.array([np.sqrt(np.mean(np.square(padded[s : s + frame]))) for s in starts])
        assert_close(samples_frame_rms(ArraySamples(wave), frame, hop), expected,
                     INTERMEDIATE, what="rms")
        assert_close(frame_rms(wave, frame, hop), expected, INTERMEDIATE, what="rms")


def test_segments_of_a_song_file_equal_those_of_the_array(tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    pause = np.zeros((6 * 44100, 1), np.float32)  # long enough to become a silent segment
    song_wave = np.concatenate([_phrases(20.0, 44100, seed=3), pause, _phrases(20.0, 44100)])
    soundfile.write(path, song_wave, 44100, subtype="FLOAT")
    wave, _ = load_audio(path)
    with decode_song(path, 44100) as samples:
        from_file = segments(samples, 44100)
    assert len(from_file) >= 6 and any(piece.silent for piece in from_file)
    assert from_file == segments(wave, 44100)
