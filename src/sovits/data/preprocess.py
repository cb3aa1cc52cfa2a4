"""`sovits preprocess`: the cached features of every clip of a resampled dataset.

so-vits-svc's preprocess_hubert_f0.py over `dataset/44k/<speaker>/*.wav`. For each clip
(at the config's sampling rate):

* content units: the config's speech encoder on the clip resampled to 16 kHz
  (`<clip>.wav.soft.pt`, [1, D, T_units]);
* f0 and voicing with the chosen method (default "rmvpe" as the seed, which needs the
  rmvpe.pt weights; "pm", "dio", "harvest" need none) at the model hop
  (`<clip>.wav.f0.npy`);
* the linear spectrogram (`<clip>.spec.pt`, the synthesizer's STFT settings);
* the volume envelope (`<clip>.wav.vol.npy`) when the model has a volume embedding or
  with `use_diff`;
* with `use_diff`, for shallow diffusion: the vocoder log-mel (`<clip>.wav.mel.npy`),
  and a copy with a random level shift (log10 factor uniform in [-1, min(1,
  -log10 peak)]) and key shift (uniform in [-5, 5] semitones) as the seed draws them,
  with its volume (`<clip>.wav.aug_mel.npz`, `<clip>.wav.aug_vol.npy`). The draws come
  from a generator seeded by the clip's SHA-256 and `augmentation_seed`, so a rerun
  reproduces them (the seed's were unseeded).

Every feature is recorded in the folder's manifest (`sovits.features.store`). A rerun
recomputes only what is missing, stale (the audio or the settings changed) or corrupt,
and adopts valid feature files that have no record (a dataset preprocessed by
so-vits-svc, or files of a run that was killed). Clips that cannot be used are
reported and the rest are processed. Models are loaded only when something has to be
computed, so a rerun over a complete dataset needs no weights.

With `num_processes` > 1, spawned worker processes each load the models once and take
clips from a shared queue; with CUDA, worker i runs on GPU i modulo the GPU count (the
seed's round-robin), else on the CPU. The parent process writes the manifests.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import queue
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sovits.config import SvcConfig, parse_svc_config
from sovits.data.prepare import DEFAULT_RESAMPLED_DIR, FileProblem
from sovits.errors import (
    CheckpointError,
    ConfigError,
    InputError,
    MissingFileError,
    SovitsError,
)
from sovits.features.store import (
    ClipSource,
    FeatureRecord,
    FeatureSpec,
    FeatureStore,
    adopt_feature,
    check_record,
    write_feature,
)

if TYPE_CHECKING:
    from sovits.features.content.base import ContentEncoder
    from sovits.features.pitch.base import PitchExtractor

__all__ = [
    "DEFAULT_F0_METHOD",
    "ClipOutcome",
    "PreprocessReport",
    "PreprocessSettings",
    "VocoderMelSettings",
    "feature_specs",
    "list_clips",
    "preprocess_dataset",
    "worker_devices",
]

logger = logging.getLogger(__name__)

DEFAULT_F0_METHOD = "rmvpe"
"""The seed's default f0 method (needs rmvpe.pt)."""
CONTENT_SAMPLE_RATE = 16000
CONTENT_HOP = 320
_FRAME_TOLERANCE = 2

ProgressCallback = Callable[[int, int], None]
"""Called with (clips done, clips in total) after each clip."""


@dataclass(frozen=True)
class VocoderMelSettings:
    """The NSF-HiFiGAN log-mel the diffusion model learns (the vocoder's config.json).

    Defaults are those of so-vits-svc 4.1's pretrained nsf_hifigan (44.1 kHz, 128 bands,
    FFT and window 2048, hop 512, 40 Hz - 16 kHz).
    """

    sample_rate: int = 44100
    n_mels: int = 128
    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 512
    fmin: float = 40.0
    fmax: float = 16000.0


