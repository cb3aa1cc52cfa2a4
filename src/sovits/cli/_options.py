"""Options several commands share, spelled once so each name keeps one meaning.

The canonical spellings (`--f0-method`, `--model`/`-m`, `--output`/`-o`, `--json`) and
so-vits-svc's aliases live here; `tests/test_cli_consistency.py` walks every command
and checks that no name means two things. Old spellings that would clash with a
canonical name (`sovits f0 -m harvest`, documented before `-m` meant the model
everywhere) are kept working by `LegacyAliasCommand`, which rewrites them before
parsing and leaves them out of the help.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from sovits.errors import InputError
from sovits.inference.options import F0_METHODS, ConvertOptions

__all__ = [
    "F0_METHOD_FLAGS",
    "JsonOption",
    "LegacyAliasCommand",
    "check_f0_method",
    "f0_method_callback",
    "f0_method_option",
    "legacy_aliases",
    "model_folder",
]


def _convert_flags(name: str) -> tuple[str, ...]:
    """The CLI flags ConvertOptions' field `name` declares (canonical first)."""
    from sovits.config.options_schema import option_specs

    for item, spec in option_specs(ConvertOptions):
        if item.name == name:
            return spec.flags
    raise KeyError(name)


F0_METHOD_FLAGS: tuple[str, ...] = _convert_flags("f0_method")
"""`--f0-method`, `-f0p`, `--f0_predictor`: the F0 method in every command."""

JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON object on stdout (the HTTP API's job object for job commands); "
        "human text is left out.",
    ),
]


def check_f0_method(value: str | None, *, extra: tuple[str, ...] = ()) -> str | None:
    """`value` when it names a pitch method of the registry (or one of `extra`, such as
    "auto" or "none"); InputError naming the valid methods otherwise."""
    if value is None or value in F0_METHODS or value in extra:
        return value
    valid = ", ".join((*F0_METHODS, *extra))
    raise InputError(f"unknown f0 method {value!r}; valid methods: {valid}")


def f0_method_callback(value: str | None) -> str | None:
    """A typer callback checking an f0 method name against the pitch registry's names."""
    return check_f0_method(value)


def f0_method_option(help: str, *, extra: tuple[str, ...] = ()) -> Any:
    """The `--f0-method` option (aliases `-f0p`, `--f0_predictor`) checked against the
    pitch registry's names plus `extra` when the command line is parsed."""

    def callback(value: str | None) -> str | None:
        return check_f0_method(value, extra=extra)

    names = " | ".join((*F0_METHODS, *extra))
    return typer.Option(*F0_METHOD_FLAGS, help=f"{help} One of {names}.", callback=callback)


class LegacyAliasCommand(TyperCommand):
    """A command that accepts old spellings of its options (`aliases`: old -> canonical),
    rewritten before parsing and not listed in the help; `--old=value` works too."""

    aliases: Mapping[str, str] = {}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's click Context
        rewritten: list[str] = []
        for index, token in enumerate(args):
            if token == "--":
                rewritten.extend(args[index:])
                break
            name, equals, value = token.partition("=")
            if name in self.aliases:
                token = self.aliases[name] + equals + value
            rewritten.append(token)
        return super().parse_args(ctx, rewritten)


def legacy_aliases(aliases: Mapping[str, str]) -> type[LegacyAliasCommand]:
    """A LegacyAliasCommand class that rewrites `aliases` (old spelling -> canonical)."""
    return type("LegacyAliasCommand", (LegacyAliasCommand,), {"aliases": dict(aliases)})


def model_folder(name_or_path: str) -> Path:
    """The model folder `-m` names, as `sovits train -m` reads it: a bare name is a folder
    under logs/ (`-m 44k` -> logs/44k); a value with a path separator, or starting with
    "." or "~", is a path. The rule of `sovits.training.checkpointing.model_dir_for`,
    repeated here so listing files imports no torch (a test keeps the two equal)."""
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if any(separator in name_or_path for separator in separators) or name_or_path.startswith(
        (".", "~")
    ):
        return Path(name_or_path).expanduser()
    if not name_or_path.strip():
        raise InputError("the model name (-m) is empty")
    return Path("logs") / name_or_path
