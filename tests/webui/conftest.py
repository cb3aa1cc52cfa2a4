"""The real server (`sovits.server.create_app`, the web UI mounted at /) on 127.0.0.1,
over a models root with the tiny fixture model, and headless Chromium (Debian's
/usr/bin/chromium driven by Playwright) to open its page."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import make_models_root

CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Server:
    """A running server: its URL and the job service behind it."""

    url: str
    service: Any
    models_root: Path
    work_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import uvicorn

    from sovits.api import JobService
    from sovits.server import create_app

    root = tmp_path_factory.mktemp("webui")
    models_root = make_models_root(root / "models")
    work_dir = root / "work"
    service = JobService(models_root, work_dir)
    app = create_app(service, token=None, allowed_hosts=None)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, name="webui-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not runner.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}", service, models_root, work_dir)
    finally:
        runner.should_exit = True
        thread.join(timeout=10)
        service.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's sync driver, one per test module: a module that starts its own
    (`sync_playwright()`) runs while no other is open in this thread."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "install Debian's chromium (make test's set-up does)"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    """Headless Debian Chromium (Playwright's own browser download is not used)."""
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A fresh tab on the server's page, loaded and with the model list filled in."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(server.url + "/")
    tab.wait_for_selector("#convert-run")
    try:
        yield tab
    finally:
        context.close()