@dataclass(frozen=True)
class PreprocessSettings:
    """How `preprocess_dataset` runs.

    f0_method: pm, dio, harvest, crepe, rmvpe (default, as the seed) or fcpe.
    use_diff: also the diffusion features (mel, augmented mel and volume).
    num_processes: worker processes; 0 means one per CPU (the seed's `0`), 1 runs here.
    device: torch device for every model; None picks CUDA round-robin when available.
    verify: hash every cached feature and clip instead of trusting sizes and mtimes.
    force: recompute everything, cached or not.
    encoder_weights: explicit weight file of the speech encoder.
    vocoder_mel: the diffusion mel's settings.
    augmentation_seed: seed of the diffusion augmentation draws.
    """

    f0_method: str = DEFAULT_F0_METHOD
    use_diff: bool = False
    num_processes: int = 1
    device: str | None = None
    verify: bool = False
    force: bool = False
    encoder_weights: Path | None = None
    vocoder_mel: VocoderMelSettings = field(default_factory=VocoderMelSettings)
    augmentation_seed: int = 1234

    def __post_init__(self) -> None:
        from sovits.features.pitch.registry import PITCH_METHODS

        if self.f0_method not in PITCH_METHODS:
            raise InputError(
                f"unknown f0 method {self.f0_method!r}", hint="one of " + ", ".join(PITCH_METHODS)
            )
        if self.num_processes < 0:
            raise InputError(f"num_processes must be 0 or more, got {self.num_processes}")


@dataclass(frozen=True)
class ClipOutcome:
    """What happened to one clip.

    computed: (kind, why) for every feature written. reused: kinds found fresh.
    adopted: kinds whose unrecorded files were validated and recorded. records: the
    manifest records to append. error: why the clip could not be processed.
    """

    wav: Path
    computed: tuple[tuple[str, str], ...] = ()
    reused: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()
    records: tuple[FeatureRecord, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class PreprocessReport:
    """What `preprocess_dataset` did.

    clips: clips looked at. computed: features written, by kind. reused / adopted:
    features kept. recomputed: features that existed but were stale or corrupt, with
    the reason. failed: clips that could not be processed.
    """

    clips: int
    computed: Mapping[str, int]
    reused: int
    adopted: int
    recomputed: tuple[FileProblem, ...]
    failed: tuple[FileProblem, ...]

    @property
    def ok(self) -> bool:
        """True when every clip has its features."""
        return not self.failed

    def summary(self) -> str:
        """One line of counts."""
        computed = sum(self.computed.values())
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(self.computed.items()))
        return (
            f"{self.clips} clips: {computed} features computed"
            + (f" ({kinds})" if kinds else "")
            + f", {self.reused} reused, {self.adopted} adopted, {len(self.failed)} failed"
        )


def list_clips(in_dir: str | os.PathLike[str] = DEFAULT_RESAMPLED_DIR) -> list[Path]:
    """The clips the seed preprocesses: `in_dir/*/*.wav`, sorted (InputError if none)."""
    root = Path(in_dir)
    if not root.is_dir():
        raise InputError("dataset folder not found", where=root,
                         hint="run `sovits resample` first, or give --in-dir")
    clips = sorted(
        path for path in root.glob("*/*.wav") if path.is_file() and not path.name.startswith(".")
    )
    if not clips:
        raise InputError("no clips found (expected <speaker>/*.wav)", where=root)
    return clips


