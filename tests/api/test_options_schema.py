"""The one options schema: every conversion option and job parameter is described once,
and the faces made from it (CLI flags, request models) agree with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sovits.api.params import JOB_PARAMS
from sovits.config.options_schema import (
    GROUPS,
    OptionSpec,
    field_kind,
    option,
    option_specs,
    values_from_mapping,
)
from sovits.inference.options import DIFFUSION_SAMPLERS, F0_METHODS, ConvertOptions


def test_every_conversion_option_carries_a_spec_with_unique_flags() -> None:
    specs = option_specs(ConvertOptions)
    assert [item.name for item, _ in specs] == [
        item.name for item in dataclasses.fields(ConvertOptions)]
    seen: dict[str, str] = {}
    for item, spec in specs:
        assert spec.help and spec.group in GROUPS, item.name
        assert spec.flags and spec.flags[0].startswith("--"), item.name
        for flag in spec.flags:
            assert flag not in seen, f"{flag} is used by {seen.get(flag)} and {item.name}"
            seen[flag] = item.name
        field_kind(ConvertOptions, item.name)  # every type is one a face can show
    assert seen["-t"] == "transpose" and seen["--trans"] == "transpose"
    assert seen["-f0p"] == "f0_method" and seen["-cm"] == "cluster_model_path"


def test_choices_are_the_registries_names() -> None:
    from sovits.features.pitch.registry import PITCH_METHODS
    from sovits.models.diffusion.gaussian import DIFFUSION_METHODS

    assert F0_METHODS == PITCH_METHODS
    assert DIFFUSION_SAMPLERS == DIFFUSION_METHODS


def test_ranges_of_the_schema_match_what_the_options_accept() -> None:
    for item, spec in option_specs(ConvertOptions):
        if spec.maximum is None or field_kind(ConvertOptions, item.name)[0] is not float:
            continue
        ConvertOptions(speaker="a", **{item.name: spec.maximum})
        with pytest.raises(Exception, match=item.name.split("_")[0]):
            ConvertOptions(speaker="a", **{item.name: spec.maximum + 1.0})


def test_every_job_kind_has_described_parameters() -> None:
    assert set(JOB_PARAMS) == {"convert", "f0", "evaluate", "resample", "prepare",
                               "preprocess", "train", "train-cluster", "train-index", "merge",
                               "compress", "inspect", "export-onnx"}
    for kind, cls in JOB_PARAMS.items():
        specs = option_specs(cls)
        assert len(specs) == len(dataclasses.fields(cls)), kind


def test_values_from_loose_mappings_are_coerced_or_refused() -> None:
    values = values_from_mapping(ConvertOptions, {
        "transpose": "3", "auto_predict_f0": "true", "seed": 7.0, "f0_file": "a.csv",
        "max_segment_seconds": None, "k_step": None})
    assert values == {"transpose": 3.0, "auto_predict_f0": True, "seed": 7,
                      "f0_file": Path("a.csv"), "max_segment_seconds": None, "k_step": None}
    for bad in ({"nope": 1}, {"seed": 1.5}, {"enhance": "maybe"}, {"transpose": "high"},
                {"speaker": 3}, {"noise_scale": True}):
        with pytest.raises(ValueError):
            values_from_mapping(ConvertOptions, bad)


def test_specs_refuse_unknown_groups_and_bad_flags() -> None:
    assert option("x", group="pitch")["option"] == OptionSpec(help="x", group="pitch")
    with pytest.raises(ValueError):
        OptionSpec(help="x", group="colour")
    with pytest.raises(ValueError):
        OptionSpec(help="x", flags=("transpose",))
    with pytest.raises(ValueError):
        OptionSpec(help="x", path_kind="socket")
