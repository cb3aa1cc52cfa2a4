"""The Convert tab in headless Chromium: upload a wav, convert it with the tiny model,
play / download the result, f0 curves and spectrograms, typed errors in the page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.helpers import FIXTURE, RATE, write_tone
from tests.tolerance import AUDIO, HZ, assert_close
from tests.webui.pages import download_audio, pick, set_number, upload, wait_for_status

SCREENSHOT_ENV = "SOVITS_WEBUI_SCREENSHOT"
"""When set, the Convert tab's screenshot is also written to this path (the README's)."""


def _pitch(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sovits.features.pitch.registry import create_pitch_extractor

    track = create_pitch_extractor("pm").extract(np.asarray(wave, np.float32), RATE, 512)
    return np.asarray(track.f0, np.float64), np.asarray(track.voiced, bool)


def _library_conversion(server: Any, source: Path, out_dir: Path, **options: Any) -> np.ndarray:
    """`source` converted by the library itself and written as the job writes it."""
    import soundfile

    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions

    folder = server.models_root / "tiny"
    converter = Converter(folder / FIXTURE.joinpath("G_0_release.pth").name,
                          folder / "config.json", device="cpu")
    written = converter.convert_file(source, out_dir, ConvertOptions(**options))
    return np.asarray(soundfile.read(written, dtype="float32")[0])


@pytest.mark.timeout(300)
def test_upload_convert_play_and_download(page: Any, server: Any, tmp_path: Path) -> None:
    wav = write_tone(tmp_path / "tone.wav", seconds=1.0, frequency=220.0)
    upload(page, "convert-input", wav)
    pick(page, "convert-speaker", "spk_b")
    set_number(page, "convert-transpose", 3)
    page.locator("#convert-run").click()
    text = wait_for_status(page, "convert-status", "done", "Error", "failed", "cancelled")
    assert "done" in text, text

    # the result plays in the page and downloads as the converted file
    audio, rate = download_audio(page, "convert-result")
    assert rate == RATE and audio.shape == (RATE,)
    download = page.locator("#convert-download a[download]").first.get_attribute("download")
    assert download == "tone_3key_spk_b_sovits_pm.flac"

    # it is the library's conversion with the options set in the page
    job = server.service.get(page.locator("#convert-job input, #convert-job textarea")
                             .first.input_value())
    assert job.params["options"]["transpose"] == 3 and job.params["options"]["speaker"] == "spk_b"
    reference = _library_conversion(server, wav, tmp_path / "library", speaker="spk_b",
                                    transpose=3.0)
    assert_close(audio, reference, AUDIO, what="result audio")
    got_f0, got_voiced = _pitch(audio)
    want_f0, want_voiced = _pitch(reference)
    assert got_voiced.mean() > 0.8
    np.testing.assert_array_equal(got_voiced, want_voiced)
    assert_close(got_f0, want_f0, HZ, what="result f0")

    # the curves drawn come from f0 jobs: the input is the 220 Hz tone
    page.wait_for_selector("#convert-f0 canvas, #convert-f0 svg")
    page.wait_for_selector("#convert-spectrogram-input img")
    page.wait_for_selector("#convert-spectrogram-output img")
    from sovits.features.pitch.export import load_f0_curve

    f0_jobs = [view for view in server.service.list() if view.kind == "f0"]
    inputs = [view for view in f0_jobs if view.params["input"].endswith("tone.wav")]
    assert inputs and inputs[-1].state == "done"
    curve = load_f0_curve(inputs[-1].results[0])
    assert abs(np.median(curve.f0[curve.voiced]) - 220.0) < 2.0  # Hz: the drawn input f0

    page.wait_for_timeout(500)  # let the plot finish drawing
    shot = tmp_path / "convert-tab.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(shot, os.environ[SCREENSHOT_ENV])


@pytest.mark.timeout(200)
def test_errors_show_the_typed_message_and_hint(page: Any, server: Any, tmp_path: Path) -> None:
    page.locator("#convert-run").click()
    text = wait_for_status(page, "convert-status", "Error")
    assert "no input audio" in text and "Hint: upload or record" in text

    upload(page, "convert-input", write_tone(tmp_path / "short.wav", seconds=0.3))
    pick(page, "convert-speaker", "nobody")
    page.locator("#convert-run").click()
    text = wait_for_status(page, "convert-status", "Error", changed_from=text)
    assert "(input)" in text and "has no speaker 'nobody'" in text, text
    assert "Hint: its speakers: spk_a, spk_b, spk_c" in text


@pytest.mark.timeout(200)
def test_the_page_enforces_the_services_audio_limit(page: Any, server: Any,
                                                    tmp_path: Path) -> None:
    service = server.service
    limits = service.max_upload_bytes, service.max_audio_seconds
    uploads = service.work_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.is_dir() else set()
    service.set_limits(max_upload_bytes=limits[0], max_audio_seconds=0.5)
    try:
        upload(page, "convert-input", write_tone(tmp_path / "long.wav", seconds=1.0))
        page.locator("#convert-run").click()
        text = wait_for_status(page, "convert-status", "Error", "done")
        assert "payload_too_large" in text and "the limit is 0.5 s" in text, text
    finally:
        service.set_limits(max_upload_bytes=limits[0], max_audio_seconds=limits[1])
    assert (set(uploads.iterdir()) if uploads.is_dir() else set()) == before  # nothing kept
