"""MoeSS ONNX encoders: tiny torch models exported with the "source" -> "embed" names and
run through onnxruntime, compared with the torch models they came from."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from sovits.errors import CheckpointError
from sovits.features.content import encoder_spec, load_content_encoder
from tests.features.content._factory import randomize, sample_wave

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ONNX_NAMES = [
    "vec256l9-onnx",
    "vec256l12-onnx",
    "vec768l9-onnx",
    "vec768l12-onnx",
    "hubertsoft-onnx",
]


class _TinyUnits(nn.Module):
    """Strided conv + GELU + linear: wave [1, 1, N] -> units [1, T, dim]."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, kernel_size=400, stride=320)
        self.proj = nn.Linear(8, dim)

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.nn.functional.gelu(self.conv(source)).transpose(1, 2))


def _export(model: nn.Module, path: Path) -> Path:
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 16000),),
        str(path),
        input_names=["source"],
        output_names=["embed"],
        dynamic_axes={"source": {2: "samples"}, "embed": {1: "frames"}},
        opset_version=16,
        dynamo=False,
    )
    return path


@pytest.mark.parametrize("name", ONNX_NAMES)
def test_onnx_encoder_runs_the_graph(tmp_path: Path, name: str) -> None:
    dim = encoder_spec(name).dim
    model = _TinyUnits(dim).eval()
    randomize(model, scale=0.1)
    path = _export(model, tmp_path / encoder_spec(name).weights)
    encoder = load_content_encoder(name, path)
    wave = sample_wave(10000)
    features = encoder.encode(wave)
    with torch.no_grad():
        expected = model(wave[None, None])[0]
    assert encoder.dim == dim and encoder.name == name
    assert features.shape == ((10000 - 400) // 320 + 1, dim)
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)


def test_broken_onnx_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "vec-768-layer-12.onnx"
    path.write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="ONNX"):
        load_content_encoder("vec768l12-onnx", path)
