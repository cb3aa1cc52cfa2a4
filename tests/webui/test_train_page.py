"""The Train tab in headless Chromium: preprocess a small dataset, start training, watch
the loss curves, stop it (a checkpoint is kept) and resume it, all from the page."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.webui.pages import fill, pick, run_job, set_number, wait_for_status

REPO = Path(__file__).resolve().parents[2]
CHILD_HOOKS = Path(__file__).resolve().parent / "child_hooks"
RATE = 44100


def _dataset(work_dir: Path, models_root: Path, name: str) -> None:
    """work/dataset/44k/<speaker>/*.wav (two singers of sine tones) and the model folder's
    config.json (tiny template shrunk further, spectral encoder, filelists in the work
    folder)."""
    from sovits.config import load_svc_config, save_svc_config
    from sovits.data.filelists import preprocess_config

    dataset = work_dir / "dataset" / "44k"
    for speaker, base in (("alto", 220.0), ("tenor", 150.0)):
        for index in range(3):
            times = np.arange(RATE) / RATE
            pitch = base * (1 + 0.1 * index)
            wave = 0.3 * np.sin(2 * np.pi * pitch * times) + 0.1 * np.sin(4 * np.pi * pitch * times)
            path = dataset / speaker / f"{speaker}_{index}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, wave.astype(np.float32), RATE)
    config_path = models_root / name / "config.json"
    preprocess_config(dataset, train_list=work_dir / "filelists" / "train.txt",
                      val_list=work_dir / "filelists" / "val.txt", config_path=config_path,
                      speech_encoder="spectral", tiny=True, val_per_speaker=1)
    config = load_svc_config(config_path)
    train = dataclasses.replace(config.train, batch_size=2, segment_size=8 * 512,
                                log_interval=1, eval_interval=1000, keep_ckpts=2)
    # a few thousand parameters: a CPU step takes a fraction of a second
    model = dataclasses.replace(
        config.model, inter_channels=16, hidden_channels=16, filter_channels=32, n_layers=1,
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),),
        upsample_initial_channel=32, gin_channels=16, n_layers_q=1, n_flow_layer=2,
        n_layers_trans_flow=1, p_dropout=0.0,
    )
    save_svc_config(dataclasses.replace(config, train=train, model=model), config_path)


@pytest.mark.timeout(420)
def test_preprocess_train_stop_and_resume_from_the_page(
    page: Any, server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sovits.training.checkpointing import find_checkpoints

    _dataset(server.work_dir, server.models_root, "trainee")
    # the training child gets the tiny test discriminator (see child_hooks/sitecustomize.py)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(CHILD_HOOKS), str(REPO)]))
    monkeypatch.setenv("SOVITS_TEST_TINY_DISCRIMINATOR", "1")
    model_dir = server.models_root / "trainee"

    page.get_by_role("tab", name="Train").click()
    pick(page, "train-model", "trainee")
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
