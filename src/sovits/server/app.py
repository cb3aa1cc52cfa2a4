"""The FastAPI app: REST under /api/v1, the so-vits-svc VST route, the web UI at /.

Security: a bearer token (when set) guards every route but /api/v1/health (the page
may also carry it as the `sovits_token` cookie, set by opening `/?token=...`); the
Host header must name an allowed host and a cross-site Origin may not change
anything; uploads are limited in bytes and audio in seconds; every path a request
names is confined to the work folder and the models root. Errors are JSON
`{"error": {"code", "message", "hint"}}`, never a stack trace.
"""

from __future__ import annotations

import hmac
import importlib.util
import inspect as pyinspect
import io
import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sovits import __version__
from sovits.api import JOB_KINDS, JobService
from sovits.api.errors import (
    JobNotFoundError,
    JobStateError,
    PathNotAllowedError,
    PayloadTooLargeError,
    QueueFullError,
    UnknownModelError,
    error_code,
)
from sovits.api.jobs import DEFAULT_MAX_AUDIO_SECONDS, DEFAULT_MAX_UPLOAD_BYTES
from sovits.api.paths import inside
from sovits.errors import InputError, MissingFileError, SovitsError
from sovits.server.schemas import job_request_model, schema_description

__all__ = ["DEFAULT_MAX_AUDIO_SECONDS", "DEFAULT_MAX_UPLOAD_BYTES", "LOOPBACK_HOSTS",
           "PayloadTooLargeError", "build_app"]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
_TOKEN_COOKIE = "sovits_token"
_OPEN_PATHS = ("/api/v1/health",)

_STATUS = {
    JobNotFoundError: 404,
    UnknownModelError: 404,
    MissingFileError: 404,
    PathNotAllowedError: 403,
    JobStateError: 409,
    QueueFullError: 429,
}


def _status_of(error: SovitsError) -> int:
    for cls, status in _STATUS.items():
        if isinstance(error, cls):
            return status
    if isinstance(error, PayloadTooLargeError):
        return 413
    return 422


def _error(status: int, code: str, message: str, hint: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "hint": hint}},
                        status_code=status, headers=headers)


def _sovits_error(error: SovitsError) -> JSONResponse:
    message = f"{error.where}: {error.message}" if error.where else error.message
    return _error(_status_of(error), error_code(error), message, error.hint)


