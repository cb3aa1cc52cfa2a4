"""A command's run as a job: human lines, or with --json the HTTP API's job object.

Commands that match a job kind of `sovits.api` (f0, merge, compress, export-onnx,
train-cluster, train-index, preprocess, inspect) report through `CommandJob`: without
--json its lines are printed as before; with --json they go to the job's log and one
`JobView.to_dict()` is printed on stdout at the end — done with its result files, or
failed with the typed error (code, message, hint) and exit status 2, exactly as the
API shows a job. Building the view from the API's own `JobView` keeps the two from
drifting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import typer

from sovits.errors import SovitsError

__all__ = ["CommandJob", "print_json"]


def print_json(data: Mapping[str, Any]) -> None:
    """`data` as one indented JSON object on stdout (paths and other objects as text)."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


class CommandJob:
    """Collects a command's log lines and result files as a `kind` job with `params`.

    Use as a context manager: `say` prints a line (to the log with --json), `result`
    records a written file; on leaving, --json prints the JobView (a SovitsError
    becomes a failed job and exit status 2). `extra` adds keys to the printed object
    (e.g. inspect's report), after the JobView's own.
    """

    def __init__(self, kind: str, params: Mapping[str, Any], *, as_json: bool) -> None:
        self.kind = kind
        self.params: dict[str, Any] = json.loads(json.dumps(dict(params), default=str))
        self.as_json = as_json
        self.log: list[str] = []
        self.results: list[Path] = []
        self.extra: dict[str, Any] = {}
        self.started = time.time()

    def say(self, line: str, *, err: bool = False) -> None:
        """Show `line` (on stderr when `err`); with --json it only goes to the log."""
        if self.as_json:
            self.log.append(line)
        else:
            typer.echo(line, err=err)

    def result(self, path: Path) -> Path:
        """Record `path` as a file (or folder) the command wrote; returns it."""
        self.results.append(path)
        return path

    def view(self, error: SovitsError | None = None) -> dict[str, Any]:
        """The job as the HTTP API returns it: done, or failed with `error`."""
        from sovits.api.jobs import JobError, JobView

        state = "done" if error is None else "failed"
        view = JobView(
            id="local", kind=self.kind, state=state, progress=1.0 if error is None else 0.0,
            stage=state, log=list(self.log),
            results=[str(path.resolve()) for path in self.results],
            error=None if error is None else JobError.from_exception(error),
            params=self.params, created=self.started, started=self.started,
            finished=time.time(),
        )
        return {**view.to_dict(), **self.extra}

    def __enter__(self) -> CommandJob:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.as_json:
            return
        if error is None:
            print_json(self.view())
        elif isinstance(error, SovitsError):
            print_json(self.view(error))
            raise typer.Exit(2) from None
        # anything else (typer.Exit, a bug) goes on as it is
