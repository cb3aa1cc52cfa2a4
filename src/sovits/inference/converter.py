"""Converting recordings with a so-vits-svc model: so-vits-svc 4.1's `Svc.slice_inference`.

The offline driver of the conversion stages (`sovits.inference.plan`, `units`, `pitch`,
`timbre`, `synthesis`, `post`); the streaming converter (`sovits.inference.streaming`)
drives the same stages over blocks.

The input is resampled once to the model's rate and cut by the silence slicer
(`sovits.audio.slicer.segments`, threshold -sd). Silent segments become zeros. Each
sound segment is converted whole, or in forced clips of -cl seconds that overlap by -lg
seconds and are joined with a linear crossfade (`sovits.audio.join.crossfade_join`,
retain -lgr). Every slice or clip is padded with -p seconds of silence on both sides,
converted on its own, trimmed back, centred in its original length, and handed on
in order (`convert` fills one array, `convert_file` writes the file as it goes). A
clip's conversion is the original's `Svc.infer`: f0 from the chosen extractor (or an
exported curve), shifted by the transpose; content units from the 16 kHz wave,
stretched to the f0 frames; the synthesizer; then the optional loudness-envelope
adjustment (-lea).

Memory: only one slice (or clip) is in the models at a time, and sound segments
longer than `ConvertOptions.max_segment_seconds` are clipped automatically, so model
memory does not grow with the input; the heap memory a clip freed is handed back to
the system after each clip (glibc), so fragmentation does not grow with the number of
clips either. `convert_file` keeps the input at the model's rate in a temporary file
beside the output (`sovits.audio.song.decode_song`) and reads one slice at a time,
and it writes each segment's result as soon as it is joined, so nothing in memory
grows with the song's length.

Differences from the original, on purpose: the input is resampled once (soxr) before
slicing instead of per clip, so slicing happens at the model's rate; padded clips are
not rounded through 16-bit PCM; output names use the input's stem.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from sovits.audio.song import ArraySamples, Samples
from sovits.errors import CheckpointError, InputError, SovitsError
from sovits.features.content.base import ContentEncoder
from sovits.features.pitch.base import PitchExtractor
from sovits.features.pitch.export import F0Curve
from sovits.inference.options import ConvertOptions
from sovits.inference.pitch import PitchStage
from sovits.inference.plan import PlannedSegment, mono_wave, slicing_plan
from sovits.inference.post import adjust_loudness, join_clips, trim_padding
from sovits.inference.synthesis import SynthesisStage
from sovits.inference.timbre import TimbreStage
from sovits.inference.units import UnitStage
from sovits.models.noise import NoiseSource

if TYPE_CHECKING:
    from sovits.config import SvcConfig
    from sovits.config.diffusion import DiffusionConfig
    from sovits.inference.diffusion import DiffusionRenderer
    from sovits.inference.onnx_backend import OnnxSynthesizer
    from sovits.inference.speaker_mix import SpeakerMixTrack
    from sovits.models.synthesizer import Synthesizer

__all__ = ["ConversionStopped", "Converter", "output_name"]

logger = logging.getLogger(__name__)

_SUBTYPES = {"flac": "PCM_16", "wav": "PCM_16", "ogg": "VORBIS"}
"""soundfile's default subtype per container, as the original writes its results."""


class ConversionStopped(SovitsError):
    """A conversion was stopped by its `should_stop` check before it finished."""


def output_name(stem: str, options: ConvertOptions) -> str:
    """The original's result name:
    `<stem>_<tran>key_<speaker>[_<cluster ratio>]_<renderer>_<f0 method>.<fmt>`.

    The pitch part is "auto" with auto_predict_f0; the speaker "spk_mix" with a
    speaker-mix track; the renderer "sovits", "sovdiff" (shallow diffusion) or "diff"
    (only diffusion); the f0 part is "f0file" when the f0 comes from a file.
    """
    f0_label = "f0file" if options.f0_file is not None else options.f0_method
    speaker = "spk_mix" if options.use_speaker_mix else options.speaker
    cluster = f"_{options.cluster_ratio:g}" if options.cluster_ratio != 0 else ""
    renderer = "sovits"
    if options.shallow_diffusion:
        renderer = "sovdiff"
    if options.only_diffusion:
        renderer = "diff"
    return (
        f"{stem}_{options.transpose_label}_{speaker}{cluster}_{renderer}_{f0_label}."
        f"{options.audio_format}"
    )


