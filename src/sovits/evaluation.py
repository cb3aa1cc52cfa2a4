"""Objective metrics of a conversion: did it keep the melody, and whose voice is it?

`evaluate_conversion` compares a converted file with its source (and optionally with
reference clips of the target singer), as `sovits evaluate` prints:

* F0 error: the median absolute difference, in cents, between the converted f0 and the
  expected one (source f0 * 2^(transpose / 12)) over the frames voiced in both, with
  both tracks from the same sovits pitch extractor ("harvest" by default).
* Voicing agreement: the share of frames where both files agree on voiced / unvoiced.
* Timbre distances: a singer's timbre is summarised by the mean, over its voiced
  frames, of low-order cepstra of the log-mel spectrum (coefficients 1..n_cepstra of
  an orthonormal DCT-II; c0, the loudness, is left out). Two descriptors are compared
  as a mel-cepstral distortion in dB, (10 / ln 10) * sqrt(2 * sum of squared
  differences): distance_to_source, and distance_to_target (the descriptor of all
  target reference clips pooled). A conversion that worked is closer to the target than
  to the source.

All audio is analysed mono at `EvaluationSettings.sample_rate`. The timbre descriptor
is an average log-mel envelope, so it also moves a little with the pitch range and the
vowels sung: compare clips of similar range and content, and read distance_to_target
against target_to_source rather than as an absolute number.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sovits.errors import InputError

__all__ = [
    "EvaluationResult",
    "EvaluationSettings",
    "TimbreFrames",
    "cepstral_distance",
    "evaluate_conversion",
    "f0_error_cents",
    "timbre_frames",
]

_DB_PER_NEPER = 10.0 / math.log(10.0)


@dataclass(frozen=True)
class EvaluationSettings:
    """How the files are analysed.

    sample_rate: rate every file is resampled to, Hz. hop_length: frame hop, samples.
    n_fft: FFT and window length of the spectrogram, samples. n_mels: mel bands
    (Slaney, 0 Hz to Nyquist). n_cepstra: cepstral coefficients kept (c1..c_n).
    f0_method: a sovits pitch method name (sovits.features.pitch.registry).
    """

    sample_rate: int = 16000
    hop_length: int = 160
    n_fft: int = 1024
    n_mels: int = 40
    n_cepstra: int = 8
    f0_method: str = "harvest"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_fft < self.hop_length:
            raise InputError(
                "need sample_rate > 0 and 0 < hop_length <= n_fft, got "
                f"{self.sample_rate}, {self.hop_length}, {self.n_fft}"
            )
        if not 0 < self.n_cepstra < self.n_mels:
            raise InputError(f"need 0 < n_cepstra < n_mels, got {self.n_cepstra}, {self.n_mels}")


@dataclass(frozen=True)
class EvaluationResult:
    """The metrics of one conversion.

    f0_error_cents: median |converted f0 - expected f0| in cents over the frames voiced
        in both (None when there is no such frame). f0_frames: that frame count.
    voicing_agreement: share of frames with the same voiced / unvoiced decision, 0-1.
    distance_to_source: timbre distance converted vs source, dB.
    distance_to_target: timbre distance converted vs the pooled target references, dB
        (None without references). target_to_source: the same between the references
        and the source, the scale the two distances are read against (None without
        references).
    """

    source: str
    converted: str
    target_references: tuple[str, ...]
    transpose: float
    f0_method: str
    f0_error_cents: float | None
    f0_frames: int
    voicing_agreement: float
    distance_to_source: float
    distance_to_target: float | None
    target_to_source: float | None

    def to_dict(self) -> dict[str, object]:
        """The result as a JSON-ready dict."""
        data = asdict(self)
        data["target_references"] = list(self.target_references)
        return data

    def to_json(self) -> str:
        """The result as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write `to_json()` to `path` atomically (folders created); returns the path.
        Raises InputError when it cannot be written."""
        from sovits.files import atomic_write

        target = Path(path)
        data = self.to_json().encode("utf-8")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, lambda handle: handle.write(data))
        except OSError as error:
            raise InputError(f"cannot write the metrics: {error}", where=target) from None
        return target

    def to_text(self) -> str:
        """The result as lines for a terminal."""

        def number(value: float | None, unit: str) -> str:
            return "n/a" if value is None else f"{value:.2f} {unit}"

        lines = [
            f"f0 error:           {number(self.f0_error_cents, 'cents')} (median over "
            f"{self.f0_frames} frames voiced in both, {self.f0_method}, "
            f"transpose {self.transpose:g})",
            f"voicing agreement:  {100 * self.voicing_agreement:.1f} %",
            f"distance to source: {number(self.distance_to_source, 'dB')}",
        ]
        if self.distance_to_target is not None:
            lines.append(f"distance to target: {number(self.distance_to_target, 'dB')}")
            lines.append(f"target vs source:   {number(self.target_to_source, 'dB')}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TimbreFrames:
    """Per-frame analysis of one wave: f0 float32 [T] Hz (interpolated where unvoiced),
    voiced bool [T], cepstra float64 [T, n_cepstra] (c1..c_n of the log-mel)."""

    f0: np.ndarray
    voiced: np.ndarray
    cepstra: np.ndarray

    def descriptor(self) -> np.ndarray:
        """Mean cepstrum over the voiced frames [n_cepstra] (all frames if none is)."""
        frames = self.cepstra[self.voiced] if self.voiced.any() else self.cepstra
        return np.asarray(frames.mean(axis=0))


def _log_mel_cepstra(wave: np.ndarray, settings: EvaluationSettings) -> np.ndarray:
    import torch
    from scipy.fft import dct

    from sovits.dsp.spectrogram import mel_filterbank, spec_to_mel, spectrogram

    audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).unsqueeze(0)
    spec = spectrogram(
        audio, n_fft=settings.n_fft, hop_length=settings.hop_length, win_length=settings.n_fft
    )
    basis = mel_filterbank(
        sample_rate=settings.sample_rate, n_fft=settings.n_fft, n_mels=settings.n_mels
    )
    log_mel = spec_to_mel(spec, basis).squeeze(0).numpy().astype(np.float64)  # [M, T]
    # An orthonormal DCT over M bands is sqrt(2 M) times the cepstrum of a log spectrum
    # sampled at M points; dividing makes the distances read as mel-cepstral distortion.
    cepstra = dct(log_mel, type=2, norm="ortho", axis=0) / math.sqrt(2 * settings.n_mels)
    return np.ascontiguousarray(cepstra[1 : settings.n_cepstra + 1].T)


def timbre_frames(wave: np.ndarray, settings: EvaluationSettings) -> TimbreFrames:
    """Analyse a mono float wave [N] at `settings.sample_rate`: f0 with the settings'
    method and the low-order log-mel cepstra, both on len(wave) // hop frames."""
    from sovits.features.pitch.registry import create_pitch_extractor

    audio = np.asarray(wave, dtype=np.float32)
    if audio.ndim != 1 or audio.shape[0] < settings.n_fft:
        raise InputError(
            f"need a mono wave of at least {settings.n_fft} samples, got shape {audio.shape}"
        )
    track = create_pitch_extractor(settings.f0_method).extract(
        audio, settings.sample_rate, settings.hop_length
    )
    cepstra = _log_mel_cepstra(audio, settings)
    frames = min(len(track), cepstra.shape[0])
    return TimbreFrames(track.f0[:frames], track.voiced[:frames], cepstra[:frames])


