"""SwiftF0 pitch extraction: the ONNX network shipped in the `swift-f0` wheel.

SwiftF0 (Lars Nieradzik, MIT) is a ~30 k-parameter convolutional F0 network. Its ONNX
graph reads mono 16 kHz audio [1, N] and two scalars, the lowest and highest f0 to
consider (Hz, inside 46.875-2093.75), and returns a pitch (Hz) and a voicing
confidence (0-1) for every 256-sample hop: frame j describes time j * 16 ms. A frame
is voiced when its confidence reaches 0.5.

This module runs that graph with onnxruntime (the `swift_f0` package itself is not
imported: only its `model.onnx` is located, through the import system). It keeps the
package's conventions that change results:

* long audio is analysed in windows of `WINDOW_FRAMES` frames with `LEFT_FRAMES` of
  context before and `LOOKAHEAD_FRAMES` after each (the network's receptive field),
  so a window's frames equal those of one pass over the whole signal;
* a frame whose 256 samples all stay below `SILENCE_PEAK` is unvoiced (digital
  silence is outside what the network was trained on).

The track then follows the contract of every sovits extractor (`track_from_raw_f0`):
for each of the `n_frames` frames of `hop_length` samples at the caller's rate, the
voicing of the nearest SwiftF0 frame in time (confidence >= `threshold`) and the f0
interpolated on a log scale between the two SwiftF0 frames around it (the nearest
one's where either is unvoiced); unvoiced frames filled by interpolation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from sovits.errors import InputError, MissingFileError
from sovits.features.pitch.base import PitchTrack, check_extract_arguments, track_from_raw_f0

__all__ = [
    "MODEL_F0_MAX",
    "MODEL_F0_MIN",
    "MODEL_HOP",
    "MODEL_RATE",
    "SwiftExtractor",
    "swift_model_path",
]

MODEL_RATE = 16000
"""Sample rate the network reads, Hz."""
MODEL_HOP = 256
"""Samples between the network's frames at MODEL_RATE (16 ms)."""
MODEL_F0_MIN = 46.875
"""Lowest f0 the network can report, Hz."""
MODEL_F0_MAX = 2093.75
"""Highest f0 the network can report, Hz."""
DEFAULT_THRESHOLD = 0.5
"""Confidence at which SwiftF0 calls a frame voiced (its calibration point)."""
WINDOW_FRAMES = 1875
"""Frames analysed per network call (30 s), bounding memory on long files."""
LEFT_FRAMES = 11
"""Frames of context before a window that make its frames equal a single pass."""
LOOKAHEAD_FRAMES = 10
"""Frames of context after a window that make its frames equal a single pass."""
SILENCE_PEAK = 1e-3
"""A frame whose hop of audio peaks below this is unvoiced."""
INSTALL_HINT = 'pip install "sovits[eval]" (or: pip install swift-f0)'


def swift_model_path() -> Path:
    """Path of `model.onnx` inside the installed swift-f0 package.

    Raises MissingFileError with the install command when the package (or its model
    file) is not there.
    """
    spec = importlib.util.find_spec("swift_f0")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "model.onnx"
        if candidate.is_file():
            return candidate
    raise MissingFileError(
        "the swift f0 method needs the SwiftF0 network shipped in the swift-f0 package",
        where=Path(locations[0]) / "model.onnx" if locations else None,
        hint=INSTALL_HINT,
    )


def _session(path: Path, threads: int | None) -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingFileError(
            "the swift f0 method needs onnxruntime", hint=INSTALL_HINT
        ) from error
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    # Let the pool sleep between calls: the extractor is called now and then, beside
    # other work, and busy-waiting threads would steal those cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )


