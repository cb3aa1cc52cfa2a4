"""The Tools tab: cluster / index training, merge, compress, inspect, ONNX export and
evaluation, each a job panel whose form comes from the job's parameter class."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sovits.webui.panel import build_job_panel

if TYPE_CHECKING:
    from sovits.webui.jobs import Page

__all__ = ["TOOL_KINDS", "build_tools_tab"]

TOOL_KINDS: tuple[tuple[str, str, str], ...] = (
    ("inspect", "Inspect a model", "Inspect"),
    ("train-cluster", "Train a cluster model (timbre leakage)", "Train cluster model"),
    ("train-index", "Train a feature-retrieval index", "Build index"),
    ("merge", "Merge models", "Merge"),
    ("compress", "Compress a model", "Compress"),
    ("export-onnx", "Export to ONNX (MoeVoiceStudio)", "Export"),
    ("evaluate", "Evaluate a conversion", "Evaluate"),
)
"""(job kind, section title, button label) in page order."""


def build_tools_tab(page: Page) -> None:
    """Render one closed section per tool job in the current Blocks context."""
    import gradio as gr

    from sovits.api.params import JOB_PARAMS

    for kind, title, button in TOOL_KINDS:
        if kind not in JOB_PARAMS:
            continue
        with gr.Accordion(title, open=kind == "inspect", elem_id=f"tools-{kind}"):
            build_job_panel(page, kind, prefix=f"tools-{kind}", button=button)
