"""`sovits merge`, `sovits compress`, `sovits inspect` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from sovits.cli import tools
from sovits.errors import CheckpointError, InputError
from tests.conftest import FIXTURES, SOVITS41, load_npz

MERGE = FIXTURES / "sovits41-extras" / "model_merge"
INPUTS = [str(MERGE / f"G_in{index}.pth") for index in range(3)]
VARIANT = SOVITS41 / "variants" / "f_resblock2_nof0pred"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    local = typer.Typer()
    tools.register(local)
    return local


def test_merge_command(app: typer.Typer, tmp_path: Path) -> None:
    expected = load_npz(MERGE / "mix_model_fixtures.npz")
    output = tmp_path / "merged.pth"
    rates = ["--rate", "30", "--rate", "70", "--rate", "100"]
    result = CliRunner().invoke(
        app, ["merge", *INPUTS, *rates, "--mode", "linear", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert "0.3000" in result.output and "linear" in result.output
    merged = torch.load(output, weights_only=True)["model"]
    np.testing.assert_array_equal(merged["emb_g.weight"].numpy(),
                                  expected["linear_30_70_100/emb_g.weight"])

    default = tmp_path / "equal.pth"
    result = CliRunner().invoke(app, ["merge", *INPUTS, "-o", str(default)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        torch.load(default, weights_only=True)["model"]["pre.bias"].numpy(),
        expected["convex_100_100_100/pre.bias"],
    )


def test_merge_command_refusals(app: typer.Typer, tmp_path: Path) -> None:
    output = str(tmp_path / "x.pth")
    result = CliRunner().invoke(app, ["merge", *INPUTS, "--mode", "linear", "-o", output])
    assert isinstance(result.exception, InputError)
    assert "needs a --rate per model" in str(result.exception)
    result = CliRunner().invoke(app, ["merge", INPUTS[0], "-o", output])
    assert isinstance(result.exception, InputError)
    result = CliRunner().invoke(app, ["merge", *INPUTS, "-r", "1", "-o", output])
    assert "1 rates for 3 models" in str(result.exception)
    result = CliRunner().invoke(app, ["merge", *INPUTS, "--mode", "mean", "-o", output])
    assert "unknown merge mode" in str(result.exception)


def test_compress_command(app: typer.Typer, tmp_path: Path) -> None:
    output = tmp_path / "small.pth"
    args = ["compress", str(VARIANT / "G_0.pth"), "-c", str(VARIANT / "config.json")]
    result = CliRunner().invoke(app, [*args, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "238 tensors kept, 103 dropped, float32" in result.output
    assert list(torch.load(output, weights_only=True)["model"]) == list(
        torch.load(VARIANT / "G_0_release.pth", weights_only=True)["model"]
    )
    release = tmp_path / "small.safetensors"
    result = CliRunner().invoke(app, [*args, "-o", str(release), "--half", "--release"])
    assert result.exit_code == 0, result.output
    assert "sovits release" in result.output and "float16" in result.output
    result = CliRunner().invoke(app, ["compress", str(VARIANT / "G_0.pth"), "-o",
                                      str(tmp_path / "y.pth")])
    assert isinstance(result.exception, CheckpointError)


def test_inspect_command(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["inspect", str(VARIANT / "G_0.pth")])
    assert result.exit_code == 0, result.output
    assert "training checkpoint" in result.output and "fits its config" in result.output
    result = CliRunner().invoke(app, ["inspect", str(VARIANT / "G_0_release.pth"), "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["kind"] == "inspect" and view["state"] == "done" and view["error"] is None
    data = view["report"]
    assert data["file_format"] == "original-release" and data["fits_config"] is True
    assert data["resblock"] == "2" and data["automatic_f0_prediction"] is False
    other = SOVITS41 / "variants" / "b_vol" / "config.json"
    result = CliRunner().invoke(
        app, ["inspect", str(VARIANT / "G_0_release.pth"), "-c", str(other)]
    )
    assert result.exit_code == 1
    assert "does NOT fit its config" in result.output


def test_json_prints_the_api_job_object(app: typer.Typer, tmp_path: Path) -> None:
    from sovits.api.jobs import JobView

    keys = set(JobView("x", "x", "done", 1.0, "", [], [], None, {}, 0.0).to_dict())
    output = tmp_path / "small.pth"
    args = ["compress", str(VARIANT / "G_0.pth"), "-c", str(VARIANT / "config.json")]
    result = CliRunner().invoke(app, [*args, "-o", str(output), "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)  # nothing but the one object on stdout
    assert set(view) == keys
    assert view["kind"] == "compress" and view["state"] == "done"
    assert view["results"] == [str(output.resolve())] and output.is_file()
    assert "238 tensors kept" in view["log"][0]
    assert view["params"]["half"] is False and view["params"]["model"].endswith("G_0.pth")

    result = CliRunner().invoke(app, ["merge", *INPUTS, "--mode", "linear", "-o",
                                      str(tmp_path / "x.pth"), "--json"])
    assert result.exit_code == 2
    view = json.loads(result.output)
    assert view["state"] == "failed" and view["results"] == []
    assert view["error"]["code"] == "input"
    assert "needs a --rate per model" in view["error"]["message"]
    assert view["error"]["hint"].startswith("e.g. --rate 50")