def _host_name(value: str) -> str:
    """The host of a Host header or an Origin's authority, without port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def build_app(
    service: JobService,
    *,
    token: str | None,
    allowed_hosts: Sequence[str] | None,
    with_ui: bool = True,
    max_upload_bytes: int | None = None,
    max_audio_seconds: float | None = None,
    vst_model: str | None = None,
) -> FastAPI:
    """The server app over `service` (see `sovits.server.create_app`).

    The limits live in the service (`JobService.set_limits`), which the API, the page
    and the VST route all go through; `max_upload_bytes` / `max_audio_seconds`, when
    given, set them there.
    """
    if max_upload_bytes is not None or max_audio_seconds is not None:
        service.set_limits(
            max_upload_bytes=service.max_upload_bytes if max_upload_bytes is None
            else max_upload_bytes,
            max_audio_seconds=service.max_audio_seconds if max_audio_seconds is None
            else max_audio_seconds,
        )
    hosts = {_host_name(host) for host in (allowed_hosts or LOOPBACK_HOSTS)}
    hosts |= {f"[{host}]" for host in hosts if ":" in host and not host.startswith("[")}
    any_host = "*" in hosts
    app = FastAPI(
        title="sovits",
        version=__version__,
        description="Singing voice conversion (so-vits-svc 4.0/4.1 models): jobs for "
        "conversion, f0, evaluation, training and model tools.",
    )
    app.state.service = service
    # The HTTP guard below does not see WebSockets: sovits.server.live checks these itself.
    app.state.token = token
    app.state.allowed_hosts = frozenset(hosts)

    # ------------------------------------------------------------ errors

    @app.exception_handler(SovitsError)
    async def _on_sovits_error(request: Request, error: SovitsError) -> JSONResponse:
        return _sovits_error(error)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return _error(422, "validation", "; ".join(problems) or "invalid request",
                      "see /openapi.json for the accepted fields")

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        return _error(error.status_code, codes.get(error.status_code, "http"),
                      str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _on_crash(request: Request, error: Exception) -> JSONResponse:
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal", f"internal error ({type(error).__name__})",
                      "see the server log for details")

    # ------------------------------------------------------------ guards

    @app.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Response:
        host = _host_name(request.headers.get("host", ""))
        if not any_host and host not in hosts:
            return _error(400, "host_not_allowed", f"host {host!r} is not served here",
                          "open the server by an allowed host name (see --allowed-host)")
        origin = request.headers.get("origin")
        if origin and request.method not in ("GET", "HEAD", "OPTIONS"):
            origin_host = _host_name(origin.split("://", 1)[-1].split("/", 1)[0])
            if origin_host != host and not (any_host or origin_host in hosts):
                return _error(403, "origin_not_allowed",
                              f"requests from {origin!r} may not change anything here")
        set_cookie = False
        if token is not None and request.url.path not in _OPEN_PATHS:
            given = request.headers.get("authorization", "")
            bearer = given[7:] if given.lower().startswith("bearer ") else ""
            candidates = [bearer, request.cookies.get(_TOKEN_COOKIE, "")]
            query = request.query_params.get("token", "")
            if query and hmac.compare_digest(query.encode(), token.encode()):
                set_cookie = True
            if not set_cookie and not any(
                value and hmac.compare_digest(value.encode(), token.encode())
                for value in candidates
            ):
                return _error(401, "unauthorized", "a valid bearer token is needed",
                              "send 'Authorization: Bearer <token>' (sovits serve --token)",
                              headers={"WWW-Authenticate": "Bearer"})
        length = request.headers.get("content-length")
        limit = service.max_upload_bytes
        if limit is not None and length is not None and length.isdigit() and int(length) > limit:
            return _error(413, "payload_too_large",
                          f"the request is {int(length)} bytes; the limit is {limit}")
        response: Response = await call_next(request)
        if set_cookie and token is not None:
            response.set_cookie(_TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    # ------------------------------------------------------------ helpers

    def save_upload(upload: UploadFile, *, audio: bool) -> Path:
        """Store an upload under work/uploads/<random>/<safe name> through the service,
        which checks its size and, for audio, its duration."""
        return service.store_upload(upload.file, upload.filename or "upload", audio=audio)

    def relative(path: Path) -> str:
        return str(path.relative_to(service.work_dir)) if inside(path, service.work_dir) else str(
            path)

    def accepted(view: Any) -> JSONResponse:
        return JSONResponse(view.to_dict(), status_code=202)

    # ------------------------------------------------------------ routes

    @app.get("/api/v1/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness: no token needed."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/v1/models", tags=["models"])
    def list_models(inspect: bool = False) -> list[dict[str, Any]]:
        """Model folders under the models root (with `inspect=true`: a short report)."""
        return [info.to_dict() for info in service.models(with_inspect=inspect)]

    @app.get("/api/v1/models/{name}", tags=["models"])
    def get_model(name: str) -> dict[str, Any]:
        """One model folder with its `inspect` summary."""
        from sovits.api.jobs import _inspect_summary

        info = service.model(name)
        data = info.to_dict()
        data["inspect"] = _inspect_summary(info)
        return data

    @app.get("/api/v1/models/{name}/speakers", tags=["models"])
    def get_speakers(name: str) -> list[str]:
        """The model's speakers, by id."""
        return list(service.model(name).speakers)

    @app.get("/api/v1/options", tags=["jobs"])
    def get_options(kind: str = "convert") -> list[dict[str, Any]]:
        """The options schema of conversions (kind=convert) or of another job kind."""
        from sovits.api.params import JOB_PARAMS
        from sovits.inference.options import ConvertOptions

        if kind not in JOB_PARAMS:
            raise InputError(f"unknown job kind {kind!r}",
                             hint="use one of " + ", ".join(JOB_KINDS))
        return schema_description(ConvertOptions if kind == "convert" else JOB_PARAMS[kind])

    @app.post("/api/v1/files", tags=["files"], status_code=201)
    def upload_file(
        file: UploadFile = File(...),  # noqa: B008
        audio: bool = Form(True),
    ) -> dict[str, Any]:
        """Store a file in the work folder; returns the path to name in job parameters.

        Audio (the default) is checked to be readable and within the duration limit.
        """
        path = save_upload(file, audio=audio)
        return {"path": relative(path), "bytes": path.stat().st_size}

    @app.post("/api/v1/convert", tags=["jobs"], status_code=202)
    def convert_upload(
        file: UploadFile = File(..., description="The audio to convert."),  # noqa: B008
        model: str = Form(..., description="Model folder name under the models root."),
        options: str = Form("{}", description="ConvertOptions as JSON (see /api/v1/options)."),
    ) -> JSONResponse:
        """Upload audio and queue its conversion in one request; returns the job."""
        try:
            values = json.loads(options)
        except json.JSONDecodeError as error:
            raise InputError(f"options is not JSON: {error.msg}") from None
        if not isinstance(values, dict):
            raise InputError("options must be a JSON object")
        path = save_upload(file, audio=True)
        try:
            view = service.submit("convert", {"model": model, "input": str(path),
                                              "options": values})
        except SovitsError:
            service.discard_upload(path)
            raise
        return accepted(view)

    def submit_route(kind: str) -> Any:
        model = job_request_model(kind)

        def submit(body: Any) -> JSONResponse:
            params = body.model_dump(exclude_unset=True)
            if kind == "convert":
                params["options"] = body.options.model_dump(exclude_unset=True)
            return accepted(service.submit(kind, params))

        submit.__signature__ = pyinspect.Signature(  # type: ignore[attr-defined]
            [pyinspect.Parameter("body", pyinspect.Parameter.POSITIONAL_OR_KEYWORD,
                                 annotation=model)]
        )
        submit.__name__ = f"submit_{kind.replace('-', '_')}"
        submit.__doc__ = f"Queue a {kind!r} job; returns it (202)."
        return submit

    for kind in JOB_KINDS:
        app.post(f"/api/v1/jobs/{kind}", tags=["jobs"], status_code=202)(submit_route(kind))

    @app.get("/api/v1/jobs", tags=["jobs"])
    def list_jobs() -> list[dict[str, Any]]:
        """Every job the server remembers, oldest first."""
        return [view.to_dict() for view in service.list()]

    @app.get("/api/v1/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str) -> dict[str, Any]:
        """One job: state, progress, stage, log, results, error."""
        return service.get(job_id).to_dict()

    @app.post("/api/v1/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job."""
        return service.cancel(job_id).to_dict()

    @app.post("/api/v1/jobs/{job_id}/retry", tags=["jobs"], status_code=202)
    def retry_job(job_id: str) -> JSONResponse:
        """Queue a new job with the parameters of an ended one; returns the new job."""
        return accepted(service.retry(job_id))

    @app.get("/api/v1/jobs/{job_id}/events", tags=["jobs"])
    def job_events(job_id: str) -> StreamingResponse:
        """Server-Sent Events: the job (as JSON) after every change, until it ends."""
        service.get(job_id)  # 404 before the stream starts

        def stream() -> Iterator[str]:
            for update in service.events(job_id, heartbeat=15.0):
                yield f"event: job\ndata: {json.dumps(update)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/api/v1/jobs/{job_id}/results/{index}", tags=["jobs"])
    def job_result(job_id: str, index: int) -> FileResponse:
        """Download result file `index` (0-based) of a finished job."""
        view = service.get(job_id)
        if view.state != "done":
            raise JobStateError(f"job {job_id} is {view.state}, not done",
                                hint="wait for it (GET /api/v1/jobs/{id} or its events)")
        if not 0 <= index < len(view.results):
            raise JobNotFoundError(f"job {job_id} has no result {index}",
                                   hint=f"it has {len(view.results)}")
        path = Path(view.results[index])
        if not path.is_file():
            raise InputError(f"result {index} of job {job_id} is a folder, not a file",
                             where=relative(path))
        if not (inside(path, service.work_dir) or inside(path, service.models_root)):
            raise PathNotAllowedError("the result lies outside the server's folders")
        return FileResponse(path, filename=path.name)

    # ------------------------------------------------------------ so-vits-svc VST route

    @app.post("/voiceChangeModel", tags=["compatibility"])
    def voice_change_model(
        sample: UploadFile = File(..., description="The audio to convert (wav)."),  # noqa: B008
        fPitchChange: float = Form(0.0, description="Pitch shift, semitones."),
        sampleRate: float = Form(0.0, description="Rate of the returned wav (the DAW's)."),
        sSpeakId: float = Form(0.0, description="Speaker id."),
    ) -> Response:
        """so-vits-svc's flask_api.py route for the VST plug-in: returns the converted
        audio as a wav at `sampleRate` (the model's rate when 0)."""
        import soundfile

        if vst_model is not None:
            info = service.model(vst_model)
        else:
            found = service.models()
            if len(found) != 1:
                raise InputError(
                    f"{len(found)} models under the models root; the VST route needs one",
                    hint="start the server with --model NAME",
                )
            info = found[0]
        speaker_id = int(sSpeakId)
        if not 0 <= speaker_id < max(len(info.speakers), 1):
            raise InputError(f"speaker id {speaker_id} is not in model {info.name!r}")
        path = save_upload(sample, audio=True)
        try:
            options = {"transpose": fPitchChange, "audio_format": "wav"}
            if info.speakers:
                options["speaker"] = info.speakers[speaker_id]
            view = service.submit("convert", {"model": info.name, "input": str(path),
                                              "options": options})
            view = service.wait(view.id)
            if view.state != "done" or view.error is not None:
                error = view.error
                return _error(422 if error is not None and error.code != "internal" else 500,
                              error.code if error else view.state,
                              error.message if error else f"the conversion was {view.state}",
                              error.hint if error else None)
            audio, rate = soundfile.read(view.results[0], dtype="float32")
            target = int(sampleRate) if sampleRate >= 1 else rate
            if target != rate:
                from sovits.audio.resample import resample

                audio = resample(audio, rate, target)
            buffer = io.BytesIO()
            soundfile.write(buffer, audio, target, format="WAV")
            shutil.rmtree(Path(view.results[0]).parent, ignore_errors=True)
        finally:
            service.discard_upload(path)
        return Response(buffer.getvalue(), media_type="audio/wav",
                        headers={"Content-Disposition": 'attachment; filename="temp.wav"'})

    # ------------------------------------------------------------ live, web UI

    if importlib.util.find_spec("sovits.server.live") is not None:
        live = importlib.import_module("sovits.server.live")
        app.include_router(live.router)
    if with_ui:
        _mount_ui(app, service)
    return app


def _mount_ui(app: FastAPI, service: JobService) -> None:
    """Mount the Gradio page at / when sovits.webui provides `build_ui`."""
    from sovits import webui

    build_ui = getattr(webui, "build_ui", None)
    if build_ui is None:
        logger.warning("the web UI is not available (sovits.webui.build_ui is missing)")
        return
    import gradio

    gradio.mount_gradio_app(app, build_ui(service), path="/")
