"""sovits.dsp.spectrogram against mel_processing (helpers.npz) and nvSTFT (vocoder fixture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sovits.dsp.spectrogram import (
    hann_window,
    mel_filterbank,
    mel_spectrogram,
    spec_to_mel,
    spectrogram,
    vocoder_mel,
)
from sovits.errors import InputError
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import INTERMEDIATE, assert_close

SYNTH = {"n_fft": 2048, "hop_length": 512, "win_length": 2048}
VOCODER = {
    "sample_rate": 44100,
    "n_fft": 2048,
    "n_mels": 128,
    "hop_length": 512,
    "win_length": 2048,
    "fmin": 40,
    "fmax": 16000,
}


@pytest.fixture(scope="module")
def vocoder_npz() -> dict[str, np.ndarray]:
    return load_npz(FIXTURES / "sovits41-extras" / "vocoder" / "nsf_hifigan_mel_extract.npz")


def test_hann_window(helpers_npz) -> None:
    window = hann_window(2048, device="cpu", dtype=torch.float32)
    np.testing.assert_array_equal(window.numpy(), helpers_npz["mel.hann_window"])
    assert hann_window(16, dtype=torch.float64).dtype == torch.float64


def test_mel_filterbank_equals_librosa(helpers_npz) -> None:
    basis = mel_filterbank(sample_rate=44100, n_fft=2048, n_mels=80, fmin=0.0, fmax=22050)
    assert basis.dtype == torch.float32
    assert_close(basis, helpers_npz["mel.basis"], INTERMEDIATE, what="mel.basis")
    default_top = mel_filterbank(sample_rate=44100, n_fft=2048, n_mels=80)
    torch.testing.assert_close(default_top, basis, rtol=0, atol=0)


def test_mel_filterbank_vocoder(vocoder_npz) -> None:
    basis = mel_filterbank(sample_rate=44100, n_fft=2048, n_mels=128, fmin=40, fmax=16000)
    assert_close(basis, vocoder_npz["mel_basis"], INTERMEDIATE, what="mel_basis")


def test_mel_filterbank_shapes_and_options() -> None:
    slaney = mel_filterbank(sample_rate=16000, n_fft=1024, n_mels=40, fmin=30, fmax=8000)
    htk = mel_filterbank(sample_rate=16000, n_fft=1024, n_mels=40, fmin=30, fmax=8000, htk=True)
    plain = mel_filterbank(sample_rate=16000, n_fft=1024, n_mels=40, fmax=8000, norm=None)
    assert slaney.shape == htk.shape == plain.shape == (40, 513)
    assert not torch.equal(slaney, htk)
    assert float(plain.max()) <= 1.0 and float(plain.max()) > 0.9  # unnormalised triangles
    assert (plain.sum(dim=1) > 0).all()  # no empty filter
    with pytest.raises(InputError):
        mel_filterbank(sample_rate=16000, n_fft=1024, n_mels=40, norm="l2")  # type: ignore[arg-type]


def test_spectrogram_matches_reference(helpers_npz) -> None:
    y = torch.from_numpy(helpers_npz["mel.in_y"])
    spec = spectrogram(y, **SYNTH)
    assert spec.shape == (1, 1025, 8192 // 512)
    assert_close(spec, helpers_npz["mel.spec"], INTERMEDIATE, what="mel.spec")


def test_spec_to_mel_matches_reference(helpers_npz) -> None:
    spec = torch.from_numpy(helpers_npz["mel.spec"])
    basis = mel_filterbank(sample_rate=44100, n_fft=2048, n_mels=80, fmin=0.0, fmax=22050)
    mel = spec_to_mel(spec, basis)
    assert_close(mel, helpers_npz["mel.mel_from_spec"], INTERMEDIATE, what="mel.mel_from_spec")


def test_mel_spectrogram_matches_reference(helpers_npz) -> None:
    y = torch.from_numpy(helpers_npz["mel.in_y"])
    mel = mel_spectrogram(y, sample_rate=44100, n_mels=80, fmin=0.0, fmax=22050, **SYNTH)
    assert mel.shape == (1, 80, 16)
    assert_close(mel, helpers_npz["mel.mel"], INTERMEDIATE, what="mel.mel")


@pytest.mark.parametrize(
    ("keyshift", "key"),
    [(0.0, "mel_keyshift_0"), (2.0, "mel_keyshift_2"), (-3.5, "mel_keyshift_m3p5")],
)
def test_vocoder_mel_matches_reference(vocoder_npz, keyshift: float, key: str) -> None:
    audio = torch.from_numpy(vocoder_npz["audio"])[None]
    mel = vocoder_mel(audio, keyshift=keyshift, **VOCODER)
    # Vocoder.extract returns [B, frames, n_mels]
    assert_close(mel.transpose(1, 2), vocoder_npz[key], INTERMEDIATE, what=key)


def test_vocoder_mel_short_input_uses_constant_padding(vocoder_npz) -> None:
    audio = torch.from_numpy(vocoder_npz["audio_short"])[None]
    assert audio.shape[-1] < VOCODER["win_length"]
    mel = vocoder_mel(audio, **VOCODER)
    assert_close(mel.transpose(1, 2), vocoder_npz["mel_short"], INTERMEDIATE, what="mel_short")


def test_vocoder_mel_speed_changes_hop(vocoder_npz) -> None:
    audio = torch.from_numpy(vocoder_npz["audio"])[None]
    assert vocoder_mel(audio, speed=2, **VOCODER).shape == (1, 128, 12288 // 1024)


def test_rejects_unbatched_signal() -> None:
    with pytest.raises(InputError):
        spectrogram(torch.zeros(4096), **SYNTH)
