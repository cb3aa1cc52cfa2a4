"""The `sovits pretrained` commands: list and download the pretrained files.

`-m`/`--model` names the model folder as `sovits train -m` does (a name under logs/,
or a path); `--model-dir` is its earlier spelling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption, model_folder

pretrained_app = typer.Typer(
    help="List and download the pretrained files sovits reads (encoders, f0, vocoder).",
    no_args_is_help=True,
)


@pretrained_app.command("list")
def pretrained_list(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", "--model-dir",
            help="Model folder whose base models (G_0.pth, D_0.pth, diffusion/model_0.pt) "
            "are listed: a name under logs/ (as `sovits train -m`) or a path.",
        ),
    ] = "44k",
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Hash every present file and compare the published "
                     "SHA-256 (slow for large files)."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the list as one JSON object.")
    ] = False,
) -> None:
    """Show each pretrained file: what needs it, present or missing, where it goes, its
    size and checksum, and where it comes from; then the base models users fine-tune from."""
    from sovits.cli._jobs import print_json

    model_dir = model_folder(model)
    rows = _pretrained_rows(verify)
    bases = _base_model_rows(model_dir)
    if as_json:
        print_json({"pretrained": rows, "base_models": bases})
        return
    _print_pretrained(rows)
    typer.echo(
        f"\nBase models to fine-tune from (in the model folder {model_dir}; so-vits-svc "
        "publishes none officially: use ones trained with your config's speech encoder):"
    )
    for base in bases:
        status = "present" if base["present"] else "missing"
        typer.echo(f"{base['name']}  {status}  {base['path']}")
        typer.echo(f"    {base['description']}")


def _pretrained_rows(verify: bool) -> list[dict[str, Any]]:
    """One row per known pretrained file: uses, presence, place, size, checksums, sources."""
    from sovits.features.download import default_destination, file_sha256, installed_path
    from sovits.features.pretrained import KNOWN_FILES, file_uses

    uses = file_uses()
    rows: list[dict[str, Any]] = []
    for entry in KNOWN_FILES.values():
        found = installed_path(entry)
        published = next((d.sha256 for d in entry.downloads if d.sha256), None)
        actual = file_sha256(found) if verify and found is not None else None
        rows.append({
            "name": entry.name,
            "used_for": list(uses[entry.name]),
            "present": found is not None,
            "path": str(found or default_destination(entry)),
            "relative_path": entry.relative_path,
            "bytes": found.stat().st_size if found is not None else None,
            "approx_megabytes": entry.approx_megabytes,
            "sha256": published,
            "sha256_of_file": actual,
            "fetch": bool(entry.downloads),
            "sources": [d.url for d in entry.downloads] or list(entry.urls),
        })
    return rows


def _base_model_rows(model_dir: Path) -> list[dict[str, Any]]:
    """The base models (G_0.pth, D_0.pth, diffusion/model_0.pt) of `model_dir`."""
    from sovits.features.pretrained import BASE_MODELS

    return [
        {
            "name": base.relative_path,
            "description": base.description,
            "present": (model_dir / base.relative_path).is_file(),
            "path": str(model_dir / base.relative_path),
        }
        for base in BASE_MODELS
    ]


def _print_pretrained(rows: list[dict[str, Any]]) -> None:
    """The pretrained rows as text: status and place, uses, size, checksum, source."""
    from sovits.features.pretrained import HOME_VARIABLE

    typer.echo(
        f"Pretrained files (looked for in ${HOME_VARIABLE}/<place>, then the user cache; "
        "`sovits pretrained fetch NAME` downloads those with a direct link):"
    )
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        status = "present" if row["present"] else "missing"
        typer.echo(f"{row['name']:<{width}}  {status}  {row['path']}")
        typer.echo(f"    for: {'; '.join(row['used_for'])}")
        if row["bytes"] is not None:
            size = f"{row['bytes'] / 1e6:.1f} MB"
        elif row["approx_megabytes"] is not None:
            size = f"about {row['approx_megabytes']:g} MB"
        else:
            size = "unknown until downloaded"
        typer.echo(f"    goes to: <{HOME_VARIABLE} or cache>/{row['relative_path']}; size {size}")
        checksum = f"sha256 {row['sha256']}" if row["sha256"] else "no published sha256"
        if row["sha256_of_file"] is not None:
            agrees = (
                "matches" if row["sha256_of_file"] == row["sha256"]
                else "DIFFERS" if row["sha256"] else "computed"
            )
            checksum += f"; file {row['sha256_of_file']} ({agrees})"
        typer.echo(f"    {checksum}")
        how = "fetch from" if row["fetch"] else "by hand:"
        typer.echo(f"    {how} {' or '.join(row['sources'])}")


@pretrained_app.command("fetch")
def pretrained_fetch(
    name: Annotated[str, typer.Argument(help="A name from `sovits pretrained list`.")],
    url: Annotated[str | None, typer.Option(help="Mirror URL to download from instead.")] = None,
    dest: Annotated[
        Path | None, typer.Option(help="File or folder to write (default: the user cache).")
    ] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 (hex).")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Download a pretrained file: resumable, checked against its known SHA-256."""
    from sovits.features.download import fetch
    from sovits.features.pretrained import KNOWN_FILES

    if name not in KNOWN_FILES:
        raise typer.BadParameter(f"unknown name; known: {', '.join(KNOWN_FILES)}")
    params = {"name": name, "url": url, "dest": dest, "sha256": sha256, "force": force}
    with CommandJob("pretrained-fetch", params, as_json=as_json) as job, _TransferBar(
        name, shown=not as_json
    ) as bar:
        result = fetch(name, destination=dest, url=url, sha256=sha256, force=force, progress=bar)
        done = "saved" if result.downloaded else "already present at"
        checked = "verified" if result.verified else "not verified: no known checksum"
        job.say(f"{name}: {done} {job.result(result.path)}")
        job.say(f"sha256 {result.sha256} ({checked})")
        job.extra["report"] = {"downloaded": result.downloaded, "verified": result.verified,
                               "sha256": result.sha256}


class _TransferBar:
    """A rich progress bar on stderr, shown once bytes start to arrive."""

    def __init__(self, label: str, *, shown: bool = True) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskID,
            TransferSpeedColumn,
        )

        columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
        self.progress = Progress(*columns, console=Console(stderr=True), disable=not shown)
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
