"""The standalone NSF-HiFiGAN vocoder at run time: mel front end plus generator.

so-vits-svc 4.1 uses openvpi's NSF-HiFiGAN (`pretrain/nsf_hifigan`) for shallow diffusion
(`diffusion/vocoder.py: Vocoder`, mel types "nsf-hifigan" and "nsf-hifigan-log10") and for
the enhancer. `NsfHifiganVocoder` holds the generator (`NsfHifiganGenerator`, variant
"openvpi") and the mel settings of its config.json; it does no file I/O (see
`sovits.checkpoints.vocoder.load_nsf_hifigan`). Audio is float in [-1, 1], mels are
natural-log magnitudes [B, frames, num_mels], f0 is in Hz per frame (0 = unvoiced).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from sovits.audio.resample import resample
from sovits.dsp.spectrogram import vocoder_mel
from sovits.errors import InputError
from sovits.models.noise import NoiseSource
from sovits.models.vocoder import NsfHifiganGenerator

__all__ = ["LOG10_SCALE", "MelType", "NsfHifiganVocoder", "VocoderMelSettings"]

MelType = Literal["nsf-hifigan", "nsf-hifigan-log10"]
"""The diffusion config's `vocoder.type`: which mel scale the generator is fed."""

LOG10_SCALE = 0.434294
"""What "nsf-hifigan-log10" multiplies the natural-log mel by (the original's literal)."""


@dataclass(frozen=True)
class VocoderMelSettings:
    """The mel front end a vocoder was trained on (config.json keys in brackets).

    sampling_rate [sampling_rate] Hz; hop_length [hop_size], n_fft [n_fft] and
    win_length [win_size] in samples; num_mels [num_mels]; fmin, fmax [fmin, fmax] Hz
    (fmax None = sampling_rate / 2).
    """

    sampling_rate: int
    hop_length: int
    n_fft: int
    win_length: int
    num_mels: int
    fmin: float
    fmax: float | None


class NsfHifiganVocoder(nn.Module):
    """openvpi NSF-HiFiGAN with its mel front end (so-vits-svc's diffusion `Vocoder`).

    `generator` must be the "openvpi" variant with in_channels = num_mels and a hop of
    prod(upsample_rates) = hop_length. Move it with `.to(device)`.
    """

    def __init__(
        self,
        generator: NsfHifiganGenerator,
        mel: VocoderMelSettings,
        *,
        mel_type: MelType = "nsf-hifigan",
    ):
        super().__init__()
        if mel_type not in ("nsf-hifigan", "nsf-hifigan-log10"):
            raise InputError(
                f"unknown vocoder type {mel_type!r}",
                hint='use "nsf-hifigan" or "nsf-hifigan-log10"',
            )
        if generator.upsample_factor != mel.hop_length:
            raise InputError(
                f"generator upsamples by {generator.upsample_factor}, "
                f"the mel hop is {mel.hop_length}"
            )
        in_channels = generator.conv_pre.in_channels
        if in_channels != mel.num_mels:
            raise InputError(f"generator takes {in_channels} mel bins, settings say {mel.num_mels}")
        self.generator = generator
        self.mel = mel
        self.mel_type: MelType = mel_type

    @property
    def sampling_rate(self) -> int:
        """Rate of the audio `infer` returns and `extract` analyses, Hz."""
        return self.mel.sampling_rate

    @property
    def hop_length(self) -> int:
        """Samples per mel frame."""
        return self.mel.hop_length

    @property
    def num_mels(self) -> int:
        """Mel bins per frame (the diffusion model's output dimension)."""
        return self.mel.num_mels

    def mel_spectrogram(self, audio: Tensor, keyshift: float = 0.0) -> Tensor:
        """Log-mel of audio [B, N] already at `sampling_rate` -> [B, num_mels, frames].

        nvSTFT's `get_mel` with this vocoder's settings (about N // hop frames).
        """
        mel = self.mel
        return vocoder_mel(
            audio,
            sample_rate=mel.sampling_rate,
            n_fft=mel.n_fft,
            n_mels=mel.num_mels,
            hop_length=mel.hop_length,
            win_length=mel.win_length,
            fmin=mel.fmin,
            fmax=mel.fmax,
            keyshift=keyshift,
        )

    def extract(self, audio: Tensor, sample_rate: int, keyshift: float = 0.0) -> Tensor:
        """Audio [B, N] at `sample_rate` Hz -> natural-log mel [B, frames, num_mels].

        Audio at another rate is first resampled to the vocoder's (soxr; the original used
        torchaudio's sinc resampler, so resampled mels differ slightly). `keyshift` in
        semitones stretches the analysis window as nvSTFT does.
        """
        if audio.dim() != 2:
            raise InputError(f"expected audio [B, N], got shape {list(audio.shape)}")
        if sample_rate != self.sampling_rate:
            wave = audio.detach().to("cpu", torch.float32).numpy()
            moved = np.asarray(resample(wave, sample_rate, self.sampling_rate))
            audio = torch.from_numpy(moved).to(audio.device)
        return self.mel_spectrogram(audio, keyshift).transpose(1, 2)

    def infer(self, mel: Tensor, f0: Tensor, noise: NoiseSource | None = None) -> Tensor:
        """Mel [B, T, num_mels] (natural log), f0 [B, T', 1] or [B, T'] Hz -> audio [B, T * hop].

        f0 is cut to the mel's T frames (T' >= T). "nsf-hifigan-log10" scales the mel by
        0.434294 first. `noise` gives the source's random draws (a fresh unseeded
        NoiseSource on the mel's device if None). Runs without autograd, so the fast CPU
        path applies when it is on.
        """
        if mel.dim() != 3 or mel.shape[-1] != self.num_mels:
            raise InputError(f"expected a mel [B, T, {self.num_mels}], got shape {list(mel.shape)}")
        if f0.dim() == 3:
            f0 = f0[..., 0]
        if f0.dim() != 2 or f0.shape[0] != mel.shape[0]:
            raise InputError(f"expected f0 [B, T, 1] or [B, T], got shape {list(f0.shape)}")
        frames = mel.shape[1]
        if f0.shape[1] < frames:
            raise InputError(f"f0 has {f0.shape[1]} frames, the mel {frames}")
        f0 = f0[:, :frames]
        features = mel.transpose(1, 2)
        if self.mel_type == "nsf-hifigan-log10":
            features = LOG10_SCALE * features
        if noise is None:
            generator = torch.Generator(device=mel.device)
            generator.seed()
            noise = NoiseSource(generator)
        with torch.no_grad():
            audio = self.generator(features, f0, noise=noise)
        return audio[:, 0]
