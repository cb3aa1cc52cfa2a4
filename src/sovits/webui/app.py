"""The page: one Gradio Blocks with a tab per workflow, all over one JobService."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio

    from sovits.api import JobService

__all__ = ["TITLE", "build_blocks", "has_live_tab"]

TITLE = "sovits"

_INTRO = (
    "# sovits\n"
    "Singing voice conversion with so-vits-svc 4.0/4.1 models. Every button runs a job "
    "on this server (the same jobs as `sovits serve`'s HTTP API under `/api/v1`)."
)


def has_live_tab() -> bool:
    """Whether the streaming tab's module (`sovits.webui.live`) is installed."""
    return importlib.util.find_spec("sovits.webui.live") is not None


def build_blocks(service: JobService) -> gradio.Blocks:
    """Tabs Convert, Train, Tools, F0 (and Live when `sovits.webui.live` exists)."""
    import gradio as gr

    from sovits.webui.convert_tab import build_convert_tab
    from sovits.webui.f0_tab import build_f0_tab
    from sovits.webui.jobs import Page
    from sovits.webui.tools_tab import build_tools_tab
    from sovits.webui.train_tab import build_train_tab

    page = Page(service)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(_INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Convert", id="convert", elem_id="tab-convert"):
                convert = build_convert_tab(page)
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                build_train_tab(page)
            with gr.Tab("Tools", id="tools", elem_id="tab-tools"):
                build_tools_tab(page)
            with gr.Tab("F0", id="f0", elem_id="tab-f0"):
                build_f0_tab(page)
            if has_live_tab():
                from sovits.webui.live import build_live_tab

                with gr.Tab("Live", id="live", elem_id="tab-live"):
                    build_live_tab(service)

        # models may have been added since the page was built: list them on each load
        pickers = [*page.model_pickers, *page.models_pickers]

        def refresh(current: str | None, *chosen: Any) -> list[Any]:
            names = page.model_names()
            updates = list(convert["refresh"](current))
            for picker, value in zip(pickers, chosen, strict=True):
                if picker in page.models_pickers:
                    kept = [name for name in (value or []) if name in names]
                    updates.append(gr.Dropdown(choices=names, value=kept))
                else:
                    updates.append(gr.Dropdown(choices=names, value=value or (
                        names[0] if names else None)))
            return updates

        blocks.load(refresh, inputs=[convert["model"], *pickers],
                    outputs=[convert["model"], convert["speaker"], convert["summary"], *pickers])
    return blocks
