"""Paths a request names, confined to the folders the service may touch.

A request's path is taken relative to the work folder (then the models root), or as
an absolute path; after following links it must lie inside one of the allowed roots,
so "../../etc/passwd" and links out of a root are refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sovits.api.errors import PathNotAllowedError
from sovits.errors import InputError

__all__ = ["confine_path", "inside"]


def inside(path: Path, root: Path) -> bool:
    """Whether `path` (resolved) is `root` (resolved) or below it."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def confine_path(
    value: str | os.PathLike[str],
    roots: Sequence[Path],
    *,
    what: str,
    must_exist: bool = True,
    kind: str = "file",
) -> Path:
    """`value` as an absolute path inside one of `roots` (tried in order for relative
    values).

    Raises PathNotAllowedError when it resolves outside every root, InputError when
    `must_exist` and it is not an existing file / folder (`kind`).
    """
    text = os.fspath(value)
    if not text or "\x00" in text:
        raise InputError(f"{what}: an empty or malformed path", where=text or None)
    raw = Path(text)
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    escaped = False
    for candidate in candidates:
        if not any(inside(candidate, root) for root in roots):
            escaped = True  # "..", an absolute path elsewhere, or a link out of a root
            continue
        if not must_exist:
            return candidate.resolve()
        if candidate.is_file() if kind == "file" else candidate.is_dir():
            return candidate.resolve()
    if escaped:
        raise PathNotAllowedError(
            f"{what} {text!r} is outside the folders this server may use",
            hint="name a path inside the work folder or the models root",
        )
    raise InputError(
        f"{what} {text!r} is not an existing {kind}",
        hint="upload it first (POST /api/v1/files) or check the name",
    )
