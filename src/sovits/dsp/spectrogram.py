"""The one STFT, linear spectrogram and mel implementation of sovits.

so-vits-svc 4.1 carried several copies of this code (`mel_processing.py` for the
synthesizer's training targets, `nvSTFT.py` for the NSF-HiFiGAN vocoder, the
enhancer and FCPE). They differ only in parameters, all of which are arguments here:

* `spectrogram` / `spec_to_mel` / `mel_spectrogram`: the synthesizer's front end
  (symmetric reflect padding of (n_fft - hop) / 2, magnitude sqrt(re² + im² + 1e-6),
  mel basis in the signal's dtype).
* `vocoder_mel`: the NSF-HiFiGAN front end (asymmetric padding, constant padding for
  clips shorter than a window, magnitude epsilon 1e-9, key shift and speed).

`mel_filterbank` is an own implementation of librosa's `filters.mel` (Slaney mel
scale and area normalisation by default, HTK scale on request), so librosa is not
needed. Frequencies are in Hz, lengths in samples; spectra are [B, n_fft // 2 + 1,
frames] and mels [B, n_mels, frames]. No state is kept between calls apart from a
small cache of filterbanks (pure function of the arguments).
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sovits.errors import InputError

__all__ = [
    "hann_window",
    "mel_filterbank",
    "mel_spectrogram",
    "spec_to_mel",
    "spectrogram",
    "vocoder_mel",
]


def hann_window(
    win_length: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Periodic Hann window [win_length], computed in float32, then cast to `dtype`."""
    return torch.hann_window(win_length).to(device=device, dtype=dtype)


def spectrogram(
    y: Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int,
    center: bool = False,
    padding: tuple[int, int] | None = None,
    pad_mode: Literal["reflect", "constant"] = "reflect",
    epsilon: float = 1e-6,
) -> Tensor:
    """Magnitude spectrogram of waveforms [B, N] -> [B, n_fft // 2 + 1, frames].

    The signal is padded by `padding` (left, right) samples, by default
    ((n_fft - hop) // 2, (n_fft - hop) // 2) as the synthesizer's `spectrogram_torch`,
    then framed by `torch.stft` (center=False unless asked, periodic Hann window of
    `win_length` in the signal's dtype, zero-padded to n_fft). Magnitude is
    sqrt(re² + im² + epsilon). With the default padding there are N // hop frames when
    n_fft - hop is even.
    """
    if y.dim() != 2:
        raise InputError(f"expected waveforms [B, N], got shape {list(y.shape)}")
    if padding is None:
        side = int((n_fft - hop_length) / 2)
        padding = (side, side)
    padded = F.pad(y.unsqueeze(1), padding, mode=pad_mode).squeeze(1)
    spec = torch.stft(
        padded,
        n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=hann_window(win_length, device=y.device, dtype=y.dtype),
        center=center,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + epsilon)


def _hz_to_mel(hz: np.ndarray, htk: bool) -> np.ndarray:
    """Hz -> mel (float64). Slaney: linear below 1 kHz (200/3 Hz per mel), log above."""
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear_step = 200.0 / 3
    mels = hz / linear_step
    log_start_hz = 1000.0
    log_start_mel = log_start_hz / linear_step
    log_step = np.log(6.4) / 27.0
    above = hz >= log_start_hz
    mels[above] = log_start_mel + np.log(hz[above] / log_start_hz) / log_step
    return mels


def _mel_to_hz(mels: np.ndarray, htk: bool) -> np.ndarray:
    """Inverse of `_hz_to_mel` (float64)."""
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    linear_step = 200.0 / 3
    hz = linear_step * mels
    log_start_hz = 1000.0
    log_start_mel = log_start_hz / linear_step
    log_step = np.log(6.4) / 27.0
    above = mels >= log_start_mel
    hz[above] = log_start_hz * np.exp(log_step * (mels[above] - log_start_mel))
    return hz


