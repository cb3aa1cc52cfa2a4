"""The `sovits pretrained` commands: list and download the pretrained files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

pretrained_app = typer.Typer(
    help="List and download the pretrained files sovits reads (encoders, f0, vocoder).",
    no_args_is_help=True,
)


@pretrained_app.command("list")
def pretrained_list() -> None:
    """Show each known pretrained file: present or missing, its path, where it comes from."""
    from sovits.features.download import default_destination, installed_path
    from sovits.features.pretrained import KNOWN_FILES

    width = max(len(name) for name in KNOWN_FILES)
    for entry in KNOWN_FILES.values():
        found = installed_path(entry)
        status = "present" if found else "missing"
        typer.echo(f"{entry.name:<{width}}  {status}  {found or default_destination(entry)}")
        if entry.downloads:
            checked = "sha256 known" if entry.downloads[0].sha256 else "no known sha256"
            typer.echo(f"    {entry.downloads[0].url} ({checked})")
        else:
            typer.echo(f"    by hand: {' or '.join(entry.urls)}")


@pretrained_app.command("fetch")
def pretrained_fetch(
    name: Annotated[str, typer.Argument(help="A name from `sovits pretrained list`.")],
    url: Annotated[str | None, typer.Option(help="Mirror URL to download from instead.")] = None,
    dest: Annotated[
        Path | None, typer.Option(help="File or folder to write (default: the user cache).")
    ] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 (hex).")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
) -> None:
    """Download a pretrained file: resumable, checked against its known SHA-256."""
    from sovits.features.download import fetch
    from sovits.features.pretrained import KNOWN_FILES

    if name not in KNOWN_FILES:
        raise typer.BadParameter(f"unknown name; known: {', '.join(KNOWN_FILES)}")
    with _TransferBar(name) as bar:
        result = fetch(name, destination=dest, url=url, sha256=sha256, force=force, progress=bar)
    done = "saved" if result.downloaded else "already present at"
    checked = "verified" if result.verified else "not verified: no known checksum"
    typer.echo(f"{name}: {done} {result.path}\nsha256 {result.sha256} ({checked})")


class _TransferBar:
    """A rich progress bar on stderr, shown once bytes start to arrive."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskID,
            TransferSpeedColumn,
        )

        columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
        self.progress = Progress(*columns, console=Console(stderr=True))
        self.label = label
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __enter__(self) -> _TransferBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()


def register(app: typer.Typer) -> None:
    """Add the `pretrained` group to `app`."""
    app.add_typer(pretrained_app, name="pretrained")
