"""The Train tab: a model folder, then each dataset step and training as job panels.

The steps are the job kinds the service offers, in workflow order (resampling and
the filelist / config step when the service has them, feature preprocessing,
training). Training runs in the service's child process; Stop cancels it (the child
saves a checkpoint), and Train again resumes from the newest checkpoint. The loss
curves come from the training log: the model folder's train.log (runs of `sovits
train`) and the log lines of the page's training jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sovits.webui.panel import build_job_panel, model_factories

if TYPE_CHECKING:
    import pandas as pd

    from sovits.api import JobView
    from sovits.webui.jobs import Page

__all__ = ["TRAIN_STEPS", "build_train_tab", "loss_curves"]

TRAIN_STEPS: tuple[tuple[str, str, str], ...] = (
    ("resample", "Resample the dataset", "Resample"),
    ("prepare", "Filelists and config", "Prepare"),
    ("preprocess", "Preprocess (content units, f0, spectrograms)", "Preprocess"),
    ("train", "Train", "Train / resume"),
)
"""(job kind, section title, button label) in workflow order; kinds the service lacks
are left out and the others numbered in order."""


def loss_curves(page: Page, model: str | None, extra_lines: list[str] | None = None
                ) -> pd.DataFrame:
    """Losses of model folder `model`: its train.log, the logs of the service's training
    jobs of that model, then `extra_lines`."""
    from sovits.webui.plots import loss_table, training_log_lines

    lines: list[str] = []
    root = page.service.models_root
    folder = root / model if model else None
    if folder is not None and folder.resolve().parent == root.resolve():
        lines.extend(training_log_lines(folder))
        for view in page.service.list():
            if view.kind == "train" and view.params.get("model") == model:
                lines.extend(view.log)
    lines.extend(extra_lines or [])
    return loss_table(lines)


def build_train_tab(page: Page) -> None:
    """Render the tab in the current Blocks context."""
    import gradio as gr

    from sovits.api.params import JOB_PARAMS

    gr.Markdown(
        "Pick a model folder under the models root, or type a new name, then run the "
        "steps in order: recordings in `<dataset>/<speaker>/*.wav` (in the work folder) "
        "are resampled, split into filelists and a `config.json` is written into the model "
        "folder (a hand-made config's relative filelist paths are read from the work "
        "folder). **Stop** ends training with a checkpoint; **Train / resume** continues "
        "from the newest one.",
        elem_id="train-help",
    )
    model = model_factories(page, new_allowed=True)["model"](
        "Model", "Model folder under the models root.", "train-model", None
    )
    losses = gr.LinePlot(x="step", y="value", color="loss", label="Losses", x_title="step",
                         y_title="loss", elem_id="train-losses")
    show = gr.Button("Show loss curves", size="sm", elem_id="train-show-losses")
    show.click(lambda name: loss_curves(page, name), inputs=model, outputs=losses)

    def on_view(view: JobView) -> dict[Any, Any]:
        return {losses: loss_curves(page, view.params.get("model"))}

    steps = [(kind, title, button) for kind, title, button in TRAIN_STEPS if kind in JOB_PARAMS]
    for number, (kind, title, button) in enumerate(steps, start=1):
        training = kind == "train"
        with gr.Accordion(f"{number}. {title}", open=True, elem_id=f"train-{kind}"):
            build_job_panel(
                page, kind, prefix=f"train-{kind}", button=button,
                existing={"model": model}, new_model_allowed=True,
                extra_outputs=[losses] if training else (),
                on_view=on_view if training else None,
                on_done=on_view if training else None,
                cancel_label="Stop" if training else "Cancel",
            )
