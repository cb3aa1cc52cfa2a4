"""One description per option, from which the CLI, the HTTP API and the web UI are made.

A conversion's options (`ConvertOptions`) and each job's parameters are dataclasses;
every field carries `metadata={"option": OptionSpec(...)}` (written with `option(...)`)
saying what it means, its CLI flags (the canonical name first, then so-vits-svc's
spellings as aliases), its range and unit, its choices, the UI group it belongs to,
and whether it is a path a server must confine. The shells read these with
`option_specs(cls)` and never restate them, so a new option is one field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GROUPS",
    "OptionSpec",
    "field_default",
    "field_kind",
    "option",
    "option_specs",
    "values_from_mapping",
]

GROUPS = ("basic", "pitch", "slicing", "timbre", "diffusion", "output", "advanced")
"""UI groups, in the order a page shows them."""

_PATH_KINDS = (None, "file", "folder")


@dataclass(frozen=True)
class OptionSpec:
    """What one option means and how each face shows it.

    help: one line for `--help`, the OpenAPI description and the widget's label info.
    flags: CLI names, the canonical `--long-name` first, then so-vits-svc's aliases
    (e.g. ("--transpose", "-t", "--trans")); empty: the field has no CLI flag.
    minimum / maximum: the accepted range (inclusive), in `unit`.
    choices: the accepted values of a text option.
    group: the UI group (one of GROUPS).
    path_kind: "file" or "folder" for paths, which a server resolves inside its roots.
    """

    help: str
    flags: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    choices: tuple[str, ...] | None = None
    group: str = "basic"
    path_kind: str | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown option group {self.group!r}; use one of {GROUPS}")
        if self.path_kind not in _PATH_KINDS:
            raise ValueError(f"path_kind must be 'file', 'folder' or None, not {self.path_kind!r}")
        for flag in self.flags:
            if not flag.startswith("-"):
                raise ValueError(f"CLI flag {flag!r} must start with '-'")


def option(help: str, **kw: Any) -> dict[str, OptionSpec]:
    """`{"option": OptionSpec(help=help, **kw)}`, for `dataclasses.field(metadata=...)`."""
    return {"option": OptionSpec(help=help, **kw)}


def option_specs(cls: type) -> list[tuple[dataclasses.Field[Any], OptionSpec]]:
    """The fields of dataclass `cls` that carry an OptionSpec, in declaration order.

    Fields without one (internal settings) are left out.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    found = []
    for item in dataclasses.fields(cls):
        spec = item.metadata.get("option")
        if isinstance(spec, OptionSpec):
            found.append((item, spec))
    return found


def _resolved_types(cls: type) -> dict[str, Any]:
    """Field annotations of `cls` as types (they are strings under postponed evaluation)."""
    return typing.get_type_hints(cls)


def field_kind(cls: type, name: str) -> tuple[type, bool, bool]:
    """(base type, optional, is a list) of field `name` of `cls`.

    The base type is one of bool, int, float, str, Path: `float | None` gives
    (float, True, False); `list[str]` gives (str, False, True).
    """
    annotation = _resolved_types(cls)[name]
    optional = False
    is_list = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        arguments = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        optional = len(arguments) < len(typing.get_args(annotation))
        if len(arguments) != 1:
            raise TypeError(f"{cls.__name__}.{name}: unions of several types are not options")
        annotation = arguments[0]
        origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        is_list = True
        annotation = typing.get_args(annotation)[0]
    if annotation not in (bool, int, float, str, Path):
        raise TypeError(f"{cls.__name__}.{name}: type {annotation!r} is not an option type")
    return annotation, optional, is_list


def field_default(item: dataclasses.Field[Any]) -> Any:
    """The field's default value, or dataclasses.MISSING when it is required."""
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return dataclasses.MISSING


def _coerce(value: Any, base: type, name: str) -> Any:
    """`value` (from JSON, a form or a widget) as `base`; TypeError/ValueError when unfit."""
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "1",
            "yes",
            "on",
            "false",
            "0",
            "no",
            "off",
        ):
            return value.lower() in ("true", "1", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            return int(value)
        return int(value)
    if base is float:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if base is Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ValueError(f"{name} must be a path, got {value!r}")
        return Path(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")
    return value


def values_from_mapping(cls: type, values: typing.Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `cls(...)` from loosely typed `values` (JSON, form data).

    Unknown names and values that do not fit the field's type raise ValueError naming
    the field; None keeps a field's default (or sets an optional field to None). Range
    checks stay in the dataclass itself (its `__post_init__`).
    """
    known = {item.name: item for item in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(unknown)}")
    arguments: dict[str, Any] = {}
    for name, value in values.items():
        base, optional, is_list = field_kind(cls, name)
        if value is None:
            if optional:
                arguments[name] = None
            continue
        if is_list:
            if not isinstance(value, (list, tuple)):
                value = [value]
            arguments[name] = [_coerce(item, base, name) for item in value]
        else:
            arguments[name] = _coerce(value, base, name)
    return arguments
