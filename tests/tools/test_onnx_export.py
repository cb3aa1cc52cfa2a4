"""ONNX export (MoeVoiceStudio layout) and the onnxruntime synthesizer.

Parity is against the torch synthesizer with its decoder in ONNX mode (the sine source
algorithm the graph holds), on the same inputs and the same NoiseSource draws.

Tolerances (tests/tolerance.py; audio in [-1, 1]):
* unvoiced input: AUDIO. Everything but the sine phase: the same maths in another op
  order (observed <= 2e-6).
* voiced input: PHASE_AUDIO, atol 2e-4. The ONNX-mode phase is accumulated over the
  whole clip and reaches hundreds of cycles; onnxruntime's and torch's sin differ in
  the last bits at such arguments (about 2e-5 on the sines), which the decoder
  amplifies (observed <= 1e-4 on b_vol, 2e-5 on a_default).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
import pytest
import torch
import typer
from typer.testing import CliRunner

from sovits.checkpoints import load_synthesizer
from sovits.config import load_svc_config, parse_svc_config
from sovits.errors import CheckpointError, InputError
from sovits.inference.onnx_backend import OnnxSynthesizer, load_onnx_synthesizer
from sovits.models.noise import NoiseSource, ReplayNoise
from sovits.models.synthesizer import Synthesizer
from sovits.tools.onnx_export import export_onnx
from tests.conftest import SOVITS41, load_npz
from tests.tolerance import AUDIO, PHASE_AUDIO, assert_close

UNVOICED = AUDIO
VOICED = PHASE_AUDIO
ONNX_FIXTURES = SOVITS41 / "onnx"
needs_onnx_fixtures = pytest.mark.skipif(
    not ONNX_FIXTURES.is_dir(), reason="tests/fixtures/sovits41/onnx is not present"
)


def _variant(name: str) -> Path:
    return SOVITS41 / "variants" / name


def _export(folder: Path, variant: str, *, speaker_mix: bool) -> Path:
    return export_onnx(
        _variant(variant) / "G_0_release.pth",
        _variant(variant) / "config.json",
        folder / f"{variant}_SoVits.onnx",
        speaker_mix=speaker_mix,
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """b_vol with speaker mixing (takes vol), a_default with a plain speaker id."""
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "b_vol": _export(folder, "b_vol", speaker_mix=True),
        "a_default": _export(folder, "a_default", speaker_mix=False),
    }


def _torch_onnx_mode(variant: str) -> Synthesizer:
    synthesizer, _ = load_synthesizer(
        _variant(variant) / "G_0_release.pth", _variant(variant) / "config.json", fast=False
    )
    synthesizer.dec.onnx_compatible = True
    return synthesizer


def _inputs(variant: str, frames: int = 24) -> dict[str, torch.Tensor]:
    arrays = load_npz(_variant(variant) / "fixtures.npz")
    tensors = {
        "content": torch.from_numpy(arrays["in.c"])[..., :frames],
        "f0": torch.from_numpy(arrays["in.f0"])[:, :frames],
        "uv": torch.from_numpy(arrays["in.uv"])[:, :frames],
    }
    if "in.vol" in arrays:
        tensors["volume"] = torch.from_numpy(arrays["in.vol"])[:, :frames]
    return tensors


def _both(
    synthesizer: Synthesizer,
    runtime: OnnxSynthesizer,
    inputs: dict[str, torch.Tensor],
    *,
    speaker: torch.Tensor,
    noise_scale: float = 0.4,
    seed: int = 7,
) -> tuple[np.ndarray, np.ndarray]:
    results = []
    for model in (synthesizer, runtime):
        output = model.infer(
            inputs["content"],
            inputs["f0"],
            inputs["uv"],
            speaker=speaker,
            noise_scale=noise_scale,
            volume=inputs.get("volume"),
            noise=NoiseSource.from_seed(seed),
        )
        results.append(output.audio.numpy())
    return results[0], results[1]


# ----------------------------------------------------------------------- the graph


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    return [
        dim.dim_value if dim.HasField("dim_value") else dim.dim_param
        for dim in value.type.tensor_type.shape.dim
    ]


def _described(values: Sequence[onnx.ValueInfoProto]) -> list[dict[str, object]]:
    """Inputs or outputs as the fixture manifest lists them."""
    return [
        {
            "name": value.name,
            "shape": _shape(value),
            "dtype": onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type),
        }
        for value in values
    ]


def _manifest_onnx() -> dict[str, Any]:
    manifest = json.loads((SOVITS41 / "manifest.json").read_text())
    return cast(dict[str, Any], manifest["onnx"])


def test_speaker_mix_graph_has_the_original_inputs_and_dynamic_axes(
    exported: dict[str, Path],
) -> None:
    """Names, dtypes, static sizes and dynamic axis names of so-vits-svc's export of the
    same model (fixture manifest, `onnx.b_vol`)."""
    model = onnx.load(exported["b_vol"])
    reference = _manifest_onnx()["b_vol"]
    assert _described(model.graph.input) == reference["inputs"]
    assert _described(model.graph.output) == reference["outputs"]
    assert model.opset_import[0].version == reference["opset"] == 16
    ops = [node.op_type for node in model.graph.node]
    # The sine source draws inside the graph, as MoeVS expects; weight norm is folded.
    assert ops.count("RandomUniformLike") == 1 and ops.count("RandomNormalLike") == 1
    assert "ReduceL2" not in ops
    # Every CumSum accumulates in float64 (see sovits.tools.onnx_export).
    produced_by = {out: node for node in model.graph.node for out in node.output}
    cumsums = [node for node in model.graph.node if node.op_type == "CumSum"]
    assert len(cumsums) == 2
    for node in cumsums:
        widening = produced_by[node.input[0]]
        assert widening.op_type == "Cast"
        assert widening.attribute[0].i == onnx.TensorProto.DOUBLE
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    embedded = parse_svc_config(json.loads(metadata["sovits.config"]))
    assert embedded == load_svc_config(_variant("b_vol") / "config.json")
    assert json.loads(metadata["sovits.export"])["speaker_mix"] is True


def test_moevs_json_is_written_beside_the_graph(exported: dict[str, Path]) -> None:
    """The original's MoeVS JSON, except two fields sovits writes on purpose from the
    config (see `moevs_config`): Hubert from model.speech_encoder (the original derived
    "vec-16-layer-9" from gin_channels) and HiddenSize = ssl_dim (the original wrote
    gin_channels)."""
    moevs = json.loads(exported["b_vol"].with_suffix(".json").read_text())
    reference = _manifest_onnx()["b_vol"]["moevs_json_as_written_by_onnx_export_py"]
    assert moevs == reference | {"Hubert": "vec-768-layer-12", "HiddenSize": 48}


def test_plain_graph_takes_one_speaker_id_and_no_volume(exported: dict[str, Path]) -> None:
    """As so-vits-svc's 4.0-style exporter (manifest `onnx.a_default_old_exporter`)."""
    model = onnx.load(exported["a_default"])
    reference = _manifest_onnx()["a_default_old_exporter"]
    assert _described(model.graph.input) == reference["inputs"]
    assert _described(model.graph.output) == reference["outputs"]
    assert json.loads(exported["a_default"].with_suffix(".json").read_text())["CharaMix"] is False


