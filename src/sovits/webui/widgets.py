"""Gradio widgets derived from the options schema (`sovits.config.options_schema`).

Every option dataclass (ConvertOptions, a job's parameters) describes its fields with an
`OptionSpec`; `build_option_form` turns those into widgets, grouped as the schema's
`group` says (the "basic" group in place, the others in closed accordions), and
`OptionForm.values` turns the widgets' values back into the loosely typed mapping the
job layer validates (`values_from_mapping` and the dataclass's own checks). Nothing
here lists an option by name: a new field in the dataclass is a new widget.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovits.config.options_schema import (
    GROUPS,
    OptionSpec,
    field_default,
    field_kind,
    option_specs,
)

if TYPE_CHECKING:
    from gradio.components import Component

__all__ = ["OptionForm", "WidgetFactory", "build_option_form", "option_label", "slider_step"]

WidgetFactory = Callable[[str, str, str, Any], "Component"]
"""Makes the widget of one field its own way: (label, info, elem_id, default) -> widget."""

_DEFAULT_CHOICE = ""
"""Dropdown value meaning "the default" for optional choices (None)."""


def option_label(name: str, spec: OptionSpec) -> str:
    """The widget label of field `name`: words, then the unit, e.g. "Transpose (semitones)"."""
    words = name.replace("_", " ")
    label = words[:1].upper() + words[1:]
    return f"{label} ({spec.unit})" if spec.unit else label


def _info(spec: OptionSpec) -> str:
    """The help line, followed by the CLI flags so so-vits-svc users recognise the option."""
    if spec.flags:
        return f"{spec.help} [{', '.join(spec.flags)}]"
    return spec.help


def slider_step(minimum: float, maximum: float, integer: bool) -> float:
    """A slider step giving about 100 to 1000 positions over [minimum, maximum]."""
    if integer:
        return 1
    span = maximum - minimum
    if span <= 0:
        return 0.01
    return float(10 ** math.floor(math.log10(span)) / 100)


@dataclass
class OptionForm:
    """The widgets of one option dataclass, by field name, in declaration order."""

    cls: type
    widgets: dict[str, Component] = field(default_factory=dict)
    fields: dict[str, dataclasses.Field[Any]] = field(default_factory=dict)

    @property
    def components(self) -> list[Component]:
        """The widgets as event inputs, in the order `values` expects them."""
        return list(self.widgets.values())

    def values(self, raw: Sequence[Any]) -> dict[str, Any]:
        """The options the widgets hold, as a mapping for the job layer.

        raw: the widgets' values in `components` order. Empty text, an empty number and
        the "default" choice leave the field out (its default applies); so do values
        equal to the default, so a job's parameters list only what the user changed.
        Lists are written as comma-separated text.
        """
        if len(raw) != len(self.widgets):
            raise ValueError(f"expected {len(self.widgets)} values, got {len(raw)}")
        chosen: dict[str, Any] = {}
        for (name, item), value in zip(self.fields.items(), raw, strict=True):
            base, _optional, is_list = field_kind(self.cls, name)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if is_list:
                parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
                items = [str(part).strip() for part in parts if str(part).strip()]
                if not items:
                    continue
                value = items
            elif base is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            elif base in (str, Path) and isinstance(value, str):
                value = value.strip()
            default = field_default(item)
            if default is not dataclasses.MISSING and _same(value, default):
                continue
            chosen[name] = value
        return chosen


def _same(value: Any, default: Any) -> bool:
    if isinstance(default, Path):
        return str(value) == str(default)
    if isinstance(default, (list, tuple)):
        return list(value) == list(default) if isinstance(value, (list, tuple)) else False
    if isinstance(default, bool) or isinstance(value, bool):
        return value is default
    if isinstance(default, (int, float)) and isinstance(value, (int, float)):
        return float(value) == float(default)
    return bool(value == default)


def _bounds(spec: OptionSpec) -> str:
    """" (at least 1)", " (0 to 1)" ...: the accepted range, for a text box's info line."""
    if spec.minimum is not None and spec.maximum is not None:
        return f" ({spec.minimum:g} to {spec.maximum:g})"
    if spec.minimum is not None:
        return f" (at least {spec.minimum:g})"
    if spec.maximum is not None:
        return f" (at most {spec.maximum:g})"
    return ""


