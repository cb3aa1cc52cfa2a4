"""Whisper encoder "PPG" features: the `whisper-ppg` (medium.pt) and `whisper-ppg-large`
(large-v2.pt) encoders.

so-vits-svc 4.1 pads or trims the 16 kHz wave to 30 s (480000 samples), computes
Whisper's log-mel spectrogram (3000 frames), runs the audio encoder of the openai
checkpoint (1500 frames of 20 ms) and keeps the first N // 320 frames. Inputs longer
than 30 s were silently cut by the original (so-vits-svc asks users to slice them to
25 s). Here a longer wave is read in consecutive 30 s windows, each handled exactly as
the original handles one slice of up to 30 s (padded, its own log-mel scale), and the
frames are joined: N // 320 frames for any N, since 30 s is a whole number of frames.

The file is openai's checkpoint `{'dims': {...}, 'model_state_dict': {...}}` (fp16
weights). Only the `encoder.*` weights are read; they load strictly into
`WhisperAudioEncoder`, which keeps openai's parameter names, and are cast to float32
as the original's `load_state_dict` into a float32 model does.

Log-mel front end: centred STFT (reflect padding, periodic Hann window of 400, hop
160) from `sovits.dsp.spectrogram`, power of all frames but the last, Slaney mel
filterbank (= librosa.filters.mel(sr=16000, n_fft=400, n_mels)), log10 of
max(mel, 1e-10), floored at (its maximum - 8), then (x + 4) / 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.dsp.spectrogram import mel_filterbank, spectrogram
from sovits.errors import CheckpointError, InputError
from sovits.features.content._wav2vec2 import load_network_state
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave
from sovits.features.content.safe_unpickle import load_checkpoint

N_FFT = 400
MEL_HOP = 160
"""Samples between log-mel frames (10 ms); the encoder halves the frame rate."""
CHUNK_SAMPLES = 30 * SAMPLE_RATE
"""Whisper's fixed input length: 30 s at 16 kHz."""


def whisper_log_mel(audio: Tensor, n_mels: int = 80) -> Tensor:
    """Whisper's log-mel spectrogram of a 16 kHz wave [N] -> [n_mels, N // 160]."""
    if audio.dim() != 1:
        raise InputError(f"expected a wave [N], got shape {list(audio.shape)}")
    magnitude = spectrogram(
        audio[None],
        n_fft=N_FFT,
        hop_length=MEL_HOP,
        win_length=N_FFT,
        center=True,
        padding=(0, 0),
        epsilon=0.0,
    )[0]
    power = magnitude[:, :-1] ** 2
    filters = mel_filterbank(
        sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels, device=audio.device, dtype=audio.dtype
    )
    log_mel = torch.clamp(filters @ power, min=1e-10).log10()
    log_mel = torch.maximum(log_mel, log_mel.max() - 8.0)
    return (log_mel + 4.0) / 4.0


