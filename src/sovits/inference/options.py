"""The options of one conversion, validated when they are made.

`ConvertOptions` names every option of so-vits-svc 4.1's inference_main.py in full
English, plus sovits's own (--f0-file, the seed, the diffusion sampler and speedup,
the speaker-mix track file). Each field carries an OptionSpec (sovits.config.
options_schema) with its help, CLI flags (canonical first, the original's spellings
as aliases), range, unit, choices and UI group: `sovits infer`, the HTTP API's
request model and the web UI's widgets are made from it. A new option is one field.
Inconsistent or out-of-range values raise InputError when the options are made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sovits.config.options_schema import option
from sovits.errors import InputError

__all__ = [
    "AUDIO_FORMATS",
    "DIFFUSION_SAMPLERS",
    "F0_METHODS",
    "MAX_TRANSPOSE",
    "PRECISIONS",
    "ConvertOptions",
]

MAX_TRANSPOSE = 48.0
"""Largest pitch shift accepted, semitones (four octaves either way)."""

AUDIO_FORMATS = ("flac", "wav", "ogg")
"""Output containers `-wf` accepts (the original's soundfile formats that sovits writes)."""

F0_METHODS = ("pm", "dio", "harvest", "crepe", "rmvpe", "fcpe", "swift", "dspitch")
"""The f0 methods offered as choices: the pitch registry's PITCH_METHODS, spelled out
here so that describing the options imports no extractor (a test keeps them equal)."""

DIFFUSION_SAMPLERS = ("ddim", "pndm", "dpm-solver", "dpm-solver++", "unipc")
"""The diffusion samplers offered as choices (the diffusion model's DIFFUSION_METHODS)."""

PRECISIONS = ("fp32", "bf16", "fp16")
"""Synthesizer precisions (sovits.checkpoints.precision.PRECISIONS, spelled out here so
that describing the options imports no torch)."""


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

    speaker: str = field(
        metadata=option(
            help="Target speaker name from the config's spk map.",
            flags=("--speaker", "-s", "--spk_list"),
        )
    )
    """Target speaker name from the config's `spk` map (-s)."""
    transpose: float = field(
        default=0.0,
        metadata=option(
            help="Pitch shift.",
            flags=("--transpose", "-t", "--trans"),
            minimum=-MAX_TRANSPOSE,
            maximum=MAX_TRANSPOSE,
            unit="semitones",
        ),
    )
    """Pitch shift in semitones, within +-MAX_TRANSPOSE (-t)."""
    f0_method: str = field(
        default="pm",
        metadata=option(
            help="F0 extraction method.",
            flags=("--f0-method", "-f0p", "--f0_predictor"),
            choices=F0_METHODS,
            group="basic",
        ),
    )
    """pm, dio, harvest, crepe, rmvpe or fcpe (-f0p)."""
    f0_file: Path | None = field(
        default=None,
        metadata=option(
            help="f0 curve from `sovits f0` (CSV/.npy) used instead of extracting one.",
            flags=("--f0-file",),
            group="pitch",
            path_kind="file",
        ),
    )
    """An f0 curve exported by `sovits f0` (CSV or .npy, possibly edited) used instead of
    extracting one; its times are seconds from the start of the input (--f0-file)."""
    auto_predict_f0: bool = field(
        default=False,
        metadata=option(
            help="Predict f0 with the model (speech only, not singing).",
            flags=("--auto-predict-f0", "-a", "--auto_predict_f0"),
            group="pitch",
        ),
    )
    """Let the model's F0 decoder predict the pitch (speech only, not singing) (-a)."""
    noise_scale: float = field(
        default=0.4,
        metadata=option(
            help="Scale of the prior noise.",
            flags=("--noise-scale", "-ns", "--noice_scale"),
            minimum=0.0,
            group="advanced",
        ),
    )
    """Scale of the prior noise; >= 0 (-ns)."""
    seed: int = field(
        default=52468,
        metadata=option(help="Seed of the conversion noise.", flags=("--seed",), group="advanced"),
    )
    """Seed of the noise drawn during conversion; the default is the synthesizer's
    `DEFAULT_SEED`. One noise stream runs through all slices of a conversion."""
    slice_db: float = field(
        default=-40.0,
        metadata=option(
            help="Slicer silence threshold.",
            flags=("--slice-db", "-sd", "--slice_db"),
            unit="dB",
            group="slicing",
        ),
    )
    """Silence threshold of the slicer, dBFS (-sd)."""
    pad_seconds: float = field(
        default=0.5,
        metadata=option(
            help="Silence padded around each slice while it is converted.",
            flags=("--pad-seconds", "-p", "--pad_seconds"),
            minimum=0.0,
            unit="s",
            group="slicing",
        ),
    )
    """Silence added before and after each slice while it is converted, then cut off (-p)."""
    clip_seconds: float = field(
        default=0.0,
        metadata=option(
            help="Force clips of this length; 0 keeps slices whole.",
            flags=("--clip", "-cl"),
            minimum=0.0,
            unit="s",
            group="slicing",
        ),
    )
    """Force sound slices into clips of this length; 0 keeps slices whole (-cl)."""
    crossfade_seconds: float = field(
        default=0.0,
        metadata=option(
            help="Crossfade of forced clips (needs a clip length).",
            flags=("--crossfade", "-lg", "--linear_gradient"),
            minimum=0.0,
            unit="s",
            group="slicing",
        ),
    )
    """Overlap of consecutive forced clips, joined with a linear crossfade; needs
    clip_seconds and must be shorter than it (-lg, linear_gradient)."""
    crossfade_retain: float = field(
        default=0.75,
        metadata=option(
            help="Share of the overlap that is cross-faded, (0, 1].",
            flags=("--crossfade-retain", "-lgr", "--linear_gradient_retain"),
            minimum=0.0,
            maximum=1.0,
            group="slicing",
        ),
    )
    """Fraction (0, 1] of the overlap that is cross-faded (-lgr, linear_gradient_retain)."""
    loudness_envelope_adjustment: float = field(
        default=1.0,
        metadata=option(
            help="1 keeps the output's loudness envelope, 0 imposes the input's.",
            flags=("--loudness-envelope-adjustment", "-lea", "--loudness_envelope_adjustment"),
            minimum=0.0,
            maximum=1.0,
            group="output",
        ),
    )
    """Mix of the output's own loudness envelope in [0, 1]: 1 keeps the output's, 0
    imposes the input's (-lea)."""
    f0_filter_threshold: float = field(
        default=0.05,
        metadata=option(
            help="Voicing threshold of crepe, rmvpe and fcpe.",
            flags=("--f0-filter-threshold", "-ft", "--f0_filter_threshold"),
            minimum=0.0,
            maximum=1.0,
            group="pitch",
        ),
    )
    """Voicing threshold of crepe, rmvpe and fcpe in [0, 1] (-ft, cr_threshold)."""

    # DiffSinger pitch (-f0p dspitch; sovits.features.pitch.dspitch).
    dspitch_folder: Path | None = field(
        default=None,
        metadata=option(
            help="DiffSinger pitch bank for dspitch (default: pretrain/ds_enhance).",
            flags=("--dspitch-folder",),
            group="pitch",
            path_kind="folder",
        ),
    )
    """Folder with dsconfig.yaml, the linguistic / pitch ONNX models and SOME.onnx; default:
    $SOVITS_HOME/pretrain/ds_enhance, then ./pretrain/ds_enhance, then the user cache."""
    dspitch_steps: int = field(
        default=10,
        metadata=option(
            help="Sampling steps of the DiffSinger pitch model.",
            flags=("--dspitch-steps",),
            minimum=1,
            maximum=1000,
            group="pitch",
        ),
    )
    """Sampling steps of the DiffSinger pitch model, 1..1000 (OpenUtau's default 10)."""
    dspitch_expressiveness: float = field(
        default=1.0,
        metadata=option(
            help="DiffSinger expressiveness: 0 sings the notes flat, 1 the bank's full style.",
            flags=("--dspitch-expressiveness",),
            minimum=0.0,
            maximum=1.0,
            group="pitch",
        ),
    )
    """`expr` of the pitch model in [0, 1] (no effect on models exported with it frozen)."""
    dspitch_speaker: str | None = field(
        default=None,
        metadata=option(
            help="Speaker of a multi-speaker DiffSinger bank (default: its first).",
            flags=("--dspitch-speaker",),
            group="pitch",
        ),
    )
    """A dsconfig `speakers` name (or its part after the last dot)."""
    dspitch_vowel: str = field(
        default="a",
        metadata=option(
            help="Phoneme sung on every note for the DiffSinger pitch model.",
            flags=("--dspitch-vowel",),
            group="pitch",
        ),
    )
    """The vowel of every sung note; `<language>/<vowel>` is tried first with a language."""
    dspitch_language: str | None = field(
        default=None,
        metadata=option(
            help="Language of the DiffSinger vowel (multi-language banks).",
            flags=("--dspitch-language",),
            group="pitch",
        ),
    )
    """A languages.json name; picks `<language>/<vowel>` and the model's language id."""
    dspitch_blend: str = field(
        default="off",
        metadata=option(
            help="Combine the DiffSinger curve with the source f0: off, confident (source "
            "where it is voiced), mix (blend ratio).",
            flags=("--dspitch-blend",),
            choices=("off", "confident", "mix"),
            group="pitch",
        ),
    )
    """How the DiffSinger curve is combined with the blend source's f0 (dspitch.blend)."""
    dspitch_blend_ratio: float = field(
        default=0.5,
        metadata=option(
            help="Share of the source f0 in the dspitch mix blend.",
            flags=("--dspitch-blend-ratio",),
            minimum=0.0,
            maximum=1.0,
            group="pitch",
        ),
    )
    """Source share of the "mix" blend, in MIDI, on frames the source voices."""
    dspitch_blend_source: str = field(
        default="rmvpe",
        metadata=option(
            help="f0 method whose curve a dspitch blend keeps.",
            flags=("--dspitch-blend-source",),
            choices=tuple(method for method in F0_METHODS if method != "dspitch"),
            group="pitch",
        ),
    )
    """The source f0 method of a blend; its voicing threshold is f0_filter_threshold."""
    max_segment_seconds: float | None = field(
        default=60.0,
        metadata=option(
            help="Longer sound slices are converted in clips of this length; empty: whole.",
            flags=("--max-segment-seconds",),
            minimum=2.0,
            unit="s",
            group="slicing",
        ),
    )
    """Sound slices longer than this are converted in clips of this length (with a 1 s
    crossfade) when clip_seconds is 0, so memory does not grow with the input; None
    converts every slice whole, as the original does."""
    audio_format: str = field(
        default="flac",
        metadata=option(
            help="Container of the written result.",
            flags=("--audio-format", "-wf", "--wav_format"),
            choices=AUDIO_FORMATS,
            group="output",
        ),
    )
    """Container of files written by `Converter.convert_file` (-wf)."""

    # Timbre-leakage reduction, speaker mixing, diffusion and the enhancer.
    cluster_model_path: Path | None = field(
        default=None,
        metadata=option(
            help="k-means model or (with feature retrieval) feature index.",
            flags=("--cluster-model", "-cm", "--cluster_model_path"),
            group="timbre",
            path_kind="file",
        ),
    )
    """Cluster model or feature index (-cm)."""
    cluster_ratio: float = field(
        default=0.0,
        metadata=option(
            help="Share of cluster / retrieved features.",
            flags=("--cluster-ratio", "-cr", "--cluster_infer_ratio"),
            minimum=0.0,
            maximum=1.0,
            group="timbre",
        ),
    )
    """Share of the cluster / retrieval features in [0, 1] (-cr)."""
    feature_retrieval: bool = field(
        default=False,
        metadata=option(
            help="Use feature retrieval (the cluster model is an index).",
            flags=("--feature-retrieval", "-fr", "--feature_retrieval"),
            group="timbre",
        ),
    )
    """Use feature retrieval instead of the cluster model (-fr)."""
    use_speaker_mix: bool = field(
        default=False,
        metadata=option(
            help="Mix speakers over time with a speaker-mix track.",
            flags=("--use-speaker-mix", "-usm", "--use_spk_mix"),
            group="timbre",
        ),
    )
    """Mix speakers over time with a speaker-mix track (-usm); `speaker` is then only
    a label."""
    speaker_mix_path: Path | None = field(
        default=None,
        metadata=option(
            help="Speaker-mix track for -usm: JSON like {\"alice\": [[0, 1, 1, 0]], \"bob\": "
                 "[[0, 1, 0, 1]]} gives every speaker of the model (name or index) a chain "
                 "of segments, each 4 numbers t_begin, t_end, v_begin, v_end: t runs 0..1 over the "
                 "output, each segment starts where the last ended, the weight ramps from "
                 "v_begin to v_end (>= 0; normalised per frame). YAML alike, or the "
                 "original's spkmix.py (read, never run). See the README.",
            flags=("--speaker-mix-track",),
            group="timbre",
            path_kind="file",
        ),
    )
    """The track: JSON, YAML or the original's spkmix.py (read as data, never run)."""
    enhance: bool = field(
        default=False,
        metadata=option(
            help="Re-render with the NSF-HiFiGAN enhancer.",
            flags=("--enhance", "-eh"),
            group="output",
        ),
    )
    """Run the NSF-HiFiGAN enhancer on the output (-eh)."""
    enhancer_adaptive_key: int = field(
        default=0,
        metadata=option(
            help="Enhancer range shift.",
            flags=("--enhancer-adaptive-key", "-eak", "--enhancer_adaptive_key"),
            unit="semitones",
            group="output",
        ),
    )
    """Semitones the enhancer's range is adapted by (-eak)."""
    shallow_diffusion: bool = field(
        default=False,
        metadata=option(
            help="Refine the output with shallow diffusion.",
            flags=("--shallow-diffusion", "-shd", "--shallow_diffusion"),
            group="diffusion",
        ),
    )
    """Refine the output with shallow diffusion (-shd)."""
    only_diffusion: bool = field(
        default=False,
        metadata=option(
            help="Render with the diffusion model alone.",
            flags=("--only-diffusion", "-od", "--only_diffusion"),
            group="diffusion",
        ),
    )
    """Render with the diffusion model alone (-od)."""
    second_encoding: bool = field(
        default=False,
        metadata=option(
            help="Re-encode the output before shallow diffusion.",
            flags=("--second-encoding", "-se", "--second_encoding"),
            group="diffusion",
        ),
    )
    """Encode the sovits output again before shallow diffusion (-se)."""
    diffusion_model_path: Path | None = field(
        default=None,
        metadata=option(
            help="Diffusion model file.",
            flags=("--diffusion-model", "-dm", "--diffusion_model_path"),
            group="diffusion",
            path_kind="file",
        ),
    )
    """Diffusion model file (-dm)."""
    diffusion_config_path: Path | None = field(
        default=None,
        metadata=option(
            help="Diffusion config file (default: config.yaml beside the model).",
            flags=("--diffusion-config", "-dc", "--diffusion_config_path"),
            group="diffusion",
            path_kind="file",
        ),
    )
    """Diffusion config file (-dc)."""
    k_step: int | None = field(
        default=None,
        metadata=option(
            help="Shallow diffusion steps (default 100).",
            flags=("--k-step", "-ks", "--k_step"),
            minimum=1,
            group="diffusion",
        ),
    )
    """Diffusion steps of shallow diffusion (-ks; the original's default is 100)."""
    diffusion_method: str | None = field(
        default=None,
        metadata=option(
            help="Diffusion sampler (default: the diffusion config's).",
            flags=("--diffusion-method",),
            choices=DIFFUSION_SAMPLERS,
            group="diffusion",
        ),
    )
    """Sampler: ddim, pndm, dpm-solver, dpm-solver++ or unipc (default: the diffusion
    config's infer.method)."""
    diffusion_speedup: int | None = field(
        default=None,
        metadata=option(
            help="Sampler speedup; 1 = plain DDPM (default: the config's).",
            flags=("--diffusion-speedup",),
            minimum=1,
            group="diffusion",
        ),
    )
    """Steps skipped per sampler step; 1 = plain DDPM (default: the config's
    infer.speedup)."""
    precision: str = field(
        default="fp32",
        metadata=option(
            help="Synthesizer precision: fp32 (parity), bf16 (CUDA; CPUs with AVX-512 "
            "BF16 or AMX), fp16 (CUDA).",
            flags=("--precision",),
            choices=PRECISIONS,
            group="advanced",
        ),
    )
    """Float type the so-vits synthesizer runs in (`sovits.checkpoints.precision`):
    fp32, bf16 or fp16; hardware without it is refused when the conversion starts."""

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
        if self.precision not in PRECISIONS:
            raise InputError(
                f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}"
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
        if not 1 <= self.dspitch_steps <= 1000:
            raise InputError(f"dspitch_steps must be in 1..1000, got {self.dspitch_steps}")
        for name in ("dspitch_expressiveness", "dspitch_blend_ratio"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:  # NaN fails too
                raise InputError(f"{name} must be in [0, 1], got {value}")
        if self.dspitch_blend not in ("off", "confident", "mix"):
            raise InputError(
                f"unknown dspitch blend {self.dspitch_blend!r}; use off, confident or mix"
            )
        if self.dspitch_blend_source not in PITCH_METHODS or self.dspitch_blend_source == "dspitch":
            raise InputError(
                f"dspitch_blend_source must be another f0 method, got {self.dspitch_blend_source!r}"
            )

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
