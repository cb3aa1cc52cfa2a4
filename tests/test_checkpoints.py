"""sovits.checkpoints: every so-vits-svc model-file form, strict loading, safe atomic writes."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from sovits.checkpoints import (
    Checkpoint,
    fresh_adamw_state,
    load_model_state,
    read_checkpoint,
    read_release,
    write_original_release,
    write_release,
    write_training_checkpoint,
)
from sovits.config import load_svc_config
from sovits.errors import CheckpointError, ConfigError
from tests.conftest import SOVITS41, VARIANTS

RELEASES = [SOVITS41 / "variants" / v / "G_0_release.pth" for v in VARIANTS]
HALF_RELEASES = [
    SOVITS41 / "variants" / v / "G_0_release_half.pth" for v in ("a_default", "c_dsconv_share")
]
TRAINING = SOVITS41 / "variants" / "f_resblock2_nof0pred" / "G_0.pth"
_SHARED_FLOW = re.compile(r"^flow\.flows\.\d+\.enc\.")


def _keys_txt(variant: str) -> list[tuple[str, list[int], str]]:
    rows = []
    text = (SOVITS41 / "variants" / variant / "keys.txt").read_text()
    for line in text.splitlines():
        key, shape, dtype = line.split("\t")
        rows.append((key, json.loads(shape), dtype))
    return rows


def _assert_states_equal(left: dict[str, Tensor], right: dict[str, Tensor]) -> None:
    assert list(left) == list(right)
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert torch.equal(left[key], right[key]), key


class _StateModule(nn.Module):
    """A module whose state dict has exactly the given keys and shapes (all float32).

    With `tie_flow`, `flow.flows.<i>.enc.*` and `flow.wn.*` are one parameter, as the
    original registers them with flow_share_parameter.
    """

    def __init__(self, rows: list[tuple[str, list[int], str]], *, tie_flow: bool = False):
        super().__init__()
        shared: dict[str, nn.Parameter] = {}
        for key, shape, _ in rows:
            *path, name = key.split(".")
            module: nn.Module = self
            for part in path:
                if not hasattr(module, part):
                    module.add_module(part, nn.Module())
                module = getattr(module, part)
            canonical = _SHARED_FLOW.sub("flow.wn.", key) if tie_flow else key
            if canonical not in shared:
                shared[canonical] = nn.Parameter(torch.zeros(shape))
            module.register_parameter(name, shared[canonical])


# --------------------------------------------------------------------------- reading


def _file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", RELEASES + HALF_RELEASES, ids=_file_id)
def test_read_release_fixtures_match_keys_txt(path: Path) -> None:
    checkpoint = read_checkpoint(path)
    expected = [row for row in _keys_txt(path.parent.name) if not row[0].startswith("enc_q.")]
    assert [k for k, _, _ in expected] == list(checkpoint.model_state)
    half = "half" in path.name
    for key, shape, _ in expected:
        tensor = checkpoint.model_state[key]
        assert list(tensor.shape) == shape, key
        assert tensor.dtype == (torch.float16 if half else torch.float32), key
    assert checkpoint.container == "torch-checkpoint"
    assert checkpoint.iteration == 0
    assert checkpoint.learning_rate == pytest.approx(1e-4)
    assert checkpoint.optimizer_state is not None
    assert checkpoint.optimizer_state["state"] == {}
    assert not checkpoint.has_posterior_encoder
    assert checkpoint.dtype == (torch.float16 if half else torch.float32)


def test_read_training_checkpoint_with_optimizer_state() -> None:
    checkpoint = read_checkpoint(TRAINING)
    rows = _keys_txt("f_resblock2_nof0pred")
    assert [(k, s) for k, s, _ in rows] == [
        (k, list(v.shape)) for k, v in checkpoint.model_state.items()
    ]
    assert checkpoint.has_posterior_encoder
    assert checkpoint.iteration == 1  # the original stores the epoch
    assert checkpoint.learning_rate == pytest.approx(1e-4)
    optimizer = checkpoint.optimizer_state
    assert optimizer is not None
    assert len(optimizer["state"]) == len(rows)
    first = optimizer["state"][0]
    assert set(first) == {"step", "exp_avg", "exp_avg_sq"}
    assert first["exp_avg"].shape == checkpoint.model_state[rows[0][0]].shape
    group = optimizer["param_groups"][0]
    assert group["betas"] == (0.8, 0.99)
    assert group["params"] == list(range(len(rows)))


def test_module_prefix_is_stripped(tmp_path: Path) -> None:
    original = read_checkpoint(RELEASES[0])
    prefixed = {f"module.{k}": v for k, v in original.model_state.items()}
    path = tmp_path / "G_ddp.pth"
    torch.save({"model": prefixed, "iteration": 7, "optimizer": None, "learning_rate": 2e-4}, path)
    checkpoint = read_checkpoint(path)
    _assert_states_equal(checkpoint.model_state, original.model_state)
    assert checkpoint.iteration == 7
    assert checkpoint.optimizer_state is None


def test_bare_state_dict(tmp_path: Path) -> None:
    original = read_checkpoint(RELEASES[5])
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in original.model_state.items()}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.container == "torch-state-dict"
    assert checkpoint.iteration == 0
    assert checkpoint.optimizer_state is None and checkpoint.learning_rate is None
    _assert_states_equal(checkpoint.model_state, original.model_state)


def _error_names_file(error: pytest.ExceptionInfo[CheckpointError], path: Path) -> None:
    assert error.value.where == str(path)
    assert str(path) in str(error.value)


def test_truncated_file(tmp_path: Path) -> None:
    data = RELEASES[1].read_bytes()
    path = tmp_path / "G_cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    _error_names_file(error, path)


@pytest.mark.parametrize("content", [b"", b"definitely not a checkpoint\n" * 50, bytes(range(256))])
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "G_garbage.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    _error_names_file(error, path)
    assert "refused" not in str(error.value)
    assert "weights_only" not in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "G_missing.pth"
    with pytest.raises(CheckpointError, match="not found") as error:
        read_checkpoint(path)
    _error_names_file(error, path)
    with pytest.raises(CheckpointError):
        read_release(path)


def test_not_a_checkpoint_layout(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="not a so-vits-svc checkpoint"):
        read_checkpoint(path)
    path = tmp_path / "dict.pth"
    torch.save({"weights": [1, 2], "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="'weights'"):
        read_checkpoint(path)


class _Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("style", ["zip", "legacy", "pickle-protocol-2", "pickle-protocol-4"])
def test_code_execution_payload_is_refused(tmp_path: Path, style: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "G_evil.pth"
    payload = {"model": {}, "iteration": _Exploit(marker)}
    if style.startswith("pickle"):
        with path.open("wb") as handle:
            pickle.dump(payload, handle, protocol=int(style[-1]))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=(style == "zip"))
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    _error_names_file(error, path)
    assert not marker.exists()
    if style != "pickle-protocol-4":  # protocol 4 framing is rejected before the GLOBAL
        assert "refused to load" in str(error.value)
        assert "posix.system" in str(error.value) or "nt.system" in str(error.value)


# --------------------------------------------------------------------------- writing


def test_training_checkpoint_round_trip(tmp_path: Path) -> None:
    original = read_checkpoint(TRAINING)
    path = tmp_path / "G_100.pth"
    write_training_checkpoint(
        path,
        model_state=original.model_state,
        optimizer_state=original.optimizer_state,
        learning_rate=1e-4,
        iteration=1,
    )
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["model", "iteration", "optimizer", "learning_rate"]
    again = read_checkpoint(path)
    _assert_states_equal(again.model_state, original.model_state)
    assert again.iteration == 1 and again.learning_rate == 1e-4
    assert again.optimizer_state is not None and original.optimizer_state is not None
    assert again.optimizer_state["param_groups"] == original.optimizer_state["param_groups"]
    for index, entry in original.optimizer_state["state"].items():
        for name, value in entry.items():
            assert torch.equal(again.optimizer_state["state"][index][name], value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G_100.pth"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "G_1.pth"
    state = {"w": torch.arange(3.0)}
    write_training_checkpoint(
        path, model_state=state, optimizer_state=None, learning_rate=1e-4, iteration=1
    )
    before = path.read_bytes()

    class Unpicklable:
        def __reduce__(self) -> tuple[object, ...]:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_training_checkpoint(
            path,
            model_state=state,
            optimizer_state={"state": {}, "param_groups": [Unpicklable()]},
            learning_rate=1e-4,
            iteration=2,
        )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["G_1.pth"]


def test_write_into_a_path_blocked_by_a_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    # (missing folders are made; a file where a folder should be cannot be)
    (tmp_path / "nope").write_text("a file where the folder should be")
    path = tmp_path / "nope" / "G_1.pth"
    with pytest.raises(CheckpointError) as error:
        write_training_checkpoint(
            path, model_state={}, optimizer_state=None, learning_rate=1e-4, iteration=0
        )
    _error_names_file(error, path)


@pytest.mark.parametrize("variant", ["a_default", "c_dsconv_share"])
@pytest.mark.parametrize("half", [False, True])
def test_safe_release_round_trip(tmp_path: Path, variant: str, half: bool) -> None:
    folder = SOVITS41 / "variants" / variant
    source = read_checkpoint(folder / "G_0_release.pth").model_state
    config = json.loads((folder / "config.json").read_text())
    # One enc_q key added: it must be dropped.
    state = {"enc_q.pre.weight": torch.ones(2, 2), **source}
    path = tmp_path / "model.safetensors"
    write_release(path, model_state=state, config=config, half=half)
    loaded, loaded_config = read_release(path)
    assert loaded_config == config
    expected = {k: v.half() if half else v for k, v in source.items()}
    assert sorted(loaded) == sorted(expected)
    for key, tensor in expected.items():
        assert loaded[key].dtype == tensor.dtype
        assert torch.equal(loaded[key], tensor), key
    # read_checkpoint recognises the format by content, whatever the extension.
    renamed = tmp_path / "release.bin"
    path.rename(renamed)
    checkpoint = read_checkpoint(renamed)
    assert checkpoint.container == "sovits-release"
    assert checkpoint.config == config
    assert sorted(checkpoint.model_state) == sorted(expected)


def test_safe_release_accepts_svc_config_and_validates_dicts(tmp_path: Path) -> None:
    folder = SOVITS41 / "variants" / "b_vol"
    state = read_checkpoint(folder / "G_0_release.pth").model_state
    config = load_svc_config(folder / "config.json")
    path = tmp_path / "b.safetensors"
    write_release(path, model_state=state, config=config)
    assert read_release(path)[1] == config.to_dict()
    bad = config.to_dict()
    bad["model"]["n_layer"] = bad["model"].pop("n_layers")
    with pytest.raises(ConfigError, match=r"model\.n_layer"):
        write_release(tmp_path / "bad.safetensors", model_state=state, config=bad)
    assert not (tmp_path / "bad.safetensors").exists()


def test_safe_release_errors(tmp_path: Path) -> None:
    folder = SOVITS41 / "variants" / "b_vol"
    state = read_checkpoint(folder / "G_0_release.pth").model_state
    config = json.loads((folder / "config.json").read_text())
    path = tmp_path / "b.safetensors"
    write_release(path, model_state=state, config=config)
    data = path.read_bytes()
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(truncated)
    _error_names_file(error, truncated)
    with pytest.raises(CheckpointError) as error:
        read_release(truncated)
    _error_names_file(error, truncated)
    # A plain safetensors file is a state dict, not a release.
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, str(plain))
    assert read_checkpoint(plain).container == "safetensors"
    with pytest.raises(CheckpointError, match="not a sovits release"):
        read_release(plain)
    newer = tmp_path / "newer.safetensors"
    save_file({"w": torch.ones(2)}, str(newer), metadata={"format": "sovits-release",
                                                          "format_version": "99", "config": "{}"})
    with pytest.raises(CheckpointError, match="format_version"):
        read_release(newer)


def test_original_release_matches_compress_model(tmp_path: Path) -> None:
    training = read_checkpoint(TRAINING)
    fixture = read_checkpoint(SOVITS41 / "variants" / "f_resblock2_nof0pred" / "G_0_release.pth")
    path = tmp_path / "G_0_release.pth"
    write_original_release(path, training.model_state)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["model", "iteration", "optimizer", "learning_rate"]
    assert raw["iteration"] == 0 and raw["learning_rate"] == 1e-4
    _assert_states_equal(raw["model"], fixture.model_state)
    assert fixture.optimizer_state is not None
    assert raw["optimizer"] == fixture.optimizer_state  # empty state, same param_groups

    half_path = tmp_path / "G_0_release_half.pth"
    write_original_release(half_path, training.model_state, half=True)
    half = read_checkpoint(half_path)
    _assert_states_equal(half.model_state, {k: v.half() for k, v in fixture.model_state.items()})


def test_original_release_with_explicit_parameter_count(tmp_path: Path) -> None:
    fixture = read_checkpoint(SOVITS41 / "variants" / "c_dsconv_share" / "G_0_release.pth")
    assert fixture.optimizer_state is not None
    count = len(fixture.optimizer_state["param_groups"][0]["params"])
    path = tmp_path / "c.pth"
    write_original_release(path, fixture.model_state, parameter_count=count)
    again = read_checkpoint(path)
    assert again.optimizer_state == fixture.optimizer_state
    _assert_states_equal(again.model_state, fixture.model_state)
    assert fresh_adamw_state(2)["param_groups"][0]["params"] == [0, 1]


# --------------------------------------------------------------------------- loading


class _Small(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.pre = nn.Conv1d(3, width, 5, padding=2)
        self.proj = nn.Linear(width, 2)
        self.enc_q = nn.Linear(2, 2)


def test_load_model_state_fills_module() -> None:
    source, target = _Small(), _Small()
    load_model_state(target, source.state_dict(), source="mem")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_load_model_state_shape_mismatch_names_key_and_shapes() -> None:
    state = _Small(width=6).state_dict()
    with pytest.raises(CheckpointError) as error:
        load_model_state(_Small(width=4), state, source="G_9.pth")
    message = str(error.value)
    assert error.value.where == "G_9.pth"
    assert "pre.weight: checkpoint [6, 3, 5] vs model [4, 3, 5]" in message
    assert "proj.weight: checkpoint [2, 6] vs model [2, 4]" in message


def test_load_model_state_missing_and_unexpected_keys() -> None:
    state = dict(_Small().state_dict())
    del state["proj.bias"]
    state["post.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_model_state(_Small(), state, source="G_1.pth")
    message = str(error.value)
    assert "1 missing key (proj.bias)" in message
    assert "1 unexpected key (post.weight)" in message


def test_load_model_state_lists_first_keys_and_count() -> None:
    rows = [(f"layer{i}.weight", [2], "float32") for i in range(12)]
    with pytest.raises(CheckpointError, match=r"12 missing keys \(layer0\.weight, .*7 more"):
        load_model_state(_StateModule(rows), {}, source="empty")


def test_load_model_state_allowed_prefixes() -> None:
    state = {k: v for k, v in _Small().state_dict().items() if not k.startswith("enc_q.")}
    model = _Small()
    enc_q_before = model.enc_q.weight.detach().clone()
    load_model_state(model, state, source="release", allowed_missing_prefixes=("enc_q.",))
    assert torch.equal(model.enc_q.weight, enc_q_before)
    state["extra.weight"] = torch.zeros(1)
    load_model_state(
        _Small(),
        state,
        source="release",
        allowed_missing_prefixes=("enc_q.",),
        ignored_unexpected_prefixes=("extra.",),
    )


@pytest.mark.parametrize("file_name", ["G_0_release.pth", "G_0_release_half.pth"])
def test_load_shared_parameters_from_fixture(file_name: str) -> None:
    """c_dsconv_share: one flow WN under flow.wn.* and flow.flows.{0,2,4,6}.enc.*."""
    rows = _keys_txt("c_dsconv_share")
    model = _StateModule(rows, tie_flow=True)
    assert len(list(model.parameters())) < len(rows)  # really tied
    checkpoint = read_checkpoint(SOVITS41 / "variants" / "c_dsconv_share" / file_name)
    load_model_state(
        model, checkpoint.model_state, source=file_name, allowed_missing_prefixes=("enc_q.",)
    )
    loaded = model.state_dict()
    for key, tensor in checkpoint.model_state.items():
        assert loaded[key].dtype == torch.float32
        assert torch.equal(loaded[key], tensor.float()), key
    assert loaded["flow.wn.in_layers.0.depth_conv.weight_v"].data_ptr() == (
        loaded["flow.flows.4.enc.in_layers.0.depth_conv.weight_v"].data_ptr()
    )


def test_load_shared_parameters_with_conflicting_values() -> None:
    rows = _keys_txt("c_dsconv_share")
    state = dict(read_checkpoint(SOVITS41 / "variants" / "c_dsconv_share" / "G_0_release.pth")
                 .model_state)
    key = "flow.flows.2.enc.res_skip_layers.0.bias"
    state[key] = state[key] + 1
    with pytest.raises(CheckpointError, match=re.escape(key)):
        load_model_state(
            _StateModule(rows, tie_flow=True),
            state,
            source="x",
            allowed_missing_prefixes=("enc_q.",),
        )


def test_fp16_state_into_fp32_and_fp16_models() -> None:
    source = _Small()
    half_state = {k: v.half() for k, v in source.state_dict().items()}
    model = _Small()
    load_model_state(model, half_state, source="half")
    assert model.pre.weight.dtype == torch.float32
    assert torch.equal(model.pre.weight, half_state["pre.weight"].float())
    half_model = _Small().half()
    load_model_state(half_model, half_state, source="half")
    assert torch.equal(half_model.pre.weight, half_state["pre.weight"])


def test_checkpoint_dataclass_defaults() -> None:
    checkpoint = Checkpoint({"enc_q.w": torch.zeros(1, dtype=torch.int64)}, 0, None, None)
    assert checkpoint.dtype is None
    assert checkpoint.has_posterior_encoder
    assert checkpoint.container == "torch-checkpoint"