def _widget(
    cls: type, item: dataclasses.Field[Any], spec: OptionSpec, elem_id: str, value: Any
) -> Component:
    """One widget for field `item`: checkbox, dropdown, slider, number or text box."""
    import gradio as gr

    base, optional, is_list = field_kind(cls, item.name)
    label = option_label(item.name, spec)
    info = _info(spec)
    default = field_default(item) if value is dataclasses.MISSING else value
    if default is dataclasses.MISSING:
        default = None
    if is_list:
        text = ", ".join(str(part) for part in default) if default else ""
        return gr.Textbox(value=text, label=label, info=f"{info} (comma-separated)",
                          elem_id=elem_id)
    if base is bool:
        return gr.Checkbox(value=bool(default), label=label, info=info, elem_id=elem_id)
    if spec.choices:
        choices: list[tuple[str, str]] = [(choice, choice) for choice in spec.choices]
        if optional or default is None:
            choices.insert(0, ("(default)", _DEFAULT_CHOICE))
        return gr.Dropdown(choices=choices, value=_DEFAULT_CHOICE if default is None else default,
                           label=label, info=info, elem_id=elem_id)
    if base in (int, float) and default is None:
        # an empty number box reads as 0, so "not set" needs a text box
        bounds = _bounds(spec)
        return gr.Textbox(value="", label=label, info=info + bounds,
                          placeholder="default" if optional else "", elem_id=elem_id)
    if base in (int, float):
        integer = base is int
        if spec.minimum is not None and spec.maximum is not None and default is not None:
            return gr.Slider(
                minimum=spec.minimum, maximum=spec.maximum, value=default,
                step=slider_step(spec.minimum, spec.maximum, integer), label=label, info=info,
                elem_id=elem_id,
            )
        return gr.Number(
            value=default, label=label, info=info, minimum=spec.minimum, maximum=spec.maximum,
            precision=0 if integer else None, step=1 if integer else 0.01, elem_id=elem_id,
        )
    placeholder = None
    if spec.path_kind is not None:
        placeholder = f"a {spec.path_kind} inside the models root or the work folder"
    return gr.Textbox(value="" if default is None else str(default), label=label, info=info,
                      placeholder=placeholder, elem_id=elem_id)


def build_option_form(
    cls: type,
    *,
    prefix: str,
    skip: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
    open_groups: Iterable[str] = ("basic",),
    factories: Mapping[str, WidgetFactory] | None = None,
    existing: Mapping[str, Component] | None = None,
) -> OptionForm:
    """Render the widgets of option dataclass `cls` in the current Blocks context.

    prefix: start of each widget's `elem_id` (`{prefix}-{field name}`), so a page test
    finds a widget by the option's name. skip: fields the caller shows its own way (the
    speaker, chosen from the model's list). values: initial values instead of the
    defaults. Groups appear in `GROUPS` order; "basic" (and any in `open_groups`) in
    place, the others in closed accordions. factories: fields whose widget the caller
    makes (a model picker for a model name); existing: fields whose widget is already on
    the page elsewhere (shared by several forms), not rendered again.
    """
    import gradio as gr

    skipped = set(skip)
    initial = dict(values or {})
    by_group: dict[str, list[tuple[dataclasses.Field[Any], OptionSpec]]] = {}
    form = OptionForm(cls)
    makers = dict(factories or {})
    present = dict(existing or {})
    for item, spec in option_specs(cls):
        if item.name in skipped:
            continue
        if item.name in present:
            form.widgets[item.name] = present[item.name]
            form.fields[item.name] = item
        else:
            by_group.setdefault(spec.group, []).append((item, spec))
    opened = set(open_groups)
    for group in GROUPS:
        entries = by_group.get(group)
        if not entries:
            continue
        if group == "basic":
            for item, spec in entries:
                _add(form, cls, item, spec, prefix, initial, makers)
            continue
        with gr.Accordion(f"{group.capitalize()} options", open=group in opened,
                          elem_id=f"{prefix}-group-{group}"):
            for item, spec in entries:
                _add(form, cls, item, spec, prefix, initial, makers)
    return form


def _add(
    form: OptionForm,
    cls: type,
    item: dataclasses.Field[Any],
    spec: OptionSpec,
    prefix: str,
    initial: Mapping[str, Any],
    makers: Mapping[str, WidgetFactory],
) -> None:
    value = initial.get(item.name, dataclasses.MISSING)
    elem_id = f"{prefix}-{item.name.replace('_', '-')}"
    if item.name in makers:
        default = field_default(item) if value is dataclasses.MISSING else value
        widget = makers[item.name](
            option_label(item.name, spec), _info(spec), elem_id,
            None if default is dataclasses.MISSING else default,
        )
    else:
        widget = _widget(cls, item, spec, elem_id, value)
    form.widgets[item.name] = widget
    form.fields[item.name] = item
