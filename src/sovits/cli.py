"""The `sovits` command: sub-commands that parse, call one library function, and print.

Heavy libraries (torch, gradio, lightning) are imported inside commands so that
`sovits --help` answers instantly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sovits import __version__
from sovits.errors import SovitsError

app = typer.Typer(
    name="sovits",
    help="Singing voice conversion compatible with so-vits-svc 4.0/4.1 model files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sovits {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Singing voice conversion compatible with so-vits-svc 4.0/4.1 model files."""


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="so-vits-svc config.json to validate.")],
) -> None:
    """Validate a so-vits-svc config.json: unknown, missing or ill-typed keys are reported."""
    from sovits.config import load_svc_config

    cfg = load_svc_config(config)
    speakers = ", ".join(sorted(cfg.spk, key=cfg.spk.__getitem__))
    typer.echo(
        f"{config}: ok: {cfg.data.sampling_rate} Hz, hop {cfg.data.hop_length}, "
        f"encoder {cfg.model.speech_encoder}, speakers: {speakers}"
    )


def main() -> None:
    """Console entry point: run the app and turn SovitsError into one clear line."""
    try:
        app()
    except SovitsError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
