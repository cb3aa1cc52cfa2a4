"""FCPE against the original's numbers (tiny random model) and torchfcpe's bundled weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError, MissingFileError
from sovits.features.pitch.base import PitchExtractor
from sovits.features.pitch.fcpe import (
    BUNDLED_WEIGHTS,
    FcpeExtractor,
    FcpeModel,
    cents_to_f0,
    decode_cents,
    force_frame_count,
    load_fcpe,
)
from sovits.features.pretrained import resolve_weights
from tests.assets import missing_asset
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import HZ, INTERMEDIATE, LOG_MEL, assert_close

FOLDER = FIXTURES / "sovits41-extras" / "fcpe"
TINY = FOLDER / "fcpe_tiny.pt"


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return load_npz(FOLDER / "fcpe_tiny_fixtures.npz")


@pytest.fixture(scope="module")
def model() -> FcpeModel:
    return load_fcpe(TINY)


def _assert_f0(actual: np.ndarray, expected: np.ndarray) -> None:
    # README: decoded f0 within rtol 1e-5, voiced/unvoiced decisions exactly equal
    np.testing.assert_array_equal(actual > 0, expected > 0)
    assert_close(actual, expected, HZ, what="f0")


def test_mel(model: FcpeModel, data: dict[str, np.ndarray]) -> None:
    mel = model.mel(torch.from_numpy(data["audio16k"])[None])
    # 120 STFT frames; the original appends one copy of the last to reach 19200 // 160 + 1
    assert mel.shape == (1, 121, 128)
    assert_close(mel, data["mel"], LOG_MEL, what="mel")


def test_frame_count_quirk() -> None:
    mel = torch.arange(10.0).reshape(1, 5, 2)
    longer = force_frame_count(mel, 100 * 160, 160)  # wants 101 frames: gets one more
    assert longer.shape == (1, 6, 2) and torch.equal(longer[:, 5], mel[:, 4])
    assert torch.equal(force_frame_count(mel, 2 * 160, 160), mel[:, :3])
    assert torch.equal(force_frame_count(mel, 4 * 160 + 159, 160), mel)


def test_cent_table(model: FcpeModel, data: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(model.cent_table.numpy(), data["cent_table"])
    fresh = FcpeModel(n_layers=1, n_chans=16).cent_table.numpy()
    assert_close(fresh, data["cent_table"], HZ, what="cent_table")


def test_salience(model: FcpeModel, data: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        salience = model(torch.from_numpy(data["mel"]))
    assert_close(salience, data["salience"], INTERMEDIATE, what="salience")


def test_infer_from_audio(model: FcpeModel, data: dict[str, np.ndarray]) -> None:
    f0 = model.infer(torch.from_numpy(data["audio16k"]), 0.05)
    assert f0.dtype == torch.float32 and f0.shape == (121,)
    _assert_f0(f0.numpy(), data["f0"][0, :, 0])


def test_decoders_on_synthetic_salience(data: dict[str, np.ndarray]) -> None:
    salience = torch.from_numpy(data["synthetic_salience"])
    table = torch.from_numpy(data["cent_table"])
    local = decode_cents(salience, table, 0.05, "local_argmax")
    expected_cents = data["synthetic_cents_local"][..., 0]
    np.testing.assert_array_equal(np.isinf(local.numpy()), np.isinf(expected_cents))
    voiced = np.isfinite(expected_cents)
    assert_close(local.numpy()[voiced], expected_cents[voiced], HZ, what="cents")
    _assert_f0(cents_to_f0(local).numpy(), data["synthetic_f0_local"][..., 0])
    plain = cents_to_f0(decode_cents(salience, table, 0.05, "argmax"))
    _assert_f0(plain.numpy(), data["synthetic_f0_argmax_decoder"][..., 0])
    with pytest.raises(ValueError, match="decoder"):
        decode_cents(salience, table, 0.05, "viterbi")  # type: ignore[arg-type]


@pytest.mark.parametrize("hop", [512, 320])
def test_extractor_matches_predictor(
    model: FcpeModel, data: dict[str, np.ndarray], hop: int
) -> None:
    extractor = FcpeExtractor(model, threshold=0.05)
    assert isinstance(extractor, PitchExtractor)
    track = extractor.extract(data["audio16k"], 16000, hop)
    assert len(track) == 19200 // hop
    np.testing.assert_array_equal(track.voiced, data[f"pred_hop{hop}_uv"] > 0)
    assert_close(track.f0, data[f"pred_hop{hop}_f0"], HZ, what="f0")


def test_extractor_loading_a_file_folds_weight_norm(data: dict[str, np.ndarray]) -> None:
    from sovits.models.weight_norm import has_weight_norm

    extractor = FcpeExtractor(TINY, threshold=0.05)
    dense_out = extractor.model.dense_out
    # computed once for inference: a buffer, not rebuilt from weight_g / weight_v per call
    assert has_weight_norm(dense_out) and "weight" in dict(dense_out.named_buffers())
    assert set(extractor.model.state_dict()) == set(load_fcpe(TINY).state_dict())
    track = extractor.extract(data["audio16k"], 16000, 512)
    np.testing.assert_array_equal(track.voiced, data["pred_hop512_uv"] > 0)
    assert_close(track.f0, data["pred_hop512_f0"], HZ, what="f0")


def _torchfcpe_layout(model: FcpeModel, *, use_attention: bool = True) -> dict[str, object]:
    """The tiny model's weights as torchfcpe would save them (CFNaiveMelPE key names)."""
    renames = (
        ("stack.", "input_stack."),
        ("decoder._layers.", "net.encoder_layers."),
        ("dense_out.", "output_proj."),
    )
    state_dict = {}
    for key, tensor in model.state_dict().items():
        if not use_attention and ".attn." in key:
            continue
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
        state_dict[key] = tensor
    state_dict["gaussian_blurred_cent_mask"] = torch.tensor(9151.2891)
    config = {
        "mel": {"sr": 16000, "num_mels": 128, "n_fft": 1024, "win_size": 1024,
                "hop_size": 160, "fmin": 0, "fmax": 8000},
        "model": {"type": "CFNaiveMelPE", "out_dims": 360, "hidden_dims": 16, "n_layers": 1,
                  "n_heads": 8, "f0_min": 32.7, "f0_max": 1975.5, "use_fa_norm": False,
                  "conv_only": not use_attention},
    }  # fmt: skip
    return {"global_step": 1, "model": state_dict, "config_dict": config}


