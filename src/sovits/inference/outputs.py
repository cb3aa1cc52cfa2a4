"""Planning where a run's conversions write, before any of them runs.

A run converts several (input, options) jobs into one output folder; each result is
named by `sovits.inference.converter.output_name` from the input's stem and the
options. Two inputs with the same stem (`song.wav` and `song.flac`, or `a/song.wav`
and `b/song.wav`) would therefore write the same file and the second would silently
replace the first. `plan_output_paths` names every result up front and refuses the
whole run, naming the clash, before anything is converted; it also refuses to replace
a file that already exists unless the caller asks for it (`--overwrite`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sovits.errors import InputError

if TYPE_CHECKING:
    from sovits.inference.options import ConvertOptions

__all__ = ["plan_output_paths"]


def _clash_key(path: Path) -> str:
    """A comparison key under which two output paths name the same file.

    Absolute and normalised; case-folded, so that names differing only in case also
    count as one file (they are one file on macOS and Windows file systems).
    """
    return os.path.normcase(os.path.abspath(path)).casefold()


def plan_output_paths(
    jobs: Sequence[tuple[Path, ConvertOptions]],
    out_dir: Path,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """The output file of each (input, options) job, in the order of `jobs`.

    jobs: the run's conversions: each input audio path with its options.
    out_dir: the folder the results go to (need not exist yet).
    overwrite: allow replacing files that already exist.

    Raises InputError, before anything is converted, when two jobs would write the same
    file (naming both inputs), when a result's path is an existing folder, or when a
    result file exists and `overwrite` is False (hint: pass --overwrite).
    """
    from sovits.inference.converter import output_name

    out_dir = Path(out_dir)
    planned: list[Path] = []
    owners: dict[str, Path] = {}
    for source, options in jobs:
        source = Path(source)
        target = out_dir / output_name(source.stem, options)
        key = _clash_key(target)
        if key in owners:
            first = owners[key]
            same_input = os.path.abspath(first) == os.path.abspath(source)
            raise InputError(
                f"{first} and {source} would both be written to {target}"
                if not same_input
                else f"{source} is listed twice with the same options; both would be written "
                f"to {target}",
                hint="give inputs with the same name different names, convert them in "
                "separate runs with different output folders (-o), or drop the duplicate",
            )
        owners[key] = source
        planned.append(target)
    for source, target in zip((source for source, _ in jobs), planned, strict=True):
        if target.is_dir():
            raise InputError(
                f"the result of {source} would replace a folder", where=target,
                hint="choose another output folder (-o)",
            )
    existing = [target for target in planned if target.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(
            f"result file already exists{more}", where=existing[0],
            hint="pass --overwrite to replace it, or choose another output folder (-o)",
        )
    return planned
