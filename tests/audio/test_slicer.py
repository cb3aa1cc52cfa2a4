"""The silence slicer: librosa parity of the RMS and trimming, the cut decisions against a
frame-by-frame walk of audio-slicer's rules, and clips written to files."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sovits.audio.io import load_audio
from sovits.audio.slicer import (
    SVC_INFERENCE_SLICER,
    SlicerFrames,
    SlicerSettings,
    frame_rms,
    segments,
    silence_tags,
    slice_file,
    slice_ranges,
    trim_silence,
)
from sovits.errors import InputError

RATE = 16000


def _bursts(pattern: list[tuple[float, bool]], rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Concatenated stretches of (seconds, loud?): loud = noise at 0.3, quiet = 1e-4."""
    rng = np.random.default_rng(seed)
    parts = [
        rng.standard_normal(round(seconds * rate)) * (0.3 if loud else 1e-4)
        for seconds, loud in pattern
    ]
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize(("frame", "hop"), [(2048, 512), (640, 160), (1102, 441), (800, 160)])
def test_frame_rms_equals_librosa(frame: int, hop: int) -> None:
    librosa = pytest.importorskip("librosa")
    for length in (1, 777, 20001):
        wave = _bursts([(length / RATE, True)])[:length] if length > 1 else np.ones(1, np.float32)
        expected = librosa.feature.rms(y=wave, frame_length=frame, hop_length=hop)[0]
        np.testing.assert_array_equal(frame_rms(wave, frame, hop), expected)


def test_trim_silence_equals_librosa_trim() -> None:
    librosa = pytest.importorskip("librosa")
    cases = [
        _bursts([(0.5, False), (1.0, True), (0.7, False)]),
        _bursts([(1.0, True)]),
        np.zeros(5000, dtype=np.float32),
        _bursts([(0.01, True)]),
    ]
    for wave in cases:
        _, (start, end) = librosa.effects.trim(wave, top_db=40)
        assert trim_silence(wave) == (int(start), int(end))


def _walk_frames(rms: np.ndarray, frames: SlicerFrames) -> list[tuple[int, int]]:
    """audio-slicer's rules applied one frame at a time: an independent reading of them."""
    keep = frames.max_silence_kept

    def quietest(first: int, stop: int) -> int:
        return first + int(np.argmin(rms[first:stop]))

    tags: list[tuple[int, int]] = []
    silence_from: int | None = None
    clip_from = 0
    for frame, value in enumerate(rms):
        if value < frames.threshold:
            silence_from = frame if silence_from is None else silence_from
            continue
        if silence_from is None:
            continue
        begin, silence_from = silence_from, None
        width = frame - begin
        at_start = begin == 0 and frame > keep
        worth_cutting = width >= frames.min_interval and frame - clip_from >= frames.min_length
        if not (at_start or worth_cutting):
            continue
        if width <= keep:
            cut = quietest(begin, frame + 1)
            tags.append((0 if begin == 0 else cut, cut))
            clip_from = cut
            continue
        left = quietest(begin, begin + keep + 1)
        right = quietest(frame - keep, frame + 1)
        if width <= 2 * keep and begin != 0:
            middle = quietest(frame - keep, begin + keep + 1)
            left, right = min(left, middle), max(right, middle)
        tags.append((0 if begin == 0 else left, right))
        clip_from = right
    total = len(rms)
    if silence_from is not None and total - silence_from >= frames.min_interval:
        tags.append((quietest(silence_from, min(total, silence_from + keep) + 1), total + 1))
    return tags


def test_cut_decisions_follow_audio_slicer_rules_on_random_signals() -> None:
    rng = np.random.default_rng(3)
    cuts = 0
    for trial in range(120):
        settings = SlicerSettings(
            threshold_db=-40.0,
            min_length_ms=float(rng.choice([300, 1000, 2000])),
            min_interval_ms=float(rng.choice([50, 100, 300])),
            hop_size_ms=10.0,
            max_silence_kept_ms=float(rng.choice([10, 50, 200, 500])),
        )
        pattern = [(float(rng.uniform(0.02, 0.6)), bool(k % 2)) for k in range(12)]
        rng.shuffle(pattern)
        wave = _bursts(pattern, seed=trial)
        frames = settings.frames(RATE)
        rms = frame_rms(wave, frames.window, frames.hop)
        tags = silence_tags(rms, frames)
        assert tags == _walk_frames(rms, frames)
        cuts += len(tags)
    assert cuts > 200  # the signals did exercise the cutting branches


