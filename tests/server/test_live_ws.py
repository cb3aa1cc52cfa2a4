"""The live WebSocket route /api/v1/live: protocol, converted audio, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.api.helpers import RATE, make_models_root

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sovits.api import JobService

    root = make_models_root(tmp_path_factory.mktemp("models"))
    service = JobService(root, tmp_path_factory.mktemp("work"))
    yield service
    service.close()


def _client(service: Any, token: str | None = None) -> Any:
    from fastapi.testclient import TestClient

    from sovits.server import create_app

    app = create_app(service, token=token, allowed_hosts=None, with_ui=False)
    return TestClient(app, base_url="http://127.0.0.1")


def _connect(client: Any, path: str = "/api/v1/live", **headers: str) -> Any:
    """A WebSocket session that says it is for 127.0.0.1 (TestClient's default host is
    "testserver", which the server does not serve)."""
    return client.websocket_connect(path, headers={"host": "127.0.0.1", **headers})


def _tone(seconds: float) -> np.ndarray:
    times = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * times)).astype(np.float32)


def test_a_stream_returns_one_converted_block_per_block(service: Any) -> None:
    wave = _tone(1.0)
    with _connect(_client(service)) as socket:
        socket.send_json({"model": "tiny", "options": {"speaker": "spk_b", "f0_method": "pm",
                                                       "transpose": 2},
                          "settings": {"block_ms": 100}})
        ready = socket.receive_json()
        assert ready["type"] == "ready" and ready["sample_rate"] == RATE
        assert ready["algorithmic_latency_ms"] > 100
        block = ready["block_samples"]
        received = []
        for begin in range(0, wave.shape[0], block):
            chunk = wave[begin : begin + block]
            socket.send_bytes(chunk.astype("<f4").tobytes())
            while True:
                message = socket.receive()
                if message.get("bytes") is not None:
                    received.append(np.frombuffer(message["bytes"], "<f4"))
                    break
                assert message["text"]  # a stats message
        socket.send_json({"type": "stop"})
        done = socket.receive_json()
    assert done["type"] == "done" and done["blocks"] == len(received)
    out = np.concatenate(received)
    assert out.shape == wave.shape
    assert np.abs(out[ready["delay_samples"] + RATE // 4 :]).max() > 0.01


def test_bad_requests_get_one_error_message(service: Any) -> None:
    client = _client(service)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": "../etc", "options": {}}, "path_not_allowed"),
        ({"model": "nothing", "options": {}}, "unknown_model"),
        ({"model": "tiny", "options": {"cluster_model_path": "/etc/passwd"}}, "input"),
        ({"model": "tiny", "options": {"speaker": "nobody"}}, "input"),
        ({"model": "tiny", "options": {"speaker": "spk_a", "enhance": True}}, "input"),
        ({"model": "tiny", "settings": {"block_ms": 1e9}}, "input"),
        ({"model": "tiny", "settings": {"block": 100}}, "input"),
        ({"model": "tiny", "settings": {"gate_db": "loud"}}, "input"),
    ]
    for request, code in cases:
        with _connect(client) as socket:
            socket.send_json(request)
            message = socket.receive_json()
            assert message["type"] == "error", request
            assert message["error"]["code"] == code, (request, message)


def test_token_host_and_origin_are_checked(service: Any) -> None:
    from starlette.websockets import WebSocketDisconnect

    client = _client(service, token="secret")
    with pytest.raises(WebSocketDisconnect), _connect(client):
        pass
    with _connect(client, "/api/v1/live?token=secret") as socket:
        socket.send_json({"model": "tiny", "options": {"speaker": "spk_a", "f0_method": "pm"}})
        assert socket.receive_json()["type"] == "ready"
    open_client = _client(service)
    with pytest.raises(WebSocketDisconnect), _connect(
        open_client, origin="http://evil.example"
    ):
        pass
    with pytest.raises(WebSocketDisconnect), _connect(
        open_client, host="evil.example"
    ):
        pass



def test_an_unknown_setting_names_the_accepted_ones(service: Any) -> None:
    with _connect(_client(service)) as socket:
        socket.send_json({"model": "tiny", "settings": {"blocksize": 100}})
        error = socket.receive_json()["error"]
    assert error["message"] == "unknown live setting(s): blocksize"
    assert "block_ms" in error["hint"] and "gate_hangover_ms" in error["hint"]
