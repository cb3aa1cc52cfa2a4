"""Errors of the job layer and the code each SovitsError is reported under.

Every failure a shell shows is a `JobError(code, message, hint)`; the code is a stable
snake_case name the HTTP API maps to a status (404, 409, 413, 422, ...).
"""

from __future__ import annotations

import re

from sovits.errors import SovitsError

__all__ = [
    "JobCancelled",
    "JobNotFoundError",
    "JobStateError",
    "PathNotAllowedError",
    "PayloadTooLargeError",
    "QueueFullError",
    "ReportedError",
    "UnknownModelError",
    "error_code",
]


class JobNotFoundError(SovitsError):
    """No job has this id."""


class UnknownModelError(SovitsError):
    """No model folder of this name is under the models root."""


class JobStateError(SovitsError):
    """The job is not in a state that allows the request (e.g. results of a running job)."""


class QueueFullError(SovitsError):
    """As many jobs wait as the service allows; try again when some have finished."""


class PathNotAllowedError(SovitsError):
    """A path points outside the folders the service may read or write."""


class PayloadTooLargeError(SovitsError):
    """An upload is larger, or its audio longer, than the service accepts."""


class JobCancelled(SovitsError):
    """Raised inside a running job when it was asked to stop."""


class ReportedError(SovitsError):
    """An error a child process reported, keeping its code."""

    def __init__(self, code: str, message: str, *, hint: str | None = None) -> None:
        self.code = code
        super().__init__(message, hint=hint)


def error_code(error: BaseException) -> str:
    """The snake_case code of `error`: its class name without "Error" (InputError ->
    "input", QueueFullError -> "queue_full"); "internal" for anything not a SovitsError."""
    if isinstance(error, ReportedError):
        return error.code
    if not isinstance(error, SovitsError):
        return "internal"
    name = type(error).__name__
    if name.endswith("Error"):
        name = name[: -len("Error")]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "sovits"
