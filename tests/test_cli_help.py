"""Every command's help: flags read as flags, one meaning per option name."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from sovits.cli import app


def _commands() -> list[tuple[str, ...]]:
    """Every command path, nested groups included: ("infer",), ("pretrained", "list")."""
    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append((*path, name))
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _options(path: tuple[str, ...]) -> list[Any]:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return [param for param in command.params if param.param_type_name == "option"]


def test_the_walk_finds_the_commands() -> None:
    names = {" ".join(path) for path in _commands()}
    assert {"infer", "compress", "inspect", "pretrained list", "f0"} <= names


@pytest.mark.parametrize("path", [(), *_commands()], ids=lambda path: " ".join(path) or "sovits")
def test_flags_show_as_flags(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert re.search(r"--help\s+Show this message", result.output)


def test_a_flag_still_works_and_takes_no_value() -> None:
    result = CliRunner().invoke(app, ["compress", "--help"], terminal_width=200)
    assert re.search(r"--half\s+-hf\s+Store the weights as float16", result.output)


def test_json_prints_json_everywhere_and_o_is_an_output_path() -> None:
    for path in _commands():
        for option in _options(path):
            if "--json" in option.opts:
                assert option.is_flag, f"`sovits {' '.join(path)} --json` must be a flag"
            if "-o" in option.opts:
                assert not option.is_flag, f"`sovits {' '.join(path)} -o` must take a path"
                assert any(
                    name.startswith(("--output", "--out")) for name in option.opts
                ), f"`sovits {' '.join(path)} -o` is not an output option: {option.opts}"
