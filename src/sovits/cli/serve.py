"""`sovits serve`: the HTTP API, the so-vits-svc VST route and the web UI in one process."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["is_loopback", "register", "serve"]


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 7860,
    models_root: Annotated[
        Path,
        typer.Option("--models-root", help="Folder of model folders (G_*.pth + config.json)."),
    ] = Path("models"),
    work_dir: Annotated[
        Path, typer.Option("--work-dir", help="Folder for uploads and job results.")
    ] = Path("sovits-work"),
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="SOVITS_TOKEN",
                     help="Bearer token required by every request (needed off loopback)."),
    ] = None,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="Serve the API only, no page.")] = False,
    allowed_hosts: Annotated[
        list[str] | None,
        typer.Option("--allowed-host",
                     help="Host name clients may use (repeat; default: loopback and --host)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", "--model_path",
                     help="Model /voiceChangeModel uses: a folder name under the root, or a "
                     "model file as in `sovits infer -m` (default: the only model)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", "--config_path",
                     help="config.json of a model file given with -m (default: beside it)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", "-d", help="torch device of conversions.")
    ] = None,
    max_conversions: Annotated[
        int, typer.Option("--max-conversions", min=1, help="Conversion jobs run at once.")
    ] = 1,
    max_trainings: Annotated[
        int, typer.Option("--max-trainings", min=1, help="Training jobs run at once.")
    ] = 1,
    max_queued: Annotated[
        int, typer.Option("--max-queued", min=1, help="Jobs that may wait.")
    ] = 32,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="Largest upload, MB.")
    ] = 200.0,
    max_audio_seconds: Annotated[
        float, typer.Option("--max-audio-seconds", min=0.1, help="Longest uploaded audio, s.")
    ] = 600.0,
) -> None:
    """Serve the HTTP API (/api/v1, OpenAPI at /openapi.json), the so-vits-svc VST route
    /voiceChangeModel and the web page at /."""
    from sovits.errors import InputError

    if not is_loopback(host) and not token:
        raise InputError(
            f"binding {host} (not loopback) needs a token",
            hint="pass --token T (or set SOVITS_TOKEN), or bind 127.0.0.1",
        )
    if not models_root.is_dir():
        raise InputError("the models root is not a folder", where=models_root,
                         hint="create it and put one folder per model in it (--models-root)")
    hosts = list(allowed_hosts or ["127.0.0.1", "localhost", "::1"])
    if not allowed_hosts and not is_loopback(host):
        hosts.append("*" if host in ("0.0.0.0", "::") else host)

    import uvicorn

    from sovits.api import JobService
    from sovits.server import create_app

    service = JobService(models_root, work_dir, max_conversions=max_conversions,
                         max_trainings=max_trainings, max_queued=max_queued, device=device)
    try:
        if model is not None and Path(model).is_file():
            model = service.pin_model(Path(model).stem, Path(model), config).name
        elif config is not None:
            raise InputError("-c names the config of a model file given with -m",
                             hint="give -m the model file, or drop -c for a model folder")
        app = create_app(service, token=token, allowed_hosts=hosts, with_ui=not no_ui,
                         max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                         max_audio_seconds=max_audio_seconds, vst_model=model)
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"sovits serving {os.fspath(models_root)} at http://{shown}:{port}/ "
                   f"(API /api/v1, spec /openapi.json{'' if no_ui else ', page /'})", err=True)
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    """Add `serve` to `app`."""
    app.command("serve")(serve)
