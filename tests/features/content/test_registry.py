"""The encoder registry, the ContentEncoder protocol and the shared input checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import InputError, MissingFileError
from sovits.features.content import (
    ENCODERS,
    ContentEncoder,
    encoder_names,
    encoder_spec,
    load_content_encoder,
)
from sovits.features.content.registry import encoder_class
from sovits.features.pretrained import KNOWN_FILES
from tests.features.content._factory import sample_wave, tiny_fairseq_hubert_file

SEED_NAMES = (
    "vec768l12",
    "vec256l9",
    "vec256l9-onnx",
    "vec256l12-onnx",
    "vec768l9-onnx",
    "vec768l12-onnx",
    "hubertsoft-onnx",
    "hubertsoft",
    "whisper-ppg",
    "whisper-ppg-large",
    "cnhubertlarge",
    "dphubert",
    "wavlmbase+",
)
SEED_DIMS = {
    "vec768l12": 768,
    "vec256l9": 256,
    "hubertsoft": 256,
    "whisper-ppg": 1024,
    "cnhubertlarge": 1024,
    "dphubert": 768,
    "wavlmbase+": 768,
    "whisper-ppg-large": 1280,
}


def test_every_seed_name_is_registered() -> None:
    assert encoder_names() == (*SEED_NAMES, "spectral")
    for name, dim in SEED_DIMS.items():
        assert encoder_spec(name).dim == dim


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match=r"unknown speech encoder 'vec512'") as raised:
        encoder_spec("vec512")
    assert all(name in str(raised.value) for name in SEED_NAMES)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_entries_point_at_classes_and_known_files(name: str) -> None:
    spec = ENCODERS[name]
    assert callable(getattr(encoder_class(spec), "encode", None))
    assert KNOWN_FILES[spec.weights].relative_path == f"pretrain/{spec.weights}"
    assert KNOWN_FILES[spec.weights].urls


def test_importing_the_package_loads_no_encoder_module() -> None:
    code = (
        "import sys, sovits.features.content as c; "
        "heavy = [m for m in ('sovits.features.content.hubert', 'sovits.features.content.whisper', "
        "'onnxruntime', 'transformers') if m in sys.modules]; print(heavy)"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_weights_are_found_under_sovits_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platformdirs_isolated: Path
) -> None:
    home = tmp_path / "home"
    (home / "pretrain").mkdir(parents=True)
    tiny_fairseq_hubert_file(home / "pretrain" / "checkpoint_best_legacy_500.pt")
    monkeypatch.setenv("SOVITS_HOME", str(home))
    encoder = load_content_encoder("vec256l9")
    assert isinstance(encoder, ContentEncoder)
    assert (encoder.sample_rate, encoder.hop_size, encoder.dim) == (16000, 320, 6)
    assert encoder.encode(sample_wave(3200)).shape == (9, 6)


def test_missing_weights_name_file_place_and_url(
    monkeypatch: pytest.MonkeyPatch, platformdirs_isolated: Path
) -> None:
    monkeypatch.delenv("SOVITS_HOME", raising=False)
    with pytest.raises(MissingFileError, match=r"medium\.pt") as raised:
        load_content_encoder("whisper-ppg")
    assert "openaipublic" in str(raised.value)


def test_input_checks(tmp_path: Path) -> None:
    encoder = load_content_encoder(
        "vec768l12", tiny_fairseq_hubert_file(tmp_path / "checkpoint_best_legacy_500.pt")
    )
    with pytest.raises(InputError, match="mono"):
        encoder.encode(torch.zeros(4000, 2))
    with pytest.raises(InputError, match="too short"):
        encoder.encode(torch.zeros(399))
    with pytest.raises(InputError, match="NaN"):
        encoder.encode(torch.full((4000,), float("nan")))
    with pytest.raises(InputError, match="float"):
        encoder.encode(torch.zeros(4000, dtype=torch.int16))
    from_numpy = encoder.encode(np.zeros(4000, dtype=np.float64))
    assert from_numpy.shape == (12, 16) and from_numpy.dtype == torch.float32
    assert encoder.encode(torch.zeros(400)).shape == (1, 16)