@functools.lru_cache(maxsize=32)
def _mel_filterbank_numpy(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float,
    htk: bool,
    norm: str | None,
) -> np.ndarray:
    bins = n_fft // 2 + 1
    bin_hz = np.arange(bins) * (1.0 / (n_fft * (1.0 / sample_rate)))
    edges_mel = np.linspace(
        _hz_to_mel(np.array([float(fmin)]), htk)[0],
        _hz_to_mel(np.array([float(fmax)]), htk)[0],
        n_mels + 2,
    )
    edges_hz = _mel_to_hz(edges_mel, htk)
    widths = np.diff(edges_hz)
    # distance of every band edge to every FFT bin: [n_mels + 2, bins]
    offsets = edges_hz[:, None] - bin_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    # librosa stores the triangles in float32 and then scales them in float64
    weights = np.maximum(0, np.minimum(rising, falling)).astype(np.float32)
    if norm == "slaney":
        area = 2.0 / (edges_hz[2 : n_mels + 2] - edges_hz[:n_mels])
        weights = (weights.astype(np.float64) * area[:, None]).astype(np.float32)
    weights.setflags(write=False)
    return weights


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Literal["slaney"] | None = "slaney",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Triangular mel filterbank [n_mels, n_fft // 2 + 1].

    Equals `librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
    fmax=fmax, htk=htk, norm=norm)` (float32, then cast to `dtype`): n_mels + 2 band
    edges evenly spaced on the mel scale (Slaney by default, HTK with `htk`), triangles
    over the FFT bin frequencies, and with norm="slaney" each triangle scaled by
    2 / (its width in Hz) so that all have equal area. `fmax` defaults to sample_rate / 2.
    """
    if norm not in ("slaney", None):
        raise InputError(f"unsupported mel norm {norm!r}", hint='use "slaney" or None')
    top = float(sample_rate) / 2 if fmax is None else float(fmax)
    weights = _mel_filterbank_numpy(
        int(sample_rate), int(n_fft), int(n_mels), float(fmin), top, bool(htk), norm
    )
    return torch.tensor(weights, device=device).to(dtype)


def spec_to_mel(spec: Tensor, mel_basis: Tensor, *, clip_value: float = 1e-5) -> Tensor:
    """Log-mel: spec [B, F, T] -> log(clamp(mel_basis [M, F] @ spec, clip_value)) [B, M, T]."""
    return torch.log(torch.clamp(torch.matmul(mel_basis, spec), min=clip_value))


def mel_spectrogram(
    y: Tensor,
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    hop_length: int,
    win_length: int,
    fmin: float,
    fmax: float | None,
    center: bool = False,
) -> Tensor:
    """Log-mel spectrogram of waveforms [B, N] -> [B, n_mels, frames] (synthesizer).

    `spectrogram` with the default padding, then `spec_to_mel` with the Slaney
    filterbank in the signal's dtype: so-vits-svc's `mel_spectrogram_torch`.
    """
    spec = spectrogram(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, center=center)
    basis = mel_filterbank(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        device=y.device,
        dtype=y.dtype,
    )
    return spec_to_mel(spec, basis)


def vocoder_mel(
    y: Tensor,
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    hop_length: int,
    win_length: int,
    fmin: float,
    fmax: float | None,
    keyshift: float = 0.0,
    speed: float = 1.0,
    center: bool = False,
    clip_value: float = 1e-5,
) -> Tensor:
    """Log-mel of waveforms [B, N] -> [B, n_mels, frames], the NSF-HiFiGAN front end.

    As `nvSTFT.STFT.get_mel` (vocoder, enhancer, FCPE): with f = 2**(keyshift / 12) the
    STFT uses n_fft' = round(n_fft f), window round(win_length f) and hop
    round(hop_length speed); the signal is padded by (w - h) // 2 on the left and
    max((w - h + 1) // 2, w - N - left) on the right, reflecting unless that right pad
    reaches N samples (then zeros). Magnitude epsilon is 1e-9. With a key shift the
    spectrum is cut or zero-padded to n_fft // 2 + 1 bins and scaled by
    win_length / window'. The filterbank is Slaney, for the original n_fft, float32.
    Gives about N // hop frames; `Vocoder.extract` is this transposed to [B, frames, M].
    """
    if y.dim() != 2:
        raise InputError(f"expected waveforms [B, N], got shape {list(y.shape)}")
    factor = 2 ** (keyshift / 12)
    shifted_n_fft = round(n_fft * factor)
    shifted_win = round(win_length * factor)
    shifted_hop = round(hop_length * speed)
    samples = y.shape[-1]
    pad_left = (shifted_win - shifted_hop) // 2
    pad_right = max((shifted_win - shifted_hop + 1) // 2, shifted_win - samples - pad_left)
    spec = spectrogram(
        y,
        n_fft=shifted_n_fft,
        hop_length=shifted_hop,
        win_length=shifted_win,
        center=center,
        padding=(pad_left, pad_right),
        pad_mode="reflect" if pad_right < samples else "constant",
        epsilon=1e-9,
    )
    if keyshift != 0:
        bins = n_fft // 2 + 1
        if spec.shape[1] < bins:
            spec = F.pad(spec, (0, 0, 0, bins - spec.shape[1]))
        spec = spec[:, :bins, :] * win_length / shifted_win
    basis = mel_filterbank(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        device=y.device,
        dtype=torch.float32,
    )
    return spec_to_mel(spec, basis, clip_value=clip_value)
