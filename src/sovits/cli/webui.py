"""`sovits webui`: the web page, served with the HTTP API by the same server as `sovits serve`.

It is `sovits serve` with the page always on: the same options (made from `serve`'s own
signature, so the two never drift apart), less `--no-ui`.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add `webui` to `app`."""
    from sovits.cli.serve import serve

    signature = inspect.signature(serve, eval_str=True)
    parameters = [value for name, value in signature.parameters.items() if name != "no_ui"]

    def webui(**options: Any) -> None:
        serve(**options, no_ui=False)

    webui.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    webui.__doc__ = (
        "Serve the web page at / (Convert, Train, Tools, F0) with the HTTP API under "
        "/api/v1: `sovits serve` with the page always on."
    )
    app.command("webui")(webui)
