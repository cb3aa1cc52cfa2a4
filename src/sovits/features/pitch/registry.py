"""Name registry of the pitch (f0) methods: so-vits-svc's method names -> extractor classes.

Each name maps to a lazy "module:Class" reference, so listing the methods or validating
a name imports nothing heavy; `create_pitch_extractor` imports the one class it needs.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

from sovits.errors import InputError
from sovits.features.pitch.base import PitchExtractor

__all__ = [
    "PITCH_EXTRACTORS",
    "PITCH_METHODS",
    "PitchMethod",
    "create_pitch_extractor",
    "pitch_extractor_class",
]

PitchMethod = Literal["pm", "dio", "harvest", "crepe", "rmvpe", "fcpe", "swift", "dspitch"]
"""The f0 method names so-vits-svc users know (`-f0p` / `f0_predictor`)."""

PITCH_METHODS: tuple[str, ...] = get_args(PitchMethod)

PITCH_EXTRACTORS: Mapping[str, str] = MappingProxyType(
    {
        "pm": "sovits.features.pitch.classic:PmExtractor",
        "dio": "sovits.features.pitch.classic:DioExtractor",
        "harvest": "sovits.features.pitch.classic:HarvestExtractor",
        "crepe": "sovits.features.pitch.crepe:CrepeExtractor",
        "rmvpe": "sovits.features.pitch.rmvpe:RmvpeExtractor",
        "fcpe": "sovits.features.pitch.fcpe:FcpeExtractor",
        "swift": "sovits.features.pitch.swift:SwiftExtractor",
        "dspitch": "sovits.features.pitch.dspitch.extractor:DsPitchExtractor",
    }
)
"""Method name -> "module:Class" of its extractor."""


def _check_name(name: str) -> str:
    if name not in PITCH_EXTRACTORS:
        valid = ", ".join(PITCH_METHODS)
        raise InputError(f"unknown f0 method {name!r}; valid methods: {valid}")
    return name


def pitch_extractor_class(name: str) -> type:
    """The extractor class of method `name` (imported now). InputError for unknown names."""
    module_name, _, class_name = PITCH_EXTRACTORS[_check_name(name)].partition(":")
    module = importlib.import_module(module_name)
    extractor_class: type = getattr(module, class_name)
    return extractor_class


def create_pitch_extractor(name: str, **options: Any) -> PitchExtractor:
    """Build the extractor of method `name` with its keyword options.

    Options are the class's constructor arguments (for example `device`, `threshold`
    for crepe / rmvpe / fcpe, `capacity` for crepe, `f0_min` / `f0_max` for pm, dio,
    harvest). Raises InputError for an unknown name or an option the method does not
    take, naming the valid ones.
    """
    extractor_class = pitch_extractor_class(name)
    signature = inspect.signature(extractor_class)
    try:
        signature.bind(**options)
    except TypeError as error:
        accepted = ", ".join(
            parameter.name
            for parameter in signature.parameters.values()
            if parameter.kind
            in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )
        raise InputError(
            f"bad options for f0 method {name!r}: {error}; it accepts: {accepted or 'none'}"
        ) from None
    extractor: PitchExtractor = extractor_class(**options)
    return extractor
