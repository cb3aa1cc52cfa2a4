"""The options of one conversion, validated when they are made.

`ConvertOptions` names every option of so-vits-svc 4.1's inference_main.py in full
English (the seed's short flag is given beside each field). Options whose model parts
do not exist in sovits yet (shallow / only diffusion, the NSF-HiFiGAN enhancer, cluster
models, feature retrieval, speaker mixing) have their fields here;
`ConvertOptions.check_available` refuses them with an UnavailableFeatureError instead of
ignoring them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sovits.errors import InputError, SovitsError

__all__ = [
    "AUDIO_FORMATS",
    "MAX_TRANSPOSE",
    "ConvertOptions",
    "UnavailableFeatureError",
]

MAX_TRANSPOSE = 48.0
"""Largest pitch shift accepted, semitones (four octaves either way)."""

AUDIO_FORMATS = ("flac", "wav", "ogg")
"""Output containers `-wf` accepts (the original's soundfile formats that sovits writes)."""

_DIFFUSION_ISSUE = "issue #6: shallow diffusion, diffusion-only and the NSF-HiFiGAN enhancer"
_RETRIEVAL_ISSUE = "issue #7: cluster models, feature retrieval and speaker mixing"


class UnavailableFeatureError(SovitsError):
    """An option asks for a model part that sovits does not implement yet."""


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

    # Parts of later issues: the hooks exist, using them is refused for now.
    cluster_model_path: Path | None = None
    """Cluster model or feature index (-cm)."""
    cluster_ratio: float = 0.0
    """Share of the cluster / retrieval features in [0, 1] (-cr)."""
    feature_retrieval: bool = False
    """Use feature retrieval instead of the cluster model (-fr)."""
    use_speaker_mix: bool = False
    """Mix speakers over time with a speaker-mix track (-usm)."""
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

    @property
    def transpose_label(self) -> str:
        """The pitch part of an output name: "auto", or e.g. "0key", "-3key", "1.5key"."""
        if self.auto_predict_f0:
            return "auto"
        return f"{self.transpose:g}key"

    def unavailable_features(self) -> list[str]:
        """The options set here whose model parts sovits lacks, each with its issue."""
        diffusion = [
            ("shallow diffusion (-shd)", self.shallow_diffusion),
            ("diffusion-only rendering (-od)", self.only_diffusion),
            ("second encoding (-se)", self.second_encoding),
            ("a diffusion model (-dm)", self.diffusion_model_path is not None),
            ("a diffusion config (-dc)", self.diffusion_config_path is not None),
            ("diffusion steps (-ks)", self.k_step is not None),
            ("the NSF-HiFiGAN enhancer (-eh)", self.enhance),
            ("an enhancer adaptive key (-eak)", self.enhancer_adaptive_key != 0),
        ]
        retrieval = [
            ("a cluster model (-cm)", self.cluster_model_path is not None),
            ("a cluster ratio (-cr)", self.cluster_ratio != 0),
            ("feature retrieval (-fr)", self.feature_retrieval),
            ("speaker mixing (-usm)", self.use_speaker_mix),
        ]
        found = [f"{name} [{_DIFFUSION_ISSUE}]" for name, used in diffusion if used]
        found += [f"{name} [{_RETRIEVAL_ISSUE}]" for name, used in retrieval if used]
        return found

    def check_available(self) -> None:
        """Raise UnavailableFeatureError naming every option that needs a missing part."""
        missing = self.unavailable_features()
        if missing:
            raise UnavailableFeatureError(
                "not available in sovits yet: " + "; ".join(missing),
                hint="leave these options out until the issue named is done",
            )
