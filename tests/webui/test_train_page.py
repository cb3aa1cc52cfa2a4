"""The Train tab in headless Chromium: from a folder of raw recordings, resample, write
the filelists and config, preprocess, start training, watch the loss curves, stop it (a
checkpoint is kept) and resume it, all from the page."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import soundfile

from tests.api.helpers import write_raw_dataset
from tests.webui.pages import fill, pick, run_job, set_number, wait_for_status

REPO = Path(__file__).resolve().parents[2]
CHILD_HOOKS = Path(__file__).resolve().parent / "child_hooks"


def _shrink(config_path: Path) -> None:
    """Shrink the config the page wrote (tiny template) further, so training is quick:
    a few thousand parameters, a CPU step a fraction of a second."""
    from sovits.config import load_svc_config, save_svc_config

    config = load_svc_config(config_path)
    train = dataclasses.replace(config.train, batch_size=2, segment_size=8 * 512,
                                log_interval=1, eval_interval=1000, keep_ckpts=2)
    model = dataclasses.replace(
        config.model, inter_channels=16, hidden_channels=16, filter_channels=32, n_layers=1,
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),),
        upsample_initial_channel=32, gin_channels=16, n_layers_q=1, n_flow_layer=2,
        n_layers_trans_flow=1, p_dropout=0.0,
    )
    save_svc_config(dataclasses.replace(config, train=train, model=model), config_path)


@pytest.mark.timeout(480)
def test_resample_prepare_preprocess_train_stop_and_resume_from_the_page(
    page: Any, server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sovits.training.checkpointing import find_checkpoints

    # so-vits-svc's layout: work/dataset_raw/<speaker>/*.wav, 48 kHz stereo
    write_raw_dataset(server.work_dir / "dataset_raw")
    # the training child gets the tiny test discriminator (see child_hooks/sitecustomize.py)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(CHILD_HOOKS), str(REPO)]))
    monkeypatch.setenv("SOVITS_TEST_TINY_DISCRIMINATOR", "1")
    model_dir = server.models_root / "trainee"

    page.get_by_role("tab", name="Train").click()
    # the job kinds resample and prepare appear as the first two numbered steps
    for number, (kind, title) in enumerate((
            ("resample", "Resample the dataset"), ("prepare", "Filelists and config"),
            ("preprocess", "Preprocess"), ("train", "Train")), start=1):
        shown = page.locator(f"#train-{kind}").inner_text()
        assert f"{number}. {title}" in shown, shown[:200]
    pick(page, "train-model", "trainee")

    # 1. resample: the form's defaults are dataset_raw -> dataset/44k
    text = run_job(page, "train-resample")
    assert "done" in text, text
    assert "6 written" in page.locator("#train-resample-log textarea").input_value()
    clips = sorted((server.work_dir / "dataset" / "44k").glob("*/*.wav"))
    assert len(clips) == 6 and soundfile.info(str(clips[0])).samplerate == 44100

    # 2. filelists, config.json and diffusion.yaml in the new model folder
    pick(page, "train-prepare-speech-encoder", "spectral")
    page.locator("#train-prepare-tiny input[type=checkbox]").check()
    page.locator("#train-prepare-group-advanced").get_by_text("Advanced options").click()
    set_number(page, "train-prepare-val-per-speaker", 1)
    text = run_job(page, "train-prepare")
    assert "done" in text, text
    log = page.locator("#train-prepare-log textarea").input_value()
    assert "2 speakers, 4 training clips, 2 validation clips" in log, log
    assert (model_dir / "config.json").is_file() and (model_dir / "diffusion.yaml").is_file()
    _shrink(model_dir / "config.json")

    # 3. preprocess the resampled clips
    fill(page, "train-preprocess-dataset", "dataset/44k")
    pick(page, "train-preprocess-f0-method", "pm")
    text = run_job(page, "train-preprocess")
    assert "done" in text, text
    assert "6 clips" in page.locator("#train-preprocess-log textarea").input_value()

    run_job(page, "train-train", until=("step 2", "Error"))
    page.wait_for_selector("#train-losses canvas, #train-losses svg")
    page.locator("#train-train-cancel").click()
    text = wait_for_status(page, "train-train-status", "cancelled", "Error", "failed")
    assert "cancelled" in text, text
    stopped_at = max(find_checkpoints(model_dir)["G"])
    assert stopped_at >= 2  # Stop saved the step it had reached

    set_number(page, "train-train-max-steps", stopped_at + 2)
    text = run_job(page, "train-train")
    assert "done" in text, text
    log = page.locator("#train-train-log textarea").input_value()
    assert "resuming" in log and f"continuing at step {stopped_at + 1}" in log, log
    assert max(find_checkpoints(model_dir)["G"]) == stopped_at + 1
    names = page.locator("#train-train-files a[download]").evaluate_all(
        "links => links.map(link => link.getAttribute('download'))")
    assert f"G_{stopped_at + 1}.pth" in names
    page.screenshot(path=str(tmp_path / "train-tab.png"), full_page=True)
