"""The web page (Gradio) over `sovits.api`, mounted in the server.

`build_ui(service)` makes the page: tabs Convert, Train, Tools and F0 (and Live when
`sovits.webui.live` is there), every button a job of the given `JobService`. Gradio
is imported when the page is built, not when this package is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio

    from sovits.api import JobService

__all__ = ["build_ui"]


def build_ui(service: JobService) -> gradio.Blocks:
    """The web page over `service`, ready for `gradio.mount_gradio_app`."""
    from sovits.webui.app import build_blocks

    return build_blocks(service)
