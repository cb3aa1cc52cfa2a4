"""The pretrained-weights resolver: explicit path, $SOVITS_HOME, user cache, package files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from sovits.errors import MissingFileError
from sovits.features import pretrained
from sovits.features.pitch.rmvpe import RmvpeExtractor
from sovits.features.pretrained import (
    HOME_VARIABLE,
    KNOWN_FILES,
    known_file,
    resolve_weights,
    search_locations,
)
from tests.assets import missing_asset
from tests.conftest import FIXTURES

TINY_RMVPE = FIXTURES / "sovits41-extras" / "rmvpe" / "rmvpe_tiny.pt"


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty $SOVITS_HOME and an empty user cache, both under tmp_path."""
    home, cache = tmp_path / "home", tmp_path / "cache"
    monkeypatch.setenv(HOME_VARIABLE, str(home))
    monkeypatch.setattr(pretrained, "user_cache_dir", lambda: cache)
    return home, cache


def _put(folder: Path, relative: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return path


def test_registry_entries_are_complete() -> None:
    for name, entry in KNOWN_FILES.items():
        assert entry.name == name
        assert entry.relative_path.startswith("pretrain/")
        assert entry.urls and all(url.startswith("https://") for url in entry.urls)
    assert known_file("rmvpe.pt").relative_path == "pretrain/rmvpe.pt"
    with pytest.raises(ValueError, match="known files"):
        known_file("nope.pt")


def test_lookup_order(places: tuple[Path, Path], tmp_path: Path) -> None:
    home, cache = places
    assert search_locations("rmvpe.pt") == [home / "pretrain/rmvpe.pt", cache / "pretrain/rmvpe.pt"]
    in_cache = _put(cache, "pretrain/rmvpe.pt")
    assert resolve_weights("rmvpe.pt") == in_cache
    in_home = _put(home, "pretrain/rmvpe.pt")
    assert resolve_weights("rmvpe.pt") == in_home
    explicit = _put(tmp_path, "mine.pt")
    assert resolve_weights("rmvpe.pt", explicit) == explicit
    assert resolve_weights("rmvpe.pt", str(explicit)) == explicit


def test_missing_explicit_path_does_not_fall_back(
    places: tuple[Path, Path], tmp_path: Path
) -> None:
    _put(places[0], "pretrain/rmvpe.pt")
    with pytest.raises(MissingFileError) as caught:
        resolve_weights("rmvpe.pt", tmp_path / "typo.pt")
    assert "typo.pt" in str(caught.value)


def test_missing_file_error_says_where_and_from_where(
    places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, cache = places
    with pytest.raises(MissingFileError) as caught:
        resolve_weights("rmvpe.pt")
    message = str(caught.value)
    assert "rmvpe.pt" in message
    assert str(home / "pretrain" / "rmvpe.pt") in message
    assert str(cache / "pretrain" / "rmvpe.pt") in message
    assert "https://github.com/yxlllc/RMVPE/releases/download/230917/rmvpe.zip" in message
    assert "model.pt" in message  # the rename step

    monkeypatch.delenv(HOME_VARIABLE)
    with pytest.raises(MissingFileError, match=HOME_VARIABLE):
        resolve_weights("rmvpe.pt")


def test_extractor_finds_weights_through_the_resolver(places: tuple[Path, Path]) -> None:
    home, _ = places
    with pytest.raises(MissingFileError):
        RmvpeExtractor()
    target = home / "pretrain" / "rmvpe.pt"
    target.parent.mkdir(parents=True)
    shutil.copyfile(TINY_RMVPE, target)
    assert RmvpeExtractor().model.cnn.in_channels == 2  # the tiny model


def test_package_file_is_found_without_importing_the_package(
    places: tuple[Path, Path],
) -> None:
    if pretrained.package_folder("torchfcpe") is None:
        missing_asset("torchfcpe not installed (pip install --no-deps torchfcpe==0.0.4)")
    path = resolve_weights("fcpe_c_v001.pt")
    assert path.is_file() and path.parts[-3:] == ("torchfcpe", "assets", "fcpe_c_v001.pt")
    assert "torchfcpe" not in sys.modules
    # a copy in $SOVITS_HOME wins over the package's
    copy = _put(places[0], "pretrain/fcpe_c_v001.pt")
    assert resolve_weights("fcpe_c_v001.pt") == copy


def test_absent_package_is_skipped(
    monkeypatch: pytest.MonkeyPatch, places: tuple[Path, Path]
) -> None:
    assert pretrained.package_folder("sovits_no_such_package") is None
    monkeypatch.setattr(pretrained, "package_folder", lambda package: None)
    with pytest.raises(MissingFileError, match=r"torchfcpe==0\.0\.4"):
        resolve_weights("fcpe_c_v001.pt")
