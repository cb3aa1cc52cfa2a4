"""A models root holding the tiny fixture model, and short test tones.

The model is the a_default fixture release (random weights, 44.1 kHz, hop 512, three
speakers) with its config pointed at the download-free `spectral` content encoder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import soundfile

from tests.conftest import SOVITS41

FIXTURE = SOVITS41 / "variants" / "a_default"
RATE = 44100
SPEAKERS = ("spk_a", "spk_b", "spk_c")


def make_models_root(root: Path, names: tuple[str, ...] = ("tiny",)) -> Path:
    """`root` with one folder per name holding G_0_release.pth and a spectral config."""
    data = json.loads((FIXTURE / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    for name in names:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURE / "G_0_release.pth", folder / "G_0_release.pth")
        (folder / "config.json").write_text(json.dumps(data))
    return root


def write_tone(path: Path, seconds: float = 0.4, frequency: float = 220.0,
               rate: int = RATE) -> Path:
    """A sine tone of `seconds` at `rate` Hz, amplitude 0.3, written as wav."""
    times = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * frequency * times)).astype(np.float32), rate)
    return path


def write_raw_dataset(folder: Path, rate: int = 48000) -> Path:
    """folder/<speaker>/*.wav, so-vits-svc's dataset_raw layout: two singers ("alto",
    "tenor"), three one-second stereo tones each, at `rate` Hz (resampling makes them
    44.1 kHz mono)."""
    times = np.arange(rate) / rate
    for speaker, base in (("alto", 220.0), ("tenor", 150.0)):
        for index in range(3):
            pitch = base * (1 + 0.1 * index)
            tone = 0.3 * np.sin(2 * np.pi * pitch * times) + 0.1 * np.sin(4 * np.pi * pitch * times)
            path = folder / speaker / f"{speaker}_{index}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, np.stack([tone, 0.5 * tone], axis=1).astype(np.float32), rate)
    return folder
