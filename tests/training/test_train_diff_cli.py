"""`sovits train-diff` end to end on a tiny preprocessed dataset in the seed's layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sovits.cli.diffusion import register
from sovits.config.diffusion import save_diffusion_config
from sovits.training.diffusion_trainer import find_diffusion_checkpoints
from tests.training.diffusion_tiny import build_project, tiny_diffusion_config


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_project(tmp_path_factory.mktemp("train_diff_cli"))


@pytest.fixture
def seed_layout(built: Path, tmp_path: Path, monkeypatch) -> Path:
    """The project with a diffusion.yaml whose expdir is relative, as the template's."""
    import dataclasses
    import shutil

    root = tmp_path / "project"
    shutil.copytree(built, root)
    config = tiny_diffusion_config(root, interval_val=2, interval_log=1, interval_force_save=4)
    config = dataclasses.replace(
        config, env=dataclasses.replace(config.env, expdir="logs/44k/diffusion")
    )
    save_diffusion_config(config, root / "configs" / "diffusion.yaml")
    monkeypatch.chdir(root)
    return root


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _main() -> None:  # keeps `train-diff` a sub-command
        """test app"""

    return app


def test_train_diff_runs_stops_and_resumes(seed_layout: Path):
    runner = CliRunner()
    command = ["train-diff", "-c", "configs/diffusion.yaml", "--max-steps", "3",
               "--num-workers", "0", "--no-tensorboard"]
    first = runner.invoke(_app(), command)
    assert first.exit_code == 0, first.output
    assert "steps 1..3" in first.output
    expdir = seed_layout / "logs" / "44k" / "diffusion"
    # model_2 gave way to the final model_3 (2 is not a multiple of interval_force_save 4)
    assert sorted(find_diffusion_checkpoints(expdir)) == [3]
    assert (expdir / "config.yaml").is_file() and (expdir / "log_info.txt").is_file()
    assert not (expdir / "logs").exists()

    command[command.index("3")] = "5"
    second = runner.invoke(_app(), [*command, "--accelerator", "cpu"])
    assert second.exit_code == 0, second.output
    assert "steps 4..5" in second.output
    # model_3 gave way to model_4, which stays (a multiple of 4) beside the final model_5
    assert sorted(find_diffusion_checkpoints(expdir)) == [4, 5]
    log = (expdir / "log_info.txt").read_text(encoding="utf-8")
    assert "resuming (model_3.pt)" in log and "validation loss" in log


def test_train_diff_reports_a_missing_config(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(_app(), ["train-diff", "-c", "nowhere.yaml"])
    assert result.exit_code != 0
    assert "not found" in str(result.exception)


def test_the_command_imports_no_training_machinery_at_startup():
    heavy = ("torch", "lightning_fabric", "sovits.training.diffusion_trainer")
    code = (
        "import sys, sovits.cli.diffusion; "
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
