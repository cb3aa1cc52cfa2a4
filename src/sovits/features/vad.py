"""Voice activity from silero-vad's ONNX model (MIT, shipped inside the silero-vad wheel).

`SileroVad` runs the model through onnxruntime on a 16 kHz stream in chunks of 512
samples (32 ms), carrying the model's recurrent state and its 64-sample context from
chunk to chunk, and returns one speech probability per chunk. Nothing is downloaded:
the model file is read from the installed `silero_vad` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sovits.errors import MissingFileError

__all__ = ["VAD_CHUNK", "VAD_RATE", "SileroVad", "silero_model_path"]

VAD_RATE = 16000
"""Rate the model reads, Hz."""
VAD_CHUNK = 512
"""Samples per probability at VAD_RATE (32 ms)."""
_CONTEXT = 64
"""Samples of the previous chunk the model sees before each chunk (silero-vad v5)."""


def silero_model_path() -> Path:
    """The ONNX file of the installed silero-vad package. MissingFileError without it."""
    try:
        import silero_vad
    except ImportError:
        raise MissingFileError(
            "silero-vad is not installed, so the voice-activity model is missing",
            hint="pip install --no-deps silero-vad (only its ONNX file is used)",
        ) from None
    path = Path(silero_vad.__file__).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise MissingFileError(
            "the silero-vad package holds no silero_vad.onnx", where=path,
            hint="reinstall silero-vad",
        )
    return path


class SileroVad:
    """Speech probability per 32 ms of a 16 kHz stream (one instance per stream)."""

    def __init__(self, model_path: Path | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(model_path or silero_model_path()),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._rate = np.array(VAD_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: state, context and any partial chunk."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def push(self, wave16k: np.ndarray) -> np.ndarray:
        """Feed float32 [N] samples at 16 kHz; returns the probabilities [K] in [0, 1]
        of the chunks completed by them (K may be 0)."""
        samples = np.concatenate([self._pending, np.asarray(wave16k, np.float32)])
        count = samples.shape[0] // VAD_CHUNK
        probabilities = np.zeros(count, np.float32)
        for index in range(count):
            chunk = samples[index * VAD_CHUNK : (index + 1) * VAD_CHUNK]
            framed = np.concatenate([self._context, chunk])[None]
            output, self._state = self._session.run(
                None, {"input": framed, "state": self._state, "sr": self._rate}
            )
            probabilities[index] = float(output[0, 0])
            self._context = chunk[-_CONTEXT:]
        self._pending = samples[count * VAD_CHUNK :].copy()
        return probabilities
