"""Measures of one conversion: did it keep the melody, the dynamics, and whose voice is it?

`Evaluator.evaluate` (and `evaluate_conversion`) compares a converted file with its
source and, optionally, with reference clips of the target singer. Every file is
analysed mono at `EvaluationSettings.sample_rate` on frames of `hop_length` samples:

* F0 fidelity (`sovits.evaluation.pitch`): raw pitch and chroma accuracy, median cents
  error, octave-error rate, voicing precision / recall / F1 and F0 correlation of the
  conversion against the source's f0 moved by the transpose. Both tracks come from one
  extractor, `f0_method` ("auto": the most accurate one installed: swift, else fcpe,
  else harvest), whatever method the conversion used, so no method is favoured.
* Loudness: the Pearson correlation of the two loudness envelopes (frame RMS in dB,
  floored at `silence_dbfs`, over the frames where either file is above that floor).
* Speaker similarity (`sovits.features.speaker`, Resemblyzer's GE2E encoder): cosine
  of the conversion's embedding with the target singer's (all references pooled) and
  with the source's; `target_similarity_to_source` is the same between the target
  references and the source, the scale the other two are read against.
* Timbre distances (kept from the first version of this module): mel-cepstral
  distortion in dB between mean low-order log-mel cepstra (c1..c_n, voiced frames),
  of the conversion against the source and the pooled references.
* Checks: the share of the conversion's samples at full scale (|x| >= 0.999, at the
  file's own rate) and of its frames below `silence_dbfs`.

Nothing undefined becomes NaN: a measure that cannot be computed (a silent file, no
voiced frame) is None and a line in `warnings` says why.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sovits.errors import InputError, MissingFileError, SovitsError
from sovits.evaluation.pitch import pearson, pitch_metrics

if TYPE_CHECKING:
    from sovits.features.pitch.base import PitchExtractor
    from sovits.features.speaker import SpeakerEmbedder

__all__ = [
    "METRIC_KEYS",
    "EvaluationResult",
    "EvaluationSettings",
    "Evaluator",
    "FileAnalysis",
    "cepstral_distance",
    "evaluate_conversion",
    "resolve_f0_method",
]

_DB_PER_NEPER = 10.0 / math.log(10.0)
CLIP_LEVEL = 0.999
"""|sample| at or above this counts as clipped."""
CLIP_WARNING_SHARE = 1e-4
"""A conversion with more clipped samples than this share gets a warning."""

METRIC_KEYS: tuple[str, ...] = (
    "raw_pitch_accuracy",
    "raw_chroma_accuracy",
    "f0_error_cents_median",
    "octave_error_rate",
    "voicing_precision",
    "voicing_recall",
    "voicing_f1",
    "f0_correlation",
    "loudness_correlation",
    "speaker_similarity_to_target",
    "speaker_similarity_to_source",
    "target_similarity_to_source",
    "distance_to_target",
    "distance_to_source",
    "target_to_source",
    "voicing_agreement",
    "clipped_fraction",
    "silent_fraction",
)
"""The numeric measures of an EvaluationResult, in table order."""


def resolve_f0_method(method: str) -> str:
    """`method`, or for "auto" the most accurate f0 method installed: swift (the
    swift-f0 package), else fcpe (torchfcpe's weights), else harvest. Raises InputError
    for an unknown name."""
    from sovits.features.pitch.registry import PITCH_EXTRACTORS

    if method != "auto":
        if method not in PITCH_EXTRACTORS:
            raise InputError(
                f"unknown f0 method {method!r}",
                hint="one of auto, " + ", ".join(PITCH_EXTRACTORS),
            )
        return method
    if importlib.util.find_spec("swift_f0") and importlib.util.find_spec("onnxruntime"):
        return "swift"
    try:
        from sovits.features.pitch.fcpe import BUNDLED_WEIGHTS
        from sovits.features.pretrained import resolve_weights

        resolve_weights(BUNDLED_WEIGHTS)
        return "fcpe"
    except MissingFileError:
        return "harvest"


@dataclass(frozen=True)
class EvaluationSettings:
    """How the files are analysed.

    sample_rate: rate every file is resampled to, Hz. hop_length: frame hop, samples.
    n_fft: FFT and window length of the spectrogram and loudness frames, samples.
    n_mels: mel bands (Slaney, 0 Hz to Nyquist). n_cepstra: cepstra kept (c1..c_n).
    f0_method: a sovits pitch method name, or "auto" (see `resolve_f0_method`).
    speaker_similarity: compute the speaker embeddings (needs Resemblyzer's weights).
    silence_dbfs: frames whose RMS is below this level are silent, dBFS.
    """

    sample_rate: int = 16000
    hop_length: int = 160
    n_fft: int = 1024
    n_mels: int = 40
    n_cepstra: int = 8
    f0_method: str = "auto"
    speaker_similarity: bool = True
    silence_dbfs: float = -60.0

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
    """The measures of one conversion (see the module doc; shares 0-1, cents, dB,
    cosines -1..1). None: not computable here, `warnings` says why; `error`: the pair
    could not be evaluated at all (every measure None).

    f0_frames: frames voiced in the source (the pitch accuracies' denominator).
    """

    name: str
    source: str
    converted: str
    target_references: tuple[str, ...]
    transpose: float
    f0_method: str
    f0_frames: int = 0
    raw_pitch_accuracy: float | None = None
    raw_chroma_accuracy: float | None = None
    f0_error_cents_median: float | None = None
    octave_error_rate: float | None = None
    voicing_precision: float | None = None
    voicing_recall: float | None = None
    voicing_f1: float | None = None
    f0_correlation: float | None = None
    loudness_correlation: float | None = None
    speaker_similarity_to_target: float | None = None
    speaker_similarity_to_source: float | None = None
    target_similarity_to_source: float | None = None
    distance_to_target: float | None = None
    distance_to_source: float | None = None
    target_to_source: float | None = None
    voicing_agreement: float | None = None
    clipped_fraction: float | None = None
    silent_fraction: float | None = None
    warnings: tuple[str, ...] = field(default=())
    error: str | None = None

    def metrics(self) -> dict[str, float | None]:
        """The numeric measures by name (METRIC_KEYS order)."""
        return {key: getattr(self, key) for key in METRIC_KEYS}

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (the keys of `sovits evaluate --json`)."""
        data = asdict(self)
        data["target_references"] = list(self.target_references)
        data["warnings"] = list(self.warnings)
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """The result as JSON text (one line with indent=None)."""
        return json.dumps(self.to_dict(), indent=indent) + "\n"

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write `to_json()` to `path` atomically (folders created); returns the path.
        Raises InputError when it cannot be written."""
        return write_text(path, self.to_json())

    def to_text(self) -> str:
        """The result as lines for a terminal."""
        if self.error is not None:
            return f"{self.name}: not evaluated: {self.error}\n"

        def share(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f} %"

        def number(value: float | None, unit: str = "", digits: int = 3) -> str:
            return "n/a" if value is None else f"{value:.{digits}f}{unit}"

        lines = [
            f"f0 ({self.f0_method}, transpose {self.transpose:g}, {self.f0_frames} voiced "
            "source frames):",
            f"  raw pitch accuracy:   {share(self.raw_pitch_accuracy)}",
            f"  raw chroma accuracy:  {share(self.raw_chroma_accuracy)}",
            f"  median error:         {number(self.f0_error_cents_median, ' cents', 2)}",
            f"  octave errors:        {share(self.octave_error_rate)}",
            f"  voicing P / R / F1:   {share(self.voicing_precision)} / "
            f"{share(self.voicing_recall)} / {share(self.voicing_f1)}",
            f"  f0 correlation:       {number(self.f0_correlation)}",
            f"loudness correlation:   {number(self.loudness_correlation)}",
        ]
        if self.speaker_similarity_to_source is not None or self.target_references:
            lines += [
                "speaker similarity (cosine, Resemblyzer):",
                f"  to target:            {number(self.speaker_similarity_to_target)}",
                f"  to source:            {number(self.speaker_similarity_to_source)}",
            ]
            if self.target_references:
                lines.append(
                    f"  target vs source:     {number(self.target_similarity_to_source)}"
                )
        lines.append(f"timbre distance to source: {number(self.distance_to_source, ' dB', 2)}")
        if self.target_references:
            lines.append(
                f"timbre distance to target: {number(self.distance_to_target, ' dB', 2)} "
                f"(target vs source {number(self.target_to_source, ' dB', 2)})"
            )
        lines.append(
            f"clipped samples: {share(self.clipped_fraction)}, silent frames: "
            f"{share(self.silent_fraction)}"
        )
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines) + "\n"


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically, folders created. InputError on failure."""
    from sovits.files import atomic_write

    target = Path(path)
    data = text.encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda handle: handle.write(data))
    except OSError as error:
        raise InputError(f"cannot write: {error}", where=target) from None
    return target


@dataclass(frozen=True)
class FileAnalysis:
    """Frame-wise analysis of one file at the settings' rate and hop.

    wave: float32 [N]; f0: float32 [T] Hz (interpolated where unvoiced); voiced: bool
    [T]; cepstra: float64 [T, n_cepstra]; loudness_db: float64 [T] frame RMS in dBFS;
    clipped_fraction: share of the file's samples (at its own rate) at full scale.
    """

    path: Path
    wave: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    cepstra: np.ndarray
    loudness_db: np.ndarray
    clipped_fraction: float

    def descriptor(self) -> np.ndarray:
        """Mean cepstrum over the voiced frames [n_cepstra] (all frames if none is)."""
        frames = self.cepstra[self.voiced] if self.voiced.any() else self.cepstra
        return np.asarray(frames.mean(axis=0))


def cepstral_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Mel-cepstral distortion between two cepstra [n] (same scale): dB."""
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    return float(_DB_PER_NEPER * math.sqrt(2.0 * float(np.sum(difference**2))))


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


def _loudness_db(wave: np.ndarray, settings: EvaluationSettings) -> np.ndarray:
    from sovits.audio.slicer import frame_rms

    rms = frame_rms(wave, settings.n_fft, settings.hop_length).astype(np.float64)
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def _name(path: Path) -> str:
    return path.stem


class Evaluator:
    """Evaluates conversions with one f0 extractor, one speaker encoder and one set of
    target references, each loaded once (for folders of pairs).

    target_references: clips of the target singer (their analysis and embedding are
    computed on first use). Raises InputError for an unknown f0 method and
    MissingFileError when the chosen f0 method's or the speaker encoder's weights are
    not installed (naming the install command).
    """

    def __init__(
        self,
        settings: EvaluationSettings | None = None,
        *,
        target_references: Sequence[str | os.PathLike[str]] = (),
    ):
        from sovits.features.pitch.registry import create_pitch_extractor

        self.settings = settings or EvaluationSettings()
        self.f0_method = resolve_f0_method(self.settings.f0_method)
        self.extractor: PitchExtractor = create_pitch_extractor(self.f0_method)
        self.embedder: SpeakerEmbedder | None = None
        if self.settings.speaker_similarity:
            from sovits.features.speaker import SpeakerEmbedder

            self.embedder = SpeakerEmbedder()
        self.target_references = tuple(Path(p) for p in target_references)
        self._targets: list[FileAnalysis] | None = None
        self._target_embedding: np.ndarray | None = None

    def with_references(self, target_references: Sequence[str | os.PathLike[str]]) -> Evaluator:
        """An evaluator with other target references that shares this one's f0
        extractor and speaker encoder."""
        other = copy.copy(self)
        other.target_references = tuple(Path(p) for p in target_references)
        other._targets = None
        other._target_embedding = None
        return other

    # ------------------------------------------------------------------ analysis

    def analyse(self, path: str | os.PathLike[str]) -> FileAnalysis:
        """Load and analyse one audio file. Raises InputError for a missing,
        unreadable or too short file (naming it)."""
        from sovits.audio.io import load_audio
        from sovits.audio.resample import resample

        settings = self.settings
        file = Path(path)
        native, rate = load_audio(file)
        clipped = float(np.mean(np.abs(native) >= CLIP_LEVEL))
        if rate != settings.sample_rate:
            native = resample(native, rate, settings.sample_rate)
        wave = np.ascontiguousarray(native, dtype=np.float32)
        if wave.shape[0] < settings.n_fft:
            raise InputError(
                f"too short to evaluate: {wave.shape[0] / settings.sample_rate:.3f} s "
                f"(need {settings.n_fft / settings.sample_rate:.3f} s)",
                where=file,
            )
        track = self.extractor.extract(wave, settings.sample_rate, settings.hop_length)
        cepstra = _log_mel_cepstra(wave, settings)
        loudness = _loudness_db(wave, settings)
        frames = min(len(track), cepstra.shape[0], loudness.shape[0])
        return FileAnalysis(
            path=file,
            wave=wave,
            f0=track.f0[:frames],
            voiced=track.voiced[:frames],
            cepstra=cepstra[:frames],
            loudness_db=loudness[:frames],
            clipped_fraction=clipped,
        )

    def targets(self) -> list[FileAnalysis]:
        """The analyses of the target references (computed once)."""
        if self._targets is None:
            self._targets = [self.analyse(path) for path in self.target_references]
        return self._targets

    def _embedding(self, analysis: FileAnalysis) -> np.ndarray | None:
        assert self.embedder is not None
        return self.embedder.embed(analysis.wave, self.settings.sample_rate)

    def target_embedding(self) -> np.ndarray | None:
        """The target singer's embedding from all references (None when they are all
        silent or no speaker similarity is wanted)."""
        if self.embedder is None or not self.target_references:
            return None
        if self._target_embedding is None:
            self._target_embedding = self.embedder.embed_speaker(
                [t.wave for t in self.targets()], self.settings.sample_rate
            )
        return self._target_embedding

    # ---------------------------------------------------------------- evaluation

    def evaluate(
        self,
        source: str | os.PathLike[str],
        converted: str | os.PathLike[str],
        *,
        transpose: float = 0.0,
        plot: str | os.PathLike[str] | None = None,
    ) -> EvaluationResult:
        """Measure how `converted` (a conversion of `source` transposed by `transpose`
        semitones) keeps the melody and the dynamics and whose voice it has; with
        `plot`, also draw its F0 curves, spectrograms and measures there (PNG).
        Raises InputError for unreadable or too short audio, or a transpose beyond
        +-48 semitones."""
        from sovits.dsp.f0 import check_transpose

        check_transpose(transpose)
        source_analysis = self.analyse(source)
        converted_analysis = self.analyse(converted)
        result = self.compare(source_analysis, converted_analysis, transpose=transpose)
        if plot is not None:
            from sovits.evaluation.plots import draw_evaluation

            draw_evaluation(
                plot,
                result,
                source_analysis,
                converted_analysis,
                self.targets()[0] if self.target_references else None,
                self.settings,
            )
        return result

    def compare(
        self, source: FileAnalysis, converted: FileAnalysis, *, transpose: float = 0.0
    ) -> EvaluationResult:
        """The measures of two analysed files (see `evaluate`)."""
        settings = self.settings
        warnings: list[str] = []
        floor = settings.silence_dbfs
        source_silent = bool(np.all(source.loudness_db < floor))
        converted_silent = bool(np.all(converted.loudness_db < floor))
        if source_silent:
            warnings.append(f"the source is silent (no frame above {floor:g} dBFS)")
        if converted_silent:
            warnings.append(f"the converted file is silent (no frame above {floor:g} dBFS)")
        rate = settings.sample_rate
        source_seconds, converted_seconds = (
            source.wave.shape[0] / rate,
            converted.wave.shape[0] / rate,
        )
        if abs(source_seconds - converted_seconds) > max(0.1, 0.02 * source_seconds):
            warnings.append(
                f"lengths differ ({source_seconds:.2f} s source, {converted_seconds:.2f} s "
                "converted): frames are compared from the start"
            )

        pitch = pitch_metrics(
            source.f0, source.voiced, converted.f0, converted.voiced, transpose=transpose
        )
        if pitch.reference_frames == 0 and not source_silent:
            warnings.append("no voiced frame in the source: the pitch measures are undefined")
        if not converted.voiced.any() and not converted_silent:
            warnings.append("no voiced frame in the converted file")

        frames = min(source.loudness_db.shape[0], converted.loudness_db.shape[0])
        source_db = np.maximum(source.loudness_db[:frames], floor)
        converted_db = np.maximum(converted.loudness_db[:frames], floor)
        active = (source_db > floor) | (converted_db > floor)
        loudness = pearson(source_db[active], converted_db[active]) if active.any() else None

        to_target = to_source = target_to_source = None
        if self.embedder is not None:
            converted_embedding = self._embedding(converted)
            source_embedding = self._embedding(source)
            target_embedding = self.target_embedding()
            to_target, to_source, target_to_source = (
                _cosine(converted_embedding, target_embedding),
                _cosine(converted_embedding, source_embedding),
                _cosine(target_embedding, source_embedding),
            )
            if self.target_references and target_embedding is None:
                warnings.append("the target references are silent: no target embedding")
        converted_descriptor, source_descriptor = converted.descriptor(), source.descriptor()
        distance_to_target = distance_between = None
        if self.target_references:
            pooled = np.concatenate(
                [t.cepstra[t.voiced] if t.voiced.any() else t.cepstra for t in self.targets()]
            )
            target_descriptor = pooled.mean(axis=0)
            distance_to_target = cepstral_distance(converted_descriptor, target_descriptor)
            distance_between = cepstral_distance(target_descriptor, source_descriptor)
        if converted.clipped_fraction > CLIP_WARNING_SHARE:
            warnings.append(
                f"{100 * converted.clipped_fraction:.2f} % of the converted samples are at "
                "full scale (clipped)"
            )
        return EvaluationResult(
            name=_name(converted.path),
            source=str(source.path),
            converted=str(converted.path),
            target_references=tuple(str(p) for p in self.target_references),
            transpose=float(transpose),
            f0_method=self.f0_method,
            f0_frames=pitch.reference_frames,
            raw_pitch_accuracy=pitch.raw_pitch_accuracy,
            raw_chroma_accuracy=pitch.raw_chroma_accuracy,
            f0_error_cents_median=pitch.f0_error_cents_median,
            octave_error_rate=pitch.octave_error_rate,
            voicing_precision=pitch.voicing_precision,
            voicing_recall=pitch.voicing_recall,
            voicing_f1=pitch.voicing_f1,
            f0_correlation=pitch.f0_correlation,
            loudness_correlation=loudness,
            speaker_similarity_to_target=to_target,
            speaker_similarity_to_source=to_source,
            target_similarity_to_source=target_to_source,
            distance_to_target=distance_to_target,
            distance_to_source=cepstral_distance(converted_descriptor, source_descriptor),
            target_to_source=distance_between,
            voicing_agreement=pitch.voicing_agreement,
            clipped_fraction=converted.clipped_fraction,
            silent_fraction=float(np.mean(converted.loudness_db < floor)),
            warnings=tuple(warnings),
        )

    def evaluate_or_error(
        self,
        source: str | os.PathLike[str],
        converted: str | os.PathLike[str],
        *,
        transpose: float = 0.0,
        plot: str | os.PathLike[str] | None = None,
    ) -> EvaluationResult:
        """`evaluate`, but a pair whose files cannot be used (SovitsError) becomes a
        result with `error` set and no measures, so a folder run goes on."""
        try:
            return self.evaluate(source, converted, transpose=transpose, plot=plot)
        except MissingFileError:
            raise  # the tools are missing, not the pair's fault: stop
        except SovitsError as error:
            return EvaluationResult(
                name=_name(Path(converted)),
                source=str(source),
                converted=str(converted),
                target_references=tuple(str(p) for p in self.target_references),
                transpose=float(transpose),
                f0_method=self.f0_method,
                warnings=(str(error),),
                error=str(error),
            )


def _cosine(first: np.ndarray | None, second: np.ndarray | None) -> float | None:
    from sovits.features.speaker import cosine_similarity

    if first is None or second is None:
        return None
    return cosine_similarity(first, second)


def evaluate_conversion(
    source: str | os.PathLike[str],
    converted: str | os.PathLike[str],
    *,
    target_references: Sequence[str | os.PathLike[str]] = (),
    transpose: float = 0.0,
    settings: EvaluationSettings | None = None,
    plot: str | os.PathLike[str] | None = None,
) -> EvaluationResult:
    """Measure one conversion (see `Evaluator.evaluate`); `target_references` are clips
    of the target singer. Raises InputError for unreadable or too short audio and
    MissingFileError when a needed model is not installed."""
    evaluator = Evaluator(settings, target_references=target_references)
    return evaluator.evaluate(source, converted, transpose=transpose, plot=plot)


def result_fields() -> tuple[str, ...]:
    """Every key of `EvaluationResult.to_dict()`, in order."""
    return tuple(item.name for item in fields(EvaluationResult))


ProgressCallback = Callable[[int, int, str], None]
"""Told (pairs done, pairs in all, name of the pair just done)."""
