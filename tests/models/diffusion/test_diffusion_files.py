"""The diffusion config.yaml and model_*.pt files: read, load strictly, write, refuse bad ones."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from sovits.checkpoints.diffusion import (
    build_unit2mel,
    load_diffusion_model,
    read_diffusion_checkpoint,
    resolve_vocoder_path,
    write_diffusion_checkpoint,
)
from sovits.config import template_config
from sovits.config.diffusion import (
    DiffusionConfig,
    diffusion_config_to_dict,
    load_diffusion_config,
    parse_diffusion_config,
    save_diffusion_config,
)
from sovits.data.filelists import (
    build_diffusion_config,
    diffusion_template,
)
from sovits.data.filelists import (
    save_diffusion_config as save_preprocess_diffusion_config,
)
from sovits.errors import CheckpointError, ConfigError, InputError
from sovits.models.noise import ReplayNoise
from tests.conftest import FIXTURES, load_npz
from tests.tolerance import SAMPLED_MEL, assert_close

EXTRAS = FIXTURES / "sovits41-extras"
DIFFUSION = EXTRAS / "diffusion"
TWO_SPEAKERS = DIFFUSION / "tiny_2spk"
ONE_SPEAKER = DIFFUSION / "tiny_1spk_kmax100"


def _raw(path: Path = TWO_SPEAKERS / "config.yaml") -> dict:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- config


def test_reads_the_original_config():
    config = load_diffusion_config(TWO_SPEAKERS / "config.yaml")
    assert config.data.encoder_out_channels == 16
    assert config.data.encoder == "vec768l12"
    assert config.data.block_size == 512 and config.data.sampling_rate == 44100
    assert config.data.unit_interpolate_mode == "nearest"
    assert config.data.extensions == ("wav",)
    model = config.model
    assert (model.n_layers, model.n_chans, model.n_hidden) == (3, 16, 12)
    assert (model.n_spk, model.use_pitch_aug, model.timesteps, model.k_step_max) == (
        2, True, 1000, 0
    )
    assert config.vocoder.type == "nsf-hifigan"
    assert config.vocoder.ckpt == "vocoder/nsf_hifigan_tiny/model"
    assert (config.infer.speedup, config.infer.method) == (10, "dpm-solver++")
    assert config.train.batch_size == 2 and config.train.lr == 0.0001
    assert config.device == "cpu"
    assert dict(config.spk) == {"spk_a": 0, "spk_b": 1}
    assert config.speaker_id("spk_b") == 1
    assert config.k_step_max == 1000 and not config.shallow_only
    assert config.filled_defaults == () and dict(config.extra) == {}
    # Every key is written back as read.
    assert diffusion_config_to_dict(config) == _raw()


def test_reads_the_k_step_max_config():
    config = load_diffusion_config(ONE_SPEAKER / "config.yaml")
    assert config.model.n_spk == 1 and not config.model.use_pitch_aug
    assert config.k_step_max == 100 and config.shallow_only


def test_unknown_speaker_name():
    config = load_diffusion_config(TWO_SPEAKERS / "config.yaml")
    with pytest.raises(InputError, match="spk_c"):
        config.speaker_id("spk_c")


def test_round_trip(tmp_path):
    config = load_diffusion_config(TWO_SPEAKERS / "config.yaml")
    path = save_diffusion_config(config, tmp_path / "sub" / "diffusion.yaml")
    again = load_diffusion_config(path)
    assert again == config
    assert yaml.safe_load(path.read_text()) == _raw()
    assert [name for name in os.listdir(path.parent) if name != "diffusion.yaml"] == []


def test_reads_what_preprocess_config_writes(tmp_path):
    speakers = {"alice": 0, "bob": 1, "carol": 2}
    written = build_diffusion_config(speakers, template_config())
    path = save_preprocess_diffusion_config(written, tmp_path / "diffusion.yaml")
    config = load_diffusion_config(path)
    assert config.model.n_spk == 3 and dict(config.spk) == speakers
    assert config.data.encoder_out_channels == 768
    assert (config.model.n_layers, config.model.n_chans, config.model.n_hidden) == (20, 512, 256)
    assert config.filled_defaults == ()
    assert diffusion_config_to_dict(config) == written
    assert parse_diffusion_config(diffusion_template()).to_dict() == diffusion_template()


def test_missing_required_keys_are_named_together():
    raw = _raw()
    del raw["model"]["n_chans"]
    del raw["data"]["encoder_out_channels"]
    del raw["infer"]
    with pytest.raises(ConfigError) as caught:
        parse_diffusion_config(raw, source="x.yaml")
    message = str(caught.value)
    assert message.startswith("x.yaml: 3 problems")
    for path in ("model.n_chans", "data.encoder_out_channels", "infer"):
        assert path in message


def test_wrong_types_and_values_are_named():
    raw = _raw()
    raw["model"]["n_layers"] = "three"
    raw["infer"]["method"] = "dpm_solver"
    raw["vocoder"]["type"] = "hifigan"
    with pytest.raises(ConfigError) as caught:
        parse_diffusion_config(raw)
    message = str(caught.value)
    assert "model.n_layers: expected an integer" in message
    assert "infer.method: expected one of" in message and "'dpm-solver'" in message
    assert "vocoder.type" in message
    raw = _raw()
    raw["model"]["n_chans"] = 7
    raw["infer"]["speedup"] = 0
    raw["spk"]["spk_c"] = 2
    with pytest.raises(ConfigError) as caught:
        parse_diffusion_config(raw)
    message = str(caught.value)
    for path in ("model.n_chans", "infer.speedup", "spk.spk_c"):
        assert path in message


def test_absent_optional_keys_get_the_originals_defaults():
    raw = _raw()
    for key in ("n_spk", "use_pitch_aug", "timesteps", "k_step_max"):
        del raw["model"][key]
    del raw["data"]["unit_interpolate_mode"]
    del raw["train"]
    del raw["spk"]
    config = parse_diffusion_config(raw)
    # The original's Unit2Mel receives None for these and builds no speaker or
    # pitch-shift embedding, 1000 steps, full chain; Svc falls back to 'left'.
    assert (config.model.n_spk, config.model.use_pitch_aug) == (1, False)
    assert (config.model.timesteps, config.model.k_step_max) == (1000, 0)
    assert config.data.unit_interpolate_mode == "left"
    assert config.train.batch_size == 48
    assert set(config.filled_defaults) == {
        "model.n_spk", "model.use_pitch_aug", "model.timesteps", "model.k_step_max",
        "data.unit_interpolate_mode", "train", "spk",
    }


def test_unknown_keys_are_kept_and_written_back(tmp_path):
    raw = _raw()
    raw["train"]["warmup"] = 5
    raw["model"]["max_beta"] = 0.02
    raw["logging"] = {"level": "info"}
    config = parse_diffusion_config(raw)
    assert dict(config.extra) == {
        "train": {"warmup": 5}, "model": {"max_beta": 0.02}, "logging": {"level": "info"}
    }
    assert config.to_dict() == raw
    assert load_diffusion_config(save_diffusion_config(config, tmp_path / "c.yaml")) == config


def test_exponent_without_dot_is_a_number():
    raw = _raw()
    raw["train"]["lr"] = "1e-4"  # what PyYAML makes of `lr: 1e-4`
    assert parse_diffusion_config(raw).train.lr == 1e-4


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_diffusion_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [1, 2\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"not valid YAML.*line") as caught:
        load_diffusion_config(bad)
    assert str(bad) in str(caught.value)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level"):
        load_diffusion_config(listing)


def test_config_is_frozen():
    config = load_diffusion_config(TWO_SPEAKERS / "config.yaml")
    with pytest.raises(AttributeError):
        config.model.n_spk = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.spk["x"] = 1  # type: ignore[index]
    assert isinstance(config, DiffusionConfig)


# --------------------------------------------------------------------------- checkpoint


def test_read_checkpoint_with_and_without_optimizer():
    plain = read_diffusion_checkpoint(TWO_SPEAKERS / "model_2000.pt")
    assert plain.global_step == 2000 and plain.optimizer_state is None
    manifest = json.loads((DIFFUSION / "manifest.json").read_text())
    assert list(plain.model_state) == list(manifest["models"]["tiny_2spk"]["state_dict"])
    full = read_diffusion_checkpoint(TWO_SPEAKERS / "model_2001_with_optimizer.pt")
    assert full.global_step == 2001
    assert full.optimizer_state is not None
    assert set(full.optimizer_state) == {"state", "param_groups"}


def test_load_finds_config_and_vocoder_mels():
    model, config = load_diffusion_model(TWO_SPEAKERS / "model_2000.pt")
    assert config.model.n_spk == 2 and not model.training
    assert model.n_mels == 128
    vocoder = resolve_vocoder_path(config, TWO_SPEAKERS / "config.yaml")
    assert vocoder == (EXTRAS / "vocoder" / "nsf_hifigan_tiny" / "model").resolve()
    # The loaded model renders the fixture run.
    data = load_npz(DIFFUSION / "sampling_tiny_2spk.npz")
    out = model.infer(
        *(torch.from_numpy(data[key]) for key in ("units", "f0", "volume")),
        speaker=1, gt_spec=torch.from_numpy(data["gt_spec"]), k_step=10, speedup=2,
        method="ddim", noise=ReplayNoise([torch.from_numpy(data["noise_q_ddim_k10_s2"])]),
    )
    assert_close(out, data["out_ddim_k10_s2"], SAMPLED_MEL, what="out_ddim_k10_s2")
    model, config = load_diffusion_model(ONE_SPEAKER / "model_2000.pt",
                                         ONE_SPEAKER / "config.yaml", device="cpu")
    assert model.k_step_max == 100 and model.spk_embed is None


def test_missing_vocoder_folder_falls_back_with_a_warning(tmp_path, caplog):
    shutil.copy(TWO_SPEAKERS / "model_2000.pt", tmp_path / "model_2000.pt")
    shutil.copy(TWO_SPEAKERS / "config.yaml", tmp_path / "config.yaml")
    with caplog.at_level(logging.WARNING, logger="sovits.checkpoints.diffusion"):
        model, _ = load_diffusion_model(tmp_path / "model_2000.pt")
    assert model.n_mels == 128
    assert "no config.json" in caplog.text


def test_explicit_mels_that_do_not_fit_are_reported():
    with pytest.raises(CheckpointError) as caught:
        load_diffusion_model(TWO_SPEAKERS / "model_2000.pt", n_mels=80)
    message = str(caught.value)
    assert "model_2000.pt" in message and "mismatched" in message
    assert "decoder.denoise_fn.input_projection.weight" in message


def test_config_that_does_not_fit_the_weights(tmp_path):
    raw = _raw()
    raw["model"]["n_layers"] = 4
    raw["model"]["use_pitch_aug"] = False
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CheckpointError) as caught:
        load_diffusion_model(TWO_SPEAKERS / "model_2000.pt", tmp_path / "config.yaml",
                             n_mels=128)
    message = str(caught.value)
    assert "missing key" in message and "residual_layers.3" in message
    assert "unexpected key" in message and "aug_shift_embed.weight" in message


def test_missing_config_beside_the_model(tmp_path):
    shutil.copy(TWO_SPEAKERS / "model_2000.pt", tmp_path / "model_2000.pt")
    with pytest.raises(ConfigError, match=r"config\.yaml"):
        load_diffusion_model(tmp_path / "model_2000.pt")


def test_write_round_trip(tmp_path):
    model, config = load_diffusion_model(TWO_SPEAKERS / "model_2000.pt")
    path = tmp_path / "model_2000.pt"
    write_diffusion_checkpoint(path, model, 2000)
    raw = torch.load(path, weights_only=True)
    assert list(raw) == ["global_step", "model"]
    original = torch.load(TWO_SPEAKERS / "model_2000.pt", weights_only=True)
    assert list(raw["model"]) == list(original["model"])
    for key, tensor in original["model"].items():
        assert torch.equal(raw["model"][key], tensor), key

    # The original's layout with optimizer state, written from plain mappings.
    saved = read_diffusion_checkpoint(TWO_SPEAKERS / "model_2001_with_optimizer.pt")
    assert saved.optimizer_state is not None
    write_diffusion_checkpoint(path, saved.model_state, 2001, saved.optimizer_state)
    raw = torch.load(path, weights_only=True)
    assert list(raw) == ["global_step", "model", "optimizer"]
    original = torch.load(TWO_SPEAKERS / "model_2001_with_optimizer.pt", weights_only=True)
    assert raw["optimizer"]["param_groups"] == original["optimizer"]["param_groups"]
    for index, state in original["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(raw["optimizer"]["state"][index][name], value)

    # From live objects: the optimizer state loads back into an optimizer.
    fresh = build_unit2mel(config, 128)
    optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-4)
    optimizer.load_state_dict(saved.optimizer_state)
    write_diffusion_checkpoint(path, fresh, 1, optimizer)
    back = read_diffusion_checkpoint(path)
    assert back.global_step == 1 and back.optimizer_state is not None
    restored = torch.optim.AdamW(fresh.parameters(), lr=1e-4)
    restored.load_state_dict(back.optimizer_state)
    assert restored.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    shutil.copy(TWO_SPEAKERS / "config.yaml", tmp_path / "config.yaml")
    loaded, _ = load_diffusion_model(path, n_mels=128)
    for key, tensor in fresh.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_corrupt_and_unsafe_files_are_refused(tmp_path):
    data = (TWO_SPEAKERS / "model_2000.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file" * 10)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"global_step": 1, "model": {}, "hook": _Payload()}, unsafe)
    plain_pickle = tmp_path / "plain.pt"
    plain_pickle.write_bytes(pickle.dumps(_Payload()))
    not_a_model = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], not_a_model)
    for path in (truncated, garbage, unsafe, plain_pickle, not_a_model):
        with pytest.raises(CheckpointError) as caught:
            read_diffusion_checkpoint(path)
        assert str(path) in str(caught.value), path
    with pytest.raises(CheckpointError, match="not found"):
        read_diffusion_checkpoint(tmp_path / "missing.pt")
