"""`JobService`: queued, cancellable jobs over the library, shared by every shell.

A job is submitted with a kind and its parameters (checked at once: bad parameters
raise before anything is queued), waits in a bounded queue, runs on a worker thread
of its class ("conversion": convert, f0, evaluate, inspect, merge, compress,
export-onnx; "training": resample, prepare, preprocess, train, train-cluster,
train-index), and ends done, failed (with a typed JobError) or cancelled.
Preprocessing and training run in a child process so a crash there never takes the
service down; cancelling kills it. Every state change is visible through `get`,
`wait` and `events`.

The service also holds the limits every shell enforces (upload bytes, input audio
seconds: checked when a file is stored with `store_upload` and again at submit for
each audio input) and keeps the uploads folder bounded: an upload is deleted when the
record of the last job naming it is forgotten, and old uploads beyond a count or an
age are deleted when a new one arrives (never one a queued or running job names).
"""

from __future__ import annotations

import builtins
import dataclasses
import itertools
import logging
import os
import queue
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sovits.api.errors import (
    JobCancelled,
    JobNotFoundError,
    JobStateError,
    PayloadTooLargeError,
    QueueFullError,
    error_code,
)
from sovits.api.models import (
    ConverterCache,
    ModelInfo,
    discover_models,
    model_info_for_file,
    resolve_model,
)
from sovits.errors import InputError, SovitsError

__all__ = [
    "DEFAULT_MAX_AUDIO_SECONDS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "JOB_CLASSES",
    "JOB_KINDS",
    "UPLOADS",
    "JobContext",
    "JobError",
    "JobService",
    "JobView",
]

logger = logging.getLogger(__name__)

JOB_CLASSES: dict[str, str] = {
    "convert": "conversion",
    "f0": "conversion",
    "evaluate": "conversion",
    "inspect": "conversion",
    "merge": "conversion",
    "compress": "conversion",
    "export-onnx": "conversion",
    "train-cluster": "training",
    "train-index": "training",
    "resample": "training",
    "prepare": "training",
    "preprocess": "training",
    "train": "training",
}
"""Job kind -> the worker class that runs it."""

