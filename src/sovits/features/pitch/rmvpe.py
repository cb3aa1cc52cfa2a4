"""RMVPE pitch extraction: the E2E0 network, its checkpoint loader and the extractor.

RMVPE (yxlllc/RMVPE, as used by so-vits-svc 4.1) reads a 16 kHz log-mel spectrogram
(128 bands, hop 160 = 10 ms), runs a deep residual U-Net and a BiGRU, and outputs a
salience over 360 pitch bins of 20 cents each. f0 is the salience-weighted mean of the
cents around the strongest bin, where that bin is above a threshold.

The module tree (and so the state-dict key names) is the original's, so `rmvpe.pt`
files load strictly. Sizes are keyword arguments; `load_rmvpe` infers them from the keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.dsp.spectrogram import mel_filterbank, spec_to_mel, spectrogram
from sovits.errors import CheckpointError, MissingFileError
from sovits.features.pitch.base import PitchTrack, check_extract_arguments, track_from_raw_f0
from sovits.features.pretrained import resolve_weights

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Rate the network works at, Hz."""
HOP_LENGTH = 160
"""Samples between mel frames at SAMPLE_RATE (10 ms)."""
N_MELS = 128
N_CLASSES = 360
"""Pitch bins of the output, 20 cents apart."""
CENTS_OF_BIN_ZERO = 1997.3794084376191
"""Cents (relative to 10 Hz) of bin 0; bin b is at 20 * b + this (about 31.7 Hz)."""
DEFAULT_THRESHOLD = 0.05
_N_FFT = 1024
_MEL_FMIN = 30.0
_FRAME_MULTIPLE = 32  # the U-Net halves time 5 times, so inputs are padded to 2**5 frames


def rmvpe_log_mel(audio: Tensor) -> Tensor:
    """RMVPE's log-mel front end: 16 kHz waves [B, N] -> [B, 128, N // 160 + 1].

    Centred STFT (reflect padding of n_fft // 2), periodic Hann window of 1024, magnitude
    without an epsilon, HTK-scale mel filterbank (30-8000 Hz, Slaney area norm),
    natural log of max(mel, 1e-5).
    """
    spec = spectrogram(
        audio,
        n_fft=_N_FFT,
        hop_length=HOP_LENGTH,
        win_length=_N_FFT,
        center=True,
        padding=(0, 0),
        epsilon=0.0,
    )
    basis = mel_filterbank(
        sample_rate=SAMPLE_RATE,
        n_fft=_N_FFT,
        n_mels=N_MELS,
        fmin=_MEL_FMIN,
        fmax=SAMPLE_RATE // 2,
        htk=True,
        device=audio.device,
    )
    return spec_to_mel(spec, basis)


class ResidualConvBlock(nn.Module):
    """Two 3x3 conv -> BatchNorm -> ReLU layers plus a skip: [B, Cin, T, F] -> [B, Cout, T, F].

    The skip is a 1x1 conv (with bias) when the channel count changes, else identity.
    """

    def __init__(self, in_channels: int, out_channels: int, momentum: float = 0.01):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.conv(x) + skip


