"""Speaker embeddings: the GE2E speaker encoder of Resemblyzer, in sovits' own code.

Resemblyzer (Resemble AI, Apache-2.0) ships `pretrained.pt`, a speaker encoder trained
with the generalised end-to-end (GE2E) loss: three LSTM layers of 256 units over
40-band mel frames, a linear layer to 256 values, ReLU, L2 normalisation. Two voices
are compared by the cosine of their embeddings (speaker-embedding cosine similarity,
"SECS" in conversion papers): near 1 for one speaker, lower for two.

Only the weight file is used: it is found through the import system inside the
installed `resemblyzer` package without importing it (its import needs librosa and
webrtcvad) and read with `torch.load(weights_only=True)`. The network and its front
end follow the package's documented parameters (its hparams.py):

* audio at 16 kHz, volume raised (never lowered) to -30 dBFS RMS;
* long pauses shortened: 30 ms windows, a moving average of 8 windows of the speech
  decision, rounded, then dilated by 7 windows; the package decides speech with
  webrtcvad, here a window is speech when its RMS is within `VAD_RANGE_DB` of the
  loudest window and above `VAD_FLOOR_DBFS` (a level rule: the files compared here
  are sung notes and silences, not street recordings);
* a power (not log) mel spectrogram as `librosa.feature.melspectrogram(sr=16000,
  n_fft=400, hop_length=160, n_mels=40)`: periodic Hann window of 400 samples, frames
  centred with reflect padding (librosa's default when the model was trained), Slaney
  mel bands from 0 to 8 kHz;
* the utterance cut into partial windows of 160 frames (1.6 s), 1.3 per second, the
  last one kept (zero-padded) when at least 75 % of it is audio; the utterance
  embedding is the L2-normalised mean of the partial embeddings, and a speaker's the
  L2-normalised mean of its utterances'.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from sovits.errors import CheckpointError, InputError, MissingFileError

__all__ = [
    "EMBEDDING_SIZE",
    "SAMPLE_RATE",
    "SpeakerEmbedder",
    "SpeakerEncoder",
    "cosine_similarity",
    "load_speaker_encoder",
    "partial_slices",
    "resemblyzer_weights_path",
    "speaker_mel",
    "trim_long_pauses",
]

SAMPLE_RATE = 16000
"""Rate the encoder reads, Hz."""
N_FFT = 400
"""FFT and window length of the mel frames (25 ms), samples."""
HOP = 160
"""Hop of the mel frames (10 ms), samples."""
N_MELS = 40
"""Mel bands."""
PARTIAL_FRAMES = 160
"""Frames of one partial utterance (1.6 s)."""
HIDDEN_SIZE = 256
EMBEDDING_SIZE = 256
"""Values of an embedding."""
LAYERS = 3
TARGET_DBFS = -30.0
"""RMS level quieter audio is raised to before embedding, dBFS."""
VAD_WINDOW = 480
"""Samples of a speech-decision window (30 ms)."""
VAD_AVERAGE = 8
"""Windows in the moving average of the speech decisions."""
VAD_MAX_SILENCE = 6
"""Windows of pause kept on each side of speech (dilation by this + 1)."""
VAD_RANGE_DB = 40.0
"""A window is speech when its RMS is within this of the loudest window's."""
VAD_FLOOR_DBFS = -60.0
"""... and above this level."""
INSTALL_HINT = (
    "install the Resemblyzer weights: pip install --no-deps resemblyzer==0.1.4 "
    "(sovits reads only its pretrained.pt)"
)