# ------------------------------------------------------------------------ parity


@pytest.mark.parametrize("frames", [24, 7, 3])
@pytest.mark.parametrize("variant", ["b_vol", "a_default"])
def test_onnxruntime_matches_torch_onnx_mode(
    exported: dict[str, Path], variant: str, frames: int
) -> None:
    """Same inputs and seed; lengths other than the tracing length (24) included, and 3
    frames covers the attention's short-sequence branch."""
    runtime, _ = load_onnx_synthesizer(exported[variant], threads=1)
    torch_audio, onnx_audio = _both(
        _torch_onnx_mode(variant),
        runtime,
        _inputs(variant, frames),
        speaker=torch.tensor([[1]]),
    )
    assert onnx_audio.shape == torch_audio.shape == (1, 1, frames * 512)
    assert_close(onnx_audio, torch_audio, VOICED, what="onnxruntime audio")


def test_unvoiced_parity_is_tight(exported: dict[str, Path]) -> None:
    """Without voicing the phase plays no part: the rest of the graph agrees to 1e-5."""
    inputs = _inputs("b_vol")
    inputs["f0"] = torch.zeros_like(inputs["f0"])
    inputs["uv"] = torch.zeros_like(inputs["uv"])
    runtime, _ = load_onnx_synthesizer(exported["b_vol"], threads=1)
    torch_audio, onnx_audio = _both(
        _torch_onnx_mode("b_vol"), runtime, inputs, speaker=torch.tensor([[2]])
    )
    assert np.abs(onnx_audio).max() > 0.05
    assert_close(onnx_audio, torch_audio, UNVOICED, what="onnxruntime audio")


