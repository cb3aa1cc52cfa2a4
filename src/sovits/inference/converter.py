"""Converting recordings with a so-vits-svc model: so-vits-svc 4.1's `Svc.slice_inference`.

The input is resampled once to the model's rate and cut by the silence slicer
(`sovits.audio.slicer.segments`, threshold -sd). Silent segments become zeros. Each
sound segment is converted whole, or in forced clips of -cl seconds that overlap by -lg
seconds and are joined with a linear crossfade (`sovits.audio.join.crossfade_join`,
retain -lgr). Every slice or clip is padded with -p seconds of silence on both sides,
converted on its own, trimmed back, centred in its original length, and written into
the preallocated output. A clip's conversion is the original's `Svc.infer`: f0 from
the chosen extractor (or an exported curve), shifted by the transpose; content units
from the 16 kHz wave, stretched to the f0 frames; the synthesizer; then the optional
loudness-envelope adjustment (-lea).

Memory: only one slice (or clip) is in the models at a time, and sound segments
longer than `ConvertOptions.max_segment_seconds` are clipped automatically, so model
memory does not grow with the input; the heap memory a clip freed is handed back to
the system after each clip (glibc), so fragmentation does not grow with the number of
clips either. What grows is the input and output waveforms (the input is dropped
before the result is written, which converts to 16-bit in blocks).

Differences from the original, on purpose: the input is resampled once (soxr) before
slicing instead of per clip, so slicing happens at the model's rate; padded clips are
not rounded through 16-bit PCM; output names use the input's stem.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from sovits.audio.slicer import SVC_INFERENCE_SLICER, AudioSegment, segments
from sovits.errors import CheckpointError, InputError
from sovits.features.content.base import ContentEncoder
from sovits.features.pitch.base import PitchExtractor, PitchTrack
from sovits.features.pitch.export import F0Curve
from sovits.inference.options import ConvertOptions
from sovits.models.noise import NoiseSource

if TYPE_CHECKING:
    from sovits.config import SvcConfig
    from sovits.config.diffusion import DiffusionConfig
    from sovits.inference.diffusion import DiffusionRenderer
    from sovits.inference.enhancer import Enhancer
    from sovits.inference.onnx_backend import OnnxSynthesizer
    from sovits.inference.speaker_mix import SpeakerMixTrack
    from sovits.models.synthesizer import Synthesizer
    from sovits.retrieval.index import FeatureIndex
    from sovits.retrieval.kmeans import ClusterModel

__all__ = ["Converter", "output_name"]

logger = logging.getLogger(__name__)

_AUTO_CROSSFADE_SECONDS = 1.0
"""Crossfade of the clips that `max_segment_seconds` forces."""

_THRESHOLD_METHODS = ("crepe", "rmvpe", "fcpe")
"""f0 methods that take a voicing threshold (-ft) and a device."""

_SUBTYPES = {"flac": "PCM_16", "wav": "PCM_16", "ogg": "VORBIS"}
"""soundfile's default subtype per container, as the original writes its results."""


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


def _center_fit(audio: np.ndarray, length: int) -> np.ndarray:
    """`audio` zero-padded evenly (left gets the smaller half) or cut to `length`."""
    if audio.shape[0] >= length:
        return audio[:length]
    missing = length - audio.shape[0]
    left = missing // 2
    return np.pad(audio, (left, missing - left))


def _mono_wave(wave: np.ndarray) -> np.ndarray:
    array = np.asarray(wave)
    if array.ndim == 2:
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"expected float samples, got dtype {array.dtype}")
        array = array.mean(axis=0)
    if array.ndim != 1:
        raise InputError(f"expected a wave of shape [N] or [C, N], got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"expected float samples in [-1, 1], got dtype {array.dtype}",
            hint="convert integer PCM to float (int16: divide by 32768)",
        )
    if array.shape[0] == 0:
        raise InputError("the audio holds no samples")
    if not np.all(np.isfinite(array)):
        raise InputError("the audio contains NaN or infinite samples")
    return np.ascontiguousarray(array, dtype=np.float32)


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


