"""The page's building blocks without a browser: widgets made from the options schema,
the values they give back, the plots' data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from sovits.config.options_schema import field_default, option, option_specs


@dataclass(frozen=True, kw_only=True)
class Knobs:
    """A made-up option class: one field of each kind the schema allows."""

    name: str = field(metadata=option("A required name.", flags=("--name", "-n")))
    loud: bool = field(default=False, metadata=option("A switch.", group="output"))
    level: float = field(default=0.5, metadata=option("A level.", minimum=0.0, maximum=1.0,
                                                      unit="dB", group="output"))
    count: int = field(default=3, metadata=option("A count.", minimum=1))
    limit: int | None = field(default=None, metadata=option("A limit.", minimum=1))
    mode: str = field(default="a", metadata=option("A mode.", choices=("a", "b")))
    sampler: str | None = field(default=None, metadata=option("A sampler.", choices=("x", "y")))
    curve: Path | None = field(default=None, metadata=option("A file.", path_kind="file"))
    tags: list[str] = field(default_factory=list, metadata=option("Tags."))
    hidden: int = 7  # no OptionSpec: not an option


def _form(cls: type, **kw):
    import gradio as gr

    from sovits.webui.widgets import build_option_form

    with gr.Blocks():
        return build_option_form(cls, prefix="t", **kw)


def test_each_kind_of_field_gets_its_widget_with_the_spec_s_range_and_default() -> None:
    import gradio as gr

    form = _form(Knobs)
    kinds = {name: type(widget) for name, widget in form.widgets.items()}
    assert kinds == {
        "name": gr.Textbox, "loud": gr.Checkbox, "level": gr.Slider, "count": gr.Number,
        "limit": gr.Textbox, "mode": gr.Dropdown, "sampler": gr.Dropdown,
        "curve": gr.Textbox, "tags": gr.Textbox,
    }
    level = form.widgets["level"]
    assert (level.minimum, level.maximum, level.value) == (0.0, 1.0, 0.5)
    assert level.label == "Level (dB)" and "A level." in level.info
    assert form.widgets["name"].elem_id == "t-name" and "--name, -n" in form.widgets["name"].info
    assert [choice[1] for choice in form.widgets["sampler"].choices] == ["", "x", "y"]


def test_values_keep_only_what_was_changed() -> None:
    form = _form(Knobs)
    defaults = [widget.value for widget in form.components]
    assert form.values(defaults) == {}
    changed = dict(zip(form.widgets, defaults, strict=True))
    changed.update(name="n1", loud=True, level=0.25, count=4.0, limit="12", sampler="y",
                   curve=" song.csv ", tags="a, b,")
    assert form.values(list(changed.values())) == {
        "name": "n1", "loud": True, "level": 0.25, "count": 4, "limit": "12",
        "sampler": "y", "curve": "song.csv", "tags": ["a", "b"],
    }
    with pytest.raises(ValueError, match="expected 9 values"):
        form.values([])


def test_convert_options_widgets_cover_every_option_with_so_vits_svc_defaults() -> None:
    from sovits.config.options_schema import values_from_mapping
    from sovits.inference.options import ConvertOptions

    form = _form(ConvertOptions, skip=("speaker",))
    specs = {item.name: (item, spec) for item, spec in option_specs(ConvertOptions)}
    assert set(form.widgets) == set(specs) - {"speaker"}
    for name, widget in form.widgets.items():
        item, _spec = specs[name]
        default = field_default(item)
        shown = widget.value
        if default is None:
            assert shown in ("", None), name
        elif isinstance(default, bool):
            assert shown is default, name
        elif isinstance(default, (int, float)):
            assert float(shown) == float(default), name
        else:
            assert shown == str(default), name
    # what the widgets give back is what the job layer and ConvertOptions accept
    values = [widget.value for widget in form.components]
    index = list(form.widgets).index("transpose")
    values[index] = -5
    chosen = form.values(values)
    assert chosen == {"transpose": -5}
    options = ConvertOptions(speaker="spk_a", **values_from_mapping(ConvertOptions, chosen))
    assert options.transpose == -5.0 and options == dataclasses.replace(
        ConvertOptions(speaker="spk_a"), transpose=-5.0)


def test_existing_and_factory_widgets_take_a_field_s_place() -> None:
    import gradio as gr

    from sovits.webui.widgets import build_option_form

    with gr.Blocks():
        shared = gr.Textbox(elem_id="shared")
        made: list[str] = []

        def picker(label: str, info: str, elem_id: str, default: object) -> gr.Dropdown:
            made.append(elem_id)
            return gr.Dropdown(choices=["a", "b"], value="a", elem_id=elem_id)

        form = build_option_form(Knobs, prefix="k", existing={"name": shared},
                                 factories={"mode": picker})
    assert form.widgets["name"] is shared and made == ["k-mode"]


def test_loss_table_reads_the_trainer_s_log_lines() -> None:
    from sovits.webui.plots import loss_table

    lines = [
        "INFO sovits.training.trainer: epoch 1 step 0 lr 0.0001: d 5.972, g 526.398 (gen 5.224, "
        "fm 1.228, mel 169.536, kl 350.186, lf0 0.224)",
        "INFO sovits.training.trainer: saved G_0.pth and D_0.pth (epoch 1)",
        "epoch 1 step 1 lr 0.0001: d 5.225, g 550.076 (gen 4.475, fm 1.295, mel 160.455, "
        "kl 378.566, lf0 5.285)",
        "epoch 1 step 0 lr 0.0001: d 1.0, g 2.0 (gen 3.0, fm 4.0, mel 5.0, kl 6.0, lf0 7.0)",
    ]
    table = loss_table(lines)
    assert sorted(set(table["step"])) == [0, 1]
    step0 = dict(zip(table[table.step == 0]["loss"], table[table.step == 0]["value"],
                     strict=True))
    assert step0 == {"discriminator": 1.0, "generator": 2.0, "mel": 5.0, "kl": 6.0, "fm": 4.0}


def test_spectrogram_image_puts_a_tone_at_its_frequency() -> None:
    from sovits.webui.plots import spectrogram_image

    rate = 16000
    times = np.arange(rate) / rate
    image = spectrogram_image(np.sin(2 * np.pi * 1000.0 * times), rate, max_hz=8000.0)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[1] >= 600
    brightness = image.astype(float).sum(axis=(1, 2))
    row = int(np.argmax(brightness))  # row 0 is the top (8 kHz)
    hz = (image.shape[0] - 1 - row) * rate / 1024
    assert abs(hz - 1000.0) <= rate / 1024


def test_an_edited_f0_table_reads_back_as_the_curve() -> None:
    from sovits.errors import InputError
    from sovits.features.pitch.export import F0Curve
    from sovits.webui.f0_tab import curve_from_table, table_from_curve

    curve = F0Curve(np.array([0.0, 0.01, 0.02]), np.array([0.0, 220.0, 221.5], np.float32),
                    np.array([False, True, True]))
    back = curve_from_table(table_from_curve(curve))
    np.testing.assert_array_equal(back.times, curve.times)
    np.testing.assert_array_equal(back.f0, curve.f0)
    np.testing.assert_array_equal(back.voiced, curve.voiced)
    table = table_from_curve(curve).astype(object)
    table.loc[1, "f0_hz"] = "high"
    with pytest.raises(InputError, match="not a number"):
        curve_from_table(table)
    with pytest.raises(InputError, match="lacks column"):
        curve_from_table({"time_s": [0.0]})
