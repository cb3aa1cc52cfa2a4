"""Model merge: parity with so-vits-svc's `utils.mix_model` (sovits41-extras/model_merge)
and refusal of models that cannot be blended."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.checkpoints import load_synthesizer, read_checkpoint
from sovits.errors import CheckpointError, ConfigError, InputError
from sovits.tools.merge import (
    merge_model_files,
    merge_models,
    merge_weights,
    save_merged_model,
)
from tests.conftest import FIXTURES, SOVITS41, load_npz
from tests.tolerance import INTERMEDIATE, assert_close

MERGE = FIXTURES / "sovits41-extras" / "model_merge"
INPUTS = [MERGE / f"G_in{index}.pth" for index in range(3)]
CASES = {
    name: (case["mode"], case["rates_percent"])
    for name, case in json.loads((MERGE / "manifest.json").read_text())["files"][
        "model_merge/mix_model_fixtures.npz"
    ]["cases"].items()
}
A_DEFAULT = SOVITS41 / "variants" / "a_default"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return load_npz(MERGE / "mix_model_fixtures.npz")


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_matches_mix_model(expected: dict[str, np.ndarray], case: str) -> None:
    mode_number, rates = CASES[case]
    mode = "convex" if mode_number == 0 else "linear"
    np.testing.assert_array_equal(
        merge_weights(rates, mode).numpy(), expected[f"{case}/_effective_weights"]
    )
    merged = merge_models(INPUTS, rates, mode)
    keys = [key.split("/", 1)[1] for key in expected if key.startswith(case + "/")]
    assert sorted(merged["model"]) == sorted(k for k in keys if k != "_effective_weights")
    for key, tensor in merged["model"].items():
        assert_close(tensor, expected[f"{case}/{key}"], INTERMEDIATE, what=f"{case}/{key}")
    assert (merged["iteration"], merged["optimizer"], merged["learning_rate"]) == (
        1000, None, 0.0001,
    )


def test_saved_merge_is_an_original_layout_checkpoint(
    expected: dict[str, np.ndarray], tmp_path: Path
) -> None:
    output = tmp_path / "output.pth"
    weights = merge_model_files(INPUTS, [30, 70, 100], output, "convex")
    np.testing.assert_array_equal(weights.numpy(), expected["convex_30_70_100/_effective_weights"])
    payload = torch.load(output, weights_only=True)
    assert set(payload) == {"model", "iteration", "optimizer", "learning_rate"}
    assert payload["iteration"] == 1000 and payload["optimizer"] is None
    np.testing.assert_array_equal(
        payload["model"]["pre.weight"].numpy(), expected["convex_30_70_100/pre.weight"]
    )
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind
    with pytest.raises(InputError, match="overwrite"):
        merge_model_files([output, INPUTS[0]], [50, 50], output)


def test_merging_a_model_with_itself_gives_it_back(tmp_path: Path) -> None:
    release = A_DEFAULT / "G_0_release.pth"
    config = A_DEFAULT / "config.json"
    merged = merge_models([release, release], [100, 100], "convex", configs=[config])
    original = read_checkpoint(release).model_state
    for key, tensor in original.items():
        torch.testing.assert_close(merged["model"][key], tensor, atol=1e-6, rtol=0)
    path = tmp_path / "self.pth"
    save_merged_model(path, merged)
    model, _ = load_synthesizer(path, config)
    assert model.n_speakers == 3


def test_too_few_models_bad_rates_and_modes_are_refused() -> None:
    with pytest.raises(InputError, match="at least 2"):
        merge_models(INPUTS[:1], [100])
    with pytest.raises(InputError, match="3 rates for 2 models"):
        merge_models(INPUTS[:2], [1, 2, 3])
    with pytest.raises(InputError, match="finite"):
        merge_models(INPUTS[:2], [float("nan"), 1])
    with pytest.raises(InputError, match="unknown merge mode"):
        merge_models(INPUTS[:2], [1, 2], "average")  # type: ignore[arg-type]


def _rewrite(source: Path, target: Path, change: str) -> Path:
    payload = torch.load(source, weights_only=True)
    if change == "drop":
        payload["model"].pop("pre.bias")
    else:
        payload["model"]["pre.bias"] = torch.zeros(payload["model"]["pre.bias"].numel() + 1)
    torch.save(payload, target)
    return target


def test_models_with_other_keys_or_shapes_are_refused(tmp_path: Path) -> None:
    dropped = _rewrite(INPUTS[1], tmp_path / "dropped.pth", "drop")
    with pytest.raises(CheckpointError, match=r"different keys.*pre\.bias"):
        merge_models([INPUTS[0], dropped], [50, 50])
    with pytest.raises(CheckpointError, match="different keys"):
        merge_models([dropped, INPUTS[0]], [50, 50])
    resized = _rewrite(INPUTS[1], tmp_path / "resized.pth", "resize")
    with pytest.raises(CheckpointError, match=r"differ in shape: pre\.bias"):
        merge_models([INPUTS[0], resized], [50, 50])


def test_models_whose_configs_differ_or_do_not_fit_are_refused(tmp_path: Path) -> None:
    release = A_DEFAULT / "G_0_release.pth"
    config = A_DEFAULT / "config.json"
    data = json.loads(config.read_text())
    data["data"]["sampling_rate"] = 48000
    other = tmp_path / "config_48k.json"
    other.write_text(json.dumps(data))
    copy = tmp_path / "G_copy.pth"
    shutil.copy(release, copy)
    with pytest.raises(InputError, match=r"differ in data\.sampling_rate"):
        merge_models([release, copy], [50, 50], configs=[config, other])
    with pytest.raises(CheckpointError, match="does not fit its config"):
        merge_models([release, copy], [50, 50], configs=[SOVITS41 / "variants" / "b_vol" /
                                                         "config.json"])
    with pytest.raises(InputError, match="one config for all models or one per model"):
        merge_models([release, copy, copy], [1, 1, 1], configs=[config, config])
    with pytest.raises(ConfigError):
        merge_models([release, copy], [50, 50], configs=[tmp_path / "absent.json"])
