"""What the page draws: f0 curves, spectrograms and training losses.

The curves are tables (pandas DataFrames, which Gradio's line plots take); the
spectrogram is an RGB image computed with numpy. Nothing here needs matplotlib, so the
`server` extra is enough for the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from sovits.features.pitch.export import F0Curve

__all__ = [
    "LOSS_LINE",
    "f0_table",
    "loss_table",
    "spectrogram_image",
]

LOSS_LINE = re.compile(
    r"epoch (?P<epoch>\d+) step (?P<step>\d+) lr \S+: d (?P<d>[-\d.einf]+), g (?P<g>[-\d.einf]+) "
    r"\(gen (?P<gen>[-\d.einf]+), fm (?P<fm>[-\d.einf]+), mel (?P<mel>[-\d.einf]+), "
    r"kl (?P<kl>[-\d.einf]+), lf0 (?P<lf0>[-\d.einf]+)\)"
)
"""A training log line of the GAN trainer (`_GanTask.log`): epoch, step and losses."""

_LOSS_NAMES = {"d": "discriminator", "g": "generator", "mel": "mel", "kl": "kl", "fm": "fm"}
"""Which losses the plot shows, under which name."""


def f0_table(curves: Mapping[str, F0Curve]) -> pd.DataFrame:
    """Voiced frames of each curve as rows (time_s, f0_hz, track): one line per track."""
    import pandas as pd

    frames = []
    for name, curve in curves.items():
        voiced = np.asarray(curve.voiced, dtype=bool)
        frames.append(pd.DataFrame({
            "time_s": np.asarray(curve.times, dtype=np.float64)[voiced],
            "f0_hz": np.asarray(curve.f0, dtype=np.float64)[voiced],
            "track": name,
        }))
    if not frames:
        return pd.DataFrame({"time_s": [], "f0_hz": [], "track": []})
    return pd.concat(frames, ignore_index=True)


def loss_table(lines: Iterable[str]) -> pd.DataFrame:
    """Training losses from log lines, as rows (step, loss, value); later lines for the
    same step (a resumed run) replace earlier ones."""
    import pandas as pd

    by_step: dict[int, dict[str, float]] = {}
    for line in lines:
        match = LOSS_LINE.search(line)
        if match is None:
            continue
        by_step[int(match["step"])] = {
            shown: float(match[key]) for key, shown in _LOSS_NAMES.items()
        }
    rows = [
        (step, name, value)
        for step, losses in sorted(by_step.items())
        for name, value in losses.items()
        if np.isfinite(value)
    ]
    return pd.DataFrame(rows, columns=["step", "loss", "value"])


def training_log_lines(model_dir: Path) -> list[str]:
    """The lines of `model_dir/train.log` (all runs, resumed ones included); [] if none."""
    path = model_dir / "train.log"
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


# A perceptual colour map (dark blue -> purple -> orange -> pale yellow), 5 anchors
# interpolated linearly; close to matplotlib's "magma" without needing matplotlib.
_ANCHORS = np.array(
    [[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], dtype=np.float64
)


def _colour(values: np.ndarray) -> np.ndarray:
    """uint8 RGB [..., 3] of values in [0, 1]."""
    position = np.clip(values, 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.minimum(np.floor(position).astype(np.int64), len(_ANCHORS) - 2)
    weight = (position - low)[..., None]
    rgb = _ANCHORS[low] * (1 - weight) + _ANCHORS[low + 1] * weight
    return np.round(rgb).astype(np.uint8)


def spectrogram_image(
    wave: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 1024,
    max_columns: int = 800,
    min_columns: int = 600,
    max_hz: float = 8000.0,
    floor_db: float = -80.0,
) -> np.ndarray:
    """A log-magnitude spectrogram of mono `wave` [N] as an RGB image [H, W, 3] (uint8).

    Rows are frequency bins up to `max_hz` (low at the bottom), columns are frames, at
    most `max_columns` of them (the hop grows with the length); short inputs have their
    columns repeated up to about `min_columns`, so the picture keeps a wide shape.
    Levels are dB relative to the loudest bin, clipped at `floor_db`.
    """
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    hop = max(n_fft // 4, int(np.ceil((wave.size - n_fft) / max(1, max_columns - 1))))
    starts = np.arange(0, wave.size - n_fft + 1, hop)
    frames = np.stack([wave[start:start + n_fft] for start in starts]) * np.hanning(n_fft)
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T  # [bins, frames]
    bins = int(min(magnitude.shape[0], np.ceil(max_hz / (sample_rate / n_fft)) + 1))
    magnitude = magnitude[:bins]
    level = 20 * np.log10(np.maximum(magnitude, 1e-10))
    level -= level.max()
    scaled = 1.0 - np.clip(level, floor_db, 0.0) / floor_db
    if scaled.shape[1] < min_columns:
        scaled = np.repeat(scaled, int(np.ceil(min_columns / scaled.shape[1])), axis=1)
    return _colour(scaled[::-1])
