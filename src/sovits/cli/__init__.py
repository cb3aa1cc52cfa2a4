"""The `sovits` command: sub-commands that parse, call one library function, and print.

Heavy libraries (torch, gradio, lightning) are imported inside commands so that
`sovits --help` answers instantly.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sovits import __version__
from sovits.errors import SovitsError


def _show_flags_as_flags(command: Any, ctx: Any) -> None:
    """Give every on/off flag of `command` (typer's own click Command) an empty metavar,
    so help lists `--half` rather than `--half <bool>` (typer labels every option with
    its type)."""
    for param in command.get_params(ctx):
        if (
            param.param_type_name == "option"
            and getattr(param, "is_flag", False)
            and not getattr(param, "count", False)
            and param.metavar is None
        ):
            param.metavar = ""
    for sub_command in getattr(command, "commands", {}).values():  # nested groups
        _show_flags_as_flags(sub_command, ctx)


class _SovitsGroup(TyperGroup):
    """The top-level group: its own and every sub-command's flags show as flags in help."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _show_flags_as_flags(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _show_flags_as_flags(self, ctx)
        super().format_help(ctx, formatter)


app = typer.Typer(
    cls=_SovitsGroup,
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
        live,
        onnx,
        pitch,
        pretrained,
        retrieval,
        serve,
        tools,
        train,
        webui,
    )

    for group in (
        check, pitch, evaluate, pretrained, dataset, train, infer, demo,
        diffusion, retrieval, tools, onnx, serve, live, webui,
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