JOB_KINDS = tuple(JOB_CLASSES)
TERMINAL_STATES = ("done", "failed", "cancelled")
_MAX_LOG_LINES = 500
_MAX_FINISHED_JOBS = 1000
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""Largest upload the service stores by default, bytes."""
DEFAULT_MAX_AUDIO_SECONDS = 600.0
"""Longest input audio the service accepts by default, seconds."""
UPLOADS = "uploads"
"""Folder under the work folder that uploads are stored in, one random folder each."""
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class JobError:
    """Why a job failed: a stable code (e.g. "input", "checkpoint", "missing_file",
    "internal"), one line of message, and a hint (or None)."""

    code: str
    message: str
    hint: str | None = None

    @classmethod
    def from_exception(cls, error: BaseException) -> JobError:
        """The JobError of `error`; anything not a SovitsError is "internal" without its
        details (they go to the log, never to a client)."""
        if isinstance(error, SovitsError):
            message = f"{error.where}: {error.message}" if error.where else error.message
            return cls(error_code(error), message, error.hint)
        return cls("internal", f"internal error ({type(error).__name__})",
                   "see the server log for details")

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


@dataclass(frozen=True)
class JobView:
    """A snapshot of one job. `to_dict()` is what the HTTP API returns and what
    `sovits ... --json` prints.

    progress: fraction done in [0, 1]; stage: what it is doing now; log: its last log
    lines; results: the files it wrote (absolute paths); error: set when failed;
    params: the parameters as submitted (JSON-ready); times: seconds since the epoch.
    """

    id: str
    kind: str
    state: str
    progress: float
    stage: str
    log: list[str]
    results: list[str]
    error: JobError | None
    params: dict[str, Any]
    created: float
    started: float | None = None
    finished: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": self.progress,
            "stage": self.stage,
            "log": list(self.log),
            "results": list(self.results),
            "error": None if self.error is None else self.error.to_dict(),
            "params": self.params,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


@dataclass
class _Job:
    id: str
    kind: str
    params: dict[str, Any]
    prepared: Any
    state: str = "queued"
    progress: float = 0.0
    stage: str = "queued"
    log: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    error: JobError | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    version: int = 0
    cancel_requested: bool = False
    on_cancel: Callable[[], None] | None = None

    def view(self) -> JobView:
        return JobView(
            id=self.id, kind=self.kind, state=self.state, progress=self.progress,
            stage=self.stage, log=list(self.log), results=list(self.results),
            error=self.error, params=self.params, created=self.created,
            started=self.started, finished=self.finished,
        )


class JobContext:
    """What a running job may do: report progress and log lines, check for
    cancellation, and where to write its files (`out_dir`, created on first use)."""

    def __init__(self, service: JobService, job: _Job) -> None:
        self._service = service
        self._job = job
        self.models_root = service.models_root
        self.work_dir = service.work_dir
        self.converters = service.converters
        self.out_dir = service.work_dir / "jobs" / job.id

    def progress(self, fraction: float, stage: str | None = None) -> None:
        """Report `fraction` done (clipped to [0, 1]) and the stage; raises
        JobCancelled when the job was asked to stop."""
        self.check_cancelled()
        with self._service._changed:
            self._job.progress = min(max(float(fraction), 0.0), 1.0)
            if stage is not None:
                self._job.stage = stage
            self._service._touch(self._job)

    def log(self, line: str) -> None:
        """Add a line to the job's log (the last lines are kept)."""
        with self._service._changed:
            self._job.log.append(line)
            del self._job.log[:-_MAX_LOG_LINES]
            self._service._touch(self._job)

    def check_cancelled(self) -> None:
        """Raise JobCancelled when the job was asked to stop."""
        if self._job.cancel_requested:
            raise JobCancelled("the job was cancelled")

    @property
    def cancel_requested(self) -> bool:
        return self._job.cancel_requested

    def on_cancel(self, action: Callable[[], None] | None) -> None:
        """Run `action` when the job is cancelled while it runs (e.g. kill a child)."""
        with self._service._changed:
            self._job.on_cancel = action
            run_now = action is not None and self._job.cancel_requested
        if run_now and action is not None:
            action()

    def output_dir(self) -> Path:
        """`out_dir`, created."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir


class JobService:
    """Runs jobs: at most `max_conversions` conversion-class and `max_trainings`
    training-class jobs at once, at most `max_queued` waiting; loaded models are
    cached (`model_cache_size` converters).

    models_root: folder of model folders; work_dir: where uploads and job results go
    (created). device: torch device of conversions (None: CUDA when available).
    max_upload_bytes / max_audio_seconds: the largest upload and the longest input audio
    accepted (None: no limit); every shell (HTTP API, web page, VST route) goes through
    them. max_uploads / max_upload_age: uploads kept beyond these (count, seconds) are
    deleted, oldest first, when a new one is stored. max_finished_jobs: ended jobs
    remembered (the oldest records are forgotten, with the uploads only they named).
    """

    def __init__(
        self,
        models_root: Path,
        work_dir: Path,
        *,
        max_conversions: int = 1,
        max_trainings: int = 1,
        max_queued: int = 32,
        model_cache_size: int = 2,
        device: str | None = None,
        max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
        max_audio_seconds: float | None = DEFAULT_MAX_AUDIO_SECONDS,
        max_uploads: int = 200,
        max_upload_age: float = 24 * 3600.0,
        max_finished_jobs: int = _MAX_FINISHED_JOBS,
    ) -> None:
        if max_conversions < 1 or max_trainings < 1:
            raise InputError("at least one conversion and one training job must be able to run")
        if max_queued < 1:
            raise InputError(f"max_queued must be at least 1, got {max_queued}")
        self.models_root = Path(models_root).resolve()
        self.work_dir = Path(work_dir).resolve()
        if self.work_dir.is_relative_to(self.models_root):
            raise InputError(
                "the work folder lies inside the models root: uploads would count as models",
                where=self.work_dir, hint="choose a work folder outside the models root",
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.max_queued = max_queued
        self.max_upload_bytes: int | None = None
        self.max_audio_seconds: float | None = None
        self.set_limits(max_upload_bytes=max_upload_bytes, max_audio_seconds=max_audio_seconds)
        if max_uploads < 1 or max_upload_age <= 0 or max_finished_jobs < 1:
            raise InputError("max_uploads, max_upload_age and max_finished_jobs must be positive")
        self.max_uploads = max_uploads
        self.max_upload_age = float(max_upload_age)
        self.max_finished_jobs = max_finished_jobs
        self._uploads_lock = threading.Lock()
        self.max_running = {"conversion": max_conversions, "training": max_trainings}
        self.converters = ConverterCache(model_cache_size, device=device)
        self._pinned: dict[str, ModelInfo] = {}
        self._jobs: dict[str, _Job] = {}
        self._changed = threading.Condition()
        self._queues: dict[str, queue.Queue[_Job | None]] = {
            name: queue.Queue() for name in self.max_running
        }
        self._running = {name: 0 for name in self.max_running}
        self.peak_running = {name: 0 for name in self.max_running}
        """The most jobs of each class that ran at once (for tests and the load report)."""
        self._closed = False
        self._counter = itertools.count(1)
        self._workers = [
            threading.Thread(
                target=self._work, args=(name,), name=f"sovits-{name}-{index}", daemon=True
            )
            for name, count in self.max_running.items()
            for index in range(count)
        ]
        for worker in self._workers:
            worker.start()

    # ------------------------------------------------------------------ submitting

    def submit(self, kind: str, params: Mapping[str, Any]) -> JobView:
        """Queue a job of `kind` with `params` (see sovits.api.params); returns its view.

        Raises InputError for an unknown kind or bad parameters, UnknownModelError /
        PathNotAllowedError for models and paths that are not there or not allowed, and
        QueueFullError when `max_queued` jobs already wait.
        """
        from sovits.api.runners import prepare_job

        if self._closed:
            raise JobStateError("the job service is closed")
        if kind not in JOB_CLASSES:
            raise InputError(
                f"unknown job kind {kind!r}", hint="use one of " + ", ".join(JOB_KINDS)
            )
        if not isinstance(params, Mapping):
            raise InputError("job parameters must be an object (name -> value)")
        prepared, shown = prepare_job(self, kind, params)
        with self._changed:
            waiting = sum(1 for job in self._jobs.values() if job.state == "queued")
            if waiting >= self.max_queued:
                raise QueueFullError(
                    f"{waiting} jobs are already waiting (the limit is {self.max_queued})",
                    hint="try again when some have finished",
                )
            job_id = f"{next(self._counter):06d}-{secrets.token_hex(4)}"
            job = _Job(id=job_id, kind=kind, params=shown, prepared=prepared)
            self._jobs[job_id] = job
            forgotten = self._forget_old()
            self._touch(job)
            view = job.view()
        self._queues[JOB_CLASSES[kind]].put(job)
        self._delete_uploads(forgotten)
        return view

    def _forget_old(self) -> set[Path]:
        """Drop the oldest ended jobs beyond `max_finished_jobs` (caller holds the
        condition); returns the upload folders that only they named."""
        finished = [job for job in self._jobs.values() if job.state in TERMINAL_STATES]
        dropped = finished[: max(0, len(finished) - self.max_finished_jobs)]
        if not dropped:
            return set()
        for job in dropped:
            del self._jobs[job.id]
        named = {folder for job in dropped for folder in self._uploads_named(job.params)}
        return named - self._uploads_in_use(every_job=True)

    # ------------------------------------------------------------------ limits, uploads

    def set_limits(self, *, max_upload_bytes: int | None,
                   max_audio_seconds: float | None) -> None:
        """Set the largest upload (bytes) and the longest input audio (seconds) the
        service accepts; None: no limit."""
        if max_upload_bytes is not None and max_upload_bytes < 1:
            raise InputError(f"max_upload_bytes must be positive, got {max_upload_bytes}")
        if max_audio_seconds is not None and not max_audio_seconds > 0:
            raise InputError(f"max_audio_seconds must be positive, got {max_audio_seconds}")
        self.max_upload_bytes = max_upload_bytes
        self.max_audio_seconds = max_audio_seconds

    def check_audio(self, path: Path, *, readable: bool = True) -> float | None:
        """The duration of audio file `path` in seconds. Raises PayloadTooLargeError when
        it is longer than `max_audio_seconds`, and InputError when it is not audio sovits
        can read (with `readable` False: returns None then, leaving the job that reads
        it to report the problem)."""
        from sovits.audio.io import audio_info

        try:
            frames, rate, _channels, _subtype = audio_info(path)
        except InputError as error:  # named by file name: a client never sees server paths
            if not readable:
                return None
            raise InputError(f"not audio sovits can read ({error.message})", where=path.name,
                             hint="use wav, flac or ogg") from None
        seconds = frames / max(rate, 1)
        if self.max_audio_seconds is not None and seconds > self.max_audio_seconds:
            raise PayloadTooLargeError(
                f"the audio lasts {seconds:.1f} s; the limit is {self.max_audio_seconds:g} s",
                where=path.name, hint="cut it into shorter parts",
            )
        return seconds

    def new_upload_folder(self) -> Path:
        """A new, empty folder under work_dir/uploads/ for one upload (older uploads
        beyond the count or age limit are deleted first)."""
        self._prune_uploads()
        folder = self.work_dir / UPLOADS / secrets.token_hex(8)
        folder.mkdir(parents=True)
        return folder

    def store_upload(self, source: str | os.PathLike[str] | BinaryIO, name: str | None = None,
                     *, audio: bool = True) -> Path:
        """Store an upload (a file path, or a binary stream read to its end) as
        work_dir/uploads/<random>/<safe name>; returns the stored file.

        Raises PayloadTooLargeError beyond `max_upload_bytes`, and for `audio` the
        errors of `check_audio`; nothing is kept then.
        """
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.is_file():
                raise InputError("the uploaded file is gone", where=path,
                                 hint="upload or record it again")
            name = name or path.name
        safe = _SAFE_NAME.sub("_", Path(name or "upload").name).strip("._") or "upload"
        folder = self.new_upload_folder()
        target = folder / safe
        try:
            if isinstance(source, (str, os.PathLike)):
                size = Path(source).stat().st_size
                if self.max_upload_bytes is not None and size > self.max_upload_bytes:
                    raise PayloadTooLargeError(
                        f"the upload is larger than {self.max_upload_bytes} bytes")
                shutil.copyfile(source, target)
            else:
                self._copy_stream(source, target)
            if audio:
                self.check_audio(target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return target

    def _copy_stream(self, stream: BinaryIO, target: Path) -> None:
        written = 0
        with target.open("wb") as handle:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if self.max_upload_bytes is not None and written > self.max_upload_bytes:
                    raise PayloadTooLargeError(
                        f"the upload is larger than {self.max_upload_bytes} bytes")
                handle.write(chunk)

    def discard_upload(self, path: Path) -> None:
        """Delete the upload folder holding `path` (a file `store_upload` returned)."""
        self._delete_uploads(self._uploads_named([str(path)]))

    def _uploads_named(self, values: Any) -> set[Path]:
        """The upload folders (work_dir/uploads/<random>) that paths in `values` (job
        parameters: nested dicts, lists, text) lie in."""
        root = self.work_dir / UPLOADS
        found: set[Path] = set()
        stack = [values]
        while stack:
            value = stack.pop()
            if isinstance(value, Mapping):
                stack.extend(value.values())
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, (str, Path)):
                path = Path(value)
                if path.is_absolute() and path.is_relative_to(root) and path != root:
                    found.add(root / path.relative_to(root).parts[0])
        return found

    def _uploads_in_use(self, *, every_job: bool = False) -> set[Path]:
        """Upload folders named by queued or running jobs (with `every_job`: by any job
        the service remembers). The caller holds the condition."""
        jobs: Iterable[_Job] = self._jobs.values()
        if not every_job:
            jobs = [job for job in jobs if job.state not in TERMINAL_STATES]
        return self._uploads_named([job.params for job in jobs])

    def _delete_uploads(self, folders: Iterable[Path]) -> None:
        for folder in folders:
            if folder.is_dir():
                logger.info("deleting upload %s", folder.name)
                shutil.rmtree(folder, ignore_errors=True)

    def _prune_uploads(self) -> None:
        """Delete uploads beyond `max_uploads` (oldest first) and older than
        `max_upload_age`, except those a queued or running job names."""
        root = self.work_dir / UPLOADS
        if not root.is_dir():
            return
        with self._uploads_lock:
            with self._changed:
                busy = self._uploads_in_use()
            dated: list[tuple[float, Path]] = []
            for entry in root.iterdir():
                try:  # another request may delete its own upload meanwhile
                    if entry.is_dir():
                        dated.append((entry.stat().st_mtime, entry))
                except FileNotFoundError:
                    continue
            dated.sort()
            excess = len(dated) + 1 - self.max_uploads  # +1: the one being stored
            now = time.time()
            doomed = [
                folder for index, (modified, folder) in enumerate(dated)
                if folder not in busy
                and (index < excess or now - modified > self.max_upload_age)
            ]
            self._delete_uploads(doomed)

    # ------------------------------------------------------------------ looking

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r}", hint="list jobs with GET /api/v1/jobs")
        return job

    def get(self, job_id: str) -> JobView:
        """The job's current view. Raises JobNotFoundError."""
        with self._changed:
            return self._job(job_id).view()

    def list(self) -> builtins.list[JobView]:
        """Every job the service remembers, oldest first."""
        with self._changed:
            return [job.view() for job in self._jobs.values()]

    def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """Block until the job ends (or `timeout` seconds pass); returns its view."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            job = self._job(job_id)
            while job.state not in TERMINAL_STATES:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left if left is not None else 1.0)
            return job.view()

    def events(self, job_id: str, *, heartbeat: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield the job's view (`to_dict()`) now and after every change, until it ends.

        heartbeat: when set, the current view is yielded again after this many seconds
        without a change (lets a server notice a closed connection).
        """
        last = -1
        while True:
            with self._changed:
                job = self._job(job_id)
                waited = 0.0
                while job.version == last:
                    step = 0.5 if heartbeat is None else min(0.5, heartbeat)
                    self._changed.wait(step)
                    waited += step
                    if heartbeat is not None and waited >= heartbeat:
                        break
                last = job.version
                snapshot = job.view()
            yield snapshot.to_dict()
            if snapshot.terminal:
                return

    def pin_model(self, name: str, model_file: Path, config: Path | None = None) -> ModelInfo:
        """Serve the model file `model_file` (anywhere; named by the operator, never by
        a request) under `name`, before the models root's folders of that name."""
        info = model_info_for_file(name, model_file, config)
        self._pinned[name] = info
        return info

    def model(self, name: str) -> ModelInfo:
        """The model called `name`: a pinned one, else the folder `name` under the
        models root. Raises UnknownModelError / PathNotAllowedError."""
        pinned = self._pinned.get(name) if isinstance(name, str) else None
        return pinned if pinned is not None else resolve_model(self.models_root, name)

    def models(self, *, with_inspect: bool = False) -> builtins.list[ModelInfo]:
        """One ModelInfo per pinned model and per model folder under the models root
        (see sovits.api.models); `with_inspect` adds a short `sovits inspect` summary."""
        found = list(self._pinned.values()) + [
            info for info in discover_models(self.models_root) if info.name not in self._pinned
        ]
        if with_inspect:
            found = [dataclasses.replace(info, inspect=_inspect_summary(info)) for info in found]
        return found

    # ------------------------------------------------------------------ cancelling

    def cancel(self, job_id: str) -> JobView:
        """Stop the job: a queued one is cancelled at once, a running one at its next
        check (between clips of a conversion; a child process is killed). Cancelling an
        ended job changes nothing."""
        action = None
        with self._changed:
            job = self._job(job_id)
            if job.state == "queued":
                job.state, job.stage, job.finished = "cancelled", "cancelled", time.time()
                self._touch(job)
            elif job.state == "running":
                job.cancel_requested = True
                job.stage = "cancelling"
                action = job.on_cancel
                self._touch(job)
        if action is not None:
            action()
        return self.get(job_id)

    def retry(self, job_id: str) -> JobView:
        """Submit a new job with the kind and parameters of an ended job (failed or
        cancelled, say); returns the new job. Raises JobStateError while it runs."""
        view = self.get(job_id)
        if not view.terminal:
            raise JobStateError(f"job {job_id} is {view.state}; only an ended job is retried",
                                hint="cancel it first, or wait for it")
        return self.submit(view.kind, view.params)

    def close(self, *, timeout: float = 10.0) -> None:
        """Cancel every job and stop the workers (waits up to `timeout` s for them)."""
        if self._closed:
            return
        self._closed = True
        for view in self.list():
            if not view.terminal:
                self.cancel(view.id)
        for name, count in self.max_running.items():
            for _ in range(count):
                self._queues[name].put(None)
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> JobService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ running

    def _touch(self, job: _Job) -> None:
        """Mark a change (caller holds the condition) and wake waiters."""
        job.version += 1
        self._changed.notify_all()

    def _work(self, job_class: str) -> None:
        from sovits.api.runners import run_job

        jobs = self._queues[job_class]
        while True:
            job = jobs.get()
            if job is None:
                return
            with self._changed:
                if job.state != "queued":
                    continue
                job.state, job.stage, job.started = "running", "starting", time.time()
                self._running[job_class] += 1
                self.peak_running[job_class] = max(
                    self.peak_running[job_class], self._running[job_class]
                )
                self._touch(job)
            context = JobContext(self, job)
            state, error, results = "done", None, []
            try:
                results = [str(path) for path in run_job(context, job.kind, job.prepared)]
                if job.cancel_requested:
                    state = "cancelled"
            except JobCancelled:
                state = "cancelled"
            except SovitsError as failure:
                if job.cancel_requested:  # e.g. the converter's ConversionStopped
                    state = "cancelled"
                else:
                    state, error = "failed", JobError.from_exception(failure)
                    logger.info("job %s (%s) failed: %s", job.id, job.kind, failure)
            except Exception as failure:  # a bug: reported as internal, logged in full
                state, error = "failed", JobError.from_exception(failure)
                logger.exception("job %s (%s) failed with an internal error", job.id, job.kind)
            with self._changed:
                job.state, job.error, job.finished = state, error, time.time()
                job.results = results
                job.stage = state
                if state == "done":
                    job.progress = 1.0
                job.on_cancel = None
                job.prepared = None  # frees audio / parsed options held by the job
                self._running[job_class] -= 1
                self._touch(job)


def _inspect_summary(info: ModelInfo) -> dict[str, Any]:
    """A short `inspect` report of a model, or {"error": ...} when it cannot be read."""
    from sovits.tools.inspect import inspect_model

    try:
        report = inspect_model(info.model_file, info.config)
    except SovitsError as error:
        return {"error": JobError.from_exception(error).to_dict()}
    data = report.to_dict()
    keys = ("file_format", "version", "speech_encoder", "sample_rate", "n_parameters",
            "dtype", "iteration", "fits_config", "mismatches", "warnings")
    return {key: data.get(key) for key in keys}