_SILENCE_BLOCK = 1 << 20
"""Samples of silence yielded at once (4 MB): a long pause costs no more than this."""


def _silence(samples: int) -> Iterator[np.ndarray]:
    """`samples` zeros (float32), in blocks of at most _SILENCE_BLOCK."""
    for first in range(0, max(samples, 0), _SILENCE_BLOCK):
        yield np.zeros(min(_SILENCE_BLOCK, samples - first), dtype=np.float32)


def _return_freed_memory() -> None:
    """Hand the heap memory freed by the last clip back to the system (glibc only).

    A clip's model activations are tensors of tens of MB; glibc keeps freed blocks of
    that size in its heap, and with many clips of different lengths the heap grows
    by fragmentation, so the peak memory of a long song would creep above a short
    one's. malloc_trim returns the free pages; elsewhere this does nothing.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, looked up once; None where there is none."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim


def _diffusion_as_svc_config(config: DiffusionConfig) -> SvcConfig:
    """The so-vits config view of a diffusion config, for diffusion-only conversion:
    rate, hop, encoder, unit width and speakers come from the diffusion config."""
    from sovits.config.svc import template_config

    template = template_config()
    speakers = dict(config.spk) if config.spk else {"speaker0": 0}
    return replace(
        template,
        data=replace(
            template.data,
            sampling_rate=config.data.sampling_rate,
            hop_length=config.data.block_size,
            unit_interpolate_mode=config.data.unit_interpolate_mode,
        ),
        model=replace(
            template.model,
            speech_encoder=config.data.encoder,
            ssl_dim=config.data.encoder_out_channels,
            n_speakers=max(len(speakers), config.model.n_spk),
            vol_embedding=False,
        ),
        spk=speakers,
    )


class _Prepared(NamedTuple):
    """What `Converter._prepare` found for one conversion's options."""

    speaker_id: int
    """The target speaker (unused with a speaker-mix track)."""
    speaker_mix_track: SpeakerMixTrack | None
    """The -usm track, read once for the conversion; None without speaker mixing."""


