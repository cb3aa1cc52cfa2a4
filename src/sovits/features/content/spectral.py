"""A download-free content encoder: speaker-normalised cepstral features (`spectral`).

This is a FALLBACK for demos, tests and machines without a pretrained speech model.
It is not a learned representation of speech content: it describes the smoothed
spectral envelope of each frame, with two cheap steps that remove part of the
speaker's identity. A model trained on it converts voices far worse than one trained
on ContentVec (`vec768l12`): expect muffled consonants, leakage of the source
speaker's timbre and poorer pronunciation. Use a real encoder whenever its weights can
be had (`sovits pretrained list`).

What it computes, for a mono 16 kHz wave of N samples, one frame every 320 samples
(the frame rate of every so-vits-svc encoder, so everything downstream is unchanged):

1. pre-emphasis (y[n] - 0.97 y[n-1]) and a magnitude spectrogram (`sovits.dsp`
   STFT, 1024-point FFT, 640-sample Hann window, hop 320, N // 320 frames);
2. vocal-tract-length normalisation (VTLN): one warp factor per utterance,
   alpha = reference / centroid, where centroid is the spectral centroid (Hz) of the
   utterance's mean magnitude spectrum between 100 Hz and 5 kHz over its active
   frames (within 40 dB of the loudest); alpha is clipped to [0.8, 1.2] and the
   frequency axis is warped piecewise-linearly (f -> alpha f below a break point,
   then a straight line to Nyquist), so an utterance whose formants sit higher is
   compressed down and one whose formants sit lower is stretched up. The centroid
   follows the formant scale closely and the pitch only a little; the reference
   (2100 Hz) is where a synthetic vowel sequence (sawtooth through adult formant
   resonators) lands, not a value fitted to recorded speech;
3. an 80-band Slaney mel filterbank (20 Hz - 8 kHz) on the warped power spectrum,
   the log (floored 80 dB below the utterance's loudest band), and a DCT-II keeping
   32 cepstral coefficients, which drops most of the harmonic fine structure (pitch);
4. first-order deltas (regression over +-2 frames) appended: 64 values per frame;
5. per-utterance mean and variance normalisation of every dimension over time,
   which removes the long-term spectral colour of the speaker and the channel, and
   the overall level.

Deterministic, gain-invariant (up to float rounding), no weights, a few milliseconds
per second of audio on a CPU.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.dsp.spectrogram import mel_filterbank, spectrogram
from sovits.errors import InputError
from sovits.features.content.base import HOP_SIZE, SAMPLE_RATE, check_wave

__all__ = ["SpectralContentEncoder"]

N_FFT = 1024
WINDOW_LENGTH = 640
PRE_EMPHASIS = 0.97
N_MELS = 80
MEL_FMIN = 20.0
N_CEPSTRA = 32
DELTA_WINDOW = 2
DIM = 2 * N_CEPSTRA
"""Feature size of the `spectral` encoder."""

REFERENCE_CENTROID_HZ = 2100.0
WARP_RANGE = (0.8, 1.2)
CENTROID_BAND_HZ = (100.0, 5000.0)
ACTIVE_FLOOR = 1e-4
"""Frames whose band energy is below this fraction of the loudest frame's (-40 dB) do
not count towards the warp estimate."""
LOG_FLOOR = 1e-8
"""Mel energies are floored at this fraction of the utterance's largest (-80 dB)."""
STD_FLOOR = 1e-3
"""Dimensions that vary less than this over the utterance (silence) are not scaled up."""
_BREAK_FRACTION = 0.8


def _dct_matrix(n_out: int, n_in: int, device: torch.device) -> Tensor:
    """Orthonormal DCT-II basis [n_out, n_in] (float32)."""
    positions = torch.arange(n_in, dtype=torch.float64) + 0.5
    orders = torch.arange(n_out, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_in * positions[None, :] * orders) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.to(device=device, dtype=torch.float32)


def _deltas(features: Tensor, window: int) -> Tensor:
    """Regression deltas of [C, T] over +-window frames, edges repeated: [C, T]."""
    padded = F.pad(features[None], (window, window), mode="replicate")[0]
    frames = features.shape[1]
    total = torch.zeros_like(features)
    for offset in range(1, window + 1):
        ahead = padded[:, window + offset : window + offset + frames]
        behind = padded[:, window - offset : window - offset + frames]
        total = total + offset * (ahead - behind)
    return total / (2 * sum(offset * offset for offset in range(1, window + 1)))


def inverse_warp(frequencies: Tensor, alpha: float, nyquist: float) -> Tensor:
    """Input frequency (Hz) that the VTLN warp with factor `alpha` sends to `frequencies`.

    The forward warp is f -> alpha f up to the break point b = 0.8 nyquist min(1,
    1 / alpha), then the straight line from (b, alpha b) to (nyquist, nyquist).
    """
    corner = _BREAK_FRACTION * nyquist * min(1.0, 1.0 / alpha)
    warped_corner = alpha * corner
    slope = (nyquist - corner) / (nyquist - warped_corner)
    low = frequencies / alpha
    high = corner + (frequencies - warped_corner) * slope
    return torch.where(frequencies <= warped_corner, low, high)


