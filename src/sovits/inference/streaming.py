"""Live conversion: a streaming converter over the offline converter's stages.

`StreamingConverter.process` takes blocks of input audio at the model's rate and
returns as many samples of converted audio, `delay_samples` later: sample i of the
output is the conversion of input sample i - delay_samples (to within the SOLA search
range, see below). It drives the stages of `sovits.inference` (units, pitch, timbre,
synthesis, post) over a sliding window; no step has a second implementation here.

Per block, with hop = the model's frame and F the complete input frames so far:

1. The gate (`sovits.inference.gate.SingingGate`) measures the new input (RMS,
   silero-vad). Frames are rendered once F - lookahead frames are complete; a block
   that ends inside a frame leaves that frame for the next one, so block sizes that
   do not divide the hop work (an output FIFO of hop - gcd(block, hop) samples evens
   the frame steps out).
2. Pitch is extracted only over the new frames plus `f0_context_seconds` before them;
   older frames keep the values they were given (per-frame cache). The gate then
   decides the new frames with the pitch's voicing; a closed gate skips the model.
3. Content units over the window: `context_seconds` of left context before the
   decoded frames, up to the newest input; then timbre blending (-cr).
4. The prior encoder runs over the window (its attention sees the whole window); the
   flow (convolutions only) from its receptive field (`flow_margin_frames`) before the
   decoded frames: equal to running it over the whole window. The prior noise of each
   frame is drawn once and kept, so a frame's noise does not change from block to
   block.
5. The decoder renders only the new audio (the block, plus the crossfade and search
   range) and its receptive-field margin on the left (`decoder_margin_frames`, from
   the model's kernel sizes, dilations and upsampling rates): equal to decoding the
   whole window. Its harmonic source is the decoder's own, with the phase of every
   harmonic carried from block to block.
6. Post: the loudness envelope (-lea) and the gate's gains; then SOLA: the new audio is
   shifted by up to `search_seconds` to best continue the tail kept from the previous
   block and crossfaded over `crossfade_seconds` (raised cosine).

Delay (samples at the model rate): FIFO (hop - gcd(block, hop), plus the lookahead
frames) + crossfade + search. The algorithmic latency of a live setup adds the block
itself (a device delivers a block only once it is full): `algorithmic_latency_ms`.
`LOW_LATENCY` reaches <= 100 ms with the 44.1 kHz / hop-512 models.

Live conversion renders with the so-vits synthesizer (PyTorch): shallow diffusion, the
enhancer, f0 files, automatic f0 prediction, ONNX models and speaker-mix tracks are
offline-only; a fixed speaker mix is given as `speaker_weights`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sovits.errors import InputError
from sovits.inference.gate import GateSettings, SingingGate
from sovits.inference.live_settings import LiveSettings
from sovits.inference.options import ConvertOptions
from sovits.inference.pitch import shifted_frames
from sovits.inference.post import adjust_loudness, sola_join, sola_offset
from sovits.inference.synthesis import (
    decode_frames,
    decoder_margin_frames,
    flow_margin_frames,
    prior_latents,
    volume_frames,
)
from sovits.models.noise import NoiseSource

if TYPE_CHECKING:
    from sovits.inference.converter import Converter
    from sovits.models.synthesizer import Synthesizer
    from sovits.models.vocoder import NsfHifiganGenerator

__all__ = [
    "LOW_LATENCY",
    "LiveSettings",
    "StreamSettings",
    "StreamStats",
    "StreamingConverter",
    "stream_wave",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    """How a stream is cut and joined. Times in seconds.

    block_seconds: the block a device delivers (sets the FIFO and the stated latency;
        `process` takes blocks of any size). context_seconds: left context of the
        content units and the prior encoder before the decoded frames.
        f0_context_seconds: left context of each pitch extraction. crossfade_seconds:
        SOLA crossfade at each join. search_seconds: SOLA search range.
        lookahead_seconds: right context held back before frames are rendered (adds
        to the latency; 0 renders up to the newest input). decoder_margin: decoder
        left margin in frames; None: the model's receptive field (exact); smaller
        values trade exactness for speed. gate: the singing-safe gate; None: off.
    """

    block_seconds: float = 0.1
    context_seconds: float = 1.0
    f0_context_seconds: float = 0.3
    crossfade_seconds: float = 0.02
    search_seconds: float = 0.01
    lookahead_seconds: float = 0.0
    decoder_margin: int | None = None
    gate: GateSettings | None = field(default_factory=GateSettings)

    def __post_init__(self) -> None:
        checks = {
            "block_seconds": (self.block_seconds, 0.005, 5.0),
            "context_seconds": (self.context_seconds, 0.0, 30.0),
            "f0_context_seconds": (self.f0_context_seconds, 0.0, 10.0),
            "crossfade_seconds": (self.crossfade_seconds, 0.0, 1.0),
            "search_seconds": (self.search_seconds, 0.0, 1.0),
            "lookahead_seconds": (self.lookahead_seconds, 0.0, 2.0),
        }
        for name, (value, low, high) in checks.items():
            if not math.isfinite(value) or not low <= value <= high:
                raise InputError(f"{name} must be within {low:g}..{high:g} s, got {value}")
        if self.decoder_margin is not None and self.decoder_margin < 0:
            raise InputError(f"decoder_margin must be >= 0 frames, got {self.decoder_margin}")


LOW_LATENCY = StreamSettings(
    block_seconds=0.05, context_seconds=0.5, crossfade_seconds=0.01, search_seconds=0.005
)
"""The low-latency setting: 50 ms blocks, 10 ms crossfade, 5 ms search (<= 100 ms
algorithmic latency for hops up to 20 ms)."""


@dataclass
class StreamStats:
    """Compute time of each `process` call, seconds, and the audio it covered."""

    compute_seconds: list[float] = field(default_factory=list)
    audio_seconds: float = 0.0
    underruns: int = 0
    """Calls whose output the renderer could not fill in time (zeros were returned)."""
    joins: list[int] = field(default_factory=list)
    """Output sample indices where each rendered piece begins (its SOLA crossfade)."""

    def summary(self) -> dict[str, float]:
        """blocks, compute_ms_mean / p95 / max, rtf (compute time / audio time)."""
        times = np.asarray(self.compute_seconds, np.float64) * 1000.0
        total = float(times.sum()) / 1000.0
        return {
            "blocks": float(times.shape[0]),
            "compute_ms_mean": float(times.mean()) if times.size else 0.0,
            "compute_ms_p95": float(np.percentile(times, 95)) if times.size else 0.0,
            "compute_ms_max": float(times.max()) if times.size else 0.0,
            "rtf": total / self.audio_seconds if self.audio_seconds > 0 else 0.0,
            "underruns": float(self.underruns),
        }


class _FrameStore:
    """Rows per absolute frame index ([frames, width] float arrays), oldest dropped."""

    def __init__(self, width: int, dtype: Any = np.float32):
        self.offset = 0
        self.data = np.zeros((0, width), dtype)

    @property
    def end(self) -> int:
        return self.offset + self.data.shape[0]

    def grow(self, end: int) -> None:
        if end > self.end:
            extra = np.zeros((end - self.end, self.data.shape[1]), self.data.dtype)
            self.data = np.concatenate([self.data, extra])

    def put(self, start: int, rows: np.ndarray) -> None:
        self.grow(start + rows.shape[0])
        self.data[start - self.offset : start - self.offset + rows.shape[0]] = rows

    def get(self, start: int, end: int) -> np.ndarray:
        self.grow(end)
        return self.data[start - self.offset : end - self.offset]

    def drop_before(self, frame: int) -> None:
        if frame > self.offset:
            cut = min(frame - self.offset, self.data.shape[0])
            self.data = self.data[cut:]
            self.offset += cut


def _check_live_options(converter: Converter, options: ConvertOptions) -> None:
    """Reject what live conversion does not do, with the reason."""
    from sovits.models.synthesizer import Synthesizer

    offline_only = {
        "shallow or only diffusion (-shd / -od)": options.uses_diffusion,
        "the enhancer (-eh)": options.enhance,
        "an f0 file (--f0-file)": options.f0_file is not None,
        "automatic f0 prediction (-a)": options.auto_predict_f0,
        "a speaker-mix track (-usm)": options.use_speaker_mix,
    }
    for what, used in offline_only.items():
        if used:
            raise InputError(
                f"live conversion does not support {what}",
                hint="convert the file offline with `sovits infer`; a fixed speaker mix is "
                "given live with --speaker-weights",
            )
    if not isinstance(converter.synthesizer, Synthesizer):
        raise InputError(
            "live conversion needs a PyTorch so-vits model (.pth), not an ONNX or "
            "diffusion-only one"
        )


class StreamingConverter:
    """Converts a live stream block by block with a `Converter`'s model and stages.

    options: the conversion options (speaker, transpose, f0 method, cluster ratio,
    noise scale, loudness envelope, seed, ...); settings: blocks, context, joins, gate;
    speaker_weights: a fixed mix {speaker name: weight} instead of options.speaker.
    """

    def __init__(
        self,
        converter: Converter,
        options: ConvertOptions,
        settings: StreamSettings | None = None,
        *,
        speaker_weights: Mapping[str, float] | None = None,
    ):
        from sovits.inference.memory import (
            REUSE_CACHE_CAPACITY,
            bound_onednn_primitive_cache,
        )

        # Every block has one length: keep its convolutions' primitives (inference.memory).
        bound_onednn_primitive_cache(REUSE_CACHE_CAPACITY)
        _check_live_options(converter, options)
        converter._prepare(options)  # speaker, cluster model, precision: checked and loaded
        self.converter = converter
        self.options = options
        self.settings = settings if settings is not None else StreamSettings()
        synthesizer = converter.synthesizer
        assert synthesizer is not None
        self._synthesizer: Synthesizer = synthesizer  # type: ignore[assignment]
        self._decoder: NsfHifiganGenerator = self._synthesizer.dec
        rate, hop = converter.sample_rate, converter.hop_length
        self.sample_rate, self.hop = rate, hop
        settings = self.settings
        self.block_samples = max(1, round(settings.block_seconds * rate))
        self.fade = round(settings.crossfade_seconds * rate)
        self.search = round(settings.search_seconds * rate)
        self.lookahead_frames = math.ceil(settings.lookahead_seconds * rate / hop)
        self.margin = (
            decoder_margin_frames(self._decoder)
            if settings.decoder_margin is None
            else settings.decoder_margin
        )
        self.flow_margin = flow_margin_frames(self._synthesizer.flow)
        """Frames the flow runs before the decoded ones (None: over the whole window)."""
        self.context_frames = math.ceil(settings.context_seconds * rate / hop)
        self.f0_context_frames = math.ceil(settings.f0_context_seconds * rate / hop)
        # Frames of a block (at most), and the spans the models see each block. Spans of
        # a fixed length keep the tensor shapes the same from block to block, so oneDNN /
        # cuDNN reuse their kernels instead of planning new ones for every new length.
        block_frames = math.ceil(self.block_samples / hop) + 1
        join_frames = math.ceil((self.fade + self.search) / hop) + 1
        self._decode_span = block_frames + join_frames + self.margin + self.lookahead_frames
        self._f0_span = block_frames + self.f0_context_frames + self.lookahead_frames
        self.fifo_samples = hop - math.gcd(self.block_samples, hop) + self.lookahead_frames * hop
        self.delay_samples = self.fifo_samples + self.fade + self.search
        """Output sample i converts input sample i - delay_samples (SOLA may take it up
        to `search` samples closer)."""
        self._speaker = self._speaker_input(speaker_weights)
        if options.cluster_ratio != 0:
            converter.timbre.model(options)  # fail now, not in the first block
        self._extractor = converter.pitch.extractor_for(options)
        weights = np.sin(np.linspace(0.0, 0.5 * np.pi, self.fade + 2)[1:-1]) ** 2
        self._fade_in = weights.astype(np.float32)
        self.stats = StreamStats()
        self.reset()

    # ------------------------------------------------------------------ public

    @property
    def algorithmic_latency_samples(self) -> int:
        """Block + delay: from a sample entering the device to its conversion leaving."""
        return self.block_samples + self.delay_samples

    @property
    def algorithmic_latency_ms(self) -> float:
        return 1000.0 * self.algorithmic_latency_samples / self.sample_rate

    def reset(self) -> None:
        """Start a new stream (the models stay loaded)."""
        device = self.converter.device
        self._noise = NoiseSource.from_seed(self.options.seed, device)
        self._input = np.zeros(0, np.float32)
        self._input_offset = 0  # absolute index of self._input[0]
        self._total = 0
        self._frames_done = 0
        self._pushed = 0  # samples of rendered audio put into the FIFO
        self._f0 = _FrameStore(2)  # (f0 Hz, voiced)
        inter = int(self._synthesizer.inter_channels)
        self._prior = _FrameStore(inter)
        self._prior_drawn = 0
        dim = int(self._decoder.m_source.sine_generator.dim)
        self._phase = _FrameStore(dim, np.float64)
        self._phase_known = 0  # phases are known for frames below this
        self._tail = np.zeros(self.fade, np.float32)
        self._fifo = np.zeros(self.fifo_samples, np.float32)
        self._gate = (
            SingingGate(self.sample_rate, self.hop, self.settings.gate)
            if self.settings.gate is not None
            else None
        )
        self.stats = StreamStats()

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed float32 [n] samples at the model's rate; returns float32 [n] samples of
        converted audio (`delay_samples` behind the input)."""
        samples = np.asarray(block, dtype=np.float32).reshape(-1)
        if not np.all(np.isfinite(samples)):
            raise InputError("the live input contains NaN or infinite samples")
        began = time.perf_counter()
        self._input = np.concatenate([self._input, samples])
        self._total += samples.shape[0]
        if self._gate is not None:
            self._gate.push(samples)
        self._render_available()
        count = samples.shape[0]
        if self._fifo.shape[0] < count:
            self.stats.underruns += 1
            self._fifo = np.concatenate(
                [self._fifo, np.zeros(count - self._fifo.shape[0], np.float32)]
            )
        out, self._fifo = self._fifo[:count], self._fifo[count:]
        self.stats.compute_seconds.append(time.perf_counter() - began)
        self.stats.audio_seconds += count / self.sample_rate
        return out

    # ------------------------------------------------------------------ internals

    def _speaker_input(self, weights: Mapping[str, float] | None) -> int | np.ndarray:
        """The speaker id, or a mixing-weight row [n_speakers] that sums to 1."""
        config = self.converter.config
        if weights is None:
            return config.speaker_id(self.options.speaker)
        row = np.zeros(config.model.n_speakers, np.float32)
        for name, weight in weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise InputError(f"speaker weight of {name!r} must be >= 0, got {weight}")
            row[config.speaker_id(name)] += weight
        if row.sum() <= 0:
            raise InputError("the speaker weights add up to zero")
        return row / row.sum()

    def _render_available(self) -> None:
        hop = self.hop
        available = self._total // hop
        target = available - self.lookahead_frames
        new = target - self._frames_done
        if new <= 0:
            return
        seg_start = self._frames_done * hop - self.fade - self.search
        seg_len = new * hop + self.fade + self.search
        first_decoded = max(0, seg_start // hop)
        segment = self._render(first_decoded, available, target, seg_start, seg_len)
        shift = sola_offset(self._tail, segment, self.search)
        joined = sola_join(self._tail, segment[shift:], self._fade_in)
        count = new * hop
        self.stats.joins.append(self._pushed + self.fifo_samples)
        self._pushed += count
        self._fifo = np.concatenate([self._fifo, joined[:count]])
        self._tail = joined[count : count + self.fade].copy()
        self._frames_done = target
        self._forget()

    def _wave(self, start: int, end: int) -> np.ndarray:
        """Input samples [start, end) (absolute indices; all still held)."""
        return self._input[start - self._input_offset : end - self._input_offset]

    def _render(
        self, first: int, available: int, target: int, seg_start: int, seg_len: int
    ) -> np.ndarray:
        """Audio float32 [seg_len] for samples [seg_start, seg_start + seg_len) =
        (.., target * hop], rendered from frames [first, available)."""
        hop = self.hop
        gate = self._gate
        silent = np.zeros(seg_len, np.float32)
        if gate is not None and not gate.loud(self._frames_done, target):
            gate.decide(target, None)
            return silent
        f0_start = max(
            0, min(self._frames_done - self.f0_context_frames, available - self._f0_span)
        )
        track = self._extractor.extract(
            self._wave(f0_start * hop, available * hop), self.sample_rate, hop,
            n_frames=available - f0_start,
        )
        self._f0.put(f0_start, np.stack([track.f0, track.voiced.astype(np.float32)], 1))
        if gate is not None:
            done = self._frames_done
            gate.decide(target, track.voiced[done - f0_start : target - f0_start])
            if not gate.gain(first, target).any():
                return silent
        decode_from = max(0, min(first - self.margin, available - self._decode_span))
        window = max(0, decode_from - self.context_frames)
        wave = self._wave(window * hop, available * hop)
        frames = available - window
        if not self.converter.units.long_enough(wave):
            return silent
        audio = self._synthesize(wave, window, decode_from, first, frames)
        if self.options.loudness_envelope_adjustment != 1.0:
            audio = adjust_loudness(
                self._wave(first * hop, available * hop), audio, self.sample_rate, self.options
            )
        segment = silent
        offset = seg_start - first * hop  # where the segment starts in `audio`
        low, high = max(0, -offset), min(seg_len, audio.shape[0] - offset)
        segment[low:high] = audio[offset + low : offset + high]
        if gate is not None:
            segment *= gate.sample_gains(first, target, seg_start, seg_len)
        return segment

    def _synthesize(
        self, wave: np.ndarray, window: int, decode_from: int, first: int, frames: int
    ) -> np.ndarray:
        """Audio of frames [first, window + frames) from the window's input `wave`."""
        converter, options = self.converter, self.options
        device = converter.device
        end = window + frames
        from sovits.models.synthesizer import lower_precision

        dtype = self._synthesizer.pre.weight.dtype  # a model cast to bf16 / fp16 (-precision)
        with torch.inference_mode(), lower_precision(dtype, device):
            content = converter.timbre.blend(converter.units.encode(wave, frames), options)
            content = content.to(dtype)
            pitch_rows = self._f0.get(window, end)
            pitch = shifted_frames(
                pitch_rows[:, 0], pitch_rows[:, 1] > 0.5, options.transpose, device
            )
            volume = None
            if converter.config.model.vol_embedding:
                volume = volume_frames(wave, self.hop, frames, device).to(dtype)
            if isinstance(self._speaker, np.ndarray):
                speaker = torch.from_numpy(np.tile(self._speaker, (frames, 1))).to(device)
            else:
                speaker = torch.tensor([[self._speaker]], dtype=torch.long, device=device)
            flow_from = 0 if self.flow_margin is None else max(
                0, decode_from - window - self.flow_margin
            )
            z, g = prior_latents(
                self._synthesizer, content, pitch, speaker=speaker, volume=volume,
                noise_scale=options.noise_scale, prior_noise=self._prior_noise(window, end),
                flow_from=flow_from,
            )
            f0 = pitch.f0[:, decode_from - window :]
            excitation = self._excitation(f0, decode_from).to(dtype)
            audio = decode_frames(
                self._decoder, z, excitation, g,
                start=first - window - flow_from, margin=first - decode_from,
            )
        return audio.to(torch.float32).cpu().numpy()

    def _prior_noise(self, start: int, end: int) -> torch.Tensor:
        """The prior's standard-normal draw of frames [start, end): [1, inter, T]."""
        if end > self._prior_drawn:
            width = self._prior.data.shape[1]
            like = torch.empty((), dtype=torch.float32, device=self.converter.device)
            draw = self._noise.normal((1, width, end - self._prior_drawn), like=like)
            self._prior.put(self._prior_drawn, draw[0].T.cpu().numpy())
            self._prior_drawn = end
        rows = self._prior.get(start, end)
        return torch.from_numpy(np.ascontiguousarray(rows.T))[None].to(self.converter.device)

    def _excitation(self, f0: torch.Tensor, first: int) -> torch.Tensor:
        """The decoder's harmonic excitation [1, 1, T * hop] of frames first.. (f0 [1, T]
        Hz), each harmonic's phase continuing from the last render of frame `first`."""
        source = self._decoder.m_source
        sine = source.sine_generator
        hop = self._decoder.upsample_factor
        device = f0.device
        if first < self._phase_known:
            phase0 = torch.from_numpy(self._phase.get(first, first + 1)[0].copy()).to(device)
        else:  # a fresh start: random harmonic phases, the fundamental's at zero
            like = torch.empty((), dtype=torch.float32, device=device)
            phase0 = self._noise.uniform((sine.dim,), like=like).to(torch.float64)
            phase0[0] = 0
        per_sample = torch.repeat_interleave(f0.to(torch.float32), hop, dim=1)[..., None]
        increment = (sine._harmonics(per_sample) / sine.sampling_rate) % 1  # [1, N, dim]
        running = torch.cumsum(increment.to(torch.float64), dim=1) + phase0
        sines = torch.sin(2 * math.pi * (running % 1)).to(torch.float32) * sine.sine_amplitude
        voiced = (per_sample > sine.voiced_threshold).to(torch.float32)
        noisy = sine._add_noise(sines, voiced, self._noise)
        excitation = torch.tanh(source.l_linear(noisy.to(source.l_linear.weight.dtype)))
        starts = torch.cat([phase0[None], running[0, hop - 1 :: hop]]) % 1  # [T + 1, dim]
        self._phase.put(first, starts.cpu().numpy())
        self._phase_known = first + starts.shape[0]
        return excitation.transpose(1, 2)

    def _forget(self) -> None:
        """Drop input and per-frame state no later block can reach."""
        next_first = max(0, (self._frames_done * self.hop - self.fade - self.search) // self.hop)
        available = self._total // self.hop  # later blocks see at least this much
        keep = max(
            0,
            min(
                min(next_first - self.margin, available - self._decode_span)
                - self.context_frames,
                self._frames_done - self.f0_context_frames,
                available - self._f0_span,
            ),
        )
        cut = keep * self.hop - self._input_offset
        if cut > 0:
            self._input = self._input[cut:]
            self._input_offset += cut
        for store in (self._f0, self._prior, self._phase):
            store.drop_before(keep)


def stream_wave(
    streamer: StreamingConverter,
    wave: np.ndarray,
    *,
    block_samples: int | None = None,
    realtime: bool = False,
    on_block: Any = None,
) -> np.ndarray:
    """Feed `wave` (float32 [N] at the model rate) through `streamer` block by block and
    return the output time-aligned with the input: float32 [N], the delay removed.

    block_samples: the block (default: the streamer's); realtime: wait so blocks come
    at the pace a device would deliver them; on_block(index, seconds) is called after
    each block with its compute time.
    """
    samples = np.asarray(wave, np.float32).reshape(-1)
    block = block_samples or streamer.block_samples
    delay = streamer.delay_samples
    padded = np.concatenate([samples, np.zeros(delay, np.float32)])
    pieces = []
    started = time.perf_counter()
    for index, begin in enumerate(range(0, padded.shape[0], block)):
        if realtime:
            due = started + begin / streamer.sample_rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        pieces.append(streamer.process(padded[begin : begin + block]))
        if on_block is not None:
            on_block(index, streamer.stats.compute_seconds[-1])
    out = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return out[delay : delay + samples.shape[0]]
