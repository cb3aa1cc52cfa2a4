from __future__ import annotations
from pathlib import Path
from typing import Any
import pytest
from tests.api.helpers import write_raw_dataset
from tests.webui.pages import fill, pick, run_job, set_number, wait_for_status


@pytest.mark.timeout(300)
def test_scratch(page: Any, server: Any, tmp_path: Path) -> None:
    write_raw_dataset(server.work_dir / "dataset_raw")
    page.get_by_role("tab", name="Train").click()
    pick(page, "train-model", "trainee")
    print("after model", page.locator("#train-model input").first.input_value())
    text = run_job(page, "train-resample")
    print("resample", text)
    field = page.locator("#train-prepare-speech-encoder input").first
    print("enc before", field.input_value())
    field.click()
    field.fill("spectral")
    opts = page.locator("ul[role=listbox] li[role=option]")
    print("options", opts.count(), opts.all_inner_texts()[:20])
    page.screenshot(path="/tmp/h16e_dd.png", full_page=True)
    try:
        pick(page, "train-prepare-speech-encoder", "spectral")
    except Exception as e:
        print("pick failed", e)
    print("enc after", field.input_value())
    page.locator("#train-prepare-tiny input[type=checkbox]").check()
    acc = page.locator("#train-prepare-group-advanced")
    print("acc html before", acc.evaluate("n => n.outerHTML")[:600])
    acc.get_by_text("Advanced options").click()
    set_number(page, "train-prepare-val-per-speaker", 1)
    print("vps", page.locator("#train-prepare-val-per-speaker input[type=number]").input_value())
    text = run_job(page, "train-prepare")
    print("prepare", text)
    print(page.locator("#train-prepare-log textarea").input_value())