class SpectralContentEncoder:
    """ContentEncoder `spectral`: speaker-normalised cepstra, [N // 320, 64], no weights.

    A fallback for when no pretrained encoder is available; see the module docstring
    for what it computes and how much worse it converts than ContentVec. `weights` is
    accepted (and must be None) so the registry can build it like the other encoders.
    """

    sample_rate = SAMPLE_RATE
    hop_size = HOP_SIZE
    dim = DIM

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        name: str = "spectral",
        device: str | torch.device = "cpu",
    ):
        if weights is not None:
            raise InputError(
                "the spectral encoder reads no weight file", where=weights,
                hint="leave the weights out for speech_encoder 'spectral'",
            )
        self.name = name
        self.device = torch.device(device)
        self._mel_basis = mel_filterbank(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            n_mels=N_MELS,
            fmin=MEL_FMIN,
            fmax=SAMPLE_RATE / 2,
            device=self.device,
        )
        self._dct = _dct_matrix(N_CEPSTRA, N_MELS, self.device)
        bins = N_FFT // 2 + 1
        self._bin_hz = torch.arange(bins, dtype=torch.float32, device=self.device) * (
            SAMPLE_RATE / N_FFT
        )

    def _power(self, wave: Tensor) -> Tensor:
        """Pre-emphasised power spectrogram [N_FFT // 2 + 1, N // 320]."""
        emphasised = torch.cat([wave[:1], wave[1:] - PRE_EMPHASIS * wave[:-1]])
        side = (N_FFT - HOP_SIZE) // 2
        mode: Literal["reflect", "constant"] = (
            "reflect" if emphasised.shape[0] > side else "constant"
        )
        magnitude = spectrogram(
            emphasised[None],
            n_fft=N_FFT,
            hop_length=HOP_SIZE,
            win_length=WINDOW_LENGTH,
            padding=(side, side),
            pad_mode=mode,
            epsilon=0.0,
        )[0]
        return magnitude.square()

    def _warp_factor_of_power(self, power: Tensor) -> float:
        low, high = CENTROID_BAND_HZ
        band = (self._bin_hz >= low) & (self._bin_hz <= high)
        energy = power[band].sum(dim=0)
        if energy.numel() == 0 or float(energy.max()) <= 0.0:
            return 1.0
        active = energy >= ACTIVE_FLOOR * energy.max()
        magnitude = power[band][:, active].mean(dim=1).sqrt()
        centroid = float((magnitude * self._bin_hz[band]).sum() / magnitude.sum())
        alpha = REFERENCE_CENTROID_HZ / centroid
        return min(max(alpha, WARP_RANGE[0]), WARP_RANGE[1])

    def warp_factor(self, wave: Tensor) -> float:
        """The utterance's VTLN factor alpha in [0.8, 1.2] (1.0 for silence)."""
        wave = check_wave(wave).to(self.device)
        return self._warp_factor_of_power(self._power(wave))

    def _warp(self, power: Tensor, alpha: float) -> Tensor:
        """Power spectrum [F, T] with its frequency axis warped by `alpha`: [F, T]."""
        if alpha == 1.0:
            return power
        nyquist = SAMPLE_RATE / 2
        source_hz = inverse_warp(self._bin_hz, alpha, nyquist)
        position = (source_hz / (SAMPLE_RATE / N_FFT)).clamp(0, power.shape[0] - 1)
        below = position.floor().long()
        above = (below + 1).clamp(max=power.shape[0] - 1)
        fraction = (position - below.to(position.dtype))[:, None]
        return power[below] * (1 - fraction) + power[above] * fraction

    def encode(self, wave: Tensor) -> Tensor:
        """Features of `wave` (float32 [N], 16 kHz): float32 [N // 320, 64], each
        dimension normalised to zero mean and unit variance over the utterance."""
        wave = check_wave(wave, min_samples=HOP_SIZE).to(self.device)
        with torch.inference_mode():
            power = self._power(wave)
            warped = self._warp(power, self._warp_factor_of_power(power))
            mel = self._mel_basis @ warped
            floor = max(float(mel.max()) * LOG_FLOOR, 1e-20)
            # float64 from here: a band that never changes (silence) cancels to exact zeros
            log_mel = torch.log(mel.clamp(min=floor)).double()
            log_mel = log_mel - log_mel.mean(dim=1, keepdim=True)
            cepstra = self._dct.double() @ log_mel
            features = torch.cat([cepstra, _deltas(cepstra, DELTA_WINDOW)], dim=0)
            mean = features.mean(dim=1, keepdim=True)
            deviation = features.std(dim=1, unbiased=False, keepdim=True).clamp(min=STD_FLOOR)
            normalised = (features - mean) / deviation
            return normalised.t().to(torch.float32).contiguous()