class ResidualStage(nn.Module):
    """`n_blocks` residual blocks (the first changes the channel count)."""

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int, momentum: float = 0.01):
        super().__init__()
        self.conv = nn.ModuleList(
            ResidualConvBlock(in_channels if index == 0 else out_channels, out_channels, momentum)
            for index in range(n_blocks)
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.conv:
            x = block(x)
        return x


class EncoderStage(ResidualStage):
    """A residual stage followed by average pooling; returns (pre-pool skip, pooled)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool_size: tuple[int, int],
        n_blocks: int,
        momentum: float = 0.01,
    ):
        super().__init__(in_channels, out_channels, n_blocks, momentum)
        self.pool = nn.AvgPool2d(kernel_size=pool_size)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = super().forward(x)
        return skip, self.pool(skip)


class DecoderStage(nn.Module):
    """Transposed-conv upsampling (x2), concatenation with the skip, residual blocks."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int],
        n_blocks: int,
        momentum: float = 0.01,
    ):
        super().__init__()
        output_padding = (0, 1) if stride == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(
                in_channels,
                out_channels,
                3,
                stride=stride,
                padding=1,
                output_padding=output_padding,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, momentum=momentum),
            nn.ReLU(),
        )
        self.conv2 = nn.ModuleList(
            ResidualConvBlock(
                out_channels * 2 if index == 0 else out_channels, out_channels, momentum
            )
            for index in range(n_blocks)
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for block in self.conv2:
            x = block(x)
        return x


class _Encoder(nn.Module):
    def __init__(
        self,
        in_channels: int,
        n_stages: int,
        pool_size: tuple[int, int],
        n_blocks: int,
        out_channels: int,
        momentum: float = 0.01,
    ):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.layers = nn.ModuleList()
        self.skip_channels: list[int] = []
        for _ in range(n_stages):
            self.layers.append(
                EncoderStage(in_channels, out_channels, pool_size, n_blocks, momentum)
            )
            self.skip_channels.append(out_channels)
            in_channels, out_channels = out_channels, out_channels * 2
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.bn(x)
        skips = []
        for stage in self.layers:
            skip, x = cast(EncoderStage, stage).encode(x)
            skips.append(skip)
        return x, skips


class _Intermediate(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_stages: int, n_blocks: int):
        super().__init__()
        self.layers = nn.ModuleList(
            ResidualStage(in_channels if index == 0 else out_channels, out_channels, n_blocks)
            for index in range(n_stages)
        )

    def forward(self, x: Tensor) -> Tensor:
        for stage in self.layers:
            x = stage(x)
        return x


class _TimbreFilter(nn.Module):
    """One residual block per skip connection. Saved in rmvpe.pt, never used in forward."""

    def __init__(self, channels: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(ResidualConvBlock(count, count) for count in channels)


class _Decoder(nn.Module):
    def __init__(self, in_channels: int, n_stages: int, stride: tuple[int, int], n_blocks: int):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_stages):
            self.layers.append(DecoderStage(in_channels, in_channels // 2, stride, n_blocks))
            in_channels //= 2

    def forward(self, x: Tensor, skips: list[Tensor]) -> Tensor:
        for stage, skip in zip(self.layers, reversed(skips), strict=True):
            x = stage(x, skip)
        return x


class _DeepUnet(nn.Module):
    def __init__(
        self,
        pool_size: tuple[int, int],
        n_blocks: int,
        en_de_layers: int,
        inter_layers: int,
        in_channels: int,
        en_out_channels: int,
    ):
        super().__init__()
        self.encoder = _Encoder(in_channels, en_de_layers, pool_size, n_blocks, en_out_channels)
        self.intermediate = _Intermediate(
            self.encoder.out_channels // 2, self.encoder.out_channels, inter_layers, n_blocks
        )
        self.tf = _TimbreFilter(self.encoder.skip_channels)
        self.decoder = _Decoder(self.encoder.out_channels, en_de_layers, pool_size, n_blocks)

    def forward(self, x: Tensor) -> Tensor:
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class _BiGru(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(
            input_size, hidden_size, num_layers=num_layers, batch_first=True, bidirectional=True
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.gru(x)[0]


class RmvpeModel(nn.Module):
    """The RMVPE network (the original's E2E0) with its mel front end.

    Keyword arguments are E2E0's: `n_blocks` residual blocks per stage, `n_gru` BiGRU
    layers (0: a plain linear head), `pool_size` (E2E0's kernel_size, also the decoder
    stride), `en_de_layers` encoder/decoder stages, `inter_layers` bottleneck stages,
    `en_out_channels` channels of the first stage. so-vits-svc's rmvpe.pt is
    `RmvpeModel()` (n_blocks 4, n_gru 1, pool (2, 2), 5, 4, 16).

    """

    def __init__(
        self,
        *,
        n_blocks: int = 4,
        n_gru: int = 1,
        pool_size: tuple[int, int] = (2, 2),
        en_de_layers: int = 5,
        inter_layers: int = 4,
        in_channels: int = 1,
        en_out_channels: int = 16,
    ):
        super().__init__()
        self.unet = _DeepUnet(
            (pool_size[0], pool_size[1]),
            n_blocks,
            en_de_layers,
            inter_layers,
            in_channels,
            en_out_channels,
        )
        self.cnn = nn.Conv2d(en_out_channels, 3, 3, padding=1)
        head: list[nn.Module]
        if n_gru:
            head = [_BiGru(3 * N_MELS, 256, n_gru), nn.Linear(512, N_CLASSES)]
        else:
            head = [nn.Linear(3 * N_MELS, N_CLASSES)]
        self.fc = nn.Sequential(*head, nn.Dropout(0.25), nn.Sigmoid())

    def forward(self, mel: Tensor) -> Tensor:
        """Salience of log-mel frames: [B, 128, T] -> [B, T, 360] in (0, 1).

        T must be a multiple of 32 (see `salience` for any length).
        """
        x = self.unet(mel.transpose(-1, -2).unsqueeze(1))
        x = self.cnn(x).transpose(1, 2).flatten(-2)
        return self.fc(x)

    def salience(self, mel: Tensor) -> Tensor:
        """Salience for any frame count: [B, 128, T] -> [B, T, 360].

        The log-mel is padded at the end with zeros (in the log domain) to a multiple of
        32 frames and the output is cropped back, as the original's `mel2hidden` does.
        """
        n_frames = mel.shape[-1]
        mel = F.pad(mel, (0, -n_frames % _FRAME_MULTIPLE))
        return self.forward(mel)[:, :n_frames]

    @torch.no_grad()
    def infer(self, audio: Tensor, threshold: float = DEFAULT_THRESHOLD) -> Tensor:
        """f0 of a 16 kHz wave: [N] -> float32 [N // 160 + 1] Hz, 0 where unvoiced."""
        mel = rmvpe_log_mel(audio[None].float()).to(self.cnn.weight.dtype)
        salience = self.salience(mel)[0].float()
        return salience_to_f0(salience, threshold)


def salience_to_cents(salience: Tensor, threshold: float = DEFAULT_THRESHOLD) -> Tensor:
    """Local weighted-average cents of each frame: [T, 360] -> float32 [T], 0 if unvoiced.

    The mean runs over bins [max(0, c - 4), min(360, c + 5)) around the argmax c
    (truncated at the edges, not clamped). Frames whose maximum is not above `threshold`
    (compared in the salience dtype) get 0.
    """
    bins = salience.shape[-1]
    peak, center = salience.max(dim=-1, keepdim=True)
    index = center + torch.arange(-4, 5, device=salience.device)
    inside = (index >= 0) & (index < bins)
    index = index.clamp(0, bins - 1)
    cents_of_bin = 20 * torch.arange(bins, device=salience.device) + CENTS_OF_BIN_ZERO
    weights = torch.where(inside, torch.gather(salience, -1, index), 0.0)
    cents = (weights * cents_of_bin[index]).sum(-1) / weights.sum(-1)
    return torch.where(peak[..., 0] > threshold, cents, 0.0)


def cents_to_f0(cents: Tensor) -> Tensor:
    """Hz from cents above 10 Hz; 0 cents (unvoiced) gives 0 Hz. Shape kept."""
    return torch.where(cents != 0, 10 * 2 ** (cents / 1200), 0.0)


def salience_to_f0(salience: Tensor, threshold: float = DEFAULT_THRESHOLD) -> Tensor:
    """f0 of each frame: salience [T, 360] -> float32 [T] Hz, 0 where unvoiced."""
    return cents_to_f0(salience_to_cents(salience, threshold))


_ENCODER_BLOCK = re.compile(r"unet\.encoder\.layers\.0\.conv\.(\d+)\.conv\.0\.weight")
_ENCODER_STAGE = re.compile(r"unet\.encoder\.layers\.(\d+)\.")
_INTER_STAGE = re.compile(r"unet\.intermediate\.layers\.(\d+)\.")
_GRU_LAYER = re.compile(r"fc\.0\.gru\.weight_ih_l(\d+)$")


def rmvpe_arguments(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """RmvpeModel keyword arguments that produce `state_dict`'s layout (pool size aside).

    Raises CheckpointError when the keys are not an RMVPE (E2E0) state dict.
    """

    def count(pattern: re.Pattern[str]) -> int:
        found = {int(match.group(1)) for key in state_dict if (match := pattern.match(key))}
        return max(found) + 1 if found else 0

    first = state_dict.get("unet.encoder.layers.0.conv.0.conv.0.weight")
    if first is None or "unet.encoder.bn.weight" not in state_dict:
        raise CheckpointError(
            "not an RMVPE state dict (no unet.encoder.* weights)",
            hint="pass the rmvpe.pt of yxlllc/RMVPE (model.pt renamed)",
        )
    return {
        "n_blocks": count(_ENCODER_BLOCK),
        "n_gru": count(_GRU_LAYER),
        "en_de_layers": count(_ENCODER_STAGE),
        "inter_layers": count(_INTER_STAGE),
        "in_channels": int(first.shape[1]),
        "en_out_channels": int(first.shape[0]),
    }


def load_rmvpe(path: str | Path, *, device: str | torch.device = "cpu") -> RmvpeModel:
    """Load an RMVPE checkpoint (`{'model': state_dict}`, as so-vits-svc reads it).

    The file is read with `torch.load(weights_only=True)`; sizes come from the keys; the
    load is strict; fp16 files are cast to float32. A bare state dict (RVC's rmvpe.pt
    layout) is accepted too, because its keys identify it without doubt; its TimbreFilter
    weights (`unet.tf.*`), which the network never uses, may then be absent.
    Raises MissingFileError or CheckpointError. The model is returned in eval mode.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("RMVPE checkpoint not found", where=path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read the RMVPE checkpoint: {error}", where=path) from error
    bare = False
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("model"), Mapping):
        state_dict = checkpoint["model"]
    elif isinstance(checkpoint, Mapping) and "unet.encoder.bn.weight" in checkpoint:
        state_dict, bare = checkpoint, True
        logger.info("%s is a bare RMVPE state dict (RVC layout); loading it as rmvpe.pt", path)
    else:
        raise CheckpointError(
            "not an RMVPE checkpoint: expected a dict with a 'model' state dict",
            where=path,
        )
    try:
        model = RmvpeModel(**rmvpe_arguments(state_dict))
    except CheckpointError as error:
        raise CheckpointError(error.message, where=path, hint=error.hint) from None
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise CheckpointError(
            f"RMVPE state dict does not fit the network: {error}", where=path
        ) from None
    missing = [key for key in result.missing_keys if not (bare and key.startswith("unet.tf."))]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"RMVPE state dict does not fit the network: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''} ({len(missing)}), unexpected "
            f"{result.unexpected_keys[:5]} ({len(result.unexpected_keys)})",
            where=path,
        )
    return model.to(device).eval()


class RmvpeExtractor:
    """PitchExtractor using RMVPE, with so-vits-svc's RMVPEF0Predictor post-processing.

    model: an RmvpeModel, a path to rmvpe.pt, or None to find `rmvpe.pt` through
        `resolve_weights`.
    threshold: salience a frame's peak must exceed to count as voiced (cr_threshold).
    """

    name = "rmvpe"

    def __init__(
        self,
        model: RmvpeModel | str | Path | None = None,
        *,
        device: str | torch.device = "cpu",
        threshold: float = DEFAULT_THRESHOLD,
    ):
        if not isinstance(model, RmvpeModel):
            model = load_rmvpe(resolve_weights("rmvpe.pt", model), device=device)
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.threshold = threshold

    def raw_f0(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """Network f0 before post-processing: float32 [N16 // 160 + 1] Hz, 0 = unvoiced.

        N16 is the wave's length at 16 kHz (resampled with soxr when needed).
        """
        audio = np.ascontiguousarray(_to_model_rate(wave, sample_rate), dtype=np.float32)
        f0 = self.model.infer(torch.from_numpy(audio).to(self.device), self.threshold)
        return f0.cpu().numpy()

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
        return track_from_raw_f0(self.raw_f0(audio, sample_rate), frames, sample_rate, hop_length)


def _to_model_rate(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate == SAMPLE_RATE:
        return wave
    import soxr

    return np.asarray(soxr.resample(wave, sample_rate, SAMPLE_RATE), dtype=np.float32)