def test_speaker_mix_weights_match_torch(exported: dict[str, Path]) -> None:
    frames = 24
    weights = torch.rand(frames, 3, generator=torch.Generator().manual_seed(3))
    weights = weights / weights.sum(dim=1, keepdim=True)
    runtime, _ = load_onnx_synthesizer(exported["b_vol"], threads=1)
    torch_audio, onnx_audio = _both(
        _torch_onnx_mode("b_vol"), runtime, _inputs("b_vol", frames), speaker=weights
    )
    assert_close(onnx_audio, torch_audio, VOICED, what="onnxruntime audio")
    _, single = _both(
        _torch_onnx_mode("b_vol"), runtime, _inputs("b_vol", frames), speaker=torch.tensor([[1]])
    )
    assert np.abs(onnx_audio - single).max() > 1e-3  # the mix changes the voice


def test_mel2ph_gathers_units_with_a_zero_frame(exported: dict[str, Path]) -> None:
    """MoeVS passes units at their own rate and mel2ph (1-based, 0 = silence) per frame."""
    runtime, _ = load_onnx_synthesizer(exported["a_default"], threads=1)
    units = torch.randn(1, 5, 64, generator=torch.Generator().manual_seed(4))
    mel2ph = torch.tensor([[0, 1, 1, 2, 3, 3, 5, 4]])
    prior = 0.3 * torch.randn(1, 32, 8, generator=torch.Generator().manual_seed(5))
    feed = {
        "c": units.numpy(),
        "f0": np.zeros((1, 8), np.float32),
        "mel2ph": mel2ph.numpy(),
        "uv": np.zeros((1, 8), np.float32),
        "noise": prior.numpy(),
        "sid": np.array([2], np.int64),
        "sovits_source_phase": np.zeros((1, 9), np.float32),
        "sovits_source_noise": np.zeros((1, 8 * 512, 9), np.float32),
    }
    (audio,) = runtime.session.run(["audio"], feed)
    padded = torch.cat([torch.zeros(1, 1, 64), units], dim=1)
    content = padded[:, mel2ph[0]].transpose(1, 2)
    expected = _torch_onnx_mode("a_default").infer(
        content,
        torch.zeros(1, 8),
        torch.zeros(1, 8),
        speaker=torch.tensor([[2]]),
        noise_scale=1.0,
        noise=ReplayNoise([prior, torch.zeros(1, 9), torch.zeros(1, 8 * 512, 9)]),
    )
    assert_close(audio, expected.audio, UNVOICED, what="onnxruntime audio")


def test_same_seed_same_audio(exported: dict[str, Path]) -> None:
    runtime, _ = load_onnx_synthesizer(exported["a_default"], threads=1)
    inputs = _inputs("a_default", 6)
    first, second, other = (
        runtime.infer(
            inputs["content"],
            inputs["f0"],
            inputs["uv"],
            speaker=torch.tensor([[0]]),
            noise_scale=0.4,
            seed=seed,
        ).audio
        for seed in (1, 1, 2)
    )
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("variant", ["d_transformer_flow", "e_snake"])
def test_other_model_variants_export(tmp_path: Path, variant: str) -> None:
    """The transformer flow; the snake decoder. (c_dsconv_share's depthwise convs are
    plain grouped convolutions; f_resblock2_nof0pred goes through the CLI test.)"""
    path = _export(tmp_path, variant, speaker_mix=False)
    runtime, _ = load_onnx_synthesizer(path, threads=1)
    torch_audio, onnx_audio = _both(
        _torch_onnx_mode(variant), runtime, _inputs(variant, 6), speaker=torch.tensor([[0]])
    )
    assert_close(onnx_audio, torch_audio, VOICED, what="onnxruntime audio")


# ------------------------------------------------------ the original's ONNX fixtures


def _onnx_fixture(variant: str) -> dict[str, np.ndarray]:
    return load_npz(ONNX_FIXTURES / f"{variant}_onnx_fixtures.npz")