class SwiftExtractor:
    """PitchExtractor running SwiftF0 (see the module doc).

    threshold: confidence a frame needs to count as voiced (0-1, SwiftF0's 0.5 by
        default; so-vits-svc's -ft default of 0.05 is for crepe / rmvpe / fcpe and
        would voice nearly everything here).
    f0_min, f0_max: the f0 band searched, Hz, clamped to the network's 46.875-2093.75
        (the sovits default band 50-1100 Hz).
    threads: onnxruntime intra-op threads (None: its default, one per core).
    model_path: another SwiftF0 ONNX file (default: the one in the swift-f0 package).
    Raises MissingFileError when the network or onnxruntime is not installed and
    InputError for a bad band or threshold.
    """

    name = "swift"

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        threads: int | None = 1,
        model_path: str | Path | None = None,
    ):
        low, high = max(float(f0_min), MODEL_F0_MIN), min(float(f0_max), MODEL_F0_MAX)
        if not low < high:
            raise InputError(
                f"need f0_min < f0_max inside {MODEL_F0_MIN}-{MODEL_F0_MAX} Hz, got "
                f"{f0_min} and {f0_max}"
            )
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"the swift threshold is a confidence in 0-1, got {threshold}")
        if threads is not None and threads < 1:
            raise InputError(f"threads must be positive, got {threads}")
        path = swift_model_path() if model_path is None else Path(model_path)
        if not path.is_file():
            raise MissingFileError("SwiftF0 model not found", where=path, hint=INSTALL_HINT)
        self.f0_min, self.f0_max = low, high
        self.threshold = float(threshold)
        self.session = _session(path, threads)

    def _run(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pitch, confidence = self.session.run(
            ["pitch", "confidence"],
            {
                "audio": audio[None, :],
                "fmin": np.asarray(self.f0_min, dtype=np.float32),
                "fmax": np.asarray(self.f0_max, dtype=np.float32),
            },
        )
        return (
            np.asarray(pitch[0], dtype=np.float64),
            np.asarray(confidence[0], dtype=np.float64),
        )

    def analyse(self, wave16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pitch Hz, confidence 0-1), both float64 [max(1, N // 256)], of a mono
        float32 wave [N] at 16 kHz; frame j is at time j * 16 ms. Silent hops have
        confidence 0."""
        audio = np.ascontiguousarray(wave16k, dtype=np.float32)
        frames = max(1, audio.shape[0] // MODEL_HOP)
        pitches, confidences = [], []
        for start in range(0, frames, WINDOW_FRAMES):
            end = min(start + WINDOW_FRAMES, frames)
            left = max(0, start - LEFT_FRAMES)
            stop = (end + LOOKAHEAD_FRAMES) * MODEL_HOP if end < frames else audio.shape[0]
            pitch, confidence = self._run(audio[left * MODEL_HOP : stop])
            pitches.append(pitch[start - left : end - left])
            confidences.append(confidence[start - left : end - left])
        pitch, confidence = np.concatenate(pitches), np.concatenate(confidences)
        count = min(len(confidence), audio.shape[0] // MODEL_HOP)
        if count > 0:
            peaks = np.abs(audio[: count * MODEL_HOP].reshape(count, MODEL_HOP)).max(axis=1)
            confidence[:count][peaks < SILENCE_PEAK] = 0.0
        elif np.abs(audio).max(initial=0.0) < SILENCE_PEAK:
            confidence[:] = 0.0
        return pitch, confidence

    def raw_f0(
        self, wave: np.ndarray, sample_rate: int, hop_length: int, n_frames: int
    ) -> np.ndarray:
        """f0 on the caller's grid before interpolation: float32 [n_frames] Hz, 0 where
        unvoiced; frame t is at time t * hop_length / sample_rate (see the module doc)."""
        from sovits.audio.resample import resample

        audio = wave if sample_rate == MODEL_RATE else resample(wave, sample_rate, MODEL_RATE)
        pitch, confidence = self.analyse(np.asarray(audio, dtype=np.float32))
        voiced = confidence >= self.threshold
        times = np.arange(n_frames, dtype=np.float64) * hop_length / sample_rate
        position = np.clip(times * MODEL_RATE / MODEL_HOP, 0.0, len(pitch) - 1.0)
        nearest = np.round(position).astype(np.int64)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, len(pitch) - 1)
        # Between two voiced frames the pitch moves on a log scale; elsewhere the
        # nearest frame decides.
        share = position - below
        log_f0 = np.log2(np.maximum(pitch, 1e-3))
        between = np.exp2((1.0 - share) * log_f0[below] + share * log_f0[above])
        f0 = np.where(voiced[below] & voiced[above], between, pitch[nearest])
        return np.where(voiced[nearest], f0, 0.0).astype(np.float32)

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch every `hop_length` samples of `wave` (mono float [N] at `sample_rate`)."""
        audio, frames = check_extract_arguments(wave, sample_rate, hop_length, n_frames)
        raw = self.raw_f0(audio, sample_rate, hop_length, frames)
        return track_from_raw_f0(raw, frames, sample_rate, hop_length)
