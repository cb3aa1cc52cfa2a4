"""`sovits serve`: refuses a non-loopback bind without a token; starts, answers and
stops as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sovits.cli.serve import is_loopback
from tests.api.helpers import make_models_root
from tests.server.live import free_port

pytestmark = pytest.mark.timeout(120)

SOVITS = [sys.executable, "-c", "from sovits.cli import main; main()"]


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.4", "::"])
def test_binding_off_loopback_without_a_token_exits_with_a_message(host: str,
                                                                   tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "SOVITS_TOKEN"}
    result = subprocess.run([*SOVITS, "serve", "--host", host, "--models-root", str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=60,
                            env=environment)
    assert result.returncode != 0
    assert "token" in result.stderr and host in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_starts_answers_and_stops(tmp_path: Path) -> None:
    models_root = make_models_root(tmp_path / "models")
    port = free_port()
    process = subprocess.Popen(
        [*SOVITS, "serve", "--port", str(port), "--models-root", str(models_root),
         "--work-dir", str(tmp_path / "work"), "--no-ui"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.2)
        assert [model["name"] for model in httpx.get(f"{url}/api/v1/models").json()] == ["tiny"]
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "sovits"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