def cepstral_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Mel-cepstral distortion between two cepstra [n] (same scale): dB."""
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    return float(_DB_PER_NEPER * math.sqrt(2.0 * float(np.sum(difference**2))))


def f0_error_cents(
    source: TimbreFrames, converted: TimbreFrames, transpose: float = 0.0
) -> tuple[float | None, int, float]:
    """(median absolute error in cents over frames voiced in both or None, that frame
    count, voicing agreement 0-1) of `converted` against source f0 * 2^(transpose / 12),
    over the frames both have."""
    frames = min(len(source.f0), len(converted.f0))
    if frames == 0:
        raise InputError("nothing to compare: one of the files has no frames")
    source_voiced, converted_voiced = source.voiced[:frames], converted.voiced[:frames]
    agreement = float(np.mean(source_voiced == converted_voiced))
    both = source_voiced & converted_voiced
    both &= (source.f0[:frames] > 0) & (converted.f0[:frames] > 0)
    if not both.any():
        return None, 0, agreement
    expected = source.f0[:frames][both].astype(np.float64) * 2.0 ** (transpose / 12.0)
    cents = 1200.0 * np.abs(np.log2(converted.f0[:frames][both].astype(np.float64) / expected))
    return float(np.median(cents)), int(both.sum()), agreement


def _load(path: Path, settings: EvaluationSettings) -> np.ndarray:
    from sovits.audio.io import load_audio

    wave, _ = load_audio(path, sample_rate=settings.sample_rate)
    return wave


def evaluate_conversion(
    source: str | os.PathLike[str],
    converted: str | os.PathLike[str],
    *,
    target_references: Sequence[str | os.PathLike[str]] = (),
    transpose: float = 0.0,
    settings: EvaluationSettings | None = None,
) -> EvaluationResult:
    """Measure how `converted` (a conversion of `source` transposed by `transpose`
    semitones) keeps the melody and whose timbre it has; `target_references` are clips
    of the target singer. Raises InputError for unreadable or too short audio."""
    settings = settings or EvaluationSettings()
    source_frames = timbre_frames(_load(Path(source), settings), settings)
    converted_frames = timbre_frames(_load(Path(converted), settings), settings)
    error, frames, agreement = f0_error_cents(source_frames, converted_frames, transpose)
    converted_descriptor = converted_frames.descriptor()
    source_descriptor = source_frames.descriptor()
    to_target: float | None = None
    target_to_source: float | None = None
    if target_references:
        analysed = [timbre_frames(_load(Path(p), settings), settings) for p in target_references]
        pooled = np.concatenate(
            [item.cepstra[item.voiced] if item.voiced.any() else item.cepstra for item in analysed]
        )
        target_descriptor = pooled.mean(axis=0)
        to_target = cepstral_distance(converted_descriptor, target_descriptor)
        target_to_source = cepstral_distance(target_descriptor, source_descriptor)
    return EvaluationResult(
        source=str(source),
        converted=str(converted),
        target_references=tuple(str(p) for p in target_references),
        transpose=float(transpose),
        f0_method=settings.f0_method,
        f0_error_cents=error,
        f0_frames=frames,
        voicing_agreement=agreement,
        distance_to_source=cepstral_distance(converted_descriptor, source_descriptor),
        distance_to_target=to_target,
        target_to_source=target_to_source,
    )
