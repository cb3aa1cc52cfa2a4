"""RMVPE against the original's numbers (tiny random model) and the real model's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError, MissingFileError
from sovits.features.pitch.base import PitchExtractor, PitchTrack, track_from_raw_f0
from sovits.features.pitch.rmvpe import (
    RmvpeExtractor,
    RmvpeModel,
    load_rmvpe,
    rmvpe_arguments,
    rmvpe_log_mel,
    salience_to_cents,
    salience_to_f0,
)
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import HZ, INTERMEDIATE, LOG_MEL, assert_close

FOLDER = FIXTURES / "sovits41-extras" / "rmvpe"
TINY = FOLDER / "rmvpe_tiny.pt"
TINY_ARGUMENTS = {
    "n_blocks": 1,
    "n_gru": 1,
    "en_de_layers": 5,
    "inter_layers": 1,
    "in_channels": 1,
    "en_out_channels": 2,
}


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return load_npz(FOLDER / "rmvpe_tiny_fixtures.npz")


@pytest.fixture(scope="module")
def model() -> RmvpeModel:
    return load_rmvpe(TINY)


def _assert_f0(actual: np.ndarray, expected: np.ndarray) -> None:
    # README: decoded f0 within rtol 1e-5, voiced/unvoiced decisions exactly equal
    np.testing.assert_array_equal(actual > 0, expected > 0)
    assert_close(actual, expected, HZ, what="f0")


def test_real_layout_matches_keys_file() -> None:
    expected = {}
    for line in (FOLDER / "keys.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        expected[key] = ([int(size) for size in shape.strip("[]").split(",") if size], dtype)
    with torch.device("meta"):  # 92 M parameters, never allocated
        state_dict = RmvpeModel().state_dict()
    actual = {
        key: (list(tensor.shape), str(tensor.dtype).removeprefix("torch."))
        for key, tensor in state_dict.items()
    }
    assert list(actual) == list(expected)
    assert actual == expected
    assert sum(tensor.numel() for tensor in state_dict.values()) == 92_048_223
    assert rmvpe_arguments(state_dict) == {
        "n_blocks": 4,
        "n_gru": 1,
        "en_de_layers": 5,
        "inter_layers": 4,
        "in_channels": 1,
        "en_out_channels": 16,
    }


def test_tiny_sizes_are_read_from_the_keys(model: RmvpeModel) -> None:
    assert rmvpe_arguments(model.state_dict()) == TINY_ARGUMENTS
    assert not model.training


def test_log_mel(data: dict[str, np.ndarray]) -> None:
    mel = rmvpe_log_mel(torch.from_numpy(data["audio16k"])[None])
    assert mel.shape == (1, 128, 19200 // 160 + 1)
    assert_close(mel, data["mel"], LOG_MEL, what="mel")


def test_salience(model: RmvpeModel, data: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        hidden = model.salience(torch.from_numpy(data["mel"]))
    assert hidden.shape == (1, 121, 360)
    assert_close(hidden, data["hidden"], INTERMEDIATE, what="hidden")


def test_decode_recorded_salience(data: dict[str, np.ndarray]) -> None:
    hidden = torch.from_numpy(data["hidden"][0])
    cents = salience_to_cents(hidden, 0.05).numpy()
    np.testing.assert_array_equal(cents > 0, data["cents_thred005"] > 0)
    assert_close(cents, data["cents_thred005"], HZ, what="cents")
    _assert_f0(salience_to_f0(hidden, 0.05).numpy(), data["f0_thred005"])
    _assert_f0(salience_to_f0(hidden, 0.3).numpy(), data["f0_thred03"])


@pytest.mark.parametrize(("threshold", "suffix"), [(0.05, "005"), (0.03, "003")])
def test_decode_synthetic_salience(
    data: dict[str, np.ndarray], threshold: float, suffix: str
) -> None:
    salience = torch.from_numpy(data["synthetic_salience"])
    cents = salience_to_cents(salience, threshold).numpy()
    assert_close(cents, data[f"synthetic_cents_thred{suffix}"], HZ, what="cents")
    _assert_f0(salience_to_f0(salience, threshold).numpy(), data[f"synthetic_f0_thred{suffix}"])


def test_infer_from_audio(model: RmvpeModel, data: dict[str, np.ndarray]) -> None:
    f0 = model.infer(torch.from_numpy(data["audio16k"]), 0.05)
    assert f0.dtype == torch.float32
    _assert_f0(f0.numpy(), data["f0_thred005"])


@pytest.mark.parametrize("hop", [512, 320])
def test_extractor_matches_predictor(
    model: RmvpeModel, data: dict[str, np.ndarray], hop: int
) -> None:
    extractor = RmvpeExtractor(model, threshold=0.05)
    assert isinstance(extractor, PitchExtractor)
    track = extractor.extract(data["audio16k"], 16000, hop)
    expected_f0, expected_uv = data[f"pred_hop{hop}_f0"], data[f"pred_hop{hop}_uv"]
    assert len(track) == 19200 // hop
    assert track.f0.dtype == np.float32 and track.voiced.dtype == np.bool_
    np.testing.assert_array_equal(track.voiced, expected_uv > 0)
    assert_close(track.f0, expected_f0, HZ, what="f0")
    np.testing.assert_allclose(track.times, np.arange(len(track)) * hop / 16000)


@pytest.mark.parametrize("pad_to", [20, 7, 33])
def test_post_process(data: dict[str, np.ndarray], pad_to: int) -> None:
    track = track_from_raw_f0(data["post_f0in"], pad_to, 44100, 512)
    np.testing.assert_array_equal(track.voiced, data[f"post_f0in_pad{pad_to}_uv"] > 0)
    # the original returns float64; the track stores float32
    np.testing.assert_array_equal(
        track.f0, data[f"post_f0in_pad{pad_to}_f0"].astype(np.float32)
    )


def test_post_process_single_voiced_frame(data: dict[str, np.ndarray]) -> None:
    track = track_from_raw_f0(data["post_single_in"], 25, 44100, 512)
    np.testing.assert_array_equal(track.voiced, data["post_single_pad25_uv"] > 0)
    np.testing.assert_array_equal(track.f0, data["post_single_pad25_f0"].astype(np.float32))


def test_nothing_voiced_gives_zeros(model: RmvpeModel, data: dict[str, np.ndarray]) -> None:
    track = RmvpeExtractor(model, threshold=1.0).extract(data["audio16k"], 16000, 512)
    assert isinstance(track, PitchTrack)
    np.testing.assert_array_equal(track.f0, np.zeros(37, dtype=np.float32))
    assert not track.voiced.any()


def test_other_rates_and_lengths(model: RmvpeModel, data: dict[str, np.ndarray]) -> None:
    import soxr

    extractor = RmvpeExtractor(model)
    wave44k = soxr.resample(data["audio16k"], 16000, 44100).astype(np.float32)
    track = extractor.extract(wave44k, 44100, 512, n_frames=100)
    assert len(track) == 100 and track.sample_rate == 44100 and track.hop_length == 512
    # raw frames follow the 16 kHz length; short clips (under 32 frames) work too
    assert extractor.raw_f0(wave44k, 44100).shape == (len(wave44k) * 16000 // 44100 // 160 + 1,)
    assert extractor.raw_f0(data["audio16k"][:1000], 16000).shape == (7,)


def _save(tmp_path: Path, name: str, obj: object) -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_bare_state_dict_is_accepted(
    tmp_path: Path, model: RmvpeModel, data: dict[str, np.ndarray]
) -> None:
    state_dict = model.state_dict()
    audio = torch.from_numpy(data["audio16k"])
    expected = model.infer(audio)
    without_filter = {k: v for k, v in state_dict.items() if not k.startswith("unet.tf.")}
    for obj in (state_dict, without_filter):
        loaded = load_rmvpe(_save(tmp_path, "bare.pt", obj))
        assert torch.equal(loaded.infer(audio), expected)


def test_half_precision_file_loads_as_float32(tmp_path: Path, model: RmvpeModel) -> None:
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    loaded = load_rmvpe(_save(tmp_path, "half.pt", {"model": half}))
    assert loaded.cnn.weight.dtype == torch.float32


def test_load_errors(tmp_path: Path, model: RmvpeModel) -> None:
    state_dict = model.state_dict()
    with pytest.raises(MissingFileError):
        load_rmvpe(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_rmvpe(garbage)
    with pytest.raises(CheckpointError, match="'model'"):
        load_rmvpe(_save(tmp_path, "other.pt", {"weights": {"a": torch.zeros(1)}}))
    missing = {k: v for k, v in state_dict.items() if k != "cnn.bias"}
    with pytest.raises(CheckpointError, match=r"cnn\.bias"):
        load_rmvpe(_save(tmp_path, "missing.pt", {"model": missing}))
    extra = {**state_dict, "extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"extra\.weight"):
        load_rmvpe(_save(tmp_path, "extra.pt", {"model": extra}))
    no_filter = {k: v for k, v in state_dict.items() if not k.startswith("unet.tf.")}
    with pytest.raises(CheckpointError, match=r"unet\.tf"):
        load_rmvpe(_save(tmp_path, "no_tf.pt", {"model": no_filter}))
    code = tmp_path / "code.pt"
    torch.save({"model": state_dict, "hook": PitchTrack}, code)
    with pytest.raises(CheckpointError):  # weights_only refuses arbitrary objects
        load_rmvpe(code)
