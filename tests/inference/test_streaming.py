"""Streaming conversion: decoder margin, streaming vs offline, joins, odd blocks, the gate.

Models are the fixture synthesizers (random weights) with the download-free `spectral`
content encoder. A random decoder's output has no clear pitch, so the checks of pitch
and of closeness to offline conversion also use a "pitch-faithful" copy whose decoder
passes the harmonic excitation straight to the output (all layers zeroed but the
source, the last excitation convolution and a one-tap conv_post): its output follows
the f0 the pipeline gives it, and depends on nothing random but the source noise.

Tolerances (stated here, measured on this fixture with margin):
* decoder margin: rendering from the margin equals rendering the whole window within
  `tests.tolerance.AUDIO`; so does running the flow from its margin (`flow_margin_frames`);
* streaming vs offline, pitch-faithful model: mean log-mel distance <= 1.0 dB over
  mel frames away from joins, F0 within 25 cents of the input's + transpose;
* streaming vs offline, random model: the log-mel distance away from joins is within
  2x the distance between two offline conversions that differ only by their seed
  (measured: 1.5 dB vs 1.0 dB).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sovits.errors import InputError
from sovits.inference.converter import Converter
from sovits.inference.gate import GateSettings, SingingGate
from sovits.inference.options import ConvertOptions
from sovits.inference.pitch import shifted_frames
from sovits.inference.stream_quality import (
    f0_cents_error,
    frames_away_from,
    join_discontinuities,
    log_mel_distance,
)
from sovits.inference.streaming import (
    LOW_LATENCY,
    StreamingConverter,
    StreamSettings,
    stream_wave,
)
from sovits.inference.synthesis import (
    decode_frames,
    decoder_margin_frames,
    flow_margin_frames,
    prior_latents,
)
from sovits.models.noise import NoiseSource
from tests.conftest import SOVITS41
from tests.inference.test_converter import spectral_config
from tests.tolerance import AUDIO, assert_close

RATE = 44100
HOP = 512
MODEL = SOVITS41 / "variants" / "a_default" / "G_0_release.pth"


def sung(seconds: float, *, base: float = 220.0, steps: tuple[int, ...] = (0, 2, 4, 5),
         note_seconds: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """A sung-like melody (5 harmonics, 5 Hz vibrato): (wave float32 [N], f0 Hz [N])."""
    times = np.arange(int(seconds * RATE)) / RATE
    semitones = np.asarray(steps)[(times // note_seconds).astype(int) % len(steps)]
    f0 = base * 2 ** (semitones / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * times))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    wave = sum(0.18 / k * np.sin(k * phase) for k in range(1, 6))
    return np.asarray(wave, np.float32), f0


def _zero(module: torch.nn.Module) -> None:
    for name in ("weight", "weight_g", "bias"):
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor):
            value.zero_()


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spectral_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def converter(config_path: Path) -> Converter:
    return Converter(MODEL, config_path, device="cpu")


@pytest.fixture(scope="module")
def faithful(config_path: Path) -> Converter:
    """The fixture model with a decoder that outputs tanh(relu-ish(excitation))."""
    converter = Converter(MODEL, config_path, device="cpu")
    decoder = converter.synthesizer.dec  # type: ignore[union-attr]
    keep = {id(decoder.m_source.l_linear), id(decoder.noise_convs[-1]), id(decoder.conv_post)}
    with torch.no_grad():
        for module in decoder.modules():
            if id(module) not in keep and module is not decoder.m_source:
                _zero(module)
        post = decoder.conv_post
        _zero(post)
        post.weight[0, :, post.kernel_size[0] // 2] = 1.0
        post.bias.zero_()
    return converter


def options(**kw: object) -> ConvertOptions:
    values: dict[str, object] = {"speaker": "spk_a", "f0_method": "pm", "noise_scale": 0.0}
    values.update(kw)
    return ConvertOptions(**values)  # type: ignore[arg-type]


def away_from_joins(streamer: StreamingConverter, length: int) -> np.ndarray:
    joins = [join - streamer.delay_samples for join in streamer.stats.joins]
    return frames_away_from(joins, length, streamer.fade + streamer.search)


# ------------------------------------------------------------------ decoder margin


@pytest.mark.parametrize("variant", ["a_default", "e_snake", "f_resblock2_nof0pred"])
def test_decoding_from_the_margin_equals_decoding_the_whole_window(
    variant: str, tmp_path: Path
) -> None:
    from sovits.checkpoints import load_synthesizer

    folder = SOVITS41 / "variants" / variant
    synthesizer, _ = load_synthesizer(next(folder.glob("G_*.pth")), folder / "config.json")
    decoder = synthesizer.dec
    margin = decoder_margin_frames(decoder)
    hop = decoder.upsample_factor
    frames, start = margin + 12, margin + 6
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1, decoder.conv_pre.in_channels, frames, generator=generator)
    f0 = torch.linspace(180.0, 260.0, frames)[None]
    g = (
        torch.randn(1, decoder.cond.in_channels, 1, generator=generator)
        if decoder.cond is not None else None
    )
    with torch.inference_mode():
        excitation = decoder.excitation(f0, NoiseSource(seed=1))
        whole = decoder.decode(z, excitation, g)[0, 0, start * hop :]
        assert g is not None
        part = decode_frames(
            decoder, z, excitation[:, :, (start - margin) * hop :], g, start=start, margin=margin
        )
        short = decode_frames(
            decoder, z, excitation[:, :, (start - 1) * hop :], g, start=start, margin=1
        )
    assert_close(part, whole, AUDIO, what=f"{variant}: decoded from the margin ({margin})")
    # The margin is needed: one frame of margin changes the output.
    assert float((short - whole).abs().max()) > 100 * AUDIO.atol


# ------------------------------------------------------------------ flow margin


@pytest.mark.parametrize("variant", ["a_default", "c_dsconv_share", "d_transformer_flow"])
@pytest.mark.parametrize("mix", [False, True])
def test_flow_from_its_margin_equals_the_whole_window(variant: str, mix: bool) -> None:
    from sovits.checkpoints import load_synthesizer

    folder = SOVITS41 / "variants" / variant
    synthesizer, config = load_synthesizer(next(folder.glob("G_*.pth")), folder / "config.json")
    margin = flow_margin_frames(synthesizer.flow)
    if variant == "d_transformer_flow":
        assert margin is None  # attention: the flow needs the whole window
        return
    assert margin is not None and margin > 0
    frames, start = margin + 20, margin + 8
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(1, config.model.ssl_dim, frames, generator=generator)
    pitch = shifted_frames(
        np.linspace(180.0, 260.0, frames), np.ones(frames, bool), 0.0, torch.device("cpu")
    )
    n_speakers = config.model.n_speakers
    speaker = (
        torch.softmax(torch.randn(frames, n_speakers, generator=generator), 1)
        if mix else torch.tensor([[1]])
    )
    volume = torch.rand(1, frames, generator=generator) if config.model.vol_embedding else None
    noise = torch.randn(1, synthesizer.inter_channels, frames, generator=generator)

    def latents(flow_from: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return prior_latents(
                synthesizer, content, pitch, speaker=speaker, volume=volume,
                noise_scale=0.5, prior_noise=noise, flow_from=flow_from,
            )

    whole, _ = latents(0)
    part, g_part = latents(start - margin)
    assert part.shape[-1] == frames - start + margin
    assert_close(part[:, :, margin:], whole[:, :, start:], AUDIO, what=f"{variant}: flow z")
    assert g_part.shape[-1] == (frames - start + margin if mix else 1)
    # The margin is needed: a flow started one frame before `start` changes frame `start`.
    short, _ = latents(start - 1)
    assert float((short[:, :, 1] - whole[:, :, start]).abs().max()) > 100 * AUDIO.atol


def test_streaming_with_the_flow_margin_equals_the_whole_window_flow(
    converter: Converter,
) -> None:
    wave, _ = sung(1.5)
    settings = StreamSettings(block_seconds=0.1, gate=None)
    cropped = StreamingConverter(converter, options(noise_scale=0.4), settings)
    assert cropped.flow_margin is not None and cropped.flow_margin < cropped.context_frames
    whole = StreamingConverter(converter, options(noise_scale=0.4), settings)
    whole.flow_margin = None  # the flow over the whole window, as before the margin
    assert_close(
        stream_wave(cropped, wave), stream_wave(whole, wave), AUDIO, what="streamed audio"
    )


# ------------------------------------------------------------------ streaming vs offline


def test_streaming_follows_offline_and_the_input_pitch(faithful: Converter) -> None:
    wave, f0 = sung(3.0)
    transpose = 3
    chosen = options(transpose=transpose)
    offline = faithful.convert(wave, RATE, options=chosen)
    streamer = StreamingConverter(faithful, chosen, StreamSettings(block_seconds=0.25, gate=None))
    streamed = stream_wave(streamer, wave)
    assert streamed.shape == wave.shape
    mask = away_from_joins(streamer, wave.shape[0])
    mask[: 2 * RATE // HOP // 4] = False  # the first half second: the stream starting up
    assert mask.sum() > 100
    distance = log_mel_distance(streamed, offline, RATE, frames=mask)
    assert distance <= 1.0, f"streaming vs offline: {distance:.2f} dB"
    assert log_mel_distance(wave, offline, RATE, frames=mask) > 5 * distance  # not the input
    expected = f0[::HOP] * 2 ** (transpose / 12)
    start = RATE // 2
    assert f0_cents_error(streamed[start:], RATE, expected[start // HOP :], HOP) < 25
    assert f0_cents_error(offline[start:], RATE, expected[start // HOP :], HOP) < 25


def test_streaming_a_random_model_is_as_close_to_offline_as_another_seed(
    converter: Converter,
) -> None:
    wave, _ = sung(3.0)
    chosen = options()
    offline = converter.convert(wave, RATE, options=chosen)
    other_seed = converter.convert(wave, RATE, options=options(seed=7))
    streamer = StreamingConverter(
        converter, chosen, StreamSettings(block_seconds=0.5, context_seconds=3.0, gate=None)
    )
    streamed = stream_wave(streamer, wave)
    mask = away_from_joins(streamer, wave.shape[0])
    distance = log_mel_distance(streamed, offline, RATE, frames=mask)
    baseline = log_mel_distance(other_seed, offline, RATE, frames=mask)
    assert distance <= 2.0 * baseline, f"{distance:.2f} dB vs seeds {baseline:.2f} dB"


def test_joins_have_no_discontinuities(converter: Converter) -> None:
    block = 0.0371  # not a whole number of frames
    wave, _ = sung(1.2)
    streamer = StreamingConverter(converter, options(), StreamSettings(block_seconds=block))
    streamed = stream_wave(streamer, wave)
    joins = [join - streamer.delay_samples for join in streamer.stats.joins]
    assert len(joins) > 10
    assert join_discontinuities(streamed, joins) == 0
    assert np.abs(streamed).max() > 0.05


def test_block_sizes_that_do_not_divide_the_hop(faithful: Converter) -> None:
    wave, _ = sung(1.2)
    cheap = StreamSettings(context_seconds=0.2, decoder_margin=4, gate=None)  # faster
    reference_streamer = StreamingConverter(
        faithful, options(), replace(cheap, block_seconds=4 * HOP / RATE)
    )
    reference = stream_wave(reference_streamer, wave)
    for block in (700,):
        streamer = StreamingConverter(
            faithful, options(), replace(cheap, block_seconds=block / RATE)
        )
        assert streamer.fifo_samples == HOP - math.gcd(block, HOP)
        streamed = stream_wave(streamer, wave, block_samples=block)
        assert streamed.shape == wave.shape
        assert streamer.stats.underruns == 0
        start = RATE // 2 // HOP  # from half a second on: joins included
        mask = np.arange(wave.shape[0] // HOP) >= start
        assert log_mel_distance(streamed, reference, RATE, frames=mask) < 1.0
    # Blocks of changing size: the output keeps step with the input.
    streamer = StreamingConverter(faithful, options(), cheap)
    sizes = np.random.default_rng(0).integers(100, 3000, size=12)
    total = 0
    for size in sizes:
        out = streamer.process(wave[total : total + size])
        assert out.shape[0] == min(size, wave.shape[0] - total)
        total += size


def test_latency_of_the_low_latency_setting(converter: Converter) -> None:
    streamer = StreamingConverter(converter, options(f0_method="fcpe"), LOW_LATENCY)
    assert streamer.algorithmic_latency_ms <= 100.0
    assert streamer.delay_samples == streamer.fifo_samples + streamer.fade + streamer.search


# ------------------------------------------------------------------ the gate


def test_gate_keeps_a_held_note_that_the_vad_drops_and_closes_on_silence(
    converter: Converter,
) -> None:
    from sovits.features.pitch.registry import create_pitch_extractor

    silence = np.zeros(RATE, np.float32)
    note, _ = sung(10.0, steps=(0,), note_seconds=10.0)
    wave = np.concatenate([silence, note, silence, silence])
    gate = SingingGate(RATE, HOP, GateSettings(hangover_seconds=0.5))
    pitch = create_pitch_extractor("pm")
    for begin in range(0, wave.shape[0], 4410):
        gate.push(wave[begin : begin + 4410])
    frames = gate.frames_seen
    voiced = pitch.extract(wave, RATE, HOP, n_frames=frames).voiced
    for end in range(0, frames, 9):  # decided block by block, as a stream does
        gate.decide(min(frames, end + 9), voiced[gate.frames_decided : min(frames, end + 9)])
    gains = gate.gain(0, frames)
    first, last = RATE // HOP + 1, (11 * RATE) // HOP - 1
    assert gains[first:last].min() == 1.0, "the held note was cut"
    assert gains[: RATE // HOP - 1].max() == 0.0
    assert gains[(12 * RATE) // HOP :].max() == 0.0, "silence after the hangover stays closed"
    # The VAD alone judges most of the note not speech.
    speech = np.asarray(gate._vad_frames[first:last]) > 0.5
    assert speech.mean() < 0.5


def test_silent_input_gives_exact_silence_and_sound_gives_sound(converter: Converter) -> None:
    note, _ = sung(1.5, steps=(0,), note_seconds=2.0)
    silence = np.zeros(RATE, np.float32)
    hiss = 0.0005 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    wave = np.concatenate([silence, note, silence, hiss])
    streamer = StreamingConverter(converter, options(), StreamSettings(block_seconds=0.1))
    streamed = stream_wave(streamer, wave)
    assert np.all(streamed[: RATE - HOP] == 0.0)
    assert np.abs(streamed[RATE + RATE // 4 : RATE + RATE]).max() > 0.05
    hangover_end = int(2.5 * RATE + 0.5 * RATE) + 2 * HOP
    assert np.all(streamed[hangover_end:] == 0.0), "quiet room noise stays silent"


# ------------------------------------------------------------------ options


def test_offline_only_options_are_refused(converter: Converter) -> None:
    with pytest.raises(InputError, match="enhancer"):
        StreamingConverter(converter, options(enhance=True))
    with pytest.raises(InputError, match="speaker"):
        StreamingConverter(converter, options(), speaker_weights={"nobody": 1.0})


def test_a_fixed_speaker_mix(converter: Converter) -> None:
    wave, _ = sung(1.0)
    mixed = StreamingConverter(
        converter, options(), StreamSettings(gate=None),
        speaker_weights={"spk_a": 0.5, "spk_b": 0.5},
    )
    single = StreamingConverter(converter, options(), StreamSettings(gate=None))
    first, second = stream_wave(mixed, wave), stream_wave(single, wave)
    assert first.shape == second.shape and not np.allclose(first, second)


def test_cluster_blending_reaches_the_synthesizer_live(
    converter: Converter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sovits.inference import streaming
    from sovits.retrieval.kmeans import ClusterModel, write_cluster_model

    rng = np.random.default_rng(0)
    centres = {name: rng.normal(size=(4, 64)).astype(np.float32) for name in ("spk_a", "spk_b")}
    path = tmp_path / "kmeans.safetensors"
    write_cluster_model(ClusterModel(centres), path)
    seen: list[torch.Tensor] = []
    prior = streaming.prior_latents

    def spy(synthesizer: Any, content: torch.Tensor, *args: Any, **kw: Any) -> Any:
        seen.append(content.clone())
        return prior(synthesizer, content, *args, **kw)

    monkeypatch.setattr(streaming, "prior_latents", spy)
    wave, _ = sung(0.5)
    chosen = options(cluster_model_path=path, cluster_ratio=1.0)
    stream_wave(StreamingConverter(converter, chosen, StreamSettings(gate=None)), wave)
    units = seen[-1][0].T.numpy()  # every frame one of spk_a's centres
    distances = np.abs(units[:, None, :] - centres["spk_a"][None]).max(axis=2)
    assert distances.min(axis=1).max() < 1e-5


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