def feature_specs(config: SvcConfig, settings: PreprocessSettings) -> dict[str, FeatureSpec]:
    """The features `settings` asks for under `config`, by kind, with their settings."""
    rate, hop = config.data.sampling_rate, config.data.hop_length
    specs = {
        "content": FeatureSpec(
            "content", CONTENT_SAMPLE_RATE, CONTENT_HOP, {"encoder": config.model.speech_encoder}
        ),
        "f0": FeatureSpec("f0", rate, hop, {"method": settings.f0_method}),
        "spec": FeatureSpec(
            "spec",
            rate,
            hop,
            {"n_fft": config.data.filter_length, "win_length": config.data.win_length},
        ),
    }
    if settings.use_diff or config.model.vol_embedding:
        specs["volume"] = FeatureSpec("volume", rate, hop)
    if settings.use_diff:
        mel = settings.vocoder_mel
        mel_params = {
            "vocoder_sample_rate": mel.sample_rate,
            "n_mels": mel.n_mels,
            "n_fft": mel.n_fft,
            "win_length": mel.win_length,
            "fmin": mel.fmin,
            "fmax": mel.fmax,
        }
        augmented = {**mel_params, "seed": settings.augmentation_seed}
        specs["mel"] = FeatureSpec("mel", rate, mel.hop_length, mel_params)
        specs["aug_mel"] = FeatureSpec("aug_mel", rate, mel.hop_length, augmented)
        specs["aug_volume"] = FeatureSpec(
            "aug_volume", rate, hop, {"seed": settings.augmentation_seed}
        )
    return specs


def worker_devices(count: int, device: str | None = None) -> list[str]:
    """The device of each of `count` workers: `device` for all when given, else GPU
    i modulo the GPU count when CUDA is available, else "cpu"."""
    if device is not None:
        return [device] * count
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        return [f"cuda:{index % gpus}" for index in range(count)]
    return ["cpu"] * count


# --------------------------------------------------------------------------- one clip


