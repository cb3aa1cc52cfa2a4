"""The `sovits` command: sub-commands that parse, call one library function, and print.

Heavy libraries (torch, gradio, lightning) are imported inside commands so that
`sovits --help` answers instantly.
"""

from __future__ import annotations

import sys
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



def _register_command_groups() -> None:
    """Add the commands that live in their own modules (each imports its library lazily)."""
    from sovits.cli import (
        check,
        dataset,
        demo,
        diffusion,
        evaluate,
        infer,
        onnx,
        pitch,
        pretrained,
        retrieval,
        tools,
        train,
    )

    for group in (
        check, pitch, evaluate, pretrained, dataset, train, infer, demo,
        diffusion, retrieval, tools, onnx,
    ):
        group.register(app)


_register_command_groups()


def main() -> None:
    """Console entry point: run the app and turn SovitsError into one clear line."""
    try:
        app()
    except SovitsError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
