"""inspect: file form, version guess, switches and config mismatches of the fixture
models, a synthesized 4.0-style model, and the files a model needs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sovits.checkpoints import write_training_checkpoint
from sovits.config import parse_svc_config
from sovits.models.build import build_synthesizer
from sovits.tools.compress import compress_model
from sovits.tools.inspect import compare_state, format_report, inspect_model
from tests.conftest import FIXTURES, SOVITS41, VARIANTS

EXPECTED_SWITCHES = {
    # variant: (vol_embedding, depthwise, flow, share, vocoder, resblock, f0 prediction)
    "a_default": (False, False, "residual", False, "nsf-hifigan", "1", True),
    "b_vol": (True, False, "residual", False, "nsf-hifigan", "1", True),
    "c_dsconv_share": (False, True, "residual", True, "nsf-hifigan", "1", True),
    "d_transformer_flow": (False, False, "transformer", False, "nsf-hifigan", "1", True),
    "e_snake": (False, False, "residual", False, "nsf-snake-hifigan", "1", True),
    "f_resblock2_nof0pred": (False, False, "residual", False, "nsf-hifigan", "2", False),
}


def _variant(name: str) -> Path:
    return SOVITS41 / "variants" / name


@pytest.mark.parametrize("variant", VARIANTS)
def test_fixture_releases_are_described_and_fit_their_configs(variant: str) -> None:
    report = inspect_model(_variant(variant) / "G_0_release.pth")
    assert report.file_format == "original-release"
    assert report.config_source == "found beside the model"
    assert report.version == "4.1"
    assert report.mismatches == () and report.fits_config
    # the fixtures' toy unit sizes do not match vec768l12: a config warning, not a mismatch
    assert any("768-dim" in warning for warning in report.warnings)
    switches = (
        report.vol_embedding, report.use_depthwise_conv, report.flow,
        report.flow_share_parameter, report.vocoder, report.resblock,
        report.automatic_f0_prediction,
    )
    assert switches == EXPECTED_SWITCHES[variant]
    assert report.speakers == ("spk_a", "spk_b", "spk_c")
    assert (report.sample_rate, report.hop_length, report.speaker_embedding_rows) == (
        44100, 512, 3,
    )
    assert report.speech_encoder == "vec768l12" and not report.speech_encoder_assumed
    assert report.needed_files[0].name == "checkpoint_best_legacy_500.pt"
    assert not report.has_posterior_encoder and report.dtype == "float32"
    text = format_report(report)
    assert "fits its config" in text and "so-vits-svc version: 4.1" in text


def test_training_checkpoint_and_half_release() -> None:
    training = inspect_model(_variant("f_resblock2_nof0pred") / "G_0.pth")
    assert training.file_format == "original-training"
    assert training.has_posterior_encoder and training.fits_config
    assert (training.iteration, training.optimizer_steps, training.learning_rate) == (
        1, 1, 0.0001,
    )
    assert "epoch" in format_report(training)
    half = inspect_model(_variant("c_dsconv_share") / "G_0_release_half.pth")
    assert half.file_format == "original-release-fp16" and half.dtype == "float16"
    assert half.fits_config


def test_mismatches_between_weights_and_config_are_listed() -> None:
    report = inspect_model(
        _variant("a_default") / "G_0_release.pth", _variant("b_vol") / "config.json"
    )
    assert report.config_source == "given" and report.fits_config is False
    text = "\n".join(report.mismatches)
    assert "model.ssl_dim is 48 but the unit input layer (pre.weight) takes 64-dim" in text
    assert "model.gin_channels is 16 but emb_g has 32 columns" in text
    assert "model.vol_embedding is true but the file has no emb_vol.*" in text
    assert "shape mismatches" in text and "keys missing from the file: emb_vol" in text
    assert "does NOT fit" in format_report(report)


def test_speaker_count_mismatch_is_named(tmp_path: Path) -> None:
    data = json.loads((_variant("a_default") / "config.json").read_text())
    data["model"]["n_speakers"] = 5
    config = tmp_path / "config.json"
    config.write_text(json.dumps(data))
    report = inspect_model(_variant("a_default") / "G_0_release.pth", config)
    assert report.mismatches[0] == (
        "model.n_speakers is 5 but the speaker embedding (emb_g) has 3 rows"
    )
    assert "emb_g.weight [3, 32] vs [5, 32]" in "\n".join(report.mismatches)


def _config_40(folder: Path) -> dict:
    """A 4.0-layout config: no speech_encoder nor other 4.1 keys, 256-dim units."""
    data = json.loads((_variant("a_default") / "config.json").read_text())
    for key in ("speech_encoder", "vol_embedding", "use_depthwise_conv", "flow_share_parameter",
                "use_automatic_f0_prediction", "use_transformer_flow", "n_flow_layer",
                "n_layers_trans_flow", "vocoder_name", "speaker_embedding"):
        data["model"].pop(key, None)
    data["data"].pop("unit_interpolate_mode")
    data["train"].pop("vol_aug")
    data["model"]["ssl_dim"] = 256
    (folder / "config.json").write_text(json.dumps(data))
    return data


def test_a_40_style_model_is_recognised(tmp_path: Path) -> None:
    data = _config_40(tmp_path)
    model = build_synthesizer(parse_svc_config(data))
    path = tmp_path / "G_800.pth"
    write_training_checkpoint(path, model_state=model.state_dict(), optimizer_state=None,
                              learning_rate=1e-4, iteration=12)
    report = inspect_model(path)
    assert report.version == "4.0"
    assert "4.0 layout" in report.version_evidence[0]
    assert report.speech_encoder == "vec768l12" and report.speech_encoder_assumed
    assert report.unit_dim == 256 and report.fits_config
    assert "vec256l9" in report.warnings[0] and "absent from the config" in report.warnings[0]
    assert report.file_format == "original-training" and report.iteration == 12

    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.move(path, alone / path.name)
    guessed = inspect_model(alone / path.name)
    assert guessed.config_source is None and guessed.fits_config is None
    assert guessed.version == "4.0" and "256-dim units" in guessed.version_evidence[-1]
    assert {needed.name for needed in guessed.needed_files} == {
        "checkpoint_best_legacy_500.pt", "hubert-soft-0d54a1f4.pt",
        "vec-256-layer-9.onnx", "vec-256-layer-12.onnx", "hubert-soft.onnx",
    }
    assert "config: none" in format_report(guessed)


def test_sovits_release_and_bare_state_dict(tmp_path: Path) -> None:
    folder = _variant("d_transformer_flow")
    release = compress_model(folder / "G_0_release.pth", tmp_path / "model.safetensors",
                             config=folder / "config.json", release=True).output
    report = inspect_model(release)
    assert report.file_format == "sovits-release"
    assert report.config_source == "stored in the release" and report.fits_config
    assert report.version == "4.1"  # from the transformer-flow weights
    other = inspect_model(release, _variant("b_vol") / "config.json")
    assert any("stored in the release differs" in line for line in other.mismatches)

    bare = tmp_path / "bare" / "weights.pt"
    bare.parent.mkdir()
    torch.save(torch.load(folder / "G_0_release.pth", weights_only=True)["model"], bare)
    plain = inspect_model(bare, folder / "config.json")
    assert plain.file_format == "state-dict" and plain.fits_config


def test_needed_files_found_beside_and_in_sovits_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "pretrain").mkdir(parents=True)
    (home / "pretrain" / "checkpoint_best_legacy_500.pt").write_bytes(b"")
    monkeypatch.setenv("SOVITS_HOME", str(home))
    logs = tmp_path / "logs"
    (logs / "diffusion").mkdir(parents=True)
    for name in ("G_0_release.pth", "config.json"):
        shutil.copy(_variant("a_default") / name, logs / name)
    diffusion = FIXTURES / "sovits41-extras" / "diffusion" / "tiny_2spk"
    shutil.copy(diffusion / "model_2000.pt", logs / "diffusion" / "model_2000.pt")
    shutil.copy(diffusion / "model_2000.pt", logs / "diffusion" / "model_400.pt")
    shutil.copy(diffusion / "config.yaml", logs / "diffusion" / "config.yaml")
    (logs / "kmeans_10000.pt").write_bytes(b"")
    report = inspect_model(logs / "G_0_release.pth")
    found = {needed.name: needed.path for needed in report.needed_files}
    assert found["checkpoint_best_legacy_500.pt"] == str(
        home / "pretrain" / "checkpoint_best_legacy_500.pt"
    )
    assert found["model_2000.pt"] == str(logs / "diffusion" / "model_2000.pt")
    assert found["config.yaml"] == str(logs / "diffusion" / "config.yaml")
    assert "nsf_hifigan" in found and found["kmeans_10000.pt"] == str(logs / "kmeans_10000.pt")
    assert json.loads(json.dumps(report.to_dict()))["needed_files"][0]["path"] is not None


def test_compare_state_allows_a_missing_posterior_encoder_only_as_a_whole() -> None:
    folder = _variant("f_resblock2_nof0pred")
    config = parse_svc_config(json.loads((folder / "config.json").read_text()))
    state = torch.load(folder / "G_0.pth", weights_only=True)["model"]
    assert compare_state(state, config).fits
    without_one = {key: value for key, value in state.items() if key != "enc_q.pre.weight"}
    assert compare_state(without_one, config).missing == ("enc_q.pre.weight",)
    release = {key: value for key, value in state.items() if not key.startswith("enc_q.")}
    assert compare_state(release, config).fits


def test_training_checkpoint_and_its_release_counts_reconcile(tmp_path: Path) -> None:
    folder = _variant("f_resblock2_nof0pred")
    training = inspect_model(folder / "G_0.pth")
    assert training.has_optimizer_state and training.posterior_encoder_keys > 0
    for half in (False, True):
        output = tmp_path / f"release_{half}.pth"
        compress_model(folder / "G_0.pth", output, config=folder / "config.json", half=half)
        shutil.copy(folder / "config.json", tmp_path / "config.json")
        release = inspect_model(output)
        assert release.n_keys == training.n_keys - training.posterior_encoder_keys
        assert release.n_parameters == (
            training.n_parameters - training.posterior_encoder_values
        )
        assert release.dropped_posterior_keys == training.posterior_encoder_keys
        assert release.dropped_posterior_values == training.posterior_encoder_values
        assert not release.has_optimizer_state and release.posterior_encoder_keys == 0
        assert release.dtype == ("float16" if half else "float32")
        text = format_report(release)
        assert f"enc_q's {training.posterior_encoder_keys} tensors" in text
        assert ("float16" in text.splitlines()[2]) == half
    text = format_report(training)
    assert "posterior encoder (enc_q, used only in training)" in text
    assert f"a release keeps {release.n_keys} tensors, {release.n_parameters:,} values" in text
    assert "optimizer state" in text


def test_tied_tensors_count_once_in_float32_and_float16_releases() -> None:
    folder = _variant("c_dsconv_share")
    full = inspect_model(folder / "G_0_release.pth")
    half = inspect_model(folder / "G_0_release_half.pth")
    assert full.n_parameters == half.n_parameters and full.n_keys == half.n_keys


def test_timbre_files_written_beside_the_model_are_listed(tmp_path: Path) -> None:
    for name in ("G_0_release.pth", "config.json"):
        shutil.copy(_variant("a_default") / name, tmp_path / name)
    (tmp_path / "kmeans_100.safetensors").write_bytes(b"")
    (tmp_path / "feature_index").mkdir()
    (tmp_path / "feature_index" / "feature_index.json").write_text("{}")
    report = inspect_model(tmp_path / "G_0_release.pth")
    found = {needed.name: needed for needed in report.needed_files}
    assert found["kmeans_100.safetensors"].purpose.startswith("k-means cluster model")
    assert found["feature_index"].path == str(tmp_path / "feature_index")
    assert "kmeans_100.safetensors - k-means" in format_report(report)
