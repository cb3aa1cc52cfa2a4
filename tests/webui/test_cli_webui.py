"""`sovits webui`: `sovits serve` with the page always on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sovits import cli


def _flags(command: str) -> set[str]:
    result = CliRunner().invoke(cli.app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return set(re.findall(r"(--[a-z][a-z-]+)", result.output))


def test_webui_takes_serve_s_options_except_no_ui() -> None:
    assert _flags("webui") == _flags("serve") - {"--no-ui"}


def test_webui_refuses_a_public_address_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sovits.errors import InputError

    monkeypatch.delenv("SOVITS_TOKEN", raising=False)
    result = CliRunner().invoke(cli.app, ["webui", "--host", "0.0.0.0", "--models-root",
                                          str(tmp_path)])
    assert isinstance(result.exception, InputError)
    assert "needs a token" in str(result.exception)