class _WhisperAttention(nn.Module):
    """Whisper's self-attention (`query`, `key` without bias, `value`, `out`)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width, bias=False)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        batch, frames, width = x.shape
        scale = (width // self.heads) ** -0.25
        shape = (batch, frames, self.heads, -1)
        query = self.query(x).view(shape).permute(0, 2, 1, 3) * scale
        key = self.key(x).view(shape).permute(0, 2, 3, 1) * scale
        value = self.value(x).view(shape).permute(0, 2, 1, 3)
        weights = torch.softmax((query @ key).float(), dim=-1).to(query.dtype)
        return self.out((weights @ value).permute(0, 2, 1, 3).flatten(start_dim=2))


class _WhisperBlock(nn.Module):
    """Pre-norm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = _WhisperAttention(width, heads)
        self.attn_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.mlp_ln = nn.LayerNorm(width)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperAudioEncoder(nn.Module):
    """Whisper's audio encoder: log-mel [B, n_mels, 2T] -> [B, T, width].

    Two GELU convolutions (the second with stride 2), the stored sinusoidal position
    embedding, `n_layer` pre-norm blocks and a final LayerNorm (`ln_post`).
    """

    def __init__(self, n_mels: int, n_ctx: int, width: int, heads: int, n_layer: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.zeros(n_ctx, width))
        self.blocks = nn.ModuleList([_WhisperBlock(width, heads) for _ in range(n_layer)])
        self.ln_post = nn.LayerNorm(width)
        self.n_mels = n_mels
        self.width = width

    def forward(self, mel: Tensor) -> Tensor:
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)
        positions = self.get_buffer("positional_embedding")
        if x.shape[1] > positions.shape[0]:
            raise InputError(
                f"{x.shape[1]} encoder frames exceed the model's context of {positions.shape[0]}"
            )
        x = x + positions[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


_DIM_KEYS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")


def load_whisper_encoder(path: str | Path) -> WhisperAudioEncoder:
    """Load the audio encoder of an openai Whisper checkpoint (eval mode, float32, CPU).

    Raises MissingFileError or CheckpointError.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path)
    if not (
        isinstance(checkpoint, Mapping)
        and isinstance(checkpoint.get("dims"), Mapping)
        and isinstance(checkpoint.get("model_state_dict"), Mapping)
    ):
        raise CheckpointError(
            "not an openai Whisper checkpoint: expected {'dims', 'model_state_dict'}", where=path
        )
    dims = checkpoint["dims"]
    missing = [key for key in _DIM_KEYS if not isinstance(dims.get(key), int)]
    if missing:
        raise CheckpointError(f"Whisper dims lack {missing}", where=path)
    if dims["n_audio_ctx"] * 2 * MEL_HOP < CHUNK_SAMPLES:
        raise CheckpointError(
            f"n_audio_ctx {dims['n_audio_ctx']} is shorter than Whisper's 30 s window (1500)",
            where=path,
        )
    if dims["n_audio_state"] % dims["n_audio_head"]:
        raise CheckpointError("n_audio_head does not divide n_audio_state", where=path)
    state = {
        key[len("encoder.") :]: value
        for key, value in checkpoint["model_state_dict"].items()
        if isinstance(key, str) and key.startswith("encoder.")
    }
    encoder = WhisperAudioEncoder(
        dims["n_mels"],
        dims["n_audio_ctx"],
        dims["n_audio_state"],
        dims["n_audio_head"],
        dims["n_audio_layer"],
    )
    load_network_state(encoder, state, what="Whisper encoder", where=path)
    return encoder.eval()


class WhisperPPGEncoder:
    """ContentEncoder `whisper-ppg` / `whisper-ppg-large`: [N // 320, width] of a 16 kHz wave.

    Waves longer than Whisper's 30 s window are encoded window by window (see the module
    docstring); each window costs one encoder pass.
    """

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE

    def __init__(
        self,
        weights: str | Path | WhisperAudioEncoder,
        *,
        name: str = "whisper-ppg",
        device: str | torch.device = "cpu",
    ):
        model = (
            weights if isinstance(weights, WhisperAudioEncoder) else load_whisper_encoder(weights)
        )
        self.name = name
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.dim = model.width

    def encode(self, wave: Tensor) -> Tensor:
        """Encoder output for `wave` (float32 [N], 16 kHz, any length): [N // 320, dim].

        Each 30 s window (the last one shorter) is zero-padded to 30 s and encoded on its
        own; a last window shorter than one frame (320 samples) adds nothing.
        """
        wave = check_wave(wave, min_samples=HOP_SIZE).to(self.device)
        pieces = []
        with torch.inference_mode():
            for start in range(0, wave.shape[0], CHUNK_SAMPLES):
                window = wave[start : start + CHUNK_SAMPLES]
                frames = window.shape[0] // HOP_SIZE
                if frames == 0:
                    break
                padded = F.pad(window, (0, CHUNK_SAMPLES - window.shape[0]))
                mel = whisper_log_mel(padded, self.model.n_mels)
                pieces.append(self.model(mel[None])[0][:frames])
        return torch.cat(pieces)
