"""Fetching pretrained files from a local HTTP server: resume, Range quirks, checksums, zips.

Every test talks to a ThreadingHTTPServer on 127.0.0.1 that serves tiny files written in
tmp_path; nothing here reaches the internet.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sovits.features import pretrained
from sovits.features.download import (
    ChecksumError,
    DownloadError,
    default_destination,
    fetch,
)
from sovits.features.pretrained import (
    HOME_VARIABLE,
    KNOWN_FILES,
    Download,
    PretrainedFile,
    resolve_weights,
)

TIMEOUT = 5.0


@dataclass
class Served:
    """One request the server answered."""

    path: str
    range: str | None
    status: int
    body_bytes: int


@dataclass
class FileServer:
    """Serves the files of `root` over HTTP/1.0 with single-range (`bytes=N-`) support."""

    root: Path
    ignore_range: bool = False
    drop_after: int | None = None
    requests: list[Served] = field(default_factory=list)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = TIMEOUT

        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            asked = self.headers.get("Range")
            path = state.root / name
            if "/" in name or not path.is_file():
                state.requests.append(Served(name, asked, 404, 0))
                self.send_error(404)
                return
            data = path.read_bytes()
            start, status = 0, 200
            if asked is not None and not state.ignore_range:
                match = re.fullmatch(r"bytes=(\d+)-", asked)
                assert match, asked
                start, status = int(match[1]), 206
                if start >= len(data):
                    state.requests.append(Served(name, asked, 416, 0))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            body = data[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.drop_after is not None:
                body = body[: state.drop_after]
            # recorded before the bytes go out, so the client never finishes first
            state.requests.append(Served(name, asked, status, len(body)))
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def running_server(root: Path) -> Iterator[FileServer]:
    """A FileServer for `root` on 127.0.0.1 (free port) in a thread, stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    state = FileServer(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(TIMEOUT)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    with running_server(tmp_path / "served") as state:
        yield state


def _payload(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes."""
    blocks = b"".join(
        hashlib.sha256(f"{seed}:{index}".encode()).digest() for index in range(size // 32 + 1)
    )
    return blocks[:size]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(*downloads: Download, name: str = "tiny.pt") -> PretrainedFile:
    return PretrainedFile(
        name=name,
        relative_path=f"pretrain/{name}",
        description="a tiny test file",
        urls=("https://example.invalid/tiny.pt",),
        downloads=downloads,
    )


DATA = _payload(100_000)


def test_fresh_download_is_verified_and_atomic(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "out" / "tiny.pt"
    calls: list[tuple[int, int | None]] = []
    result = fetch(
        _entry(Download(url, sha256=_sha(DATA))),
        destination=target,
        progress=lambda done, total: calls.append((done, total)),
        timeout=TIMEOUT,
    )
    assert target.read_bytes() == DATA
    assert result.path == target and result.downloaded and result.verified
    assert result.sha256 == _sha(DATA) and result.url == url
    assert not target.with_name("tiny.pt.part").exists()
    assert [(r.range, r.status) for r in server.requests] == [(None, 200)]
    assert calls[0] == (0, len(DATA)) and calls[-1] == (len(DATA), len(DATA))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_resume_sends_only_the_missing_bytes(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "tiny.pt"
    target.with_name("tiny.pt.part").write_bytes(DATA[:40_000])
    calls: list[tuple[int, int | None]] = []
    result = fetch(
        _entry(Download(url, sha256=_sha(DATA))),
        destination=target,
        progress=lambda done, total: calls.append((done, total)),
        timeout=TIMEOUT,
    )
    assert target.read_bytes() == DATA and result.verified
    (request,) = server.requests
    assert (request.range, request.status) == ("bytes=40000-", 206)
    assert request.body_bytes == len(DATA) - 40_000
    assert calls[0] == (40_000, len(DATA))


def test_interrupted_download_keeps_part_and_resumes(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "tiny.pt"
    entry = _entry(Download(url, sha256=_sha(DATA)))
    server.drop_after = 30_000
    with pytest.raises(DownloadError, match="run again to resume") as caught:
        fetch(entry, destination=target, timeout=TIMEOUT)
    assert url in str(caught.value)
    assert target.with_name("tiny.pt.part").stat().st_size == 30_000
    assert not target.exists()

    server.drop_after = None
    fetch(entry, destination=target, timeout=TIMEOUT)
    assert target.read_bytes() == DATA
    assert [(r.range, r.body_bytes) for r in server.requests] == [
        (None, 30_000),
        ("bytes=30000-", len(DATA) - 30_000),
    ]


def test_server_ignoring_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    server.ignore_range = True
    target = tmp_path / "tiny.pt"
    target.with_name("tiny.pt.part").write_bytes(b"stale bytes from another file")
    result = fetch(_entry(Download(url)), destination=target, timeout=TIMEOUT)
    assert target.read_bytes() == DATA
    assert not result.verified and result.sha256 == _sha(DATA)
    (request,) = server.requests
    assert request.range is not None and request.status == 200
    assert request.body_bytes == len(DATA)


def test_complete_part_file_is_finished_without_a_body(
    server: FileServer, tmp_path: Path
) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "tiny.pt"
    target.with_name("tiny.pt.part").write_bytes(DATA)
    result = fetch(_entry(Download(url, sha256=_sha(DATA))), destination=target, timeout=TIMEOUT)
    assert target.read_bytes() == DATA and result.verified
    assert [r.status for r in server.requests] == [416]


def test_checksum_mismatch_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "tiny.pt"
    wrong = "ab" * 32
    with pytest.raises(ChecksumError) as caught:
        fetch(_entry(Download(url, sha256=wrong)), destination=target, timeout=TIMEOUT)
    message = str(caught.value)
    assert "tiny.pt" in message and wrong in message and _sha(DATA) in message
    assert not target.exists()
    assert not target.with_name("tiny.pt.part").exists()


def test_http_404_is_a_download_error(server: FileServer, tmp_path: Path) -> None:
    url = server.url("missing.pt")
    target = tmp_path / "tiny.pt"
    with pytest.raises(DownloadError) as caught:
        fetch(_entry(Download(url)), destination=target, timeout=TIMEOUT)
    message = str(caught.value)
    assert url in message and "404" in message
    assert str(target) in message  # where to put it by hand
    assert list(tmp_path.glob("tiny.pt*")) == []


def test_refused_connection_is_a_download_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tiny.pt"
    with pytest.raises(DownloadError, match=re.escape(url)):
        fetch(_entry(Download(url)), destination=tmp_path / "tiny.pt", timeout=TIMEOUT)


def test_next_source_is_tried_when_one_fails(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    entry = _entry(Download(server.url("gone.pt")), Download(url, sha256=_sha(DATA)))
    result = fetch(entry, destination=tmp_path / "tiny.pt", timeout=TIMEOUT)
    assert result.url == url and result.verified
    assert [r.status for r in server.requests] == [404, 200]


def test_present_file_is_not_downloaded_again(server: FileServer, tmp_path: Path) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "tiny.pt"
    target.write_bytes(DATA)
    result = fetch(_entry(Download(url, sha256=_sha(DATA))), destination=target, timeout=TIMEOUT)
    assert not result.downloaded and result.verified and result.path == target
    unknown = fetch(_entry(Download(url)), destination=target, timeout=TIMEOUT)
    assert not unknown.downloaded and not unknown.verified and unknown.sha256 == _sha(DATA)
    assert server.requests == []


def test_present_file_with_wrong_checksum_is_refused_until_forced(
    server: FileServer, tmp_path: Path
) -> None:
    url = server.put("tiny.pt", DATA)
    target = tmp_path / "tiny.pt"
    target.write_bytes(b"someone else's weights")
    entry = _entry(Download(url, sha256=_sha(DATA)))
    with pytest.raises(ChecksumError, match="already present"):
        fetch(entry, destination=target, timeout=TIMEOUT)
    assert target.read_bytes() == b"someone else's weights"
    result = fetch(entry, destination=target, force=True, timeout=TIMEOUT)
    assert result.downloaded and target.read_bytes() == DATA


def test_zip_member_and_siblings_are_unpacked(server: FileServer, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("nsf_hifigan/model", DATA)
        bundle.writestr("nsf_hifigan/config.json", b'{"sampling_rate": 44100}')
        bundle.writestr("nsf_hifigan/NOTICE.txt", b"licence")
        bundle.writestr("elsewhere/other.bin", b"not beside the model")
    zipped = archive.read_bytes()
    url = server.put("nsf.zip", zipped)
    target = tmp_path / "pretrain" / "nsf_hifigan" / "model"
    entry = _entry(Download(url, sha256=_sha(zipped), member="model", siblings=True))
    result = fetch(entry, destination=target, timeout=TIMEOUT)
    assert result.verified and result.sha256 == _sha(zipped)
    folder = target.parent
    assert target.read_bytes() == DATA
    assert (folder / "config.json").read_bytes() == b'{"sampling_rate": 44100}'
    assert sorted(path.name for path in folder.iterdir()) == ["NOTICE.txt", "config.json", "model"]


def test_zip_member_is_renamed_and_missing_member_is_reported(
    server: FileServer, tmp_path: Path
) -> None:
    archive = tmp_path / "rmvpe.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("model.pt", DATA)
    url = server.put("rmvpe.zip", archive.read_bytes())
    target = tmp_path / "pretrain" / "rmvpe.pt"
    fetch(_entry(Download(url, member="model.pt")), destination=target, timeout=TIMEOUT)
    assert target.read_bytes() == DATA
    assert sorted(path.name for path in target.parent.iterdir()) == ["rmvpe.pt"]

    with pytest.raises(DownloadError, match=r"no file named 'weights\.pt'.*model\.pt"):
        fetch(
            _entry(Download(url, member="weights.pt")),
            destination=tmp_path / "other" / "rmvpe.pt",
            timeout=TIMEOUT,
        )


def test_mirror_keeps_the_registry_checksum(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HOME_VARIABLE, raising=False)
    monkeypatch.setattr(pretrained, "user_cache_dir", lambda: tmp_path / "cache")
    url = server.put("medium.pt", DATA)
    with pytest.raises(ChecksumError, match="345ae4da62f9b3d5"):
        fetch("medium.pt", url=url, timeout=TIMEOUT)
    assert not (tmp_path / "cache" / "pretrain" / "medium.pt").exists()
    result = fetch("medium.pt", url=url, sha256=_sha(DATA).upper(), timeout=TIMEOUT)
    assert result.verified


def test_default_destination_is_where_the_resolver_looks(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HOME_VARIABLE, raising=False)
    monkeypatch.setattr(pretrained, "user_cache_dir", lambda: tmp_path / "cache")
    url = server.put("fcpe.pt", DATA)
    result = fetch("fcpe.pt", url=url, timeout=TIMEOUT)
    assert result.path == tmp_path / "cache" / "pretrain" / "fcpe.pt"
    assert result.path == default_destination(KNOWN_FILES["fcpe.pt"])
    assert resolve_weights("fcpe.pt") == result.path
    # a file the resolver already finds in $SOVITS_HOME counts as present
    home = tmp_path / "home"
    (home / "pretrain").mkdir(parents=True)
    (home / "pretrain" / "rmvpe.pt").write_bytes(b"weights")
    monkeypatch.setenv(HOME_VARIABLE, str(home))
    present = fetch("rmvpe.pt", timeout=TIMEOUT)
    assert present.path == home / "pretrain" / "rmvpe.pt" and not present.downloaded
    assert len(server.requests) == 1


def test_entry_without_direct_download_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="no direct download") as caught:
        fetch("vec-768-layer-12.onnx", destination=tmp_path / "x.onnx")
    assert "MoeSS-SUBModel" in str(caught.value)


def test_registry_downloads_are_well_formed() -> None:
    for entry in KNOWN_FILES.values():
        for download in entry.downloads:
            assert download.url.startswith("https://"), download.url
            if download.sha256 is not None:
                assert re.fullmatch(r"[0-9a-f]{64}", download.sha256), entry.name
            if download.member is not None:
                assert download.url.endswith(".zip"), download.url
    # openai/whisper names each checkpoint by its sha256
    for name in ("medium.pt", "large-v2.pt"):
        (download,) = KNOWN_FILES[name].downloads
        assert download.sha256 == download.url.split("/")[-2]