class _ClipProcessor:
    """Computes the missing features of clips; models are built on first use."""

    def __init__(self, config: SvcConfig, settings: PreprocessSettings, device: str):
        self.config = config
        self.settings = settings
        self.device = device
        self.specs = feature_specs(config, settings)
        self._encoder: ContentEncoder | None = None
        self._pitch: PitchExtractor | None = None

    def encoder(self) -> ContentEncoder:
        if self._encoder is None:
            from sovits.features.content import load_content_encoder

            self._encoder = load_content_encoder(
                self.config.model.speech_encoder, self.settings.encoder_weights, device=self.device
            )
        return self._encoder

    def pitch(self) -> PitchExtractor:
        if self._pitch is None:
            from sovits.features.pitch.registry import create_pitch_extractor

            method = self.settings.f0_method
            options: dict[str, Any] = {}
            if method in ("crepe", "rmvpe", "fcpe"):
                options["device"] = self.device
            self._pitch = create_pitch_extractor(method, **options)
        return self._pitch

    def _expected(self, kind: str, samples: int) -> tuple[int | None, int | None]:
        """(frames, channels) a feature of a clip of `samples` samples must have."""
        data = self.config.data
        if kind == "content":
            resampled = math.ceil(samples * CONTENT_SAMPLE_RATE / data.sampling_rate)
            return resampled // CONTENT_HOP, self.config.model.ssl_dim
        if kind == "spec":
            return samples // data.hop_length, data.filter_length // 2 + 1
        if kind in ("mel", "aug_mel"):
            mel = self.settings.vocoder_mel
            resampled = math.ceil(samples * mel.sample_rate / data.sampling_rate)
            return resampled // mel.hop_length, mel.n_mels
        return samples // data.hop_length, None

    def process(self, wav: Path, records: Mapping[str, FeatureRecord]) -> ClipOutcome:
        """Bring every feature of clip `wav` up to date. Errors a clip can cause are
        returned in the outcome; model loading errors propagate."""
        try:
            return self._process(wav, records)
        except InputError as error:
            text = error.message if error.where in (None, str(wav)) else str(error)
            return ClipOutcome(wav, error=text)
        except OSError as error:
            return ClipOutcome(wav, error=f"{type(error).__name__}: {error}")

    def _process(self, wav: Path, records: Mapping[str, FeatureRecord]) -> ClipOutcome:
        from sovits.audio.io import audio_info

        clip = ClipSource(wav)
        todo: dict[str, str] = {}
        reused: list[str] = []
        adopted: list[str] = []
        new_records: list[FeatureRecord] = []
        samples: int | None = None
        for kind, spec in self.specs.items():
            if self.settings.force:
                todo[kind] = "forced"
                continue
            check = check_record(records.get(kind), spec, clip, verify=self.settings.verify)
            if check.status == "fresh":
                reused.append(kind)
                if check.refreshed is not None:
                    new_records.append(check.refreshed)
            elif check.status == "unrecorded":
                if samples is None:
                    samples, rate, _, _ = audio_info(wav)
                    self._check_rate(wav, rate)
                frames, dim = self._expected(kind, samples)
                result = adopt_feature(clip, spec, frames=frames, dim=dim,
                                       tolerance=_FRAME_TOLERANCE)
                if isinstance(result, str):
                    todo[kind] = f"unusable file: {result}"
                else:
                    adopted.append(kind)
                    new_records.append(result)
            else:
                todo[kind] = f"{check.status}: {check.reason}"
        # the augmented mel and volume share their random draws: both or neither
        if ("aug_mel" in todo) != ("aug_volume" in todo):
            kind = "aug_volume" if "aug_mel" in todo else "aug_mel"
            todo[kind] = "recomputed with its pair"
            for bucket in (reused, adopted):
                if kind in bucket:
                    bucket.remove(kind)
            new_records = [record for record in new_records if record.kind != kind]
        if todo:
            new_records += self._compute(clip, todo)
        return ClipOutcome(
            wav,
            computed=tuple(todo.items()),
            reused=tuple(reused),
            adopted=tuple(adopted),
            records=tuple(new_records),
        )

    def _check_rate(self, wav: Path, rate: int) -> None:
        expected = self.config.data.sampling_rate
        if rate != expected:
            raise InputError(
                f"sample rate {rate} Hz, but the config's is {expected} Hz",
                where=wav,
                hint="resample the dataset with `sovits resample` (or fix data.sampling_rate)",
            )

    def _compute(self, clip: ClipSource, todo: Mapping[str, str]) -> list[FeatureRecord]:
        from sovits.audio.io import load_audio

        wave, rate = load_audio(clip.path)
        self._check_rate(clip.path, rate)
        records = []
        for kind in self.specs:
            if kind in todo and kind != "aug_volume":
                records += self._compute_kind(kind, clip, wave)
        return records

    def _compute_kind(self, kind: str, clip: ClipSource, wave: np.ndarray) -> list[FeatureRecord]:
        from sovits.audio.resample import resample
        from sovits.dsp.spectrogram import spectrogram
        from sovits.features.volume import VolumeExtractor

        data = self.config.data
        spec = self.specs[kind]
        if kind == "content":
            encoder = self.encoder()
            resampled = resample(wave, data.sampling_rate, encoder.sample_rate)
            with torch.inference_mode():
                units = encoder.encode(torch.from_numpy(resampled)).to("cpu", torch.float32)
            if units.shape[1] != self.config.model.ssl_dim:
                raise ConfigError(
                    f"the {encoder.name} encoder gives {units.shape[1]}-dim units but "
                    f"model.ssl_dim is {self.config.model.ssl_dim}",
                    hint="run `sovits preprocess-config` with this encoder, or fix the config",
                )
            return [write_feature(clip, spec, units.t())]
        if kind == "f0":
            track = self.pitch().extract(wave, data.sampling_rate, data.hop_length)
            return [write_feature(clip, spec, (track.f0, track.voiced.astype(np.float32)))]
        if kind == "spec":
            with torch.inference_mode():
                linear = spectrogram(
                    torch.from_numpy(wave)[None],
                    n_fft=data.filter_length,
                    hop_length=data.hop_length,
                    win_length=data.win_length,
                )[0]
            return [write_feature(clip, spec, linear)]
        if kind == "volume":
            volume = VolumeExtractor(data.hop_length).extract(wave)
            return [write_feature(clip, spec, volume)]
        if kind == "mel":
            return [write_feature(clip, spec, self._mel(wave, keyshift=0.0))]
        if kind == "aug_mel":
            rng = np.random.default_rng(
                [self.settings.augmentation_seed, int(clip.sha256[:16], 16)]
            )
            peak = float(np.max(np.abs(wave))) + 1e-5
            max_shift = min(1.0, math.log10(1.0 / peak))
            level = float(rng.uniform(-1.0, max_shift))
            keyshift = float(rng.uniform(-5.0, 5.0))
            shifted = wave * np.float32(10.0**level)
            extra = {"keyshift": keyshift, "log10_level_shift": level}
            mel = self._mel(shifted, keyshift=keyshift)
            volume = VolumeExtractor(data.hop_length).extract(shifted)
            return [
                write_feature(clip, spec, (mel, keyshift), extra=extra),
                write_feature(clip, self.specs["aug_volume"], volume, extra=extra),
            ]
        raise InputError(f"no computation for feature kind {kind!r}")

    def _mel(self, wave: np.ndarray, *, keyshift: float) -> np.ndarray:
        """Vocoder log-mel [T, n_mels] of `wave` (at the config's rate)."""
        from sovits.audio.resample import resample
        from sovits.dsp.spectrogram import vocoder_mel

        mel = self.settings.vocoder_mel
        audio = resample(wave, self.config.data.sampling_rate, mel.sample_rate)
        with torch.inference_mode():
            result = vocoder_mel(
                torch.from_numpy(np.ascontiguousarray(audio))[None],
                sample_rate=mel.sample_rate,
                n_fft=mel.n_fft,
                n_mels=mel.n_mels,
                hop_length=mel.hop_length,
                win_length=mel.win_length,
                fmin=mel.fmin,
                fmax=mel.fmax,
                keyshift=keyshift,
            )[0]
        return result.t().numpy()


