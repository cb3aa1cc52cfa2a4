"""The Live tab in headless Chromium with a fake microphone fed from a wav.

The server (`create_app`, web UI at /) serves a models root with a demo-size model
(random weights, the demo recipe's dims, whose decoder carries the f0 of its input
through), and Chromium's fake capture device plays a sung 220 Hz note. The page
streams it over /api/v1/live with a transpose of +4 semitones; what comes back must
be the converted song: not silence, and its f0 the input's + 4 semitones (so not the
input either).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch

from tests.server.live import serving
from tests.webui.conftest import CHROMIUM
from tests.webui.pages import set_number

pytestmark = pytest.mark.timeout(300)

RATE = 44100
NOTE_HZ = 220.0
TRANSPOSE = 4


def _demo_models_root(root: Path) -> Path:
    from sovits.checkpoints import write_training_checkpoint
    from sovits.config.svc import save_svc_config, template_config
    from sovits.demo.pipeline import _demo_model_config
    from sovits.models.build import build_synthesizer

    config = template_config()
    model = _demo_model_config(replace(config.model, speech_encoder="spectral", ssl_dim=64))
    config = replace(config, model=model, spk={"alto": 0})
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    synthesizer = build_synthesizer(config)
    torch.random.set_rng_state(generator_state)
    folder = root / "demo"
    folder.mkdir(parents=True)
    write_training_checkpoint(folder / "G_1.pth", model_state=synthesizer.state_dict(),
                              optimizer_state=None, learning_rate=1e-4, iteration=1)
    save_svc_config(config, folder / "config.json")
    return root


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sovits.api import JobService
    from sovits.server import create_app

    root = tmp_path_factory.mktemp("live")
    service = JobService(_demo_models_root(root / "models"), root / "work")
    app = create_app(service, token=None, allowed_hosts=None)
    with serving(app) as url:
        yield url
    service.close()


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sung note (harmonics, 5 Hz vibrato), 48 kHz 16-bit, for the fake capture."""
    rate = 48000
    times = np.arange(6 * rate) / rate
    f0 = NOTE_HZ * (1 + 0.01 * np.sin(2 * np.pi * 5 * times))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    wave = sum(0.2 / k * np.sin(k * phase) for k in range(1, 6))
    path = tmp_path_factory.mktemp("mic") / "note.wav"
    soundfile.write(path, np.asarray(wave, np.float32), rate, subtype="PCM_16")
    return path


def _received(page: Any) -> np.ndarray:
    encoded = page.evaluate(
        """() => {
            const blocks = window.sovitsLive.received;
            const total = blocks.reduce((sum, block) => sum + block.length, 0);
            const all = new Float32Array(total);
            let offset = 0;
            for (const block of blocks) { all.set(block, offset); offset += block.length; }
            const bytes = new Uint8Array(all.buffer);
            let text = '';
            for (let i = 0; i < bytes.length; i += 8192) {
                text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
            }
            return btoa(text);
        }"""
    )
    return np.frombuffer(base64.b64decode(encoded), "<f4")


def test_the_live_tab_streams_the_microphone_converted(
    live_server: str, microphone: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from sovits.features.pitch.registry import create_pitch_extractor

    args = ["--no-sandbox", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}",
            "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args,
                                             headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(live_server + "/")
            page.get_by_role("tab", name="Live").click()
            page.wait_for_selector("#live-start")
            set_number(page, "live-transpose", TRANSPOSE)
            page.locator("#live-f0 input").first.fill("pm")
            page.locator("#live-f0 input").first.press("Enter")
            set_number(page, "live-block-ms", 200)  # generated from LiveSettings.block_ms
            page.locator("#live-start").click()
            page.wait_for_function(
                """() => window.sovitsLive && (window.sovitsLive.error !== null ||
                    window.sovitsLive.received.reduce((n, b) => n + b.length, 0) > 4 * 44100)""",
                timeout=200_000,
            )
            error = page.evaluate("() => window.sovitsLive.error")
            assert error is None, json.dumps(error)
            status = page.locator("#live-status").inner_text()
            page.locator("#live-stop").click()
            converted = _received(page)
        finally:
            browser.close()
    assert "algorithmic latency" in status, status
    singing = converted[RATE:]  # past the start-up (device, gate, first blocks)
    assert np.sqrt(np.mean(singing**2)) > 0.01, "the converted stream is silent"
    track = create_pitch_extractor("pm").extract(singing.astype(np.float32), RATE, 512)
    assert track.voiced.mean() > 0.5
    median = float(np.median(track.f0[track.voiced]))
    expected = NOTE_HZ * 2 ** (TRANSPOSE / 12)
    assert abs(1200 * np.log2(median / expected)) < 50, f"f0 {median:.1f} Hz, not {expected:.1f}"