def _run_fixture(
    model: Synthesizer | OnnxSynthesizer,
    arrays: dict[str, np.ndarray],
    draws: dict[str, np.ndarray],
    *,
    zero: bool,
) -> np.ndarray:
    """`model.infer` on the fixture's ONNX-layout inputs (identity mel2ph, one-hot mix
    weights). The prior noise is the graph's `noise` input (0.4 * draw0, already scaled),
    so noise_scale is 1; the source's draws are the recorded ones, or zeros."""
    samples = arrays["onnx_in.f0"].shape[1] * 512
    assert np.array_equal(arrays["onnx_in.mel2ph"][0], np.arange(1, samples // 512 + 1))
    phase = np.zeros((1, 9), np.float32) if zero else draws["draw1_sinegen_rand_ini"]
    source = np.zeros((1, samples, 9), np.float32) if zero else draws["draw2_sinegen_noise"]
    noise = ReplayNoise(
        [torch.from_numpy(array) for array in (arrays["onnx_in.noise"], phase, source)]
    )
    volume = torch.from_numpy(arrays["onnx_in.vol"]) if "onnx_in.vol" in arrays else None
    output = model.infer(
        torch.from_numpy(arrays["onnx_in.c"]).transpose(1, 2),
        torch.from_numpy(arrays["onnx_in.f0"]),
        torch.from_numpy(arrays["onnx_in.uv"]),
        speaker=torch.from_numpy(arrays["onnx_in.sid"]),
        noise_scale=1.0,
        volume=volume,
        noise=noise,
    )
    return output.audio.numpy()


def _draws(variant: str) -> dict[str, np.ndarray]:
    inter = 32 if variant == "a_default" else 16
    return load_npz(SOVITS41 / "common" / f"rng_draws_inter{inter}_T24.npz")


@needs_onnx_fixtures
@pytest.mark.parametrize("variant", ["a_default", "b_vol"])
def test_torch_onnx_mode_equals_the_original_onnx_model_class(variant: str) -> None:
    """The wrapped synthesizer computes what so-vits-svc's speaker-mix ONNX class did."""
    arrays, draws = _onnx_fixture(variant), _draws(variant)
    synthesizer = _torch_onnx_mode(variant)
    for zero, key in ((False, "onnxpath_torch.audio_draws"), (True, "onnxpath_torch.audio_zero")):
        audio = _run_fixture(synthesizer, arrays, draws, zero=zero)
        assert_close(audio, arrays[key], VOICED, what=key)


@needs_onnx_fixtures
def test_onnxruntime_matches_the_original_torch_onnx_path(exported: dict[str, Path]) -> None:
    """Our graph in onnxruntime vs the original's ONNX class in torch. (The original's
    own graph is 3.2e-3 away from it: float32 phase accumulation, fixed here.)"""
    arrays, draws = _onnx_fixture("b_vol"), _draws("b_vol")
    runtime, _ = load_onnx_synthesizer(exported["b_vol"], threads=1)
    for zero, key, tolerance in (
        (True, "onnxpath_torch.audio_zero", UNVOICED),
        (False, "onnxpath_torch.audio_draws", VOICED),
    ):
        audio = _run_fixture(runtime, arrays, draws, zero=zero)
        assert_close(audio, arrays[key], tolerance, what=key)


@needs_onnx_fixtures
def test_runs_a_graph_from_the_original_exporter() -> None:
    config = load_svc_config(_variant("b_vol") / "config.json")
    runtime = OnnxSynthesizer(ONNX_FIXTURES / "b_vol_SoVits.onnx", config, threads=1)
    assert runtime.speaker_mix and runtime.has_volume and runtime.injects_source_draws
    arrays = _onnx_fixture("b_vol")
    audio = _run_fixture(runtime, arrays, _draws("b_vol"), zero=True)
    assert_close(audio, arrays["onnxpath_ort.audio_zero"], AUDIO, what="onnxpath_ort.audio_zero")
    with pytest.raises(CheckpointError, match="does not carry its config"):
        OnnxSynthesizer(ONNX_FIXTURES / "b_vol_SoVits.onnx")


# ------------------------------------------------------------------------ errors


def test_a_config_that_does_not_fit_is_refused(exported: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"units have 48 dims, model\.ssl_dim is 64"):
        load_onnx_synthesizer(exported["b_vol"], _variant("a_default") / "config.json")
    with pytest.raises(CheckpointError, match="vol input"):
        load_onnx_synthesizer(exported["b_vol"], _variant("c_dsconv_share") / "config.json")
    with pytest.raises(CheckpointError, match="does not fit the model"):
        export_onnx(
            _variant("a_default") / "G_0_release.pth",
            _variant("b_vol") / "config.json",
            tmp_path / "unused.onnx",
        )


def test_bad_calls_fail_clearly(exported: dict[str, Path], tmp_path: Path) -> None:
    plain, _ = load_onnx_synthesizer(exported["a_default"], threads=1)
    mixed, _ = load_onnx_synthesizer(exported["b_vol"], threads=1)
    a, b = _inputs("a_default", 4), _inputs("b_vol", 4)
    speaker = torch.tensor([[0]])
    with pytest.raises(InputError, match="no f0 predictor"):
        plain.infer(a["content"], a["f0"], a["uv"], speaker=speaker, predict_f0=True)
    with pytest.raises(InputError, match="without speaker mixing"):
        plain.infer(a["content"], a["f0"], a["uv"], speaker=torch.ones(4, 3) / 3)
    with pytest.raises(InputError, match="out of range"):
        plain.infer(a["content"], a["f0"], a["uv"], speaker=torch.tensor([[3]]))
    with pytest.raises(InputError, match="needs volume"):
        mixed.infer(b["content"], b["f0"], b["uv"], speaker=speaker)
    with pytest.raises(InputError, match="ssl_dim=48"):
        mixed.infer(a["content"], b["f0"], b["uv"], speaker=speaker, volume=b["volume"])
    with pytest.raises(InputError, match=r"\.onnx file"):
        export_onnx(_variant("a_default") / "G_0_release.pth", None, tmp_path / "model.pt")
    not_a_model = tmp_path / "bad.onnx"
    not_a_model.write_bytes(b"not onnx")
    with pytest.raises(CheckpointError):
        OnnxSynthesizer(not_a_model)


# --------------------------------------------------------------------------- CLI


def test_export_onnx_command(tmp_path: Path) -> None:
    """Speaker mixing on a config whose `spk` is not in id order: the weight columns
    follow `spk` (MoeVS's Characters), and the graph maps them onto the ids."""
    from sovits.cli.onnx import register

    app = typer.Typer()
    register(app)
    app.command("unused")(lambda: None)  # with one command typer would drop the name
    variant = _variant("f_resblock2_nof0pred")
    data = json.loads((variant / "config.json").read_text())
    data["spk"] = {"spk_c": 2, "spk_a": 0, "spk_b": 1}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(data))
    output = tmp_path / "out" / "f_SoVits.onnx"
    arguments = [str(variant / "G_0_release.pth"), "-c", str(config_path), "-o", str(output)]
    result = CliRunner().invoke(app, ["export-onnx", *arguments, "--speaker-mix"])
    assert result.exit_code == 0, result.output
    assert f"wrote {output}" in result.output
    moevs = json.loads(output.with_suffix(".json").read_text())
    assert moevs["Name"] == "f" and moevs["Characters"] == ["spk_c", "spk_a", "spk_b"]

    runtime, _ = load_onnx_synthesizer(output, threads=1)
    assert runtime.speaker_mix and runtime.speaker_columns == [2, 0, 1]
    synthesizer = _torch_onnx_mode("f_resblock2_nof0pred")
    inputs = _inputs("f_resblock2_nof0pred", 6)
    by_column = torch.tensor([[0.7, 0.0, 0.3]]).repeat(6, 1)
    by_id = by_column[:, [1, 2, 0]]  # id 0 is column 1, id 1 column 2, id 2 column 0
    # infer takes weights by speaker id, as the torch synthesizer; the graph by column.
    for speaker in (by_id, torch.tensor([[2]])):
        torch_audio, onnx_audio = _both(synthesizer, runtime, inputs, speaker=speaker, seed=3)
        assert_close(onnx_audio, torch_audio, VOICED, what="onnxruntime audio")
    sid = runtime._speaker_feed(by_id, 6)
    np.testing.assert_array_equal(sid, by_column.numpy())
