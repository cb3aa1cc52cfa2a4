"""The HTTP API (FastAPI) over `sovits.api`: routes under /api/v1 and the so-vits-svc VST route.

`create_app(service, token=..., allowed_hosts=...)` builds the app (the web UI mounted
at / when `with_ui`); `sovits serve` runs it with uvicorn. FastAPI is imported only when
an app is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from sovits.api import JobService

__all__ = ["create_app"]


def create_app(
    service: JobService,
    *,
    token: str | None,
    allowed_hosts: Sequence[str] | None,
    with_ui: bool = True,
    **limits: Any,
) -> FastAPI:
    """The server app over `service`.

    token: bearer token every route but /api/v1/health requires (None: none, for
    loopback only). allowed_hosts: host names the Host header may carry (None: the
    loopback names; "*": any). with_ui: mount the Gradio page at /. limits:
    max_upload_bytes, max_audio_seconds (set on the service, which every route and the
    page go through; left out: the service's own), vst_model (model name of
    /voiceChangeModel).
    """
    from sovits.inference.memory import REUSE_CACHE_CAPACITY, bound_onednn_primitive_cache
    from sovits.server.app import build_app

    # Live sessions and the VST route's chunks repeat block lengths: keep their oneDNN
    # primitives (sovits.inference.memory), whichever request comes first.
    bound_onednn_primitive_cache(REUSE_CACHE_CAPACITY)
    return build_app(service, token=token, allowed_hosts=allowed_hosts, with_ui=with_ui,
                     **limits)