# --------------------------------------------------------------------------- workers

_FATAL_ERRORS: Mapping[str, type[SovitsError]] = {
    cls.__name__: cls
    for cls in (SovitsError, ConfigError, CheckpointError, InputError, MissingFileError)
}


def _worker_main(
    config_data: dict[str, Any],
    settings: PreprocessSettings,
    device: str,
    threads: int,
    tasks: Any,
    results: Any,
) -> None:
    """A worker process: builds its processor, then handles clips until a None task."""
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    processor = _ClipProcessor(parse_svc_config(config_data), settings, device)
    while True:
        task = tasks.get()
        if task is None:
            return
        wav, records = task
        try:
            outcome = processor.process(wav, records)
        except SovitsError as error:
            results.put(("fatal", type(error).__name__, error.message, error.where, error.hint))
            return
        except Exception:
            results.put(("crash", f"preprocessing {wav} failed in a worker process:\n"
                         + traceback.format_exc()))
            return
        results.put(("done", outcome))


def _raise_fatal(name: str, message: str, where: str | None, hint: str | None) -> None:
    cls = _FATAL_ERRORS.get(name, SovitsError)
    raise cls(message, where=where, hint=hint)


def _run_in_workers(
    jobs: list[tuple[Path, dict[str, FeatureRecord]]],
    config: SvcConfig,
    settings: PreprocessSettings,
    workers: int,
    handle: Callable[[ClipOutcome], None],
) -> None:
    context = multiprocessing.get_context("spawn")
    tasks: Any = context.Queue()
    results: Any = context.Queue()
    for job in jobs:
        tasks.put(job)
    for _ in range(workers):
        tasks.put(None)
    threads = max(1, (os.cpu_count() or 1) // workers)
    processes = [
        context.Process(
            target=_worker_main,
            args=(config.to_dict(), settings, device, threads, tasks, results),
            daemon=True,
        )
        for device in worker_devices(workers, settings.device)
    ]
    for process in processes:
        process.start()
    pending = {job[0] for job in jobs}
    try:
        while pending:
            try:
                message = results.get(timeout=0.5)
            except queue.Empty:
                if any(process.is_alive() for process in processes):
                    continue
                try:  # every worker is gone: collect what they sent last
                    message = results.get(timeout=2.0)
                except queue.Empty:
                    break
            if message[0] == "fatal":
                _raise_fatal(*message[1:])
            if message[0] == "crash":
                raise RuntimeError(message[1])
            outcome: ClipOutcome = message[1]
            pending.discard(outcome.wav)
            handle(outcome)
    finally:
        for process in processes:
            if process.is_alive() and pending:
                process.terminate()
            process.join(timeout=10)
        tasks.cancel_join_thread()
        results.cancel_join_thread()
    for wav in sorted(pending):
        handle(ClipOutcome(wav, error="the worker process handling it stopped unexpectedly"))


# --------------------------------------------------------------------------- the step


def preprocess_dataset(
    in_dir: str | os.PathLike[str] = DEFAULT_RESAMPLED_DIR,
    config: SvcConfig | None = None,
    settings: PreprocessSettings | None = None,
    *,
    clips: Sequence[str | os.PathLike[str]] | None = None,
    progress: ProgressCallback | None = None,
) -> PreprocessReport:
    """Compute (or reuse) the features of every clip of `in_dir/<speaker>/*.wav`.

    config: the model's config (required: rates, hop, FFT sizes, encoder, volume
    embedding). clips: explicit clip paths instead of the folder listing. Manifest
    records are written as clips finish. Raises InputError when there is no clip,
    MissingFileError / CheckpointError when a model's weights are missing or wrong,
    ConfigError when the encoder's width differs from model.ssl_dim. A script calling
    this with num_processes > 1 needs the usual `if __name__ == "__main__":` guard.
    """
    if config is None:
        raise ConfigError("preprocess needs the model config (configs/config.json)")
    settings = settings or PreprocessSettings()
    from sovits.features.content.registry import encoder_spec

    expected_dim = encoder_spec(config.model.speech_encoder).dim
    if expected_dim != config.model.ssl_dim:
        raise ConfigError(
            f"model.speech_encoder {config.model.speech_encoder!r} gives {expected_dim}-dim "
            f"units but model.ssl_dim is {config.model.ssl_dim}",
            hint="write the config with `sovits preprocess-config --speech-encoder ...`",
        )
    paths = list_clips(in_dir) if clips is None else [Path(clip) for clip in clips]
    store = FeatureStore()
    jobs = [(path, store.records_of(path)) for path in paths]
    computed: Counter[str] = Counter()
    reused = adopted = 0
    recomputed: list[FileProblem] = []
    failed: list[FileProblem] = []
    done = 0

    def handle(outcome: ClipOutcome) -> None:
        nonlocal reused, adopted, done
        if outcome.records:
            store.add(outcome.records, outcome.wav.parent)
        done += 1
        if outcome.error is not None:
            logger.info("%s: not preprocessed: %s", outcome.wav, outcome.error)
            failed.append(FileProblem(outcome.wav, outcome.error))
        computed.update(kind for kind, _ in outcome.computed)
        reused += len(outcome.reused)
        adopted += len(outcome.adopted)
        for kind, why in outcome.computed:
            if not why.startswith("missing"):
                recomputed.append(FileProblem(outcome.wav, f"{kind}: {why}"))
        if progress is not None:
            progress(done, len(jobs))

    workers = settings.num_processes or (os.cpu_count() or 1)
    workers = min(workers, len(jobs))
    try:
        if workers <= 1:
            device = worker_devices(1, settings.device)[0]
            processor = _ClipProcessor(config, settings, device)
            for wav, records in jobs:
                handle(processor.process(wav, records))
        else:
            _run_in_workers(jobs, config, settings, workers, handle)
    finally:
        store.compact()
    return PreprocessReport(
        clips=len(jobs),
        computed=dict(computed),
        reused=reused,
        adopted=adopted,
        recomputed=tuple(recomputed),
        failed=tuple(sorted(failed, key=lambda problem: problem.path)),
    )
