"""Converter: slicing, clipping with crossfades, pitch options, loudness, bad input.

The model is the a_default fixture synthesizer (random weights, 44.1 kHz, hop 512,
64-dimensional units) with its config pointed at the download-free `spectral`
encoder. Model calls are recorded by wrapping `Synthesizer.infer`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch

from sovits.audio.join import crossfade_join
from sovits.errors import CheckpointError, InputError, MissingFileError
from sovits.features.pitch.export import F0Curve, save_f0_curve
from sovits.inference.converter import Converter, output_name
from sovits.inference.loudness import match_loudness_envelope
from sovits.inference.options import ConvertOptions
from tests.conftest import SOVITS41

MODEL_DIR = SOVITS41 / "variants" / "a_default"
RATE = 44100
HOP = 512


def spectral_config(folder: Path, variant: str = "a_default") -> Path:
    """The fixture config of `variant` with the spectral encoder, written to `folder`."""
    data = json.loads((SOVITS41 / "variants" / variant / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    path = folder / f"{variant}_config.json"
    path.write_text(json.dumps(data))
    return path


def tone(seconds: float, frequency: float = 220.0, amplitude: float = 0.3) -> np.ndarray:
    times = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * times)).astype(np.float32)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spectral_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def converter(config_path: Path) -> Converter:
    return Converter(MODEL_DIR / "G_0_release.pth", config_path, device="cpu")


class Recorder:
    """Wraps Synthesizer.infer and keeps what every call received and returned."""

    def __init__(self, infer: Any):
        self.infer = infer
        self.calls: list[dict[str, Any]] = []

    def __call__(self, content: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, **kw: Any) -> Any:
        result = self.infer(content, f0, uv, **kw)
        self.calls.append(
            {"frames": f0.shape[1], "f0": f0[0].clone(), "uv": uv[0].clone(),
             "audio": result.audio[0, 0].clone(), **kw}
        )
        return result


@pytest.fixture
def recorder(converter: Converter, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    spy = Recorder(converter.synthesizer.infer)
    monkeypatch.setattr(converter.synthesizer, "infer", spy)
    yield spy


# ----------------------------------------------------------------- basic conversion


def test_output_has_the_input_length_and_is_reproducible(converter: Converter) -> None:
    wave = tone(1.0)
    options = ConvertOptions(speaker="spk_b")
    first = converter.convert(wave, RATE, options=options)
    second = converter.convert(wave, RATE, options=options)
    assert first.shape == wave.shape and first.dtype == np.float32
    assert np.all(np.isfinite(first)) and np.abs(first).max() > 0
    np.testing.assert_array_equal(first, second)
    other_seed = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_b", seed=1))
    assert not np.array_equal(first, other_seed)


def test_input_at_another_rate_is_resampled_to_the_model_rate(converter: Converter) -> None:
    wave = tone(1.0)[::2].copy()  # 22050 Hz
    out = converter.convert(wave, RATE // 2, options=ConvertOptions(speaker="spk_a"))
    assert out.shape[0] == math.ceil(wave.shape[0] * 2)


def test_each_padded_slice_is_one_model_call(converter: Converter, recorder: Recorder) -> None:
    wave = tone(1.0)
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_c", pad_seconds=0.25))
    (call,) = recorder.calls
    assert call["frames"] == (RATE + 2 * int(RATE * 0.25)) // HOP
    assert call["noise_scale"] == 0.4 and call["predict_f0"] is False
    assert call["speaker"].tolist() == [[2]]


# ----------------------------------------------------------------- slicing and clips


def test_slices_are_converted_apart_and_long_silence_left_silent(
    converter: Converter, recorder: Recorder
) -> None:
    # The inference slicer cuts after a clip of 5 s at silences of 0.3 s or more, and
    # keeps up to 5 s of silence on each side, so a short pause only splits the sound.
    wave = np.concatenate([tone(5.2), np.zeros(RATE, np.float32), tone(0.8)])
    out = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a"))
    assert out.shape == wave.shape
    assert len(recorder.calls) == 2
    recorder.calls.clear()
    # Leading silence longer than 5 s is cut out and stays zeros in the output.
    wave = np.concatenate([np.zeros(int(5.6 * RATE), np.float32), tone(0.5)])
    out = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a"))
    assert out.shape == wave.shape
    assert len(recorder.calls) == 1
    assert np.all(out[: RATE // 2] == 0) and np.abs(out[-RATE // 2 :]).max() > 0


def test_a_louder_slice_threshold_keeps_quiet_parts(
    converter: Converter, recorder: Recorder
) -> None:
    wave = np.concatenate([tone(5.2), tone(1.0, amplitude=0.003), tone(0.8)])
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a", slice_db=-60))
    assert len(recorder.calls) == 1
    recorder.calls.clear()
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a", slice_db=-30))
    assert len(recorder.calls) == 2


def test_forced_clips_overlap_and_are_crossfaded(converter: Converter, recorder: Recorder) -> None:
    wave = tone(2.5)
    options = ConvertOptions(
        speaker="spk_a", clip_seconds=1.0, crossfade_seconds=0.2, crossfade_retain=0.5,
        pad_seconds=0.1, noise_scale=0.0,
    )
    out = converter.convert(wave, RATE, options=options)
    pad = int(0.1 * RATE)
    lengths = [RATE, RATE + int(0.2 * RATE), int(0.5 * RATE) + int(0.2 * RATE)]
    assert [call["frames"] for call in recorder.calls] == [
        (length + 2 * pad) // HOP for length in lengths
    ]
    # Rebuild the join from the recorded clip outputs: trim the padding, centre in the
    # clip length, crossfade with the original's -lg / -lgr rule.
    pieces = []
    for call, length in zip(recorder.calls, lengths, strict=True):
        audio = call["audio"].numpy()
        audio = audio[pad : audio.shape[0] - pad]
        missing = length - audio.shape[0]
        pieces.append(np.pad(audio, (missing // 2, missing - missing // 2)))
    expected = crossfade_join(pieces, int(0.2 * RATE), retain=0.5)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_long_slices_are_clipped_so_model_memory_stays_bounded(
    converter: Converter, recorder: Recorder
) -> None:
    wave = tone(5.0)
    options = ConvertOptions(speaker="spk_a", max_segment_seconds=2.0, pad_seconds=0.1)
    out = converter.convert(wave, RATE, options=options)
    assert out.shape == wave.shape
    bound = (3 * RATE + 2 * int(0.1 * RATE)) // HOP  # clip + 1 s crossfade + padding
    assert len(recorder.calls) == 3
    assert max(call["frames"] for call in recorder.calls) <= bound
    recorder.calls.clear()
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a", max_segment_seconds=None))
    assert len(recorder.calls) == 1


# ----------------------------------------------------------------- pitch options


def _voiced_median(call: dict[str, Any]) -> float:
    f0 = call["f0"].numpy()
    return float(np.median(f0[call["uv"].numpy() > 0]))


def test_transpose_shifts_the_extracted_f0(converter: Converter, recorder: Recorder) -> None:
    wave = tone(1.0, frequency=220.0)
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a"))
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a", transpose=12))
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a", transpose=-5))
    base, up, down = (_voiced_median(call) for call in recorder.calls)
    assert base == pytest.approx(220.0, rel=0.01)
    assert up == pytest.approx(2 * base, rel=1e-5)
    assert down == pytest.approx(base * 2 ** (-5 / 12), rel=1e-5)


def test_f0_file_replaces_extraction(
    converter: Converter, recorder: Recorder, tmp_path: Path
) -> None:
    times = np.arange(0, 1.0, 0.01)
    f0 = np.where(times < 0.5, 300.0, 0.0).astype(np.float32)  # unvoiced second half
    curve = save_f0_curve(F0Curve(times, f0, times < 0.5), tmp_path / "edited.csv")
    options = ConvertOptions(speaker="spk_a", f0_file=curve, transpose=12, pad_seconds=0.0)
    converter.convert(tone(1.0, frequency=220.0), RATE, options=options)
    (call,) = recorder.calls
    frame_times = np.arange(call["frames"]) * HOP / RATE
    voiced = call["uv"].numpy() > 0
    np.testing.assert_array_equal(voiced, frame_times < 0.495)  # nearest curve point decides
    # unvoiced frames hold the last voiced value, as extractors fill them
    np.testing.assert_allclose(call["f0"].numpy(), 600.0, rtol=1e-6)


def test_auto_predict_f0_and_noise_scale_reach_the_model(
    converter: Converter, recorder: Recorder
) -> None:
    options = ConvertOptions(speaker="spk_a", auto_predict_f0=True, noise_scale=0.0)
    out = converter.convert(tone(0.5), RATE, options=options)
    (call,) = recorder.calls
    assert call["predict_f0"] is True and call["noise_scale"] == 0.0
    assert np.all(np.isfinite(out))
    assert options.transpose_label == "auto"


# ----------------------------------------------------------------- loudness


def test_loudness_envelope_rate_zero_imposes_the_input_envelope() -> None:
    rate = 1000
    source = np.concatenate([np.full(2000, 0.1), np.full(2000, 0.4)]).astype(np.float32)
    output = np.full(4000, 0.2, dtype=np.float32)
    matched = match_loudness_envelope(source, output, rate, 0.0)
    assert matched[200] == pytest.approx(0.1, rel=1e-4)
    assert matched[3800] == pytest.approx(0.4, rel=1e-4)
    half = match_loudness_envelope(source, output, rate, 0.5)
    assert half[200] == pytest.approx(math.sqrt(0.1 * 0.2), rel=1e-4)
    np.testing.assert_array_equal(match_loudness_envelope(source, output, rate, 1.0), output)


def test_loudness_envelope_option_changes_the_output(converter: Converter) -> None:
    wave = tone(1.0) * np.linspace(0.05, 1.0, RATE, dtype=np.float32)
    plain = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a"))
    matched = converter.convert(
        wave, RATE, options=ConvertOptions(speaker="spk_a", loudness_envelope_adjustment=0.0)
    )
    assert not np.array_equal(plain, matched)
    early, late = slice(0, RATE // 4), slice(3 * RATE // 4, RATE)
    ratio_plain = np.sqrt(np.mean(plain[late] ** 2) / np.mean(plain[early] ** 2))
    ratio_matched = np.sqrt(np.mean(matched[late] ** 2) / np.mean(matched[early] ** 2))
    assert ratio_matched > ratio_plain


# ----------------------------------------------------------------- files


def test_convert_file_writes_the_original_name_atomically(
    converter: Converter, tmp_path: Path
) -> None:
    source = tmp_path / "in" / "song.wav"
    source.parent.mkdir()
    soundfile.write(source, tone(0.5)[::2], RATE // 2)
    options = ConvertOptions(speaker="spk_b", transpose=-3, audio_format="wav")
    out_dir = tmp_path / "results"
    path = converter.convert_file(source, out_dir, options)
    assert path == out_dir / "song_-3key_spk_b_sovits_pm.wav"
    assert os.listdir(out_dir) == [path.name]
    data, rate = soundfile.read(path)
    assert rate == RATE and data.shape[0] == int(0.5 * RATE) // 2 * 2
    assert output_name("x", ConvertOptions(speaker="s")) == "x_0key_s_sovits_pm.flac"


def test_convert_file_streams_the_result_and_equals_convert(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The song is read slice by slice and the file written segment by segment (neither
    is ever held whole), and the file holds what `convert` returns."""
    import sovits.audio.io as audio_io
    import sovits.audio.slicer as slicer
    from sovits.audio.song import SongFile

    pause = np.zeros(int(0.6 * RATE), np.float32)
    wave = np.concatenate([pause, tone(0.5), pause, tone(0.4), pause])
    source = tmp_path / "song.wav"
    soundfile.write(source, wave, RATE, subtype="FLOAT")
    options = ConvertOptions(speaker="spk_a", audio_format="wav")
    sizes: list[int] = []
    real = audio_io.save_audio_blocks

    def counting(path: Path, blocks: Any, rate: int, **kw: Any) -> Path:
        def seen() -> Any:
            for block in blocks:
                sizes.append(block.shape[0])
                yield block
        return real(path, seen(), rate, **kw)

    reads: list[int] = []
    real_read = SongFile.read

    def counted_read(self: SongFile, start: int, stop: int) -> np.ndarray:
        reads.append(stop - start)
        return real_read(self, start, stop)

    monkeypatch.setattr(audio_io, "save_audio_blocks", counting)
    monkeypatch.setattr(SongFile, "read", counted_read)
    monkeypatch.setattr(slicer, "_FRAMES_PER_CHUNK", 16)  # the RMS pass reads 16 frames
    written = converter.convert_file(source, tmp_path, options)
    assert len(sizes) >= 2 and sum(sizes) == wave.shape[0]  # sound and the pause after it
    assert len(reads) > 2 and max(reads) < wave.shape[0]  # never the whole song
    expected = converter.convert(wave, RATE, options=options)
    data, _ = soundfile.read(written, dtype="float32")
    int16 = np.trunc(np.clip(expected, -1, 1) * 32767) / 32768  # what PCM_16 holds
    np.testing.assert_array_equal(data, int16.astype(np.float32))


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (np.zeros(0, np.float32), "no samples"),
        (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
        (np.zeros((2, 2, 2), np.float32), "shape"),
        (np.zeros(100, np.int16), "float"),
    ],
)
def test_bad_waves_are_clear_errors(converter: Converter, wave: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a"))


def test_bad_files_are_clear_errors(converter: Converter, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    options = ConvertOptions(speaker="spk_a")
    with pytest.raises(InputError, match="cannot read"):
        converter.convert_file(corrupt, tmp_path / "out", options)
    with pytest.raises(InputError, match="not found"):
        converter.convert_file(tmp_path / "missing.wav", tmp_path / "out", options)
    assert not (tmp_path / "out").exists()


def test_unknown_speaker_suggests_names(converter: Converter) -> None:
    with pytest.raises(InputError, match="did you mean 'spk_a'"):
        converter.convert(tone(0.2), RATE, options=ConvertOptions(speaker="spk_aa"))


@pytest.mark.parametrize(
    "options",
    [
        {"transpose": 49},
        {"transpose": float("nan")},
        {"noise_scale": -0.1},
        {"loudness_envelope_adjustment": 1.5},
        {"crossfade_retain": 0.0},
        {"crossfade_seconds": 0.5},
        {"clip_seconds": 1.0, "crossfade_seconds": 1.0},
        {"f0_method": "yin"},
        {"audio_format": "mp4"},
        {"pad_seconds": -1},
        {"speaker": ""},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        ConvertOptions(**{"speaker": "spk_a", **options})


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"shallow_diffusion": True}, MissingFileError, "-dm"),
        ({"only_diffusion": True}, MissingFileError, "-dm"),
        ({"cluster_ratio": 0.5}, InputError, "-cm"),
        ({"use_speaker_mix": True}, InputError, "track"),
        ({"shallow_diffusion": True, "diffusion_model_path": Path("nowhere/model.pt")},
         MissingFileError, "nowhere"),
    ],
)
def test_parts_the_options_need_are_checked_before_converting(
    converter: Converter, options: dict[str, Any], error: type, text: str
) -> None:
    chosen = ConvertOptions(speaker="spk_a", **options)
    with pytest.raises(error, match=text):
        converter.convert(tone(0.2), RATE, options=chosen)


def test_model_config_and_encoder_mismatches_are_clear(tmp_path: Path) -> None:
    other = spectral_config(tmp_path, "b_vol")  # ssl_dim 48, volume embedding
    with pytest.raises(CheckpointError):
        Converter(MODEL_DIR / "G_0_release.pth", other, device="cpu")
    with pytest.raises(CheckpointError, match="ssl_dim"):
        Converter(SOVITS41 / "variants" / "b_vol" / "G_0_release.pth", other, device="cpu")


def test_default_seed_is_the_synthesizers() -> None:
    from sovits.models.synthesizer import DEFAULT_SEED

    assert ConvertOptions(speaker="spk_a").seed == DEFAULT_SEED
