"""Conversion with shallow diffusion (-shd, -se, -ks), only diffusion (-od) and the
enhancer (-eh, -eak) on the tiny fixture models.

The shallow branch is checked against the numbers the original's `Svc.infer` produced
(pipeline_shallow_tiny_2spk.npz); the converter paths are checked for wiring: which
parts run, with what, and that the result is audio of the input's length.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sovits.checkpoints import write_release
from sovits.config import parse_svc_config
from sovits.inference.converter import Converter, output_name
from sovits.inference.diffusion import DiffusionRenderer
from sovits.inference.options import ConvertOptions
from sovits.models.build import build_synthesizer
from sovits.models.noise import ReplayNoise
from tests.conftest import SOVITS41
from tests.inference.test_converter import RATE, tone
from tests.tolerance import VOCODER_AUDIO, assert_close

EXTRAS = Path(__file__).resolve().parents[1] / "fixtures" / "sovits41-extras"
DIFFUSION = EXTRAS / "diffusion" / "tiny_2spk"
UNITS = 16  # encoder_out_channels of the tiny diffusion model


class StubEncoder:
    """A download-free content encoder of the tiny diffusion model's width: frame
    energies in 16 bands (deterministic, so runs are comparable)."""

    name = "stub"
    sample_rate = 16000
    hop_size = 320
    dim = UNITS

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        frames = wave[: wave.shape[0] // self.hop_size * self.hop_size].reshape(-1, self.hop_size)
        spectrum = torch.fft.rfft(frames).abs()[:, 1:161]
        return torch.log1p(spectrum.reshape(frames.shape[0], UNITS, 10).mean(-1))


@pytest.fixture(scope="module")
def renderer() -> DiffusionRenderer:
    return DiffusionRenderer.load(DIFFUSION / "model_2000.pt", DIFFUSION / "config.yaml")


def test_shallow_branch_matches_the_original(renderer: DiffusionRenderer) -> None:
    data = np.load(EXTRAS / "diffusion" / "pipeline_shallow_tiny_2spk.npz")
    tensors = {name: torch.from_numpy(data[name]) for name in data.files}
    noise = ReplayNoise(
        [tensors["noise_q"], tensors["vocoder_rand_ini"], tensors["vocoder_noise"]]
    )
    audio = renderer.render(
        tensors["units"].transpose(1, 2),
        tensors["f0"][..., 0],
        tensors["volume"][..., 0],
        speaker=torch.tensor([[1]]),
        noise=noise,
        audio=tensors["audio_in"],
        k_step=100,
    )
    assert_close(audio, data["audio_out"], VOCODER_AUDIO, what="audio_out")


def _svc_model(folder: Path) -> Path:
    """A random-weight so-vits model whose units, rate, hop and speakers fit the tiny
    diffusion model."""
    data = json.loads((SOVITS41 / "variants" / "a_default" / "config.json").read_text())
    data["model"].update(ssl_dim=UNITS, n_speakers=2, speech_encoder="vec768l12")
    data["spk"] = {"spk_a": 0, "spk_b": 1}
    config = parse_svc_config(data, source="test")
    torch.manual_seed(0)
    model = build_synthesizer(config)
    path = folder / "G_release.safetensors"
    write_release(path, model_state=model.state_dict(), config=config)
    return path


@pytest.fixture(scope="module")
def converter(tmp_path_factory: pytest.TempPathFactory) -> Converter:
    model = _svc_model(tmp_path_factory.mktemp("svc"))
    return Converter(model, device="cpu", content_encoder=StubEncoder())


def _diffusion_options(**extra: Any) -> ConvertOptions:
    return ConvertOptions(
        speaker="spk_b",
        diffusion_model_path=DIFFUSION / "model_2000.pt",
        diffusion_config_path=DIFFUSION / "config.yaml",
        **extra,
    )


def test_shallow_diffusion_refines_the_synthesizer_output(
    converter: Converter, monkeypatch: pytest.MonkeyPatch
) -> None:
    wave = tone(0.8)
    plain = converter.convert(wave, RATE, options=_diffusion_options())
    calls: list[dict[str, Any]] = []
    render = DiffusionRenderer.render

    def spy(self: DiffusionRenderer, *args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(kwargs)
        return render(self, *args, **kwargs)

    monkeypatch.setattr(DiffusionRenderer, "render", spy)
    options = _diffusion_options(shallow_diffusion=True, k_step=20, diffusion_method="ddim")
    refined = converter.convert(wave, RATE, options=options)
    assert len(calls) == 1
    assert calls[0]["k_step"] == 20 and calls[0]["method"] == "ddim"
    assert calls[0]["audio"] is not None  # shallow: starts from the synthesizer's audio
    assert refined.shape == plain.shape == wave.shape
    assert np.isfinite(refined).all() and not np.allclose(refined, plain)
    again = converter.convert(wave, RATE, options=options)
    np.testing.assert_array_equal(again, refined)  # one seeded noise stream
    second = converter.convert(
        wave, RATE, options=_diffusion_options(shallow_diffusion=True, k_step=20,
                                               second_encoding=True)
    )
    assert np.isfinite(second).all() and not np.allclose(second, refined)
    assert "sovdiff" in output_name("x", options)


def test_only_diffusion_needs_no_so_vits_model() -> None:
    converter = Converter.diffusion_only(
        DIFFUSION / "model_2000.pt", DIFFUSION / "config.yaml",
        device="cpu", content_encoder=StubEncoder(),
    )
    assert converter.synthesizer is None and converter.sample_rate == 44100
    options = ConvertOptions(speaker="spk_a", only_diffusion=True, diffusion_speedup=100,
                             diffusion_method="ddim")
    audio = converter.convert(tone(0.5), RATE, options=options)
    assert audio.shape == (int(0.5 * RATE),) and np.isfinite(audio).all()
    assert np.abs(audio).max() > 0
    assert output_name("x", options) == "x_0key_spk_a_diff_pm.flac"


def test_a_diffusion_model_of_another_unit_width_is_refused(tmp_path: Path) -> None:
    from sovits.errors import CheckpointError

    data = json.loads((SOVITS41 / "variants" / "a_default" / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(data))
    converter = Converter(SOVITS41 / "variants" / "a_default" / "G_0_release.pth", config,
                          device="cpu")
    with pytest.raises(CheckpointError, match="encoder_out_channels"):
        converter.convert(tone(0.2), RATE,
                          options=_diffusion_options(shallow_diffusion=True))


def test_enhancer_rerenders_with_the_nsf_hifigan(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(EXTRAS / "vocoder" / "nsf_hifigan_tiny", home / "pretrain" / "nsf_hifigan")
    monkeypatch.setenv("SOVITS_HOME", str(home))
    wave = tone(0.6)
    plain = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a"))
    enhanced = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_a", enhance=True))
    shifted = converter.convert(
        wave, RATE, options=ConvertOptions(speaker="spk_a", enhance=True, enhancer_adaptive_key=4)
    )
    for audio in (enhanced, shifted):
        assert audio.shape == plain.shape and np.isfinite(audio).all()
    assert not np.allclose(enhanced, plain) and not np.allclose(enhanced, shifted)


def test_speaker_mix_reaches_the_diffusion_model_per_frame(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original crashes here (Unit2Mel.init_spkmix); sovits conditions the diffusion
    model on the same per-frame weights as the synthesizer."""
    from sovits.models.diffusion.unit2mel import Unit2Mel

    track = tmp_path / "spkmix.json"
    track.write_text(json.dumps({"0": [[0, 1, 1, 0]], "1": [[0, 1, 0, 1]]}))
    seen: list[torch.Tensor] = []
    infer = Unit2Mel.infer

    def spy(self: Unit2Mel, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(kwargs["speaker_weights"])
        return infer(self, *args, **kwargs)

    monkeypatch.setattr(Unit2Mel, "infer", spy)
    options = _diffusion_options(shallow_diffusion=True, k_step=20, use_speaker_mix=True,
                                 speaker_mix_path=track)
    audio = converter.convert(tone(0.6), RATE, options=options)
    assert np.isfinite(audio).all() and audio.shape == (int(0.6 * RATE),)
    (weights,) = seen
    assert weights.shape[0] == 1 and weights.shape[2] == 2
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    assert weights[0, 0, 0] > weights[0, -1, 0]  # speaker 0 fades out, speaker 1 in