def _clip_ranges(length: int, clip: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) ranges of a segment of `length` samples cut every `clip` samples;
    each range after the first starts `overlap` samples early (the original's
    split_list_by_n with lg_size)."""
    if clip <= 0 or length <= clip:
        return [(0, length)]
    return [
        (start - overlap if start else 0, min(length, start + clip))
        for start in range(0, length, clip)
    ]


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
    content_encoder: an already built encoder to use instead.
    Raises CheckpointError when the model, its config and the encoder do not fit.
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
    ):
        from sovits.checkpoints import load_synthesizer

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise InputError(f"unknown device {device!r}: {error}") from None
        self.synthesizer: Synthesizer | OnnxSynthesizer | None
        self._diffusion_renderers: dict[tuple[Path | None, Path | None], DiffusionRenderer] = {}
        self._enhancer: Enhancer | None = None
        if model_path is None:
            if diffusion is None:
                raise InputError("a model file (-m) is needed unless only diffusion (-od) is used")
            self.synthesizer = None
            self.config = _diffusion_as_svc_config(diffusion.config)
            self._diffusion_renderers[(None, None)] = diffusion
        elif Path(model_path).suffix.lower() == ".onnx":
            from sovits.inference.onnx_backend import load_onnx_synthesizer

            self.synthesizer, self.config = load_onnx_synthesizer(model_path, config_path)
        else:
            self.synthesizer, self.config = load_synthesizer(
                model_path, config_path, device=self.device, fast=fast
            )
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
            self._diffusion_renderers[(None, None)] = diffusion
        self._pitch_extractors: dict[tuple[str, float], PitchExtractor] = {}
        self._timbre_models: dict[tuple[Path, bool], ClusterModel | FeatureIndex] = {}

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
        key = (method, threshold if method in _THRESHOLD_METHODS else 0.0)
        if key not in self._pitch_extractors:
            from sovits.features.pitch.registry import create_pitch_extractor

            if method in _THRESHOLD_METHODS:
                extractor = create_pitch_extractor(
                    method, device=self.device, threshold=threshold
                )
            else:
                extractor = create_pitch_extractor(method)
            self._pitch_extractors[key] = extractor
        return self._pitch_extractors[key]

    # ----------------------------------------------------------------- conversion

    def convert(
        self, wave: np.ndarray, sample_rate: int, *, options: ConvertOptions
    ) -> np.ndarray:
        """Convert `wave` (float [N] or [C, N] at `sample_rate` Hz) to the target voice.

        Returns float32 [ceil(N * model rate / sample_rate)] at `self.sample_rate`.
        Raises InputError for bad audio, an unknown speaker or an unusable f0 file,
        MissingFileError / CheckpointError for model parts the options need that are
        absent or do not fit.
        """
        return self._convert_prepared(wave, sample_rate, options, self._prepare(options))

    def _convert_prepared(
        self, wave: np.ndarray, sample_rate: int, options: ConvertOptions, prepared: _Prepared
    ) -> np.ndarray:
        """`convert`, once `_prepare` has checked the options and read what they name."""
        samples = _mono_wave(wave)
        if sample_rate <= 0:
            raise InputError(f"sample rate must be positive, got {sample_rate}")
        curve = self._load_curve(options)
        extractor = (
            None
            if curve is not None
            else self.pitch_extractor(options.f0_method, options.f0_filter_threshold)
        )
        if sample_rate != self.sample_rate:
            from sovits.audio.resample import resample

            samples = resample(samples, sample_rate, self.sample_rate)
        rate, hop = self.sample_rate, self.hop_length
        settings = replace(SVC_INFERENCE_SLICER, threshold_db=options.slice_db)
        output = np.zeros(samples.shape[0], dtype=np.float32)
        noise = NoiseSource.from_seed(options.seed, self.device)
        pad = int(rate * options.pad_seconds)
        plan = [
            (segment, self._segment_clips(len(segment), options))
            for segment in segments(samples, rate, settings)
        ]
        track = prepared.speaker_mix_track
        mix = None if track is None else self._speaker_mix_weights(track, plan, pad)
        frame = 0  # running frame of the speaker-mix track
        for segment, (ranges, seg_overlap) in plan:
            if segment.silent:
                logger.debug("silence %d..%d left as zeros", segment.start, segment.end)
                frame += len(segment) // hop
                continue
            pieces = []
            for start, end in ranges:
                begin = segment.start + start
                n_frames = (end - start + 2 * pad) // hop
                speaker: int | np.ndarray = prepared.speaker_id
                if mix is not None:
                    from sovits.inference.speaker_mix import call_weights

                    speaker = call_weights(mix, frame, n_frames, self.config.model.n_speakers)
                frame += n_frames
                pieces.append(
                    self._convert_clip(
                        samples[begin : segment.start + end],
                        begin,
                        speaker=speaker,
                        options=options,
                        noise=noise,
                        extractor=extractor,
                        curve=curve,
                    )
                )
                _return_freed_memory()
            if len(pieces) == 1:
                output[segment.start : segment.end] = pieces[0]
            else:
                from sovits.audio.join import crossfade_join

                joined = crossfade_join(pieces, seg_overlap, retain=options.crossfade_retain)
                output[segment.start : segment.end] = joined
        return output

    def convert_file(
        self,
        path: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        options: ConvertOptions,
    ) -> Path:
        """Convert the audio file `path` and write `<out_dir>/<output_name>` atomically.

        Returns the written path. Raises InputError for missing, unreadable, empty or
        NaN-holding audio (see `convert` for the rest).
        """
        from sovits.audio.io import load_audio, save_audio

        prepared = self._prepare(options)  # fail before reading the audio
        source = Path(path)
        wave, rate = load_audio(source, sample_rate=self.sample_rate)
        audio = self._convert_prepared(wave, rate, options, prepared)
        del wave  # the input is not needed while the result is written
        target = Path(out_dir) / output_name(source.stem, options)
        return save_audio(target, audio, rate, subtype=_SUBTYPES[options.audio_format])

    # ----------------------------------------------------------------- internals

    def _segment_clips(
        self, length: int, options: ConvertOptions
    ) -> tuple[list[tuple[int, int]], int]:
        """The clips a sound segment of `length` samples is converted in, as
        (start, end) ranges within it, and their overlap in samples."""
        rate = self.sample_rate
        clip, overlap = self._clip_plan(options)
        limit = options.max_segment_seconds
        if clip == 0 and limit is not None and length > int(limit * rate):
            clip, overlap = int(limit * rate), int(_AUTO_CROSSFADE_SECONDS * rate)
            logger.info("a %.1f s sound slice is converted in %.0f s clips", length / rate, limit)
        return _clip_ranges(length, clip, overlap), overlap

    def _speaker_mix_weights(
        self,
        track: SpeakerMixTrack,
        plan: list[tuple[AudioSegment, tuple[list[tuple[int, int]], int]]],
        pad: int,
    ) -> np.ndarray:
        """The speaker-mix track (-usm) spread over the whole conversion: float32
        [n_speakers, L] with L the original's frame count of this slicing plan."""
        from sovits.inference.speaker_mix import frame_weights, mix_track_length

        slices: list[tuple[int | list[int], bool]] = [
            (len(segment), True) if segment.silent
            else ([end - start for start, end in ranges], False)
            for segment, (ranges, _) in plan
        ]
        length = mix_track_length(slices, pad_samples=pad, hop_length=self.hop_length)
        return frame_weights(track, length)

    def _speaker_mix_track(self, options: ConvertOptions) -> SpeakerMixTrack:
        """The speaker-mix track file of -usm, read and checked against the speakers."""
        from sovits.inference.speaker_mix import load_speaker_mix_track

        if options.speaker_mix_path is None:
            raise InputError("speaker mixing (-usm) needs a track file (--speaker-mix-track)")
        return load_speaker_mix_track(options.speaker_mix_path, speakers=self.config.spk)

    def _clip_plan(self, options: ConvertOptions) -> tuple[int, int]:
        """(clip, overlap) in samples at the model rate; (0, 0) without forced clips."""
        rate = self.sample_rate
        return int(options.clip_seconds * rate), int(options.crossfade_seconds * rate)

    def _prepare(self, options: ConvertOptions) -> _Prepared:
        """Check the options against this model and load the parts they need (cluster
        model, diffusion model, enhancer, speaker-mix track), so problems surface
        before any audio is read."""
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
            self._timbre_model(options)
        if self.synthesizer is None and not options.only_diffusion:
            raise InputError("this converter has no so-vits model: only diffusion (-od) works")
        if options.auto_predict_f0 and self.synthesizer is None:
            raise InputError("automatic f0 prediction (-a) needs the so-vits model, not -od")
        if options.uses_diffusion:
            self._diffusion(options)
        elif options.enhance:
            self._get_enhancer()
        return _Prepared(speaker_id, track)

    def _diffusion(self, options: ConvertOptions) -> DiffusionRenderer:
        """The diffusion renderer of -dm/-dc, loaded on first use and kept."""
        if (None, None) in self._diffusion_renderers:
            return self._diffusion_renderers[(None, None)]
        key = (options.diffusion_model_path, options.diffusion_config_path)
        if key not in self._diffusion_renderers:
            from sovits.inference.diffusion import DiffusionRenderer

            renderer = DiffusionRenderer.load(*key, device=self.device)
            renderer.check_fits(self.sample_rate, self.hop_length, self.config.model.ssl_dim)
            self._diffusion_renderers[key] = renderer
        return self._diffusion_renderers[key]

    def _get_enhancer(self) -> Enhancer:
        """The NSF-HiFiGAN enhancer (-eh), loaded on first use."""
        if self._enhancer is None:
            from sovits.inference.enhancer import Enhancer

            self._enhancer = Enhancer.load(device=self.device)
        return self._enhancer

    def _timbre_model(self, options: ConvertOptions) -> ClusterModel | FeatureIndex:
        """The cluster model (-cm) or feature index (-fr), read on first use and kept."""
        path = options.cluster_model_path
        if path is None:
            raise InputError(
                "a cluster ratio (-cr) needs a cluster model or feature index (-cm)",
                hint="train one with `sovits train-cluster` or `sovits train-index`",
            )
        key = (Path(path).resolve(), options.feature_retrieval)
        if key not in self._timbre_models:
            if options.feature_retrieval:
                from sovits.retrieval.index import read_feature_index

                self._timbre_models[key] = read_feature_index(path)
            else:
                from sovits.retrieval.kmeans import read_cluster_model

                self._timbre_models[key] = read_cluster_model(path)
        return self._timbre_models[key]

    def _blend_units(self, content: torch.Tensor, options: ConvertOptions) -> torch.Tensor:
        """Pull the units [1, C, T] toward the target speaker's own (-cr share): the
        nearest k-means centres (-cm) or the retrieved stored units (-fr)."""
        if options.cluster_ratio == 0:
            return content
        model = self._timbre_model(options)
        if options.feature_retrieval:
            from sovits.retrieval.index import FeatureIndex, blend_with_retrieval

            assert isinstance(model, FeatureIndex)
            speaker_id = self.config.speaker_id(options.speaker)
            return blend_with_retrieval(model, content, speaker_id, options.cluster_ratio)
        from sovits.retrieval.kmeans import ClusterModel, blend_with_clusters

        assert isinstance(model, ClusterModel)
        return blend_with_clusters(model, content, options.speaker, options.cluster_ratio)

    def _render_diffusion(
        self,
        rendered: torch.Tensor | None,
        padded: np.ndarray,
        content: torch.Tensor,
        f0: torch.Tensor,
        volume: torch.Tensor | None,
        *,
        speaker: torch.Tensor,
        options: ConvertOptions,
        noise: NoiseSource,
    ) -> torch.Tensor:
        """Shallow diffusion over the synthesizer's audio `rendered` [N], or, with only
        diffusion (`rendered` None), diffusion from noise. Volume: the model's input
        volume when it has a volume embedding, else that of the audio refined (the
        input itself with only diffusion), as the original."""
        from sovits.features.volume import VolumeExtractor

        n_frames = content.shape[-1]
        if volume is None:
            source = rendered if rendered is not None else torch.from_numpy(padded)
            volume = VolumeExtractor(self.hop_length).extract(source.to(self.device))
            volume = volume[None, :n_frames]
        units = content
        if options.second_encoding and rendered is not None:
            units = self._encode(rendered.cpu().numpy(), n_frames)
        return self._diffusion(options).render(
            units,
            f0,
            volume,
            speaker=speaker,
            noise=noise,
            audio=rendered,
            k_step=options.k_step,
            speedup=options.diffusion_speedup,
            method=options.diffusion_method,
        )

    def _encode(self, wave: np.ndarray, n_frames: int) -> torch.Tensor:
        """Content units [1, C, n_frames] of `wave` (model rate), stretched to the frames."""
        from sovits.audio.resample import resample
        from sovits.dsp.alignment import repeat_expand_2d
        from sovits.features.content.base import SAMPLE_RATE as ENCODER_RATE

        wave16k = resample(wave, self.sample_rate, ENCODER_RATE)
        units = self.content_encoder.encode(torch.from_numpy(wave16k).to(self.device))
        return repeat_expand_2d(
            units.T.to(torch.float32), n_frames, self.config.data.unit_interpolate_mode
        )[None]

    @staticmethod
    def _load_curve(options: ConvertOptions) -> F0Curve | None:
        if options.f0_file is None:
            return None
        from sovits.features.pitch.export import load_f0_curve

        return load_f0_curve(options.f0_file)

    def _curve_track(self, curve: F0Curve, offset: int, n_frames: int) -> PitchTrack:
        """Frames of the f0 curve starting `offset` samples into the input (which may be
        negative inside the padding): unvoiced points are filled by interpolation
        between the voiced ones, edges held, as extractors return them."""
        rate, hop = self.sample_rate, self.hop_length
        times = curve.times - offset / rate
        voicing = F0Curve(times, curve.f0, curve.voiced).to_track(rate, hop, n_frames)
        voiced = curve.voiced
        if not voiced.any():
            return PitchTrack(np.zeros(n_frames, np.float32), voicing.voiced, rate, hop)
        filled = F0Curve(times[voiced], curve.f0[voiced], voiced[voiced]).to_track(
            rate, hop, n_frames
        )
        return PitchTrack(filled.f0, voicing.voiced, rate, hop)

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
        from sovits.audio.resample import resample
        from sovits.dsp.f0 import shift_f0
        from sovits.features.content.base import HOP_SIZE as ENCODER_HOP
        from sovits.features.content.base import SAMPLE_RATE as ENCODER_RATE

        rate, hop = self.sample_rate, self.hop_length
        length = clip.shape[0]
        pad = int(rate * options.pad_seconds)
        padded = np.concatenate(
            [np.zeros(pad, np.float32), clip, np.zeros(pad, np.float32)]
        )
        n_frames = padded.shape[0] // hop
        wave16k = resample(padded, rate, ENCODER_RATE)
        if n_frames < 1 or wave16k.shape[0] < ENCODER_HOP:
            logger.debug("a %d-sample slice is too short to convert; left silent", length)
            return np.zeros(length, np.float32)

        if curve is not None:
            track = self._curve_track(curve, start - pad, n_frames)
        else:
            assert extractor is not None
            track = extractor.extract(padded, rate, hop, n_frames=n_frames)
        f0_hz = np.asarray(shift_f0(np.asarray(track.f0, np.float32), options.transpose))
        f0 = torch.from_numpy(f0_hz.astype(np.float32))[None].to(self.device)
        uv = torch.from_numpy(track.voiced.astype(np.float32))[None].to(self.device)

        with torch.inference_mode():
            content = self._blend_units(self._encode(padded, n_frames), options)
            volume = None
            if self.config.model.vol_embedding:
                from sovits.features.volume import VolumeExtractor

                volume = VolumeExtractor(hop).extract(torch.from_numpy(padded).to(self.device))
                volume = volume[None, :n_frames]
            if isinstance(speaker, np.ndarray):  # per-frame mixing weights [T, S]
                condition = torch.from_numpy(speaker).to(self.device)
            else:
                condition = torch.tensor([[speaker]], dtype=torch.long, device=self.device)
            rendered: torch.Tensor | None = None
            if self.synthesizer is not None and not options.only_diffusion:
                result = self.synthesizer.infer(
                    content,
                    f0,
                    uv,
                    speaker=condition,
                    noise_scale=options.noise_scale,
                    predict_f0=options.auto_predict_f0,
                    volume=volume,
                    noise=noise,
                )
                rendered = result.audio[0, 0].to(torch.float32)
                f0 = result.f0.to(torch.float32)
            if options.uses_diffusion:
                rendered = self._render_diffusion(
                    rendered, padded, content, f0, volume,
                    speaker=condition, options=options, noise=noise,
                )
            assert rendered is not None
            audio = rendered.cpu().numpy()
            if options.enhance and not options.uses_diffusion:
                audio, _ = self._get_enhancer().enhance(
                    audio, rate, f0[0], hop,
                    adaptive_key=options.enhancer_adaptive_key, noise=noise,
                )
        if options.loudness_envelope_adjustment != 1.0:
            from sovits.inference.loudness import match_loudness_envelope

            audio = match_loudness_envelope(
                padded, audio, rate, options.loudness_envelope_adjustment
            )
        audio = audio[pad : audio.shape[0] - pad]
        return _center_fit(audio, length)
