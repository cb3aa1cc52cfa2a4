"""The NSF-HiFiGAN enhancer of so-vits-svc 4.1 (`-eh`, with `-eak` adaptive key).

The enhancer re-synthesises a converted waveform with openvpi's NSF-HiFiGAN: the
waveform's own mel and the conversion's f0 go through the vocoder again, which cleans
up some artefacts of the synthesizer's decoder (`modules/enhancer.py`).

The adaptive key moves the range the vocoder works in: the audio is resampled to
`adaptive_sample_rate` (the vocoder's rate times 2^(key / 12), on a 100 Hz grid) and
analysed as if it were at the vocoder's rate, so its spectrum appears shifted by about
`key` semitones; f0 is scaled by the same factor, and the output is resampled back.

Differences from the original, on purpose: the caller's f0 is left untouched (the
original scaled it in place), the resampler is soxr (`sovits.audio.resample`) instead of
torchaudio's sinc filter, and the result comes back at the caller's rate (the original
returned the vocoder's rate, which is the same for 44.1 kHz models).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sovits.audio.resample import resample
from sovits.errors import InputError
from sovits.models.noise import NoiseSource
from sovits.models.nsf_vocoder import NsfHifiganVocoder

__all__ = ["Enhancer", "adaptive_sample_rate"]

logger = logging.getLogger(__name__)


def adaptive_sample_rate(vocoder_rate: int, adaptive_key: float) -> int:
    """The rate the enhancer resamples to for `adaptive_key` semitones, Hz.

    vocoder_rate * 2^(key / 12) rounded to a multiple of 100 Hz, computed as the original
    does (dividing by 2^(-key / 12)).
    """
    factor = 2 ** (-adaptive_key / 12)
    return 100 * int(np.round(vocoder_rate / factor / 100))


def _as_numpy(values: np.ndarray | Tensor, name: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} must be one-dimensional [N], got shape {list(array.shape)}")
    if array.shape[0] == 0:
        raise InputError(f"{name} is empty")
    return array.astype(np.float32, copy=False)


class Enhancer:
    """so-vits-svc's `Enhancer('nsf-hifigan', ...)` over a loaded `NsfHifiganVocoder`.

    The vocoder's mel type is ignored: the enhancer always feeds the natural-log mel.
    """

    def __init__(self, vocoder: NsfHifiganVocoder):
        self.vocoder = vocoder

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        device: torch.device | str = "cpu",
        fast: bool = True,
    ) -> Enhancer:
        """Load the NSF-HiFiGAN folder `path`, or the known one (`nsf_hifigan`).

        Without `path`, `$SOVITS_HOME/pretrain/nsf_hifigan` and then the user cache are
        searched; a missing vocoder raises MissingFileError saying where to get it.
        """
        from sovits.checkpoints.vocoder import MODEL_FILE_NAME, load_nsf_hifigan
        from sovits.features.pretrained import resolve_weights

        explicit: Path | None = None
        if path is not None:
            explicit = Path(path).expanduser()
            if explicit.is_dir():
                explicit = explicit / MODEL_FILE_NAME
        resolved = resolve_weights("nsf_hifigan", explicit)
        return cls(load_nsf_hifigan(resolved, device=device, fast=fast))

    @property
    def sampling_rate(self) -> int:
        """The vocoder's own rate, Hz."""
        return self.vocoder.sampling_rate

    def enhance(
        self,
        audio: np.ndarray | Tensor,
        sample_rate: int,
        f0: np.ndarray | Tensor,
        hop_length: int,
        adaptive_key: float = 0.0,
        noise: NoiseSource | None = None,
    ) -> tuple[np.ndarray, int]:
        """Re-synthesise `audio` [N] at `sample_rate` Hz -> (audio [N'] float32, sample_rate).

        `f0` [T] Hz holds one value per `hop_length` samples of `audio` (0 = unvoiced); it
        is not modified. `adaptive_key` in semitones (-eak). `noise` gives the harmonic
        source's random draws (a fresh unseeded source if None). The output has about
        N // hop frames of audio: the vocoder's frames times its hop, at the adaptive rate,
        resampled to `sample_rate`.
        """
        wave = _as_numpy(audio, "audio")
        f0_frames = _as_numpy(f0, "f0")
        if sample_rate <= 0 or hop_length <= 0:
            raise InputError(
                f"sample_rate and hop_length must be positive, got {sample_rate}, {hop_length}"
            )
        vocoder_rate = self.vocoder.sampling_rate
        vocoder_hop = self.vocoder.hop_length
        internal_rate = adaptive_sample_rate(vocoder_rate, adaptive_key)
        real_factor = vocoder_rate / internal_rate
        wave = np.asarray(resample(wave, sample_rate, internal_rate), dtype=np.float32)
        n_frames = wave.shape[0] // vocoder_hop + 1

        # f0 at the vocoder's frames: scaled like the spectrum (in float32, as the original
        # scaled its float32 array), then linearly interpolated with the edges held.
        scaled = f0_frames * np.float32(real_factor)
        source_times = (hop_length / sample_rate) * np.arange(len(scaled)) / real_factor
        target_times = (vocoder_hop / vocoder_rate) * np.arange(n_frames)
        f0_vocoder = np.interp(target_times, source_times, scaled, left=scaled[0], right=scaled[-1])

        device = next(self.vocoder.parameters()).device
        if noise is None:
            generator = torch.Generator(device=device)
            generator.seed()
            noise = NoiseSource(generator)
        with torch.no_grad():
            mel = self.vocoder.mel_spectrogram(torch.from_numpy(wave)[None].to(device))
            f0_tensor = torch.from_numpy(f0_vocoder).to(torch.float32)[None].to(device)
            output = self.vocoder.generator(mel, f0_tensor[:, : mel.shape[-1]], noise=noise)
        enhanced = output.reshape(-1).to(torch.float32).cpu().numpy()
        enhanced = np.asarray(resample(enhanced, internal_rate, sample_rate), dtype=np.float32)
        logger.debug(
            "enhanced %d samples at %d Hz (internal rate %d Hz)",
            enhanced.shape[0],
            sample_rate,
            internal_rate,
        )
        return enhanced, sample_rate
