"""Live conversion over a WebSocket: /api/v1/live (the web UI's Live tab uses it).

Protocol (one conversion stream per connection):

1. The client sends one text message, JSON:
   `{"model": "<folder under the models root>", "options": {<ConvertOptions fields>},
   "settings": {<LiveSettings fields>}}`. The settings' keys are exactly the fields of
   `sovits.inference.live_settings.LiveSettings` (block_ms, low_latency, gate, ...),
   from which `sovits live`'s flags and the Live tab's widgets are made too; an unknown
   key is an error naming the accepted ones. Options that name files are refused (a
   model's own cluster model or feature index is used when "cluster_ratio" is set);
   offline-only options are refused by the streaming converter (see `sovits.inference.streaming`).
2. The server answers `{"type": "ready", "sample_rate", "block_samples",
   "algorithmic_latency_ms", "delay_samples"}`.
3. The client sends binary messages: mono float32 little-endian samples at that rate,
   any length up to 5 s. Each is answered by one binary message of as many samples
   of converted audio (`delay_samples` behind). About once a second a text message
   `{"type": "stats", "blocks", "compute_ms_mean", "compute_ms_p95", "compute_ms_max",
   "rtf", "underruns"}` follows.
4. `{"type": "stop"}` ends the stream: `{"type": "done", ...stats}`, then the close.
   Errors: `{"type": "error", "error": {"code", "message", "hint"}}`, then the close.

Security as the HTTP routes (whose middleware does not see WebSockets): the Host must
be an allowed host, a browser's Origin must be this host (or an allowed one), and
with a token the handshake must carry it (`?token=`, the `sovits_token` cookie the
page sets, or `Authorization: Bearer`). One live stream runs at a time per server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from sovits.errors import InputError, SovitsError

__all__ = ["MAX_BLOCK_SECONDS", "live_settings", "router"]

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_BLOCK_SECONDS = 5.0
"""Longest binary message accepted, seconds of audio."""
_TOKEN_COOKIE = "sovits_token"


def _host(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _refusal(websocket: WebSocket) -> str | None:
    """Why this handshake may not go on, or None."""
    state = websocket.app.state
    hosts = getattr(state, "allowed_hosts", frozenset({"127.0.0.1", "localhost", "::1",
                                                       "[::1]"}))
    host = _host(websocket.headers.get("host", ""))
    if "*" not in hosts and host not in hosts:
        return f"host {host!r} is not served here"
    origin = websocket.headers.get("origin")
    if origin:
        origin_host = _host(origin.split("://", 1)[-1].split("/", 1)[0])
        if origin_host != host and "*" not in hosts and origin_host not in hosts:
            return f"pages from {origin!r} may not open live streams here"
    token = getattr(state, "token", None)
    if token is not None:
        given = websocket.headers.get("authorization", "")
        candidates = [
            given[7:] if given.lower().startswith("bearer ") else "",
            websocket.cookies.get(_TOKEN_COOKIE, ""),
            websocket.query_params.get("token", ""),
        ]
        if not any(value and hmac.compare_digest(value.encode(), token.encode())
                   for value in candidates):
            return "a valid token is needed (open the page with ?token=..., or send it)"
    return None


def _session_lock(websocket: WebSocket) -> asyncio.Lock:
    state = websocket.app.state
    lock = getattr(state, "live_lock", None)
    if lock is None:
        lock = asyncio.Lock()
        state.live_lock = lock
    return lock


def _error_message(error: BaseException) -> dict[str, Any]:
    from sovits.api.errors import error_code

    if isinstance(error, SovitsError):
        message = f"{error.where}: {error.message}" if error.where else error.message
        return {"type": "error", "error": {"code": error_code(error), "message": message,
                                           "hint": error.hint}}
    logger.exception("live stream failed", exc_info=error)
    return {"type": "error", "error": {"code": "internal", "message": "the live stream failed",
                                       "hint": "see the server log"}}


def live_settings(raw: Any) -> Any:
    """The LiveSettings of a start message's "settings" (None: all defaults). Its keys
    are exactly LiveSettings' field names; InputError for an unknown key or a value
    that does not fit (naming the setting)."""
    from sovits.config.options_schema import option_specs, values_from_mapping
    from sovits.inference.live_settings import LiveSettings

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError("\"settings\" must be a JSON object")
    accepted = [item.name for item, _ in option_specs(LiveSettings)]
    unknown = sorted(set(raw) - set(accepted))
    if unknown:
        raise InputError(f"unknown live setting(s): {', '.join(unknown)}",
                         hint=f"use {', '.join(accepted)}")
    try:
        values = values_from_mapping(LiveSettings, raw)
    except (TypeError, ValueError) as error:
        raise InputError(f"bad live settings: {error}") from None
    return LiveSettings(**values)


def build_streamer(service: Any, request: dict[str, Any]) -> tuple[Any, Any]:
    """The StreamingConverter a start message asks for, with the lock of its converter
    (the model comes from the job service's converter cache, whose lock serialises its
    use with conversion jobs). InputError for anything unfit."""
    from sovits.api.models import resolve_model
    from sovits.config.options_schema import option_specs, values_from_mapping
    from sovits.inference.options import ConvertOptions
    from sovits.inference.streaming import StreamingConverter

    if not isinstance(request, dict) or not isinstance(request.get("model"), str):
        raise InputError("the first message must be JSON with a \"model\" name")
    info = resolve_model(service.models_root, request["model"])
    raw_options = dict(request.get("options") or {})
    settings = live_settings(request.get("settings"))
    path_fields = {item.name for item, spec in option_specs(ConvertOptions) if spec.path_kind}
    named = sorted(path_fields & set(raw_options))
    if named:
        raise InputError(f"live streams cannot name files ({', '.join(named)})",
                         hint="the model's own cluster model / feature index is used")
    try:
        values = values_from_mapping(ConvertOptions, raw_options)
    except (TypeError, ValueError) as error:
        raise InputError(f"bad live options: {error}") from None
    values.setdefault("speaker", info.speakers[0] if info.speakers else "")
    values.setdefault("f0_method", "fcpe")
    if values.get("cluster_ratio", 0):
        found = info.feature_index if values.get("feature_retrieval") else info.cluster_model
        if found is None:
            raise InputError(f"model {info.name!r} has no cluster model / feature index")
        values["cluster_model_path"] = found
    options = ConvertOptions(**values)
    converter, lock = service.converters.get(info)
    return StreamingConverter(converter, options, settings.stream_settings()), lock


@router.websocket("/api/v1/live")
async def live(websocket: WebSocket) -> None:
    """A live conversion stream (see the module doc for the protocol)."""
    refusal = _refusal(websocket)
    if refusal is not None:
        logger.warning("live stream refused: %s", refusal)
        await websocket.close(code=1008, reason=refusal[:120])
        return
    await websocket.accept()
    lock = _session_lock(websocket)
    if lock.locked():
        await websocket.send_json(_error_message(InputError(
            "another live stream is running on this server", hint="try again when it ends")))
        await websocket.close(code=1013)
        return
    async with lock:
        try:
            await _serve(websocket)
        except WebSocketDisconnect:
            return
        except Exception as error:  # reported to the client, then closed
            try:
                await websocket.send_json(_error_message(error))
                await websocket.close(code=1011 if not isinstance(error, SovitsError) else 1008)
            except (WebSocketDisconnect, RuntimeError):
                pass


async def _serve(websocket: WebSocket) -> None:
    service = websocket.app.state.service
    try:
        request = json.loads(await websocket.receive_text())
    except json.JSONDecodeError as error:
        raise InputError(f"the first message is not JSON: {error}") from None
    streamer, converter_lock = await run_in_threadpool(build_streamer, service, request)

    def process(block: np.ndarray) -> np.ndarray:
        with converter_lock:  # a conversion job on the same model waits, and vice versa
            converted: np.ndarray = streamer.process(block)
        return converted

    rate = streamer.sample_rate
    await websocket.send_json({
        "type": "ready",
        "sample_rate": rate,
        "block_samples": streamer.block_samples,
        "algorithmic_latency_ms": round(streamer.algorithmic_latency_ms, 2),
        "delay_samples": streamer.delay_samples,
    })
    last_stats = time.monotonic()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("text") is not None:
            command = json.loads(message["text"])
            if isinstance(command, dict) and command.get("type") == "stop":
                await websocket.send_json({"type": "done", **streamer.stats.summary()})
                await websocket.close(code=1000)
                return
            raise InputError("unknown text message; send audio as binary or {\"type\": \"stop\"}")
        data = message.get("bytes") or b""
        if len(data) % 4 or len(data) > 4 * MAX_BLOCK_SECONDS * rate:
            raise InputError(
                f"audio messages are float32 samples, at most {MAX_BLOCK_SECONDS:g} s each"
            )
        block = np.frombuffer(data, dtype="<f4").astype(np.float32)
        converted = await run_in_threadpool(process, block)
        await websocket.send_bytes(converted.astype("<f4").tobytes())
        if time.monotonic() - last_stats >= 1.0:
            last_stats = time.monotonic()
            await websocket.send_json({"type": "stats", **streamer.stats.summary()})
