"""The F0 and Tools tabs in headless Chromium: extract a curve, download it, convert with
an edited curve; inspect and compress a model."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from tests.api.helpers import RATE, write_tone
from tests.tolerance import AUDIO, assert_close
from tests.webui.pages import download_audio, pick, run_job, upload, wait_for_status


def _download(page: Any, selector: str) -> tuple[str, bytes]:
    link = page.locator(selector).first
    link.wait_for()
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    return str(link.get_attribute("download")), response.body()


@pytest.mark.timeout(300)
def test_extract_download_and_convert_with_an_edited_curve(
    page: Any, server: Any, tmp_path: Path
) -> None:
    from sovits.features.pitch.export import F0Curve, load_f0_curve, save_f0_curve
    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions

    page.get_by_role("tab", name="F0").click()
    wav = write_tone(tmp_path / "melody.wav", seconds=0.6, frequency=196.0)
    upload(page, "f0-input", wav)
    text = run_job(page, "f0")
    assert "done" in text, text
    page.wait_for_selector("#f0-plot canvas, #f0-plot svg")
    name, body = _download(page, "#f0-files a[download]")
    assert name == "melody_f0.csv"
    (tmp_path / name).write_bytes(body)
    curve = load_f0_curve(tmp_path / name)
    assert curve.voiced.mean() > 0.8
    assert abs(np.median(curve.f0[curve.voiced]) - 196.0) < 2.0
    # the editable table holds the same frames
    page.wait_for_function(
        "text => document.querySelector('#f0-table').innerText.includes(text)",
        arg=repr(float(curve.times[1])),
    )

    # an edited curve (one octave up) uploaded and converted with
    edited = save_f0_curve(F0Curve(curve.times, curve.f0 * 2, curve.voiced), tmp_path / "up.csv")
    pick(page, "f0-convert-speaker", "spk_c")
    page.locator("#f0-convert-curve input[type=file]").set_input_files(str(edited))
    page.locator("#f0-convert-run").click()
    text = wait_for_status(page, "f0-convert-status", "done", "Error", "failed")
    assert "done" in text, text
    audio, rate = download_audio(page, "f0-convert-result")
    assert rate == RATE and audio.shape == (int(0.6 * RATE),)

    convert = [view for view in server.service.list() if view.kind == "convert"][-1]
    assert convert.params["options"]["f0_file"].endswith("up.csv")
    folder = server.models_root / "tiny"
    converter = Converter(folder / "G_0_release.pth", folder / "config.json", device="cpu")
    written = converter.convert_file(
        wav, tmp_path / "library", ConvertOptions(speaker="spk_c", f0_file=edited)
    )
    reference = soundfile.read(written, dtype="float32")[0]
    assert_close(audio, reference, AUDIO, what="conversion with the edited curve")


@pytest.mark.timeout(200)
def test_inspect_and_compress_a_model(page: Any, server: Any) -> None:
    import torch

    page.get_by_role("tab", name="Tools").click()
    text = run_job(page, "tools-inspect")
    assert "done" in text, text
    log = page.locator("#tools-inspect-log textarea").input_value()
    assert "spk_a" in log
    name, body = _download(page, "#tools-inspect-files a[download]")
    assert name == "inspect.json" and b"spk_a" in body

    page.get_by_text("Compress a model").click()
    page.locator("#tools-compress-half input[type=checkbox]").check()
    text = run_job(page, "tools-compress")
    assert "done" in text, text
    name, body = _download(page, "#tools-compress-files a[download]")
    assert name == "G_0_release_half.pth"  # a release is not named "release" twice
    state = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    weights = state.get("model", state)
    assert all(tensor.dtype == torch.float16 for tensor in weights.values()
               if tensor.is_floating_point())
