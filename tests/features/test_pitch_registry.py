"""The f0 method registry: names, lazy classes, options and errors."""

from __future__ import annotations

import importlib

import pytest

from sovits.errors import InputError
from sovits.features.pitch.base import PitchExtractor
from sovits.features.pitch.classic import DioExtractor, PmExtractor
from sovits.features.pitch.registry import (
    PITCH_EXTRACTORS,
    PITCH_METHODS,
    create_pitch_extractor,
    pitch_extractor_class,
)


def test_every_name_points_at_an_extractor_of_that_name() -> None:
    assert PITCH_METHODS == (
        "pm", "dio", "harvest", "crepe", "rmvpe", "fcpe", "swift", "dspitch"
    )
    assert set(PITCH_EXTRACTORS) == set(PITCH_METHODS)
    for name, reference in PITCH_EXTRACTORS.items():
        module_name, _, class_name = reference.partition(":")
        extractor_class = getattr(importlib.import_module(module_name), class_name)
        assert pitch_extractor_class(name) is extractor_class
        assert extractor_class.name == name
        assert callable(extractor_class.extract)


def test_create_with_options() -> None:
    extractor = create_pitch_extractor("dio", f0_min=80.0, f0_max=900.0)
    assert isinstance(extractor, DioExtractor) and isinstance(extractor, PitchExtractor)
    assert (extractor.f0_min, extractor.f0_max) == (80.0, 900.0)
    assert isinstance(create_pitch_extractor("pm"), PmExtractor)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(InputError, match="pm, dio, harvest, crepe, rmvpe, fcpe"):
        create_pitch_extractor("parselmouth")
    with pytest.raises(InputError):
        pitch_extractor_class("")


def test_unknown_option_names_the_accepted_ones() -> None:
    with pytest.raises(InputError, match="accepts: f0_min, f0_max"):
        create_pitch_extractor("harvest", threshold=0.1)
    with pytest.raises(InputError, match="threshold"):
        create_pitch_extractor("crepe", hop=3)
