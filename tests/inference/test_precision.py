"""Inference precision: where bf16 / fp16 are offered, the model cast, the converter option.

The model is the a_default fixture synthesizer (random weights) with the download-free
`spectral` encoder. bf16 conversions run only where this CPU has native bfloat16 (the
check the option itself makes); the refusals are tested everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.checkpoints import load_synthesizer
from sovits.checkpoints import precision as precision_module
from sovits.checkpoints.precision import PRECISIONS, check_precision, precision_dtype
from sovits.errors import InputError
from sovits.inference import options as options_module
from sovits.inference.converter import Converter
from sovits.inference.options import ConvertOptions
from sovits.models.noise import NoiseSource
from sovits.models.weight_norm import fold_weight_norm
from tests.inference.test_converter import MODEL_DIR, RATE, spectral_config, tone

MODEL = MODEL_DIR / "G_0_release.pth"
native_bf16 = pytest.mark.skipif(
    precision_module.bf16_cpu_support() is None, reason="this CPU has no native bfloat16"
)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spectral_config(tmp_path_factory.mktemp("config"))


def relative_rms(actual: np.ndarray, reference: np.ndarray) -> float:
    return float(np.sqrt(np.mean((actual - reference) ** 2) / np.mean(reference**2)))


def test_precision_names_agree_between_options_and_checkpoints() -> None:
    assert options_module.PRECISIONS == PRECISIONS
    assert precision_dtype("bf16") == torch.bfloat16
    with pytest.raises(InputError, match="unknown precision 'fp64'"):
        precision_dtype("fp64")
    with pytest.raises(InputError, match="unknown precision"):
        ConvertOptions(speaker="spk_b", precision="half")


def test_hardware_checks_refuse_with_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_precision("fp32", "cpu") == torch.float32
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU") as raised:
        check_precision("fp16", "cpu")
    assert raised.value.hint is not None and "bf16" in raised.value.hint
    monkeypatch.setattr(precision_module, "bf16_cpu_support", lambda: None)
    with pytest.raises(InputError, match="native bfloat16"):
        check_precision("bf16", "cpu")
    monkeypatch.setattr(precision_module, "bf16_cpu_support", lambda: "AMX")
    assert check_precision("bf16", "cpu") == torch.bfloat16


def test_bf16_load_folds_weight_norm_in_float32_then_casts(config_path: Path) -> None:
    full, _ = load_synthesizer(MODEL, config_path, fold=False)
    reduced, _ = load_synthesizer(MODEL, config_path, dtype=torch.bfloat16)
    fold_weight_norm(full)
    expected = full.dec.ups[0].weight.to(torch.bfloat16)
    got = reduced.dec.ups[0].weight
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, expected)  # one rounding of the float32-folded weight
    assert all(p.dtype == torch.bfloat16 for p in reduced.parameters())


def test_bf16_synthesizer_takes_float32_inputs_and_stays_close(config_path: Path) -> None:
    full, _ = load_synthesizer(MODEL, config_path)
    reduced, _ = load_synthesizer(MODEL, config_path, dtype=torch.bfloat16)
    frames = 60
    generator = torch.Generator().manual_seed(3)
    content = torch.randn(1, 64, frames, generator=generator)
    f0 = torch.full((1, frames), 220.0)
    uv = torch.ones(1, frames)
    mix = torch.full((frames, full.n_speakers), 1.0 / full.n_speakers)  # float32 weights
    audio = {}
    for name, model in (("fp32", full), ("bf16", reduced)):
        with torch.inference_mode():
            result = model.infer(content, f0, uv, speaker=mix, noise=NoiseSource.from_seed(1))
        assert result.f0.dtype == torch.float32  # the pitch is never rounded to bf16
        audio[name] = result.audio.float().numpy()[0, 0]
    assert np.all(np.isfinite(audio["bf16"]))
    assert relative_rms(audio["bf16"], audio["fp32"]) < 0.2


@native_bf16
def test_converter_converts_in_bf16_and_keeps_both_models(config_path: Path) -> None:
    converter = Converter(MODEL, config_path, device="cpu")
    fp32_model = converter.synthesizer
    wave = tone(1.0)
    reference = converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_b"))
    options = ConvertOptions(speaker="spk_b", precision="bf16")
    reduced = converter.convert(wave, RATE, options=options)
    bf16_model = converter.synthesizer
    assert bf16_model is not fp32_model
    assert next(bf16_model.parameters()).dtype == torch.bfloat16
    assert reduced.dtype == np.float32 and reduced.shape == reference.shape
    assert relative_rms(reduced, reference) < 0.2
    again = converter.convert(wave, RATE, options=options)
    assert converter.synthesizer is bf16_model  # kept, not loaded again
    np.testing.assert_array_equal(again, reduced)
    converter.convert(wave, RATE, options=ConvertOptions(speaker="spk_b"))
    assert converter.synthesizer is fp32_model


def test_converter_refuses_fp16_on_cpu_before_reading_audio(config_path: Path) -> None:
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        Converter(MODEL, config_path, device="cpu", precision="fp16")
    converter = Converter(MODEL, config_path, device="cpu")
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        converter.convert_file(
            Path("does-not-exist.wav"), Path("."), ConvertOptions(speaker="spk_b", precision="fp16")
        )
