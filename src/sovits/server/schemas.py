"""Pydantic request models made from the options schema (sovits.config.options_schema).

The OpenAPI spec therefore lists every conversion option and job parameter with its
help, range, unit and choices, exactly as the CLI and the web UI show them.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any, Literal

from sovits.config.options_schema import field_default, field_kind, option_specs

__all__ = ["convert_options_model", "job_request_model", "schema_description"]


def _annotation(cls: type, name: str, choices: tuple[str, ...] | None) -> tuple[Any, bool]:
    base, optional, is_list = field_kind(cls, name)
    annotation: Any = str if base is Path else base
    if choices:
        annotation = Literal[choices]
    if is_list:
        annotation = list[annotation]
    if optional:
        annotation = annotation | None
    return annotation, optional


def _model_fields(cls: type, *, optional_names: tuple[str, ...] = ()) -> dict[str, Any]:
    from pydantic import Field

    fields: dict[str, Any] = {}
    for item, spec in option_specs(cls):
        annotation, optional = _annotation(cls, item.name, spec.choices)
        default = field_default(item)
        if item.name in optional_names and not optional:
            annotation = annotation | None
            default = None
        description = spec.help + (f" Unit: {spec.unit}." if spec.unit else "")
        extra: dict[str, Any] = {"group": spec.group}
        if spec.flags:
            extra["cli_flags"] = list(spec.flags)
        if spec.path_kind:
            extra["path_kind"] = spec.path_kind
        constraints: dict[str, Any] = {}
        base, _, is_list = field_kind(cls, item.name)
        if base in (int, float) and not is_list:
            if spec.minimum is not None:
                constraints["ge"] = spec.minimum
            if spec.maximum is not None:
                constraints["le"] = spec.maximum
        if base is str and not spec.choices and not is_list:
            constraints["max_length"] = 256
        if isinstance(default, Path):
            default = str(default)
        if default is dataclasses.MISSING:
            fields[item.name] = (annotation, Field(description=description,
                                                   json_schema_extra=extra, **constraints))
        else:
            fields[item.name] = (annotation, Field(default=default, description=description,
                                                   json_schema_extra=extra, **constraints))
    return fields


@cache
def convert_options_model() -> Any:
    """The request model of ConvertOptions; `speaker` may be left out (the model's first
    speaker is used)."""
    from pydantic import ConfigDict, create_model

    from sovits.inference.options import ConvertOptions

    return create_model(
        "ConvertOptions",
        __config__=ConfigDict(extra="forbid"),
        **_model_fields(ConvertOptions, optional_names=("speaker",)),
    )


@cache
def job_request_model(kind: str) -> Any:
    """The request model of a `kind` job's parameters (convert: model, input, options)."""
    from pydantic import ConfigDict, Field, create_model

    from sovits.api.params import JOB_PARAMS

    cls = JOB_PARAMS[kind]
    fields = _model_fields(cls)
    if kind == "convert":
        fields["options"] = (
            convert_options_model(),
            Field(default_factory=convert_options_model(), description="Conversion options."),
        )
    name = "".join(part.capitalize() for part in kind.split("-")) + "Request"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def schema_description(cls: type) -> list[dict[str, Any]]:
    """Every option of dataclass `cls` as JSON: name, type, default, help, flags, range,
    unit, choices, group, path_kind (GET /api/v1/options serves ConvertOptions')."""
    described = []
    for item, spec in option_specs(cls):
        base, optional, is_list = field_kind(cls, item.name)
        default = field_default(item)
        described.append({
            "name": item.name,
            "type": base.__name__ if base is not Path else "path",
            "optional": optional,
            "list": is_list,
            "required": default is dataclasses.MISSING,
            "default": None if default is dataclasses.MISSING else (
                str(default) if isinstance(default, Path) else default),
            "help": spec.help,
            "flags": list(spec.flags),
            "minimum": spec.minimum,
            "maximum": spec.maximum,
            "unit": spec.unit,
            "choices": list(spec.choices) if spec.choices else None,
            "group": spec.group,
            "path_kind": spec.path_kind,
        })
    return described