class Converter:
    """A loaded model ready to convert audio; load once, convert many times.

    model_path / config_path: the so-vits-svc model file and its config.json (optional
    for releases that embed it). device: torch device; None picks CUDA when available.
    encoder_weights: the content encoder's weight file (None: the usual lookup);
    content_encoder: an already built encoder to use instead. precision: the synthesizer
    precision loaded now (fp32, bf16, fp16; `sovits.checkpoints.precision`); a
    conversion whose `ConvertOptions.precision` differs loads the model in that one on
    first use and keeps it. Raises CheckpointError when the model, its config and the
    encoder do not fit, InputError for a precision this device (or model kind) lacks.

    The stages it drives: `units` (content units), `pitch` (f0), `timbre` (cluster /
    retrieval blending), `synthesis` (synthesizer, diffusion, enhancer).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None,
        config_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        encoder_weights: str | os.PathLike[str] | None = None,
        content_encoder: ContentEncoder | None = None,
        fast: bool = True,
        diffusion: DiffusionRenderer | None = None,
        precision: str = "fp32",
    ):
        from sovits.inference.memory import fix_mmap_threshold
        from sovits.inference.precision import SynthesizerPrecisions

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise InputError(f"unknown device {device!r}: {error}") from None
        self.synthesizer: Synthesizer | OnnxSynthesizer | None
        if model_path is None:
            if diffusion is None:
                raise InputError("a model file (-m) is needed unless only diffusion (-od) is used")
            self.synthesizer = None
            self.config = _diffusion_as_svc_config(diffusion.config)
        elif Path(model_path).suffix.lower() == ".onnx":
            from sovits.inference.onnx_backend import load_onnx_synthesizer

            self.synthesizer, self.config = load_onnx_synthesizer(model_path, config_path)
        else:
            self.synthesizer, self.config = SynthesizerPrecisions.load(
                model_path, config_path, device=self.device, fast=fast, precision=precision
            )
        torch_model = model_path is not None and Path(model_path).suffix.lower() != ".onnx"
        self._precisions = SynthesizerPrecisions(
            model_path, config_path, device=self.device, fast=fast, loaded=self.synthesizer,
            precision=precision if torch_model else "fp32",
        )
        self._precisions.get(precision)  # refuses bf16 / fp16 for ONNX and diffusion only
        if content_encoder is None:
            from sovits.features.content import load_content_encoder

            content_encoder = load_content_encoder(
                self.config.model.speech_encoder,
                Path(encoder_weights) if encoder_weights is not None else None,
                device=self.device,
            )
        if content_encoder.dim != self.config.model.ssl_dim:
            raise CheckpointError(
                f"the content encoder {content_encoder.name!r} gives {content_encoder.dim}-"
                f"dimensional units but the model expects model.ssl_dim = "
                f"{self.config.model.ssl_dim}",
                where=os.fspath(config_path) if config_path is not None else None,
                hint="check model.speech_encoder in the config the model was trained with",
            )
        self.content_encoder = content_encoder
        if diffusion is not None and model_path is not None:
            diffusion.check_fits(self.sample_rate, self.hop_length, self.config.model.ssl_dim)
        self.units = UnitStage(
            content_encoder,
            sample_rate=self.sample_rate,
            interpolate_mode=self.config.data.unit_interpolate_mode,
            device=self.device,
        )
        self.pitch = PitchStage(
            sample_rate=self.sample_rate, hop_length=self.hop_length, device=self.device
        )
        self.timbre = TimbreStage(self.config)
        self.synthesis = SynthesisStage(
            self.synthesizer, self.config, self.units, device=self.device, diffusion=diffusion
        )
        fix_mmap_threshold()  # after loading: activations then never linger in the heap

    @classmethod
    def diffusion_only(
        cls,
        diffusion_model_path: str | os.PathLike[str] | None = None,
        diffusion_config_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        encoder_weights: str | os.PathLike[str] | None = None,
        content_encoder: ContentEncoder | None = None,
    ) -> Converter:
        """A converter that renders with the diffusion model alone (-od): its config
        gives the rate, hop, speech encoder and speakers; no so-vits model is loaded."""
        from sovits.inference.diffusion import DiffusionRenderer

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        renderer = DiffusionRenderer.load(
            diffusion_model_path, diffusion_config_path, device=device
        )
        return cls(
            None,
            device=device,
            encoder_weights=encoder_weights,
            content_encoder=content_encoder,
            diffusion=renderer,
        )

    @property
    def sample_rate(self) -> int:
        """Rate of the model's input and output audio, Hz."""
        return self.config.data.sampling_rate

    @property
    def hop_length(self) -> int:
        """Samples per model frame."""
        return self.config.data.hop_length

    def pitch_extractor(self, method: str, threshold: float = 0.05) -> PitchExtractor:
        """The extractor of `method`, built on first use and kept."""
        return self.pitch.extractor(method, threshold)

    # ----------------------------------------------------------------- conversion

    def convert(
        self,
        wave: np.ndarray,
        sample_rate: int,
        *,
        options: ConvertOptions,
        progress: Callable[[float, str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Convert `wave` (float [N] or [C, N] at `sample_rate` Hz) to the target voice.

        Returns float32 [ceil(N * model rate / sample_rate)] at `self.sample_rate`.
        progress: called with (fraction done in [0, 1], stage text) after each converted
        clip; an exception it raises (e.g. a job's cancellation) stops the conversion.
        should_stop: asked before each clip; when it returns True the conversion stops
        with ConversionStopped.
        Raises InputError for bad audio, an unknown speaker or an unusable f0 file,
        MissingFileError / CheckpointError for model parts the options need that are
        absent or do not fit.
        """
        prepared = self._prepare(options)
        samples = ArraySamples(self._model_rate_samples(wave, sample_rate))
        output = np.empty(samples.length, dtype=np.float32)
        position = 0
        for block in self._converted_blocks(
            samples, options, prepared, progress=progress, should_stop=should_stop
        ):
            output[position : position + block.shape[0]] = block
            position += block.shape[0]
        return output

    def convert_file(
        self,
        path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        options: ConvertOptions,
        *,
        progress: Callable[[float, str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Path:
        """Convert the audio file `path` and write `<out_dir>/<output_name>` atomically.

        The input is decoded at the model's rate into a temporary file in `out_dir` and
        read slice by slice, and the result is written as it is converted, segment by
        segment, so neither the song nor its output is ever held whole in memory; the
        file appears when it is complete. The result equals `convert` of the loaded
        file. Returns the written path. Raises InputError for missing, unreadable,
        empty or NaN-holding audio and an unwritable `out_dir` (see `convert` for the
        rest and for `progress` and `should_stop`).
        """
        from sovits.audio.io import audio_info, save_audio_blocks
        from sovits.audio.song import decode_song

        prepared = self._prepare(options)  # fail before reading the audio
        source = Path(path)
        audio_info(source)  # a missing or unreadable file fails before the folder is made
        folder = Path(out_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot make the output folder: {error}", where=folder) from None
        with decode_song(source, self.sample_rate, scratch_dir=folder) as samples:
            blocks = self._converted_blocks(
                samples, options, prepared, progress=progress, should_stop=should_stop
            )
            return save_audio_blocks(
                folder / output_name(source.stem, options),
                blocks,
                self.sample_rate,
                subtype=_SUBTYPES[options.audio_format],
            )

    def _model_rate_samples(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """`wave` as the mono float32 [N] the stages take, at the model's rate."""
        samples = mono_wave(wave)
        if sample_rate <= 0:
            raise InputError(f"sample rate must be positive, got {sample_rate}")
        if sample_rate != self.sample_rate:
            from sovits.audio.resample import resample

            samples = resample(samples, sample_rate, self.sample_rate)
        return samples

    def _converted_blocks(
        self,
        samples: Samples,
        options: ConvertOptions,
        prepared: _Prepared,
        *,
        progress: Callable[[float, str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[np.ndarray]:
        """The conversion of `samples` (mono float32 [N] at the model's rate), in order:
        one float32 block per slicer segment (zeros for silence), N samples in all."""
        from sovits.inference.memory import bound_onednn_primitive_cache, offline_cache_capacity

        # see sovits.inference.memory
        bound_onednn_primitive_cache(offline_cache_capacity(options.precision))
        curve = self.pitch.load_curve(options)
        extractor = None if curve is not None else self.pitch.extractor_for(options)
        rate, hop = self.sample_rate, self.hop_length
        noise = NoiseSource.from_seed(options.seed, self.device)
        pad = int(rate * options.pad_seconds)
        plan = slicing_plan(samples, rate, options)
        track = prepared.speaker_mix_track
        mix = None if track is None else self._speaker_mix_weights(track, plan, pad)
        frame = 0  # running frame of the speaker-mix track
        total_clips = sum(len(item.ranges) for item in plan if not item.segment.silent)
        done_clips = 0
        position = 0  # samples yielded so far
        for item in plan:
            segment = item.segment
            yield from _silence(segment.start - position)
            position = segment.end
            if segment.silent:
                logger.debug("silence %d..%d left as zeros", segment.start, segment.end)
                frame += len(segment) // hop
                yield from _silence(len(segment))
                continue
            pieces = []
            for start, end in item.ranges:
                if should_stop is not None and should_stop():
                    raise ConversionStopped("the conversion was stopped before it finished")
                begin = segment.start + start
                n_frames = (end - start + 2 * pad) // hop
                speaker: int | np.ndarray = prepared.speaker_id
                if mix is not None:
                    from sovits.inference.speaker_mix import call_weights

                    speaker = call_weights(mix, frame, n_frames, self.config.model.n_speakers)
                frame += n_frames
                pieces.append(
                    self._convert_clip(
                        samples.read(begin, segment.start + end),
                        begin,
                        speaker=speaker,
                        options=options,
                        noise=noise,
                        extractor=extractor,
                        curve=curve,
                    )
                )
                _return_freed_memory()
                done_clips += 1
                if progress is not None:
                    progress(done_clips / max(total_clips, 1), "converting")
            joined = np.asarray(join_clips(pieces, item.overlap, options), dtype=np.float32)
            if joined.shape[0] != len(segment):
                raise SovitsError(  # an internal invariant of the stages
                    f"segment {segment.start}..{segment.end} came back with "
                    f"{joined.shape[0]} samples"
                )
            yield joined
        yield from _silence(samples.length - position)

    # ----------------------------------------------------------------- internals

    def _speaker_mix_weights(
        self, track: SpeakerMixTrack, plan: list[PlannedSegment], pad: int
    ) -> np.ndarray:
        """The speaker-mix track (-usm) spread over the whole conversion: float32
        [n_speakers, L] with L the original's frame count of this slicing plan."""
        from sovits.inference.speaker_mix import frame_weights, mix_track_length

        slices: list[tuple[int | list[int], bool]] = [
            (len(item.segment), True) if item.segment.silent
            else ([end - start for start, end in item.ranges], False)
            for item in plan
        ]
        length = mix_track_length(slices, pad_samples=pad, hop_length=self.hop_length)
        return frame_weights(track, length)

    def _speaker_mix_track(self, options: ConvertOptions) -> SpeakerMixTrack:
        """The speaker-mix track file of -usm, read and checked against the speakers."""
        from sovits.inference.speaker_mix import load_speaker_mix_track

        if options.speaker_mix_path is None:
            raise InputError("speaker mixing (-usm) needs a track file (--speaker-mix-track)")
        return load_speaker_mix_track(options.speaker_mix_path, speakers=self.config.spk)

    def _prepare(self, options: ConvertOptions) -> _Prepared:
        """Check the options against this model and load the parts they need (cluster
        model, diffusion model, enhancer, speaker-mix track), so problems surface
        before any audio is read."""
        # The synthesizer in the options' precision (loaded on first use of one).
        self.synthesizer = self.synthesis.synthesizer = self._precisions.get(options.precision)
        track: SpeakerMixTrack | None = None
        if options.use_speaker_mix:
            if options.cluster_ratio != 0:
                raise InputError(
                    "cluster / retrieval blending (-cr) works per target speaker and cannot "
                    "be combined with speaker mixing (-usm)"
                )
            track = self._speaker_mix_track(options)
            speaker_id = 0  # unused: every call gets the track's weights
        else:
            speaker_id = self.config.speaker_id(options.speaker)
        if options.cluster_ratio != 0:
            self.timbre.model(options)
        self.synthesis.check(options)
        return _Prepared(speaker_id, track)

    def _convert_clip(
        self,
        clip: np.ndarray,
        start: int,
        *,
        speaker: int | np.ndarray,
        options: ConvertOptions,
        noise: NoiseSource,
        extractor: PitchExtractor | None,
        curve: F0Curve | None,
    ) -> np.ndarray:
        """Convert one slice or clip (float32 [n] at the model rate, starting at sample
        `start` of the input) -> float32 [n]."""
        rate, hop = self.sample_rate, self.hop_length
        length = clip.shape[0]
        pad = int(rate * options.pad_seconds)
        padded = np.concatenate(
            [np.zeros(pad, np.float32), clip, np.zeros(pad, np.float32)]
        )
        n_frames = padded.shape[0] // hop
        if n_frames < 1 or not self.units.long_enough(padded):
            logger.debug("a %d-sample slice is too short to convert; left silent", length)
            return np.zeros(length, np.float32)
        track = self.pitch.track(
            padded, start - pad, n_frames, extractor=extractor, curve=curve
        )
        pitch = self.pitch.frames(track, options.transpose)
        with torch.inference_mode():
            content = self.timbre.blend(self.units.encode(padded, n_frames), options)
            audio = self.synthesis.render(
                padded, content, pitch, speaker=speaker, options=options, noise=noise
            )
        audio = adjust_loudness(padded, audio, rate, options)
        return trim_padding(audio, pad, length)
