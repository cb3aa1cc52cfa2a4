"""One job kind as a panel: its parameter form, Run and Cancel, status, log and files.

The form comes from the kind's parameter dataclass (`sovits.api.params.JOB_PARAMS`),
so the Tools, Train and F0 tabs list no parameter by hand. Model names are picked from
the models under the root (a new folder name may be typed for training).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sovits.config.options_schema import GROUPS
from sovits.errors import SovitsError
from sovits.webui.jobs import Page, exception_markdown, follow, status_markdown, submit
from sovits.webui.widgets import OptionForm, build_option_form

if TYPE_CHECKING:
    import gradio as gr
    from gradio.components import Component

    from sovits.api import JobView

__all__ = ["JobPanel", "build_job_panel", "model_factories"]

LOG_LINES = 40
"""Log lines a panel shows (the newest)."""


def model_factories(page: Page, *, new_allowed: bool = False) -> dict[str, Any]:
    """Widget makers for the `model` (one name) and `models` (several) fields."""
    import gradio as gr

    def one(label: str, info: str, elem_id: str, default: Any) -> Component:
        names = page.model_names()
        picker = gr.Dropdown(
            choices=names, value=default or (names[0] if names else None), label="Model",
            info=info + (" A new folder name may be typed." if new_allowed else ""),
            elem_id=elem_id, allow_custom_value=new_allowed,
        )
        page.model_pickers.append(picker)
        return picker

    def several(label: str, info: str, elem_id: str, default: Any) -> Component:
        picker = gr.Dropdown(choices=page.model_names(), value=list(default or []),
                             multiselect=True, label="Models", info=info, elem_id=elem_id)
        page.models_pickers.append(picker)
        return picker

    return {"model": one, "models": several}


@dataclass
class JobPanel:
    """The components of one job panel."""

    kind: str
    form: OptionForm
    run: Any
    cancel: Any
    status: Any
    job_id: Any
    log: Any
    files: Any
    extra_outputs: list[Any] = field(default_factory=list)


def build_job_panel(
    page: Page,
    kind: str,
    *,
    prefix: str,
    button: str,
    existing: Mapping[str, Component] | None = None,
    factories: Mapping[str, Any] | None = None,
    new_model_allowed: bool = False,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    extra_outputs: Sequence[Component] = (),
    on_view: Callable[[JobView], dict[Any, Any]] | None = None,
    on_done: Callable[[JobView], dict[Any, Any]] | None = None,
    log_visible: bool = True,
    cancel_label: str = "Cancel",
    side_by_side: bool = True,
) -> JobPanel:
    """Render a panel for job `kind` in the current Blocks context.

    prefix: start of the elem_ids (`{prefix}-run`, `{prefix}-status`, `{prefix}-{field}`).
    existing / factories: see `build_option_form`. prepare: turns the form's values
    into the job parameters (e.g. copies an upload into the work folder); it may raise
    SovitsError, shown in the status. on_view / on_done: extra updates (of
    `extra_outputs`) for each view while the job runs / when it has ended done.
    side_by_side: the form left and the job's status, log and files right (else stacked).
    """
    import gradio as gr

    from sovits.api.params import JOB_PARAMS

    makers = {**model_factories(page, new_allowed=new_model_allowed), **(factories or {})}
    layout = gr.Row(equal_height=False) if side_by_side else gr.Column()
    with layout:
        with gr.Column(scale=1):
            # job forms are short: every group but "advanced" starts open
            form = build_option_form(
                JOB_PARAMS[kind], prefix=prefix, existing=existing, factories=makers,
                open_groups=[group for group in GROUPS if group != "advanced"],
            )
            with gr.Row():
                run = gr.Button(button, variant="primary", elem_id=f"{prefix}-run")
                cancel = gr.Button(cancel_label, variant="stop", elem_id=f"{prefix}-cancel")
        with gr.Column(scale=1):
            status = gr.Markdown("", elem_id=f"{prefix}-status")
            job_id = gr.Textbox(label="Job", interactive=False, max_lines=1,
                                elem_id=f"{prefix}-job")
            log = gr.Textbox(label="Log", lines=6, max_lines=12, interactive=False,
                             autoscroll=True, elem_id=f"{prefix}-log", visible=log_visible)
            files = gr.File(label="Results", interactive=False, file_count="multiple",
                            elem_id=f"{prefix}-files", height=140)
    panel = JobPanel(kind, form, run, cancel, status, job_id, log, files, list(extra_outputs))
    outputs = [status, job_id, log, files, *extra_outputs]

    def start(
        data: dict[Any, Any],
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects its tracker)
    ) -> Iterator[dict[Any, Any]]:
        try:
            params = form.values([data[widget] for widget in form.components])
            if prepare is not None:
                params = prepare(params)
            submitted = submit(page.service, kind, params)
        except SovitsError as error:
            yield {status: exception_markdown(error), job_id: "", files: None}
            return
        view = submitted
        yield {status: status_markdown(view), job_id: view.id, log: "", files: None}
        for view in follow(page.service, submitted.id, every=0.5):
            progress(view.progress, desc=view.stage or view.state)
            update: dict[Any, Any] = {status: status_markdown(view),
                                      log: "\n".join(view.log[-LOG_LINES:])}
            if on_view is not None:
                update.update(on_view(view))
            if view.state == "done":
                # results first, so the page shows "done" with them
                served = page.files.serve(view.id, view.results)
                update[files] = served or None
                if on_done is not None:
                    update.update(on_done(view))
            yield update

    inputs: set[Any] = set(form.components)  # a set: `start` gets {widget: value}
    run.click(start, inputs=inputs, outputs=outputs, concurrency_limit=None)

    def stop(current: str) -> str:
        if not current:
            return "No job to cancel."
        try:
            return status_markdown(page.service.cancel(current))
        except SovitsError as error:
            return exception_markdown(error)

    cancel.click(stop, inputs=job_id, outputs=status, concurrency_limit=None)
    return panel
