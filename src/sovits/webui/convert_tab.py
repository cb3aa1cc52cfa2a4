"""The Convert tab: model and speaker, every conversion option, input audio, result.

The option widgets come from ConvertOptions' schema (`widgets.build_option_form`); the
conversion is a "convert" job of the JobService, and the f0 curves drawn under the
result are two "f0" jobs (input and output) of the same service.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovits.errors import SovitsError
from sovits.webui.jobs import (
    Page,
    exception_markdown,
    follow,
    stage_upload,
    status_markdown,
    submit,
)
from sovits.webui.widgets import build_option_form

if TYPE_CHECKING:
    from collections.abc import Iterator

    import gradio as gr

    from sovits.api import JobService, JobView, ModelInfo
    from sovits.features.pitch.export import F0Curve

__all__ = ["ANALYSIS_F0_METHOD", "build_convert_tab", "model_choices", "model_summary"]

ANALYSIS_F0_METHOD = "pm"
"""f0 method of the curves drawn under a result: fast and needs no weight files."""


def model_choices(service: JobService) -> dict[str, ModelInfo]:
    """The models under the service's root, by folder name."""
    return {info.name: info for info in service.models()}


def model_summary(info: ModelInfo | None) -> str:
    """One Markdown line about a model: rate, encoder, speakers and optional files."""
    if info is None:
        return "No model folder under the models root yet."
    parts = [f"**{info.name}**: {info.model_file.name}"]
    if info.sample_rate:
        parts.append(f"{info.sample_rate} Hz")
    if info.encoder:
        parts.append(f"encoder {info.encoder}")
    parts.append(f"{len(info.speakers)} speaker(s)")
    extras = [
        label for label, path in (
            ("cluster model", info.cluster_model), ("feature index", info.feature_index),
            ("diffusion model", info.diffusion_model),
        ) if path is not None
    ]
    if extras:
        parts.append("with " + ", ".join(extras))
    return " · ".join(parts)