def test_two_phrases_are_cut_inside_the_pause() -> None:
    wave = _bursts([(6.0, True), (1.0, False), (6.0, True)])
    ranges = slice_ranges(wave, RATE, SlicerSettings())
    assert len(ranges) == 2
    (first_start, first_end), (second_start, second_end) = ranges
    assert first_start == 0 and second_end == wave.shape[0]
    # at most max_silence_kept (500 ms) of the 1 s pause stays on each side
    assert 6.0 * RATE <= first_end <= 6.5 * RATE
    assert 6.5 * RATE <= second_start <= 7.0 * RATE
    assert first_end <= second_start


def test_nothing_to_cut_gives_the_whole_wave() -> None:
    wave = _bursts([(3.0, True)])
    assert slice_ranges(wave, RATE) == [(0, wave.shape[0])]
    (whole,) = segments(wave, RATE)
    assert (whole.start, whole.end, whole.silent) == (0, wave.shape[0], False)
    # fewer samples than min_length *frames* (the original's comparison): never sliced
    tiny = np.zeros(100, dtype=np.float32)
    assert slice_ranges(tiny, RATE) == [(0, 100)]


def test_silence_only_wave_has_no_clip_and_one_silent_segment() -> None:
    silence = np.zeros(3 * RATE, dtype=np.float32)
    assert slice_ranges(silence, RATE) == []
    (only,) = segments(silence, RATE)
    assert (only.start, only.end, only.silent) == (0, silence.shape[0], True)


def test_segments_cover_the_signal_and_alternate() -> None:
    wave = _bursts([(0.8, False), (6.0, True), (7.0, False), (6.0, True), (1.0, False)])
    pieces = segments(wave, RATE, SVC_INFERENCE_SLICER)
    assert pieces[0].start == 0 and pieces[-1].end == wave.shape[0]
    for before, after in pairwise(pieces):
        assert before.end == after.start
        assert before.silent != after.silent
    assert any(piece.silent for piece in pieces)
    sound = [piece for piece in pieces if not piece.silent]
    assert len(sound) == 2


def test_multichannel_waves_are_detected_on_the_mean() -> None:
    mono = _bursts([(6.0, True), (1.0, False), (6.0, True)])
    stereo = np.stack([mono, mono])
    assert slice_ranges(stereo, RATE) == slice_ranges(mono, RATE)


def test_bad_settings_raise_input_error() -> None:
    with pytest.raises(InputError, match="min_length >= min_interval"):
        SlicerSettings(min_length_ms=100, min_interval_ms=300)
    with pytest.raises(InputError, match="max_silence_kept"):
        SlicerSettings(hop_size_ms=20, max_silence_kept_ms=10)
    with pytest.raises(InputError, match="hop"):
        SlicerSettings(hop_size_ms=0, min_interval_ms=0, min_length_ms=0)
    with pytest.raises(InputError):
        slice_ranges(np.zeros(10, dtype=np.int16), RATE)


def test_slice_file_writes_numbered_clips_keeping_channels_and_depth(tmp_path: Path) -> None:
    mono = _bursts([(6.0, True), (1.0, False), (6.0, True)])
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    source = tmp_path / "song.wav"
    soundfile.write(source, stereo, RATE, subtype="PCM_24")
    clips = slice_file(source, tmp_path / "clips")
    assert [clip.name for clip in clips] == ["song_0.wav", "song_1.wav"]
    original, _ = load_audio(source, mono=False)
    for clip, (start, end) in zip(clips, slice_ranges(original, RATE), strict=True):
        info = soundfile.info(clip)
        assert (info.channels, info.samplerate, info.subtype) == (2, RATE, "PCM_24")
        data, _ = load_audio(clip, mono=False)
        np.testing.assert_array_equal(data, original[:, start:end])


def test_slice_file_of_silence_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "quiet.wav"
    soundfile.write(source, np.zeros(3 * RATE, dtype=np.float32), RATE)
    assert slice_file(source, tmp_path / "clips") == []
    with pytest.raises(InputError):
        slice_file(tmp_path / "missing.wav", tmp_path / "clips")
