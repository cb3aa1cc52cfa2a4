"""The bound on oneDNN's primitive cache that keeps a many-slice conversion's memory flat."""

from __future__ import annotations

import os
import sys

import pytest

from sovits.inference.memory import (
    OFFLINE_CACHE_CAPACITY,
    REUSE_CACHE_CAPACITY,
    bound_onednn_primitive_cache,
    fix_mmap_threshold,
    offline_cache_capacity,
)

VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def test_bound_is_set_when_the_environment_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert bound_onednn_primitive_cache(REUSE_CACHE_CAPACITY) is True
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(REUSE_CACHE_CAPACITY)
    # set once: the first workload of the process decides
    assert bound_onednn_primitive_cache(OFFLINE_CACHE_CAPACITY) is False
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(REUSE_CACHE_CAPACITY)


@pytest.mark.parametrize("name", VARIABLES)
def test_a_bound_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for other in VARIABLES:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, "1024")
    assert bound_onednn_primitive_cache(OFFLINE_CACHE_CAPACITY) is False
    assert os.environ[name] == "1024"
    assert set(VARIABLES) & set(os.environ) == {name}


def test_mmap_threshold_is_left_to_the_user_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert fix_mmap_threshold() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_mmap_threshold_is_fixed_with_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert fix_mmap_threshold() is True


def test_each_workload_takes_its_own_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Offline conversion asks for no cache, live conversion for one block's primitives;
    oneDNN reads the variable before its first primitive, so the bound is set before the
    first stage runs."""
    import numpy as np

    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions
    from sovits.inference.streaming import StreamingConverter
    from tests.inference.test_converter import spectral_config
    from tests.inference.test_streaming import MODEL

    converter = Converter(MODEL, spectral_config(tmp_path_factory.mktemp("cfg")), device="cpu")
    options = ConvertOptions(speaker="spk_a", f0_method="pm")
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    converter.convert(np.zeros(4410, np.float32), 44100, options=options)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(OFFLINE_CACHE_CAPACITY)
    # lower precisions keep one call's primitives: theirs are dear to build
    assert offline_cache_capacity("bf16") == offline_cache_capacity("fp16") == REUSE_CACHE_CAPACITY
    assert offline_cache_capacity("fp32") == OFFLINE_CACHE_CAPACITY

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    StreamingConverter(converter, options)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(REUSE_CACHE_CAPACITY)
