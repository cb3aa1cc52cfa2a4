"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Every file sovits writes (configs, checkpoints, audio, features) goes through here.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Run `write` on a temporary file beside `path`, fsync it, then rename it to `path`.

    On any failure the temporary file is removed and an existing `path` is untouched;
    the exception propagates (OSError for I/O problems) for the caller to wrap.
    """
    path = Path(path)
    # A fresh name opened with "x" gets the usual permissions (mkstemp would give 0600).
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with temporary.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
