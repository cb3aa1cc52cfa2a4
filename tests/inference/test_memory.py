"""The bound on oneDNN's primitive cache that keeps a many-slice conversion's memory flat."""

from __future__ import annotations

import os
import sys

import pytest

from sovits.inference.memory import (
    ONEDNN_CACHE_CAPACITY,
    bound_onednn_primitive_cache,
    fix_mmap_threshold,
)

VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def test_bound_is_set_when_the_environment_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert bound_onednn_primitive_cache() is True
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(ONEDNN_CACHE_CAPACITY)
    assert bound_onednn_primitive_cache(5) is False  # set once; later calls keep it
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(ONEDNN_CACHE_CAPACITY)


@pytest.mark.parametrize("name", VARIABLES)
def test_a_bound_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    for other in VARIABLES:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, "1024")
    assert bound_onednn_primitive_cache() is False
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