def build_convert_tab(page: Page) -> dict[str, Any]:
    """Render the tab in the current Blocks context; returns its main components (the
    page refreshes the model list on load through them)."""
    import gradio as gr

    from sovits.inference.options import ConvertOptions

    service = page.service
    results = page.files
    models = model_choices(service)
    names = sorted(models)
    first = models[names[0]] if names else None
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            with gr.Row():
                model = gr.Dropdown(
                    choices=names, value=names[0] if names else None, label="Model",
                    info="A model folder under the models root.", elem_id="convert-model",
                    scale=4,
                )
                refresh = gr.Button("Refresh", elem_id="convert-refresh", scale=1,
                                    size="sm")
            summary = gr.Markdown(model_summary(first), elem_id="convert-model-info")
            speaker = gr.Dropdown(
                choices=list(first.speakers) if first else [],
                value=first.speakers[0] if first and first.speakers else None,
                label="Speaker", info="Target speaker from the model's config [-s].",
                elem_id="convert-speaker", allow_custom_value=True,
            )
            audio = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label="Input audio",
                elem_id="convert-input",
            )
            with gr.Row():
                run = gr.Button("Convert", variant="primary", elem_id="convert-run")
                stop = gr.Button("Cancel", variant="stop", elem_id="convert-cancel")
            form = build_option_form(ConvertOptions, prefix="convert", skip=("speaker",))
        with gr.Column(scale=1):
            status = gr.Markdown("Upload or record a file, then press Convert.",
                                 elem_id="convert-status")
            job_id = gr.Textbox(label="Job", interactive=False, elem_id="convert-job",
                                max_lines=1)
            result = gr.Audio(type="filepath", label="Result", interactive=False,
                              elem_id="convert-result")
            download = gr.File(label="Download", interactive=False, elem_id="convert-download")
            f0_plot = gr.LinePlot(
                x="time_s", y="f0_hz", color="track", label="f0 (input and output)",
                x_title="time (s)", y_title="f0 (Hz)", elem_id="convert-f0",
            )
            input_spectrogram = gr.Image(label="Input spectrogram (0-8 kHz)", interactive=False,
                                         elem_id="convert-spectrogram-input", height=200)
            output_spectrogram = gr.Image(label="Output spectrogram (0-8 kHz)",
                                          interactive=False,
                                          elem_id="convert-spectrogram-output", height=200)

    def choose_model(name: str | None) -> tuple[Any, str]:
        info = model_choices(service).get(name or "")
        speakers = list(info.speakers) if info else []
        return (
            gr.Dropdown(choices=speakers, value=speakers[0] if speakers else None),
            model_summary(info),
        )

    def refresh_models(current: str | None) -> tuple[Any, Any, str]:
        found = model_choices(service)
        choices = sorted(found)
        chosen = current if current in found else (choices[0] if choices else None)
        speaker_update, text = choose_model(chosen)
        return gr.Dropdown(choices=choices, value=chosen), speaker_update, text

    model.input(choose_model, inputs=model, outputs=[speaker, summary])
    refresh.click(refresh_models, inputs=model, outputs=[model, speaker, summary])

    outputs = [status, job_id, result, download, f0_plot, input_spectrogram, output_spectrogram]
    inputs: set[Any] = {model, speaker, audio, *form.components}  # `convert` gets a dict

    def convert(
        data: dict[Any, Any],
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects its tracker)
    ) -> Iterator[dict[Any, Any]]:
        cleared: dict[Any, Any] = {result: None, download: None, input_spectrogram: None,
                                   output_spectrogram: None, f0_plot: None}
        if not data[audio]:
            yield {status: "**Error** (`input`): no input audio  \nHint: upload or record a "
                   "file first", **cleared}
            return
        if not data[model]:
            yield {status: "**Error** (`input`): no model chosen  \nHint: put a model folder "
                   "under the models root and press Refresh", **cleared}
            return
        options = form.values([data[widget] for widget in form.components])
        if data[speaker]:
            options["speaker"] = data[speaker]
        try:
            staged = stage_upload(service, data[audio])
            submitted = submit(service, "convert",
                               {"model": data[model], "input": str(staged), "options": options})
        except SovitsError as error:
            yield {status: exception_markdown(error), job_id: "", **cleared}
            return
        view = submitted
        yield {status: status_markdown(view), job_id: view.id, **cleared}
        for view in follow(service, submitted.id, every=0.2):
            progress(view.progress, desc=view.stage or view.state)
            if view.state != "done" or not view.results:
                yield {status: status_markdown(view)}
        if view.state != "done" or not view.results:
            return
        served = results.serve(view.id, view.results)
        output = Path(served[0])
        # both files were read by the job, so drawing them cannot fail on bad audio
        yield {status: status_markdown(view), result: str(output), download: served,
               input_spectrogram: _spectrogram(staged), output_spectrogram: _spectrogram(output)}
        curves, failed = _f0_curves(service, {"input": staged, "output": Path(view.results[0])})
        if failed is not None:
            yield {status: f"{status_markdown(view)}  \nf0 curves: {status_markdown(failed)}"}
            return
        from sovits.webui.plots import f0_table

        yield {f0_plot: f0_table(curves)}

    run.click(convert, inputs=inputs, outputs=outputs, concurrency_limit=None)

    def cancel(current: str) -> str:
        if not current:
            return "No job to cancel."
        try:
            return status_markdown(service.cancel(current))
        except SovitsError as error:
            return exception_markdown(error)

    stop.click(cancel, inputs=job_id, outputs=status, concurrency_limit=None)
    return {"model": model, "speaker": speaker, "summary": summary, "refresh": refresh_models}


def _spectrogram(path: Path) -> Any:
    from sovits.audio.io import load_audio
    from sovits.webui.plots import spectrogram_image

    wave, rate = load_audio(path)
    return spectrogram_image(wave, rate)


def _f0_curves(
    service: JobService, files: dict[str, Path]
) -> tuple[dict[str, F0Curve], JobView | None]:
    """The f0 curve of each file, from "f0" jobs of the service; the second item is the
    job that did not end done (its error is shown), else None."""
    from sovits.features.pitch.export import load_f0_curve
    from sovits.webui.jobs import run_to_end

    curves: dict[str, F0Curve] = {}
    for name, path in files.items():
        view = run_to_end(service, "f0", {"input": str(path), "method": ANALYSIS_F0_METHOD})
        if view.state != "done" or not view.results:
            return curves, view
        curves[name] = load_f0_curve(view.results[0])
    return curves, None
