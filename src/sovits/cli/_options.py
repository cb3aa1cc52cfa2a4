"""Options several commands share, spelled once so each name keeps one meaning.

The canonical spellings (`--f0-method`, `--model`/`-m`, `--output`/`-o`, `--json`) and
so-vits-svc's aliases live here; `tests/test_cli_consistency.py` walks every command
and checks that no name means two things. Old spellings that would clash with a
canonical name (`sovits f0 -m harvest`, documented before `-m` meant the model
everywhere) are kept working by `LegacyAliasCommand`, which rewrites them before
parsing and leaves them out of the help.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from sovits.errors import InputError
from sovits.inference.options import F0_METHODS, ConvertOptions

__all__ = [
    "F0_METHOD_FLAGS",
    "CommandOption",
    "JsonOption",
    "LegacyAliasCommand",
    "check_f0_method",
    "conversion_options",
    "f0_method_callback",
    "f0_method_option",
    "legacy_aliases",
    "model_folder",
    "schema_options",
    "set_options",
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


CommandOption = tuple[str, Any, Any]
"""(parameter name, type, typer option) of one generated command option."""


def _option_help(spec: Any) -> str:
    """An OptionSpec's help with its choices, range and unit."""
    parts = [spec.help.rstrip(".") + "."]
    if spec.choices:
        parts.append("One of " + ", ".join(spec.choices) + ".")
    if spec.minimum is not None and spec.maximum is not None:
        parts.append(f"Range {spec.minimum:g}..{spec.maximum:g}.")
    elif spec.minimum is not None:
        parts.append(f"At least {spec.minimum:g}.")
    if spec.unit:
        parts.append(f"Unit: {spec.unit}.")
    return " ".join(parts)


def schema_options(
    cls: type,
    *,
    list_fields: Mapping[str, str] | None = None,
    exclude: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
    callbacks: Mapping[str, Callable[..., Any]] | None = None,
) -> list[CommandOption]:
    """The typer options of every field of option dataclass `cls` that has CLI flags,
    made from its OptionSpec (help with range and unit, flags, default).

    list_fields maps a field to the parameter that takes several values; exclude leaves
    fields out; defaults overrides a field's default; callbacks checks a field's value
    while parsing. A bool field's flag may be a "--on/--off" pair.
    """
    from sovits.config.options_schema import field_default, field_kind, option_specs

    list_fields = list_fields or {}
    defaults = defaults or {}
    callbacks = callbacks or {}
    options: list[CommandOption] = []
    for item, spec in option_specs(cls):
        if not spec.flags or item.name in exclude:
            continue
        base, optional, _ = field_kind(cls, item.name)
        if item.name in list_fields:
            options.append((list_fields[item.name], list[base] | None,  # type: ignore[valid-type]
                            typer.Option(None, *spec.flags, help=_option_help(spec))))
            continue
        default = defaults.get(item.name, field_default(item))
        annotation = base | None if optional else base
        info = typer.Option(default, *spec.flags, help=_option_help(spec),
                            callback=callbacks.get(item.name))
        options.append((item.name, annotation, copy.copy(info)))
    return options


def conversion_options(
    *,
    list_fields: Mapping[str, str] | None = None,
    exclude: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> list[CommandOption]:
    """The typer options of every ConvertOptions field with CLI flags, from its
    OptionSpec: the one generator behind `sovits infer` and `sovits live`.

    list_fields maps a field to the parameter that takes several values (infer's -t and
    -s); exclude leaves fields out; defaults overrides a field's default (live's f0).
    """
    # the f0 method is checked while parsing, as in every command
    return schema_options(ConvertOptions, list_fields=list_fields, exclude=exclude,
                          defaults=defaults, callbacks={"f0_method": f0_method_callback})


def set_options(command: Callable[..., Any], options: list[CommandOption]) -> None:
    """Give `command(**values)` the keyword-only parameters typer reads its options
    from, so generated options need no hand-written signature."""
    parameters = []
    annotations: dict[str, Any] = {}
    for name, annotation, default in options:
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                            default=default, annotation=annotation))
        annotations[name] = annotation
    annotations["return"] = None
    command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=None)
    command.__annotations__ = annotations