def resemblyzer_weights_path() -> Path:
    """Path of `pretrained.pt` inside the installed resemblyzer package.

    Raises MissingFileError with the install command when it is not there.
    """
    spec = importlib.util.find_spec("resemblyzer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "pretrained.pt"
        if candidate.is_file():
            return candidate
    raise MissingFileError(
        "speaker similarity needs the Resemblyzer speaker encoder weights",
        where=Path(locations[0]) / "pretrained.pt" if locations else None,
        hint=INSTALL_HINT,
    )


class SpeakerEncoder(nn.Module):
    """GE2E speaker encoder: mel frames [B, T, 40] -> embeddings [B, 256].

    The last LSTM layer's final hidden state goes through the linear layer and a ReLU
    and is scaled to unit length, so embeddings are non-negative with norm 1.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN_SIZE, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN_SIZE, EMBEDDING_SIZE)

    def forward(self, mels: Tensor) -> Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-12)


def load_speaker_encoder(
    path: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> SpeakerEncoder:
    """The encoder with Resemblyzer's weights (`path`, default the installed package's
    pretrained.pt), in eval mode. The file's GE2E loss parameters (similarity_weight /
    _bias) are not part of the encoder and are skipped. Raises MissingFileError /
    CheckpointError."""
    file = resemblyzer_weights_path() if path is None else Path(path)
    if not file.is_file():
        raise MissingFileError("speaker encoder weights not found", where=file, hint=INSTALL_HINT)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or foreign file: one line, not a traceback
        raise CheckpointError(f"cannot read the speaker encoder: {error}", where=file) from None
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError("not a Resemblyzer checkpoint (no 'model_state')", where=file)
    encoder = SpeakerEncoder()
    wanted = {key: value for key, value in state.items() if key.split(".")[0] in ("lstm", "linear")}
    try:
        encoder.load_state_dict(wanted, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(
            f"the speaker encoder weights do not fit: {first}", where=file
        ) from None
    return encoder.to(device).eval()


def speaker_mel(wave: np.ndarray) -> np.ndarray:
    """Power mel spectrogram float32 [1 + N // 160, 40] of a mono 16 kHz wave [N]
    (the front end described in the module doc)."""
    from sovits.dsp.spectrogram import mel_filterbank

    audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    if audio.shape[0] <= N_FFT // 2:
        audio = torch.nn.functional.pad(audio, (0, N_FFT // 2 + 1 - audio.shape[0]))
    spectrum = torch.stft(
        audio,
        N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window=torch.hann_window(N_FFT),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spectrum.real.square() + spectrum.imag.square()  # [F, T]
    basis = mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    mel = (basis @ power).T.contiguous().numpy()
    return mel[: 1 + wave.shape[0] // HOP].astype(np.float32)


def partial_slices(
    n_samples: int, *, rate: float = 1.3, min_coverage: float = 0.75
) -> list[tuple[int, int]]:
    """Mel frame ranges (start, stop) of the partial utterances of a wave of
    `n_samples` at 16 kHz: PARTIAL_FRAMES long, starting every round(16000 / rate /
    160) frames, covering the wave; the last one is dropped when less than
    `min_coverage` of it is audio and it is not the only one."""
    if not 0 < min_coverage <= 1:
        raise InputError(f"min_coverage must be in (0, 1], got {min_coverage}")
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(SAMPLE_RATE / rate / HOP))
    if not 0 < step <= PARTIAL_FRAMES:
        raise InputError(f"partial utterance rate {rate} per second is out of range")
    starts = range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    slices = [(start, start + PARTIAL_FRAMES) for start in starts]
    last_start = slices[-1][0] * HOP
    coverage = (n_samples - last_start) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices


def _raise_volume(wave: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64))))
    if rms <= 0.0:
        return wave
    change = TARGET_DBFS - 20.0 * np.log10(rms)
    return wave if change < 0 else (wave * 10.0 ** (change / 20.0)).astype(np.float32)


def trim_long_pauses(wave: np.ndarray) -> np.ndarray:
    """`wave` (16 kHz, cut to whole 30 ms windows) without the parts of pauses longer
    than the decision smoothing keeps (see the module doc); empty when no window is
    loud enough to be speech."""
    windows = wave.shape[0] // VAD_WINDOW
    audio = wave[: windows * VAD_WINDOW]
    if windows == 0:
        return audio
    framed = audio.reshape(windows, VAD_WINDOW).astype(np.float64)
    level = 10.0 * np.log10(np.maximum(np.mean(framed**2, axis=1), 1e-20))
    speech = (level > level.max() - VAD_RANGE_DB) & (level > VAD_FLOOR_DBFS)
    padded = np.concatenate(
        [np.zeros((VAD_AVERAGE - 1) // 2), speech.astype(np.float64), np.zeros(VAD_AVERAGE // 2)]
    )
    average = np.convolve(padded, np.ones(VAD_AVERAGE) / VAD_AVERAGE, mode="valid")
    mask = np.round(average).astype(bool)
    width = VAD_MAX_SILENCE + 1
    left = (width - 1) // 2  # scipy.ndimage.binary_dilation's centring of an even structure
    dilated = np.zeros_like(mask)
    for offset in range(-left, width - left):
        shifted = np.roll(mask, offset)
        if offset > 0:
            shifted[:offset] = False
        elif offset < 0:
            shifted[offset:] = False
        dilated |= shifted
    return audio[np.repeat(dilated, VAD_WINDOW)]


class SpeakerEmbedder:
    """Speaker embeddings of waves: preprocessing, partial windows, the encoder.

    encoder: a SpeakerEncoder (default: `load_speaker_encoder()`).
    """

    def __init__(
        self, encoder: SpeakerEncoder | None = None, *, device: str | torch.device = "cpu"
    ):
        self.device = torch.device(device)
        self.encoder = (encoder or load_speaker_encoder(device=self.device)).to(self.device).eval()

    def prepare(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """A mono float wave [N] at `sample_rate` as the encoder hears it: 16 kHz,
        quiet audio raised to -30 dBFS, long pauses shortened (may be empty)."""
        from sovits.audio.resample import resample

        audio = np.asarray(wave, dtype=np.float32)
        if audio.ndim != 1:
            raise InputError(f"speaker embedding needs a mono wave [N], got shape {audio.shape}")
        if sample_rate != SAMPLE_RATE:
            audio = resample(audio, sample_rate, SAMPLE_RATE)
        return trim_long_pauses(_raise_volume(audio))

    def embed_prepared(self, wave16k: np.ndarray) -> np.ndarray:
        """Embedding float32 [256] (unit length) of an already prepared 16 kHz wave."""
        slices = partial_slices(wave16k.shape[0])
        needed = slices[-1][1] * HOP
        audio = np.pad(wave16k, (0, max(0, needed - wave16k.shape[0])))
        mel = speaker_mel(audio)
        batch = np.stack([mel[start:stop] for start, stop in slices])
        with torch.inference_mode():
            partials = self.encoder(torch.from_numpy(batch).to(self.device)).cpu().numpy()
        mean = partials.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    def embed(self, wave: np.ndarray, sample_rate: int) -> np.ndarray | None:
        """Embedding float32 [256] of one utterance, or None when it holds nothing
        loud enough to be a voice (silence)."""
        prepared = self.prepare(wave, sample_rate)
        if prepared.shape[0] < VAD_WINDOW:
            return None
        return self.embed_prepared(prepared)

    def embed_speaker(self, waves: Sequence[np.ndarray], sample_rate: int) -> np.ndarray | None:
        """One speaker's embedding [256] from several utterances: the normalised mean of
        their embeddings (silent ones left out); None when all are silent."""
        embeddings = [e for e in (self.embed(w, sample_rate) for w in waves) if e is not None]
        if not embeddings:
            return None
        mean = np.mean(embeddings, axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def cosine_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Cosine of the angle between two embeddings (-1..1; GE2E embeddings are
    non-negative, so 0..1)."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    if norms == 0.0:
        raise InputError("cannot compare a zero embedding")
    return float(np.dot(a, b) / norms)
