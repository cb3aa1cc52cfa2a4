"""`sovits pretrained list` and `sovits pretrained fetch` against a local HTTP server."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sovits import cli
from sovits.features import pretrained
from sovits.features.download import ChecksumError
from sovits.features.pretrained import HOME_VARIABLE, KNOWN_FILES
from tests.features.test_download import FileServer, running_server

DATA = bytes(range(256)) * 300


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache under tmp_path, and no $SOVITS_HOME."""
    monkeypatch.delenv(HOME_VARIABLE, raising=False)
    monkeypatch.setattr(pretrained, "user_cache_dir", lambda: tmp_path / "cache")
    return tmp_path / "cache"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    with running_server(tmp_path / "served") as state:
        yield state


def test_list_shows_every_file_with_status_path_and_source(cache: Path) -> None:
    (cache / "pretrain").mkdir(parents=True)
    (cache / "pretrain" / "fcpe.pt").write_bytes(b"weights")
    result = CliRunner().invoke(cli.app, ["pretrained", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in KNOWN_FILES:
        assert any(line.startswith(f"{name} ") for line in lines), name
    (fcpe,) = [line for line in lines if line.startswith("fcpe.pt ")]
    assert "present" in fcpe and str(cache / "pretrain" / "fcpe.pt") in fcpe
    (rmvpe,) = [line for line in lines if line.startswith("rmvpe.pt ")]
    assert "missing" in rmvpe and str(cache / "pretrain" / "rmvpe.pt") in rmvpe
    assert "https://github.com/yxlllc/RMVPE/releases/download/230917/rmvpe.zip" in result.output


def test_fetch_downloads_through_a_mirror(cache: Path, server: FileServer) -> None:
    url = server.put("fcpe.pt", DATA)
    runner = CliRunner()
    result = runner.invoke(cli.app, ["pretrained", "fetch", "fcpe.pt", "--url", url])
    assert result.exit_code == 0, result.output
    target = cache / "pretrain" / "fcpe.pt"
    assert target.read_bytes() == DATA
    assert f"saved {target}" in result.output
    assert hashlib.sha256(DATA).hexdigest() in result.output
    assert "not verified" in result.output

    again = runner.invoke(cli.app, ["pretrained", "fetch", "fcpe.pt", "--url", url])
    assert again.exit_code == 0 and "already present" in again.output
    assert len(server.requests) == 1


def test_fetch_to_a_folder_with_a_checksum(
    cache: Path, server: FileServer, tmp_path: Path
) -> None:
    url = server.put("medium.pt", DATA)
    folder = tmp_path / "mine"
    folder.mkdir()
    digest = hashlib.sha256(DATA).hexdigest()
    args = ["pretrained", "fetch", "medium.pt", "--url", url, "--dest", str(folder)]
    result = CliRunner().invoke(cli.app, [*args, "--sha256", digest])
    assert result.exit_code == 0, result.output
    assert (folder / "medium.pt").read_bytes() == DATA
    assert f"sha256 {digest} (verified)" in result.output
    assert not (cache / "pretrain" / "medium.pt").exists()


def test_fetch_refuses_bytes_with_the_wrong_checksum(cache: Path, server: FileServer) -> None:
    url = server.put("medium.pt", DATA)  # not whisper medium: the registry sha256 differs
    result = CliRunner().invoke(cli.app, ["pretrained", "fetch", "medium.pt", "--url", url])
    assert isinstance(result.exception, ChecksumError)
    assert not list((cache / "pretrain").iterdir())


def test_fetch_errors_are_one_line_from_the_console_entry_point(
    cache: Path,
    server: FileServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = server.url("nothing-here.pt")
    monkeypatch.setattr(sys, "argv", ["sovits", "pretrained", "fetch", "fcpe.pt", "--url", url])
    with pytest.raises(SystemExit) as caught:
        cli.main()
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and url in error and "404" in error


def test_fetch_unknown_name_is_a_usage_error(cache: Path) -> None:
    result = CliRunner().invoke(cli.app, ["pretrained", "fetch", "nope.pt"])
    assert result.exit_code == 2
    assert "rmvpe.pt" in result.output


def test_list_says_what_needs_each_file_and_lists_base_models(
    cache: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "logs" / "44k"
    model_dir.mkdir(parents=True)
    (model_dir / "G_0.pth").write_bytes(b"g")
    result = CliRunner().invoke(cli.app, ["pretrained", "list", "-m", str(model_dir)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "for: speech encoder vec768l12, vec256l9" in text
    assert "for: f0 method rmvpe" in text
    assert "the enhancer (infer -eh)" in text
    assert "sha256 f54b40fd2802423a5643779c4861af1e9ee9c1564dc9d32f54f20b5ffba7db96" in text
    assert "size about 181 MB" in text
    assert f"G_0.pth  present  {model_dir / 'G_0.pth'}" in text
    assert f"D_0.pth  missing  {model_dir / 'D_0.pth'}" in text
    assert "diffusion/model_0.pt  missing" in text


def test_list_as_json_with_verified_checksums(cache: Path, tmp_path: Path) -> None:
    import json

    (cache / "pretrain").mkdir(parents=True)
    (cache / "pretrain" / "rmvpe.pt").write_bytes(DATA)
    result = CliRunner().invoke(
        cli.app, ["pretrained", "list", "--json", "--verify", "-m", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    rows = {row["name"]: row for row in listing["pretrained"]}
    assert set(rows) == set(KNOWN_FILES)
    rmvpe = rows["rmvpe.pt"]
    assert rmvpe["present"] and rmvpe["bytes"] == len(DATA)
    assert rmvpe["sha256_of_file"] == hashlib.sha256(DATA).hexdigest()
    assert rows["medium.pt"]["used_for"] == [
        "speech encoder whisper-ppg (config model.speech_encoder)"
    ]
    assert [base["name"] for base in listing["base_models"]] == [
        "G_0.pth", "D_0.pth", "diffusion/model_0.pt"
    ]


def test_every_encoder_and_weighted_f0_method_names_its_file() -> None:
    from sovits.features.content.registry import ENCODERS

    uses = pretrained.file_uses()
    for encoder, spec in ENCODERS.items():
        if spec.weights:
            assert any(encoder in use for use in uses[spec.weights]), encoder
    assert any("rmvpe" in use for use in uses["rmvpe.pt"])
    assert any("fcpe" in use for use in uses["fcpe_c_v001.pt"])
    assert all(uses.values()), [name for name, use in uses.items() if not use]
