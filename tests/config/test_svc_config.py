"""sovits.config: so-vits-svc config.json reading, strict validation and writing."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sovits.config import (
    SvcConfig,
    load_svc_config,
    parse_svc_config,
    save_svc_config,
    svc_config_to_dict,
    template_config,
)
from sovits.errors import ConfigError, InputError
from tests.conftest import SOVITS41, VARIANTS

# Keys so-vits-svc 4.1 added to the 4.0 config layout.
KEYS_ADDED_IN_41 = {
    "train": ["half_type", "vol_aug"],
    "data": ["unit_interpolate_mode"],
    "model": [
        "n_layers_trans_flow",
        "n_flow_layer",
        "vocoder_name",
        "speech_encoder",
        "speaker_embedding",
        "vol_embedding",
        "use_depthwise_conv",
        "flow_share_parameter",
        "use_automatic_f0_prediction",
        "use_transformer_flow",
    ],
}


def _fixture_config(variant: str = "a_default") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SOVITS41 / "variants" / variant / "config.json").read_text())
    return data


@pytest.mark.parametrize("variant", VARIANTS)
def test_fixture_configs_round_trip(variant: str) -> None:
    path = SOVITS41 / "variants" / variant / "config.json"
    original = json.loads(path.read_text())
    config = load_svc_config(path)
    assert config.filled_defaults == ()
    written = svc_config_to_dict(config)
    assert written == original
    for section in ("train", "data", "model"):
        assert list(written[section]) == list(original[section])
    assert config.to_dict() == written
    assert parse_svc_config(written) == config


def test_fixture_values_are_typed() -> None:
    config = load_svc_config(SOVITS41 / "variants" / "f_resblock2_nof0pred" / "config.json")
    assert config.model.resblock == "2"
    assert config.model.resblock_dilation_sizes == ((1, 3), (1, 3))
    assert config.model.upsample_rates == (8, 8, 2, 2, 2)
    assert config.train.betas == (0.8, 0.99)
    assert isinstance(config.train.c_mel, float)  # 45 in the file
    assert config.model.use_automatic_f0_prediction is False
    assert config.spec_channels == 1025
    assert config.segment_frames == 20
    assert config.upsample_factor == 512
    assert config.nsf_sampling_rate == 44100
    assert config.speaker_names == ("spk_a", "spk_b", "spk_c")
    assert config.speaker_id("spk_b") == 1
    with pytest.raises(InputError, match="spk_b"):
        config.speaker_id("spk_d")


@pytest.mark.parametrize("tiny", [False, True])
def test_templates(tiny: bool) -> None:
    config = template_config(tiny=tiny)
    fixture = _fixture_config()
    written = config.to_dict()
    for section in ("train", "data", "model"):
        assert list(written[section]) == list(fixture[section])
    assert config.model.inter_channels == 192
    assert config.model.ssl_dim == config.model.gin_channels == 768
    assert config.model.speech_encoder == "vec768l12"
    assert config.data.unit_interpolate_mode == "nearest"
    assert config.model.use_depthwise_conv is tiny
    assert config.model.flow_share_parameter is tiny
    assert config.model.filter_channels == (512 if tiny else 768)
    assert config.model.upsample_initial_channel == (400 if tiny else 512)
    assert config.model.n_speakers == 200
    assert dict(config.spk) == {"nyaru": 0, "huiyu": 1, "nen": 2, "paimon": 3, "yunhao": 4}


def _config_40() -> dict[str, Any]:
    data = template_config().to_dict()
    for section, keys in KEYS_ADDED_IN_41.items():
        for key in keys:
            del data[section][key]
    data["model"]["ssl_dim"] = 256
    data["model"]["gin_channels"] = 256
    return data


def test_40_config_gets_original_defaults(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sovits.config.svc"):
        config = parse_svc_config(_config_40(), source="old/config.json")
    assert set(config.filled_defaults) == {
        f"{section}.{key}" for section, keys in KEYS_ADDED_IN_41.items() for key in keys
    }
    model = config.model
    # models.SynthesizerTrn.__init__ keyword defaults
    assert model.vol_embedding is False
    assert model.vocoder_name == "nsf-hifigan"
    assert model.use_depthwise_conv is False
    assert model.use_automatic_f0_prediction is True
    assert model.flow_share_parameter is False
    assert model.n_flow_layer == 4
    assert model.n_layers_trans_flow == 3
    assert model.use_transformer_flow is False
    assert model.speaker_embedding is False
    # inference/infer_tool.Svc fallbacks
    assert model.speech_encoder == "vec768l12"
    assert config.data.unit_interpolate_mode == "left"
    # training behaviour with the options off
    assert config.train.half_type == "fp16"
    assert config.train.vol_aug is False
    assert model.ssl_dim == 256
    # Written out complete: every 4.1 key is present.
    written = config.to_dict()
    for section, keys in KEYS_ADDED_IN_41.items():
        assert set(keys) <= set(written[section])
    assert parse_svc_config(written) == config
    # The 256-dim units do not fit the 768-dim default encoder: the user is told.
    assert any("vec256l9" in record.getMessage() for record in caplog.records)


def test_40_config_with_speech_encoder_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    data = _config_40()
    data["model"]["speech_encoder"] = "vec256l9"
    with caplog.at_level(logging.WARNING, logger="sovits.config.svc"):
        config = parse_svc_config(data)
    assert config.model.speech_encoder == "vec256l9"
    assert "model.speech_encoder" not in config.filled_defaults
    assert not caplog.records


def test_optional_model_sampling_rate() -> None:
    data = _fixture_config()
    assert parse_svc_config(data).nsf_sampling_rate == 44100
    assert "sampling_rate" not in parse_svc_config(data).to_dict()["model"]
    data["model"]["sampling_rate"] = 48000
    config = parse_svc_config(data)
    assert config.nsf_sampling_rate == 48000
    assert config.to_dict()["model"]["sampling_rate"] == 48000


def test_int_where_float_expected_is_fine() -> None:
    data = _fixture_config()
    data["model"]["p_dropout"] = 0
    data["data"]["max_wav_value"] = 32768
    data["data"]["mel_fmax"] = None
    config = parse_svc_config(data)
    assert config.model.p_dropout == 0.0 and isinstance(config.model.p_dropout, float)
    assert config.data.mel_fmax is None
    assert config.to_dict()["data"]["mel_fmax"] is None


Mutation = Callable[[dict[str, Any]], None]


def _rename(section: str, old: str, new: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data[section][new] = data[section].pop(old)

    return mutate


def _set(section: str, key: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data[section][key] = value

    return mutate


def _delete(section: str, key: str | None = None) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        if key is None:
            del data[section]
        else:
            del data[section][key]

    return mutate


BAD_CONFIGS: list[tuple[str, Mutation, list[str]]] = [
    ("misspelt key", _rename("model", "inter_channels", "inter_channel"),
     ["model.inter_channel: unknown key", "did you mean 'model.inter_channels'",
      "model.inter_channels: missing required key"]),
    ("unknown key", _set("train", "learning_rat", 1e-4),
     ["train.learning_rat: unknown key", "'train.learning_rate'"]),
    ("string for int", _set("model", "n_layers", "6"),
     ["model.n_layers: expected an integer, got string '6'"]),
    ("bool for int", _set("model", "n_heads", True), ["model.n_heads: expected an integer"]),
    ("float for int", _set("data", "hop_length", 512.0), ["data.hop_length: expected an integer"]),
    ("int for bool", _set("model", "vol_embedding", 1),
     ["model.vol_embedding: expected true or false"]),
    ("string for float", _set("train", "learning_rate", "1e-4"),
     ["train.learning_rate: expected a number"]),
    ("bad list item", _set("model", "resblock_dilation_sizes", [[1, 3, 5], [1, "3", 5], [1, 3, 5]]),
     ["model.resblock_dilation_sizes[1][1]: expected an integer"]),
    ("short betas", _set("train", "betas", [0.8]), ["train.betas: expected a list of 2 items"]),
    ("scalar for list", _set("model", "upsample_rates", 8),
     ["model.upsample_rates: expected a list"]),
    ("bad choice", _set("model", "vocoder_name", "nsf-hifigam"),
     ["model.vocoder_name: expected one of", "did you mean 'nsf-hifigan'"]),
    ("bad encoder", _set("model", "speech_encoder", "contentvec"), ["model.speech_encoder"]),
    ("int resblock", _set("model", "resblock", 1), ["model.resblock: expected one of '1', '2'"]),
    ("missing key", _delete("data", "hop_length"), ["data.hop_length: missing required key"]),
    ("missing section", _delete("spk"), ["spk: missing required section"]),
    ("unknown section", _set("model", "x", 1), ["model.x: unknown key"]),
    ("section not an object", lambda d: d.__setitem__("train", [1]), ["train: expected an object"]),
    ("top-level typo", lambda d: d.__setitem__("modle", {}), ["modle: unknown key", "'model'"]),
    ("speaker id too large", _set("spk", "spk_d", 3),
     ["spk.spk_d: speaker id 3 is outside [0, model.n_speakers = 3)"]),
    ("negative speaker id", _set("spk", "spk_d", -1), ["spk.spk_d: speaker id -1"]),
    ("speaker id as string", _set("spk", "spk_d", "1"), ["spk.spk_d: expected an integer"]),
    ("hop mismatch", _set("model", "upsample_rates", [8, 8, 2, 2]),
     ["model.upsample_rates: multiply to 256 but data.hop_length is 512",
      "model.upsample_kernel_sizes: has 5 entries"]),
    ("segment not a multiple of hop", _set("train", "segment_size", 10000),
     ["train.segment_size: 10000 is not a multiple of data.hop_length"]),
    ("heads do not divide", _set("model", "n_heads", 3), ["model.n_heads"]),
    ("zero width", _set("model", "hidden_channels", 0), ["model.hidden_channels: must be > 0"]),
    ("short dilations", _set("model", "resblock_dilation_sizes", [[1, 3], [1, 3], [1, 3]]),
     ["model.resblock_dilation_sizes[0]: resblock '1' needs 3 dilations"]),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(mutate, expected) for _, mutate, expected in BAD_CONFIGS],
    ids=[name for name, _, _ in BAD_CONFIGS],
)
def test_bad_values_name_the_key_path(mutate: Mutation, expected: list[str]) -> None:
    data = copy.deepcopy(_fixture_config())
    mutate(data)
    with pytest.raises(ConfigError) as error:
        parse_svc_config(data, source="configs/config.json")
    assert error.value.where == "configs/config.json"
    for text in expected:
        assert text in str(error.value)


def test_all_problems_reported_at_once() -> None:
    data = _fixture_config()
    data["model"]["n_layers"] = "6"
    data["train"]["batch_size"] = None
    del data["data"]["win_length"]
    with pytest.raises(ConfigError, match="3 problems") as error:
        parse_svc_config(data)
    for path in ("model.n_layers", "train.batch_size", "data.win_length"):
        assert path in str(error.value)


def test_top_level_not_an_object() -> None:
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_svc_config([1, 2], source="x.json")  # type: ignore[arg-type]


def test_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"train": {"seed": 1234,}}')
    with pytest.raises(ConfigError, match=r"not valid JSON.*line 1") as error:
        load_svc_config(path)
    assert error.value.where == str(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match="not found") as error:
        load_svc_config(path)
    assert error.value.where == str(path)


def test_error_from_file_names_file_and_key(tmp_path: Path) -> None:
    data = _fixture_config()
    data["model"]["n_layers"] = "6"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as error:
        load_svc_config(path)
    assert error.value.where == str(path)
    assert str(error.value).startswith(f"{path}: model.n_layers:")


def test_save_round_trip_is_atomic(tmp_path: Path) -> None:
    config = parse_svc_config(_config_40())
    path = tmp_path / "config.json"
    path.write_text("old")
    save_svc_config(config, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    again = load_svc_config(path)
    assert again == config
    assert again.filled_defaults == ()
    assert json.loads(path.read_text()) == config.to_dict()


def test_direct_construction_is_checked() -> None:
    config = template_config()
    with pytest.raises(ConfigError, match=r"spk\.ghost"):
        SvcConfig(train=config.train, data=config.data, model=config.model, spk={"ghost": 999})


def test_config_is_frozen() -> None:
    config = template_config()
    with pytest.raises(AttributeError):
        config.model.n_layers = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.spk["new"] = 1  # type: ignore[index]
