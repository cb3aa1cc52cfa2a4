"""How sovits reads a config file strictly: the parts both config formats share.

The so-vits-svc config.json (`sovits.config.svc`) and the diffusion config.yaml
(`sovits.config.diffusion`) are read the same way: every value is checked against
the type hint of its dataclass field and converted (lists to tuples, int to float),
and every problem is collected with its key path (`model.n_layers`) so that all of
them are reported at once in one ConfigError. This module owns that machinery:
`Problems`, `convert_value`, `read_fields`, `read_speaker_ids`, the wording of values
and problems (`describe_value`, `suggest`, `join_problems`), reading the file
(`read_text_file`, `parse_json`), and the speaker table both configs carry
(`speaker_names_by_id`, `find_speaker_id`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from sovits.errors import ConfigError, InputError, SovitsError


class Problems:
    """Collects "key.path: what is wrong" lines while a config is read or checked."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"{path}: {message}" if path else message)

    def require_positive(self, section: str, obj: Any, *names: str) -> None:
        """A problem for each attribute of `obj` in `names` that is not > 0."""
        for name in names:
            if getattr(obj, name) <= 0:
                self.add(f"{section}.{name}", f"must be > 0, got {getattr(obj, name)!r}")


def join_problems(problems: list[str]) -> str:
    """One message for ConfigError: the problem itself, or "N problems: a; b; ..."."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems: " + "; ".join(problems)


def describe_value(value: Any) -> str:
    """A value as the user wrote it in JSON/YAML terms ("string 'x'", "a list", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def suggest(key: str, candidates: list[str], prefix: str = "") -> str:
    """" (did you mean 'prefix.candidate'?)" for the closest candidate, or ""."""
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f" (did you mean {prefix + close[0]!r}?)" if close else ""


def convert_value(value: Any, hint: Any, path: str, problems: Problems) -> Any:
    """`value` checked against type `hint` and converted (lists -> tuples, int -> float).

    Returns None after recording a problem (None is also a legal value for optional
    hints; callers only use the result when no problem was recorded).
    """
    origin = get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return convert_value(value, inner, path, problems)
    if origin is Literal:
        choices = get_args(hint)
        if isinstance(value, str) and value in choices:
            return value
        listed = ", ".join(repr(c) for c in choices)
        suggestion = suggest(value, list(choices)) if isinstance(value, str) else ""
        problems.add(path, f"expected one of {listed}, got {describe_value(value)}{suggestion}")
        return None
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, list | tuple):
            problems.add(path, f"expected a list, got {describe_value(value)}")
            return None
        if len(args) == 2 and args[1] is Ellipsis:
            item_hints = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                problems.add(path, f"expected a list of {len(args)} items, got {len(value)}")
                return None
            item_hints = list(args)
        items = []
        before = len(problems.lines)
        for index, (item, item_hint) in enumerate(zip(value, item_hints, strict=True)):
            items.append(convert_value(item, item_hint, f"{path}[{index}]", problems))
        return tuple(items) if len(problems.lines) == before else None
    if hint is bool:
        if isinstance(value, bool):
            return value
        problems.add(path, f"expected true or false, got {describe_value(value)}")
        return None
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.add(path, f"expected an integer, got {describe_value(value)}")
        return None
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                problems.add(path, f"expected a finite number, got {value!r}")
                return None
            return float(value)
        problems.add(path, f"expected a number, got {describe_value(value)}")
        return None
    if hint is str:
        if isinstance(value, str):
            return value
        problems.add(path, f"expected a string, got {describe_value(value)}")
        return None
    raise TypeError(f"unsupported config field type {hint!r}")  # a bug in the config module


def read_fields(
    cls: type,
    raw: Mapping[Any, Any],
    section: str,
    problems: Problems,
    filled: list[str],
    *,
    prepare: Callable[[Any, Any], Any] | None = None,
) -> dict[str, Any]:
    """The value of every field of dataclass `cls` from the mapping `raw`.

    A present value is converted with `convert_value` (after `prepare(value, hint)` if
    given); an absent one takes the field's default, and its key path ("data.duration")
    is appended to `filled` when the field's metadata names where that default comes
    from (`absent_default_from`); an absent field without default is a problem. Keys
    of `raw` that are not fields are left to the caller.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        name, path = spec.name, f"{section}.{spec.name}"
        if name in raw:
            value = raw[name] if prepare is None else prepare(raw[name], hints[name])
            values[name] = convert_value(value, hints[name], path, problems)
        elif spec.default is not dataclasses.MISSING:
            values[name] = spec.default
            if "absent_default_from" in spec.metadata:
                filled.append(path)
        else:
            problems.add(path, "missing required key")
    return values


def read_speaker_ids(raw: Mapping[Any, Any], problems: Problems) -> dict[str, int] | None:
    """The `spk` section (speaker name -> integer id), or None after recording problems."""
    before = len(problems.lines)
    speakers: dict[str, int] = {}
    for name, speaker_id in raw.items():
        if not isinstance(name, str):
            problems.add("spk", f"speaker name {name!r} is not a string")
            continue
        converted = convert_value(speaker_id, int, f"spk.{name}", problems)
        if converted is not None:
            speakers[name] = converted
    return speakers if len(problems.lines) == before else None


def read_text_file(
    path: str | os.PathLike[str], what: str, *, error: type[SovitsError] = ConfigError
) -> str:
    """The UTF-8 text of `path`; `error` ("{what} not found", "cannot read {what}: ...")
    when it is missing or unreadable."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} not found", where=path) from None
    except (OSError, UnicodeDecodeError) as reason:
        raise error(f"cannot read {what}: {reason}", where=path) from None


def parse_json(
    text: str,
    where: str | os.PathLike[str],
    *,
    error: type[SovitsError] = ConfigError,
    hint: str | None = None,
) -> Any:
    """`json.loads(text)`; `error` saying where the JSON breaks (line, column) if it does."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as reason:
        raise error(
            f"not valid JSON: {reason.msg} at line {reason.lineno} column {reason.colno}",
            where=Path(where),
            hint=hint,
        ) from None


def speaker_names_by_id(speakers: Mapping[str, int]) -> tuple[str, ...]:
    """The names of a speaker table (name -> id) ordered by id, then by name."""
    return tuple(sorted(speakers, key=lambda name: (speakers[name], name)))


def find_speaker_id(speakers: Mapping[str, int], name: str, *, owner: str) -> int:
    """The id of speaker `name`; InputError listing the speakers of `owner` ("the config")
    and naming close matches if it is unknown."""
    if name in speakers:
        return speakers[name]
    close = difflib.get_close_matches(name, list(speakers), n=3)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else None
    raise InputError(
        f"unknown speaker {name!r}; {owner} has: "
        f"{', '.join(speaker_names_by_id(speakers)) or '(none)'}",
        hint=hint,
    )
