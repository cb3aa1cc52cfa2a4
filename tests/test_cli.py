"""The `sovits` command's shell: help, version, config validation, error lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SOVITS41

CONFIG = SOVITS41 / "variants" / "a_default" / "config.json"


def _sovits(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sovits.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_lists_commands_without_importing_torch() -> None:
    probe = (
        "import sys; sys.argv = ['sovits', '--help']\n"
        "from sovits.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'sovits --help imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "check-config" in result.stdout


def test_version() -> None:
    result = _sovits("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("sovits ")


def test_check_config_accepts_a_so_vits_svc_config() -> None:
    result = _sovits("check-config", str(CONFIG))
    assert result.returncode == 0, result.stderr
    assert "spk_a" in result.stdout


def test_check_config_reports_a_misspelt_key_in_one_line(tmp_path: Path) -> None:
    data = json.loads(CONFIG.read_text())
    data["model"]["inter_channel"] = data["model"].pop("inter_channels")
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(data))
    result = _sovits("check-config", str(bad))
    assert result.returncode == 2
    assert "model.inter_channel" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_json_is_one_object(tmp_path: Path) -> None:
    result = _sovits("check-config", str(CONFIG), "--json")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert (view["kind"], view["state"]) == ("check-config", "done")
    assert view["report"]["speakers"][0] == "spk_a" and view["report"]["sample_rate"] > 0
    data = json.loads(CONFIG.read_text())
    data["model"]["inter_channel"] = data["model"].pop("inter_channels")
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(data))
    result = _sovits("check-config", str(bad), "--json")
    assert result.returncode == 2 and result.stderr == ""
    view = json.loads(result.stdout)
    assert view["state"] == "failed" and view["error"]["code"] == "config"
    assert "model.inter_channel" in view["error"]["message"]
