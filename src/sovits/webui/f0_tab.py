"""The F0 tab: extract a curve ("f0" job), show it, download it as CSV, edit it in the
table (or upload an edited CSV), and convert with the edited curve ("convert" job with
`f0_file`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovits.errors import InputError, SovitsError
from sovits.webui.jobs import (
    exception_markdown,
    follow,
    stage_upload,
    status_markdown,
    submit,
)
from sovits.webui.panel import build_job_panel, model_factories

if TYPE_CHECKING:
    import gradio as gr
    import pandas as pd

    from sovits.api import JobView
    from sovits.features.pitch.export import F0Curve
    from sovits.webui.jobs import Page

__all__ = ["build_f0_tab", "curve_from_table", "table_from_curve"]

_COLUMNS = ["time_s", "f0_hz", "voiced"]


def table_from_curve(curve: F0Curve) -> pd.DataFrame:
    """The curve as an editable table: time_s, f0_hz, voiced (0 / 1)."""
    import pandas as pd

    return pd.DataFrame({
        "time_s": curve.times.astype(float),
        "f0_hz": curve.f0.astype(float),
        "voiced": curve.voiced.astype(int),
    })


def curve_from_table(table: Any) -> F0Curve:
    """An edited table back as a curve; InputError when a cell is not a number."""
    import numpy as np
    import pandas as pd

    from sovits.features.pitch.export import F0Curve

    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    missing = [name for name in _COLUMNS if name not in frame.columns]
    if missing:
        raise InputError(f"the f0 table lacks column(s) {', '.join(missing)}")
    try:
        times = frame["time_s"].astype(float).to_numpy()
        f0 = frame["f0_hz"].astype(float).to_numpy()
        voiced = frame["voiced"].astype(float).to_numpy() > 0.5
    except (TypeError, ValueError) as error:
        raise InputError(f"the f0 table holds a cell that is not a number ({error})") from None
    if times.size == 0:
        raise InputError("the f0 table is empty", hint="extract a curve first")
    return F0Curve(times, f0.astype(np.float32), voiced)


def _curve_plot(curve: F0Curve) -> pd.DataFrame:
    from sovits.webui.plots import f0_table

    return f0_table({"f0": curve})


def build_f0_tab(page: Page) -> None:
    """Render the tab in the current Blocks context."""
    import gradio as gr

    from sovits.features.pitch.export import load_f0_curve

    source = gr.State(None)
    # drawn beside the extraction panel, made first since the panel updates them
    plot = gr.LinePlot(x="time_s", y="f0_hz", label="f0 curve", x_title="time (s)",
                       y_title="f0 (Hz)", elem_id="f0-plot", render=False)

    def audio_input(label: str, info: str, elem_id: str, default: Any) -> Any:
        return gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio",
                        elem_id=elem_id)

    def prepare(params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("input"):
            raise InputError("no audio", hint="upload or record a file first")
        return {**params, "input": str(stage_upload(page.service, params["input"]))}

    table = gr.Dataframe(
        headers=_COLUMNS, datatype=["number", "number", "number"], interactive=True,
        label="Curve (edit f0_hz / voiced, then convert below)", elem_id="f0-table",
        max_height=300, render=False,
    )

    def on_done(view: JobView) -> dict[Any, Any]:
        curve = load_f0_curve(view.results[0])
        return {plot: _curve_plot(curve), table: table_from_curve(curve),
                source: view.params.get("input")}

    with gr.Row(equal_height=False):
        with gr.Column(scale=1), gr.Group(elem_id="f0-extract"):
            build_job_panel(page, "f0", prefix="f0", button="Extract f0",
                            factories={"input": audio_input}, prepare=prepare,
                            extra_outputs=[plot, table, source], on_done=on_done,
                            log_visible=False, side_by_side=False)
        with gr.Column(scale=1):
            plot.render()
            table.render()

    with gr.Accordion("Convert with the edited curve", open=True, elem_id="f0-convert"):
        model = model_factories(page)["model"](
            "Model", "Model folder under the models root.", "f0-convert-model", None
        )
        speaker = gr.Dropdown(label="Speaker", choices=_speakers(page, None),
                              allow_custom_value=True, elem_id="f0-convert-speaker")
        edited = gr.File(label="Or upload an edited curve (.csv / .npy)", file_types=[".csv",
                         ".npy"], elem_id="f0-convert-curve")
        run = gr.Button("Convert with this curve", variant="primary", elem_id="f0-convert-run")
        status = gr.Markdown("", elem_id="f0-convert-status")
        result = gr.Audio(type="filepath", label="Result", interactive=False,
                          elem_id="f0-convert-result")
        download = gr.File(label="Download", interactive=False, elem_id="f0-convert-download")

    def choose(name: str | None) -> Any:
        names = _speakers(page, name)
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    model.change(choose, inputs=model, outputs=speaker)

    def convert(
        model_name: str | None,
        speaker_name: str | None,
        audio: str | None,
        rows: Any,
        upload: str | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects its tracker)
    ) -> Iterator[dict[Any, Any]]:
        try:
            if not audio:
                raise InputError("no extracted audio", hint="extract a curve first")
            curve_path = _curve_file(page, rows, upload)
            options: dict[str, Any] = {"f0_file": str(curve_path)}
            if speaker_name:
                options["speaker"] = speaker_name
            submitted = submit(page.service, "convert",
                               {"model": model_name or "", "input": audio, "options": options})
        except SovitsError as error:
            yield {status: exception_markdown(error), result: None, download: None}
            return
        view = submitted
        yield {status: status_markdown(view), result: None, download: None}
        for view in follow(page.service, submitted.id, every=0.2):
            progress(view.progress, desc=view.stage or view.state)
            if view.state == "done" and view.results:
                served = page.files.serve(view.id, view.results)
                yield {status: status_markdown(view), result: served[0], download: served}
            else:
                yield {status: status_markdown(view)}

    run.click(convert, inputs=[model, speaker, source, table, edited],
              outputs=[status, result, download], concurrency_limit=None)


def _speakers(page: Page, name: str | None) -> list[str]:
    models = {info.name: info for info in page.service.models()}
    if name is None and models:
        name = sorted(models)[0]
    info = models.get(name or "")
    return list(info.speakers) if info else []


def _curve_file(page: Page, rows: Any, upload: str | None) -> Path:
    """The curve to convert with, as a file in the work folder: the uploaded one, else
    the (edited) table written as CSV."""
    from sovits.features.pitch.export import load_f0_curve, save_f0_curve

    if upload:
        staged = stage_upload(page.service, upload, audio=False)
        load_f0_curve(staged)  # a bad file fails here, before a job is queued
        return staged
    folder = page.service.new_upload_folder()
    return save_f0_curve(curve_from_table(rows), folder / "edited_f0.csv")
