"""How the page talks to the job layer: submit, follow, show errors, hand out files.

Every button of the page submits a job to `JobService` and follows it here; nothing
in the web UI runs a step itself. Uploaded files are copied into the service's work
folder (the only place a job may read them from); result files are copied into a
folder of the system's temp directory, the place Gradio serves files from.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sovits.api import JobError, JobService, JobView

__all__ = [
    "Page",
    "ResultFiles",
    "error_markdown",
    "follow",
    "stage_upload",
    "status_markdown",
    "submit",
]

logger = logging.getLogger(__name__)

UPLOADS = "uploads"
"""Folder under the work folder that page uploads are copied into (the service's)."""


def error_markdown(error: JobError) -> str:
    """The typed error as the page shows it: code, message and hint."""
    text = f"**Error** (`{error.code}`): {_escape(error.message)}"
    if error.hint:
        text += f"  \nHint: {_escape(error.hint)}"
    return text


def _escape(text: str) -> str:
    """`text` with Markdown's emphasis and HTML characters escaped (paths contain `_`)."""
    for character in ("\\", "*", "_", "`", "<", ">", "[", "]"):
        text = text.replace(character, "\\" + character)
    return text


def exception_markdown(error: BaseException) -> str:
    """An exception raised at submit time, shown like a failed job's error."""
    from sovits.api import JobError

    return error_markdown(JobError.from_exception(error))


def status_markdown(view: JobView) -> str:
    """One line on a job: its state, progress and stage, or its typed error."""
    if view.state == "failed" and view.error is not None:
        return error_markdown(view.error)
    percent = round(100 * view.progress)
    stage = f" — {_escape(view.stage)}" if view.stage and view.stage != view.state else ""
    if view.state == "running":
        return f"**running** {percent}%{stage} (job {view.id})"
    return f"**{view.state}**{stage} (job {view.id})"


def stage_upload(service: JobService, path: str | Path, *, audio: bool = True) -> Path:
    """Copy an uploaded / recorded file into the work folder; returns the copy.

    The service stores it (`JobService.store_upload`: its own random folder, so two
    users' files of the same name never meet), checking the service's limits (bytes and,
    for `audio`, seconds) and keeping the uploads folder bounded. Raises InputError when
    the upload is missing or not audio, PayloadTooLargeError beyond a limit.
    """
    return service.store_upload(Path(path), audio=audio)


def submit(service: JobService, kind: str, params: Mapping[str, Any]) -> JobView:
    """`service.submit`; SovitsError is left to the caller, who shows it in the page."""
    logger.info("web UI submits a %s job", kind)
    return service.submit(kind, params)


def follow(service: JobService, job_id: str, *, every: float = 0.0) -> Iterator[JobView]:
    """The job's view now and after each change until it ends (the last one is terminal).

    every: the least seconds between two views yielded while the job runs (a training
    job logs many lines; the page need not redraw for each).
    """
    import time

    last = 0.0
    for _ in service.events(job_id, heartbeat=2.0):
        view = service.get(job_id)
        now = time.monotonic()
        if view.terminal or now - last >= every:
            last = now
            yield view
        if view.terminal:
            return


class ResultFiles:
    """Copies job results into one folder under the system temp directory, the place
    Gradio serves files from (a server's work folder may lie anywhere). The copies of
    the newest `keep` jobs are kept; older ones are deleted (Gradio has its own copy of
    whatever a page showed)."""

    def __init__(self, keep: int = 100) -> None:
        self.keep = keep
        self._folder: Path | None = None
        self._lock = threading.Lock()

    def _root(self) -> Path:
        with self._lock:
            if self._folder is None or not self._folder.is_dir():
                self._folder = Path(tempfile.mkdtemp(prefix="sovits-webui-"))
            return self._folder

    def serve(self, job_id: str, paths: list[str]) -> list[str]:
        """Copies of the job's result files (folders are skipped), as path strings."""
        root = self._root()
        folder = root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        self._prune(root)
        served = []
        for text in paths:
            source = Path(text)
            if not source.is_file():
                continue
            target = folder / source.name
            if not target.exists():
                shutil.copyfile(source, target)
            served.append(str(target))
        return served

    def _prune(self, root: Path) -> None:
        with self._lock:
            folders = sorted((path for path in root.iterdir() if path.is_dir()),
                             key=lambda path: path.stat().st_mtime_ns)
            for old in folders[: max(0, len(folders) - self.keep)]:
                try:
                    shutil.rmtree(old)
                except OSError as error:  # a copy in use elsewhere: left for next time
                    logger.warning("could not delete old result copies %s: %s", old, error)


def run_to_end(
    service: JobService,
    kind: str,
    params: Mapping[str, Any],
    on_update: Callable[[JobView], None] | None = None,
) -> JobView:
    """Submit and wait for a job, calling `on_update` with each view; returns the last.

    SovitsError from the submission propagates.
    """
    submitted = view = submit(service, kind, params)
    for view in follow(service, submitted.id):
        if on_update is not None:
            on_update(view)
    return view


class Page:
    """What every tab shares: the service, the served result files, and the model
    pickers (refreshed together when the page loads)."""

    def __init__(self, service: JobService) -> None:
        self.service = service
        self.files = ResultFiles()
        self.model_pickers: list[Any] = []
        """Dropdowns of one model name."""
        self.models_pickers: list[Any] = []
        """Dropdowns of several model names (multiselect)."""

    def model_names(self) -> list[str]:
        """The model folder names under the service's models root."""
        return sorted(info.name for info in self.service.models())
