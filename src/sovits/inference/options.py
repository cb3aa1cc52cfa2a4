"""The options of one conversion, validated when they are made.

`ConvertOptions` names every option of so-vits-svc 4.1's inference_main.py in full
English (the seed's short flag is given beside each field), plus sovits's own
(--f0-file, the seed, the diffusion sampler and speedup, the speaker-mix track file).
Inconsistent or out-of-range values raise InputError when the options are made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sovits.errors import InputError

__all__ = [
    "AUDIO_FORMATS",
    "MAX_TRANSPOSE",
    "ConvertOptions",
]

MAX_TRANSPOSE = 48.0
"""Largest pitch shift accepted, semitones (four octaves either way)."""

AUDIO_FORMATS = ("flac", "wav", "ogg")
"""Output containers `-wf` accepts (the original's soundfile formats that sovits writes)."""

def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value}")


def _at_least(name: str, value: float, lowest: float) -> None:
    _finite(name, value)
    if value < lowest:
        raise InputError(f"{name} must be at least {lowest}, got {value}")


@dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """Everything one conversion needs besides the model and the input.

    Times are in seconds, levels in dB, pitch shifts in semitones.
    """

    speaker: str
    """Target speaker name from the config's `spk` map (-s)."""
    transpose: float = 0.0
    """Pitch shift in semitones, within +-MAX_TRANSPOSE (-t)."""
    f0_method: str = "pm"
    """pm, dio, harvest, crepe, rmvpe or fcpe (-f0p)."""
    f0_file: Path | None = None
    """An f0 curve exported by `sovits f0` (CSV or .npy, possibly edited) used instead of
    extracting one; its times are seconds from the start of the input (--f0-file)."""
    auto_predict_f0: bool = False
    """Let the model's F0 decoder predict the pitch (speech only, not singing) (-a)."""
    noise_scale: float = 0.4
    """Scale of the prior noise; >= 0 (-ns)."""
    seed: int = 52468
    """Seed of the noise drawn during conversion; the default is the synthesizer's
    `DEFAULT_SEED`. One noise stream runs through all slices of a conversion."""
    slice_db: float = -40.0
    """Silence threshold of the slicer, dBFS (-sd)."""
    pad_seconds: float = 0.5
    """Silence added before and after each slice while it is converted, then cut off (-p)."""
    clip_seconds: float = 0.0
    """Force sound slices into clips of this length; 0 keeps slices whole (-cl)."""
    crossfade_seconds: float = 0.0
    """Overlap of consecutive forced clips, joined with a linear crossfade; needs
    clip_seconds and must be shorter than it (-lg, linear_gradient)."""
    crossfade_retain: float = 0.75
    """Fraction (0, 1] of the overlap that is cross-faded (-lgr, linear_gradient_retain)."""
    loudness_envelope_adjustment: float = 1.0
    """Mix of the output's own loudness envelope in [0, 1]: 1 keeps the output's, 0
    imposes the input's (-lea)."""
    f0_filter_threshold: float = 0.05
    """Voicing threshold of crepe, rmvpe and fcpe in [0, 1] (-ft, cr_threshold)."""
    max_segment_seconds: float | None = 60.0
    """Sound slices longer than this are converted in clips of this length (with a 1 s
    crossfade) when clip_seconds is 0, so memory does not grow with the input; None
    converts every slice whole, as the original does."""
    audio_format: str = "flac"
    """Container of files written by `Converter.convert_file` (-wf)."""

    # Timbre-leakage reduction, speaker mixing, diffusion and the enhancer.
    cluster_model_path: Path | None = None
    """Cluster model or feature index (-cm)."""
    cluster_ratio: float = 0.0
    """Share of the cluster / retrieval features in [0, 1] (-cr)."""
    feature_retrieval: bool = False
    """Use feature retrieval instead of the cluster model (-fr)."""
    use_speaker_mix: bool = False
    """Mix speakers over time with a speaker-mix track (-usm); `speaker` is then only
    a label."""
    speaker_mix_path: Path | None = None
    """The track: JSON, YAML or the original's spkmix.py (read as data, never run)."""
    enhance: bool = False
    """Run the NSF-HiFiGAN enhancer on the output (-eh)."""
    enhancer_adaptive_key: int = 0
    """Semitones the enhancer's range is adapted by (-eak)."""
    shallow_diffusion: bool = False
    """Refine the output with shallow diffusion (-shd)."""
    only_diffusion: bool = False
    """Render with the diffusion model alone (-od)."""
    second_encoding: bool = False
    """Encode the sovits output again before shallow diffusion (-se)."""
    diffusion_model_path: Path | None = None
    """Diffusion model file (-dm)."""
    diffusion_config_path: Path | None = None
    """Diffusion config file (-dc)."""
    k_step: int | None = None
    """Diffusion steps of shallow diffusion (-ks; the original's default is 100)."""
    diffusion_method: str | None = None
    """Sampler: ddim, pndm, dpm-solver, dpm-solver++ or unipc (default: the diffusion
    config's infer.method)."""
    diffusion_speedup: int | None = None
    """Steps skipped per sampler step; 1 = plain DDPM (default: the config's
    infer.speedup)."""

    def __post_init__(self) -> None:
        if not self.speaker:
            raise InputError("a speaker name is needed (-s)")
        _finite("transpose", self.transpose)
        if abs(self.transpose) > MAX_TRANSPOSE:
            raise InputError(
                f"transpose {self.transpose:g} is out of range; use -{MAX_TRANSPOSE:g} to "
                f"{MAX_TRANSPOSE:g} semitones"
            )
        from sovits.features.pitch.registry import PITCH_METHODS

        if self.f0_method not in PITCH_METHODS:
            raise InputError(
                f"unknown f0 method {self.f0_method!r}; valid methods: {', '.join(PITCH_METHODS)}"
            )
        _at_least("noise_scale", self.noise_scale, 0.0)
        _finite("slice_db", self.slice_db)
        _at_least("pad_seconds", self.pad_seconds, 0.0)
        _at_least("clip_seconds", self.clip_seconds, 0.0)
        _at_least("crossfade_seconds", self.crossfade_seconds, 0.0)
        if self.crossfade_seconds > 0:
            if self.clip_seconds == 0:
                raise InputError(
                    "a crossfade (-lg) joins forced clips, so it needs a clip length (-cl)"
                )
            if self.crossfade_seconds >= self.clip_seconds:
                raise InputError(
                    f"the crossfade ({self.crossfade_seconds:g} s) must be shorter than the "
                    f"clip length ({self.clip_seconds:g} s)"
                )
        _finite("crossfade_retain", self.crossfade_retain)
        if not 0.0 < self.crossfade_retain <= 1.0:
            raise InputError(f"crossfade_retain must be in (0, 1], got {self.crossfade_retain}")
        for name in ("loudness_envelope_adjustment", "f0_filter_threshold", "cluster_ratio"):
            value = float(getattr(self, name))
            _finite(name, value)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value}")
        if self.max_segment_seconds is not None:
            _finite("max_segment_seconds", self.max_segment_seconds)
            if self.max_segment_seconds < 2.0:
                raise InputError(
                    f"max_segment_seconds must be at least 2, got {self.max_segment_seconds}"
                )
        if self.audio_format not in AUDIO_FORMATS:
            raise InputError(
                f"unknown output format {self.audio_format!r}; use one of "
                f"{', '.join(AUDIO_FORMATS)}"
            )
        if self.k_step is not None and self.k_step < 1:
            raise InputError(f"k_step must be positive, got {self.k_step}")
        if self.diffusion_speedup is not None and self.diffusion_speedup < 1:
            raise InputError(f"diffusion_speedup must be positive, got {self.diffusion_speedup}")
        if self.diffusion_method is not None:
            from sovits.models.diffusion.gaussian import DIFFUSION_METHODS

            if self.diffusion_method not in DIFFUSION_METHODS:
                raise InputError(
                    f"unknown diffusion sampler {self.diffusion_method!r}; use one of "
                    f"{', '.join(DIFFUSION_METHODS)}"
                )
        if self.second_encoding and not self.shallow_diffusion:
            raise InputError("second encoding (-se) re-encodes for shallow diffusion: add -shd")

    @property
    def uses_diffusion(self) -> bool:
        """Whether the diffusion model renders (shallow or only diffusion)."""
        return self.shallow_diffusion or self.only_diffusion

    @property
    def transpose_label(self) -> str:
        """The pitch part of an output name: "auto", or e.g. "0key", "-3key", "1.5key"."""
        if self.auto_predict_f0:
            return "auto"
        return f"{self.transpose:g}key"
