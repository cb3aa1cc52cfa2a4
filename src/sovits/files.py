"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Every file sovits writes (configs, checkpoints, audio, features) goes through here.
"""

from __future__ import annotations

import contextlib
import errno
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


def _remove_temporary(temporary: Path) -> None:
    """Delete a temporary file if it was created (its folder may not even exist)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        temporary.unlink()


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Run `write` on a temporary file beside `path`, fsync it, then rename it to `path`.

    Missing parent folders are created. On any failure the temporary file is removed
    and an existing `path` is untouched; the exception propagates (OSError for I/O
    problems, naming `path`, never the temporary name) for the caller to wrap.
    """
    path = Path(path)
    # A fresh name opened with "x" gets the usual permissions (mkstemp would give 0600).
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(
            errno.ENOTDIR, "a file is where the folder should be", str(path.parent)
        ) from None
    except OSError as error:
        raise type(error)(error.errno, error.strerror or str(error), str(path.parent)) from None
    try:
        with temporary.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        _remove_temporary(temporary)
        # The same kind of error, naming the user's path, not the temporary one.
        raise type(error)(error.errno, error.strerror or str(error), str(path)) from None
    except BaseException:
        _remove_temporary(temporary)
        raise
    _fsync_directory(path.parent)