def test_torchfcpe_layout_loads_into_the_same_network(
    tmp_path: Path, model: FcpeModel, data: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "torchfcpe.pt"
    torch.save(_torchfcpe_layout(model), path)
    renamed = load_fcpe(path)
    audio = torch.from_numpy(data["audio16k"])
    assert torch.equal(renamed.infer(audio), model.infer(audio))

    torch.save(_torchfcpe_layout(model, use_attention=False), path)
    conv_only = load_fcpe(path)
    assert all(layer.attn is None for layer in conv_only.decoder._layers)
    with torch.no_grad():
        mel = torch.from_numpy(data["mel"])
        x = model.stack(mel.transpose(1, 2)).transpose(1, 2)
        x = x + model.decoder._layers[0].conformer(x)
        expected = torch.sigmoid(model.dense_out(model.norm(x)))
        torch.testing.assert_close(conv_only(mel), expected, rtol=0, atol=1e-6)


def test_load_errors(tmp_path: Path, model: FcpeModel) -> None:
    checkpoint = torch.load(TINY, map_location="cpu", weights_only=True)
    path = tmp_path / "broken.pt"
    with pytest.raises(MissingFileError):
        load_fcpe(tmp_path / "absent.pt")
    torch.save({"model": checkpoint["model"]}, path)
    with pytest.raises(CheckpointError, match="config"):
        load_fcpe(path)
    siren = {**checkpoint["config"], "model": {**checkpoint["config"]["model"], "use_siren": True}}
    torch.save({**checkpoint, "config": siren}, path)
    with pytest.raises(CheckpointError, match="use_siren"):
        load_fcpe(path)
    wrong = {**checkpoint["config"], "model": {**checkpoint["config"]["model"], "n_chans": 32}}
    torch.save({**checkpoint, "config": wrong}, path)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_fcpe(path)
    missing = {k: v for k, v in checkpoint["model"].items() if k != "norm.bias"}
    torch.save({**checkpoint, "model": missing}, path)
    with pytest.raises(CheckpointError, match=r"norm\.bias"):
        load_fcpe(path)


def _vibrato_tone(
    base_hz: float, sample_rate: int, seconds: float = 2.0
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Five harmonics with a 5.5 Hz, +-0.5 semitone vibrato; returns (wave, f0 of time)."""

    def f0_at(time: np.ndarray) -> np.ndarray:
        return base_hz * 2 ** (0.5 * np.sin(2 * np.pi * 5.5 * time) / 12)

    phase = 2 * np.pi * np.cumsum(f0_at(np.arange(int(seconds * sample_rate)) / sample_rate))
    wave = sum((0.6 / h) * np.sin(h * phase / sample_rate) for h in range(1, 6))
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32), f0_at


@pytest.fixture(scope="module")
def bundled() -> FcpeExtractor:
    try:
        resolve_weights(BUNDLED_WEIGHTS)
    except MissingFileError:
        missing_asset("torchfcpe not installed (pip install --no-deps torchfcpe==0.0.4)")
    return FcpeExtractor()


@pytest.mark.parametrize(
    ("base_hz", "sample_rate"), [(220.0, 16000), (440.0, 16000), (220.0, 44100)]
)
def test_bundled_weights_track_a_tone(
    bundled: FcpeExtractor, base_hz: float, sample_rate: int
) -> None:
    hop = 160 * sample_rate // 16000
    wave, f0_at = _vibrato_tone(base_hz, sample_rate)
    # one frame per model frame, so no resize blurs the comparison
    track = bundled.extract(wave, sample_rate, hop, n_frames=len(wave) // hop + 1)
    # frame i of the mel is centred on sample (i + 0.5) * hop of the input
    centres = (np.arange(len(track)) + 0.5) * hop / sample_rate
    inner = slice(5, -5)
    assert track.voiced[inner].all()
    error_cents = 1200 * np.log2(track.f0[inner] / f0_at(centres[inner]))
    # Measured with fcpe_c_v001.pt (CPU, torch 2.13): median |error| 4.6 cents at 220 Hz,
    # 5.0 at 440 Hz, 4.7 at 220 Hz from 44.1 kHz; 95th percentile under 10. One pitch
    # bin is 19.8 cents, so a bound of 10 catches a bin offset or a wrong cent table
    # while leaving twice the measured error for other CPUs and BLAS builds.
    assert np.median(np.abs(error_cents)) < 10.0
