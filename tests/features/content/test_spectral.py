"""The download-free `spectral` content encoder: shape, normalisation, determinism,
gain invariance, the VTLN warp, and its place in the registry and the config."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from sovits.config import parse_svc_config, template_config
from sovits.errors import InputError
from sovits.features.content import (
    ContentEncoder,
    encoder_spec,
    load_content_encoder,
    spectral,
)
from sovits.features.content.spectral import SpectralContentEncoder, inverse_warp

RATE = 16000


def vowels(formant_scale: float, f0: float, seed: int = 0) -> torch.Tensor:
    """Four 0.4 s vowels: a sawtooth at f0 through three formant resonators, scaled by
    `formant_scale` (a shorter or longer vocal tract)."""
    rng = np.random.default_rng(seed)
    formants = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480)]
    pieces = []
    for frequencies in formants:
        t = np.arange(int(0.4 * RATE)) / RATE
        wave = scipy.signal.sawtooth(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
        for frequency in frequencies:
            b, a = scipy.signal.iirpeak(frequency * formant_scale / (RATE / 2), 8)
            wave = scipy.signal.lfilter(b, a, wave)
        pieces.append(0.3 * wave / np.abs(wave).max())
    return torch.tensor(np.concatenate(pieces), dtype=torch.float32)


def test_shape_normalisation_and_determinism() -> None:
    encoder = SpectralContentEncoder()
    assert isinstance(encoder, ContentEncoder)
    wave = vowels(1.0, 140.0)
    features = encoder.encode(wave)
    assert features.shape == (wave.shape[0] // 320, 64) and features.dtype == torch.float32
    assert torch.isfinite(features).all()
    assert features.mean(dim=0).abs().max() < 1e-4
    assert torch.allclose(features.std(dim=0, unbiased=False), torch.ones(64), atol=1e-3)
    assert torch.equal(encoder.encode(wave), features)
    assert encoder.encode(torch.zeros(700)).shape == (2, 64)
    assert encoder.encode(torch.zeros(3200)).abs().max() < 1e-6


def test_the_level_of_the_input_does_not_matter() -> None:
    encoder = SpectralContentEncoder()
    wave = vowels(1.0, 180.0)
    assert torch.allclose(encoder.encode(wave), encoder.encode(0.1 * wave), atol=2e-3)


def test_vtln_follows_the_formants_and_brings_speakers_closer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = SpectralContentEncoder()
    low, high = vowels(1.0, 120.0), vowels(1.15, 220.0)
    alpha_low, alpha_high = encoder.warp_factor(low), encoder.warp_factor(high)
    assert 0.8 <= alpha_high < alpha_low <= 1.2
    assert alpha_low / alpha_high == pytest.approx(1.15, rel=0.05)
    assert encoder.warp_factor(torch.zeros(3200)) == 1.0
    warped = (encoder.encode(low) - encoder.encode(high)).pow(2).mean()
    monkeypatch.setattr(spectral, "WARP_RANGE", (1.0, 1.0))
    plain = (encoder.encode(low) - encoder.encode(high)).pow(2).mean()
    assert warped < 0.8 * plain


def test_inverse_warp_is_piecewise_linear_and_keeps_the_band() -> None:
    frequencies = torch.linspace(0, 8000, 513)
    for alpha in (0.8, 1.0, 1.2):
        source = inverse_warp(frequencies, alpha, 8000.0)
        assert source[0] == 0 and source[-1] == pytest.approx(8000.0)
        assert (source[1:] > source[:-1]).all()
        assert source[50] == pytest.approx(float(frequencies[50]) / alpha)


def test_registry_and_config_know_the_spectral_encoder() -> None:
    spec = encoder_spec("spectral")
    assert spec.dim == 64 and spec.weights == ""
    encoder = load_content_encoder("spectral")
    assert (encoder.name, encoder.dim, encoder.sample_rate, encoder.hop_size) == (
        "spectral", 64, 16000, 320,
    )
    with pytest.raises(InputError, match="reads no weight file"):
        load_content_encoder("spectral", "some/file.pt")
    with pytest.raises(InputError, match="too short"):
        encoder.encode(torch.zeros(100))
    data = template_config().to_dict()
    data["model"]["speech_encoder"] = "spectral"
    data["model"]["ssl_dim"] = 64
    assert parse_svc_config(data).model.speech_encoder == "spectral"
