"""FCPE pitch extraction: the network, its checkpoint loader and the extractor.

FCPE (Fast Context-based Pitch Estimator, CNChTu) reads a 16 kHz log-mel spectrogram
(128 bands, hop 160), runs a small conformer-style encoder and outputs a salience over
360 pitch bins spread evenly in cents between f0_min and f0_max. f0 is the
salience-weighted mean of the cents around the strongest bin.

Two checkpoint layouts load into the same `FcpeModel`:

* so-vits-svc 4.1's `fcpe.pt` (`{'config', 'model'}`; the "FCPE" module tree: `stack`,
  `decoder._layers`, `dense_out`), every layer with Performer-style linear attention;
* torchfcpe's bundled `fcpe_c_v001.pt` (`{'config_dict', 'model', 'global_step'}`; the
  "CFNaiveMelPE" tree: `input_stack`, `net.encoder_layers`, `output_proj`). Its keys are
  renamed onto the first tree. That release is `conv_only` (no attention; the unused
  per-layer LayerNorm stays in the file) and would normalise q/k before the attention
  kernel (`use_fa_norm`).

The module tree is so-vits-svc's, so its files load strictly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.dsp.spectrogram import vocoder_mel
from sovits.errors import CheckpointError, MissingFileError
from sovits.features.pitch.base import PitchTrack, check_extract_arguments, track_from_raw_f0
from sovits.features.pretrained import resolve_weights
from sovits.models.weight_norm import fold_weight_norm, weight_norm

DEFAULT_THRESHOLD = 0.05
"""so-vits-svc's default voicing threshold (cr_threshold) for FCPE."""
BUNDLED_WEIGHTS = "fcpe_c_v001.pt"
"""Registry name of torchfcpe's bundled weights, used when no model is given."""

Decoder = Literal["local_argmax", "argmax"]


@dataclass(frozen=True)
class FcpeMelConfig:
    """FCPE's mel front end (the nvSTFT `get_mel`, `sovits.dsp.spectrogram.vocoder_mel`).

    Rates in Hz, sizes in samples. The band count is the model's input_channels.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    win_size: int = 1024
    hop_size: int = 160
    fmin: float = 0.0
    fmax: float = 8000.0


def force_frame_count(mel: Tensor, input_length: int, hop_size: int) -> Tensor:
    """Force mel [B, T, M] to `input_length // hop_size + 1` frames, as the original does.

    `input_length` is the wave length *before* resampling to the model rate (a quirk
    kept from the original): when the target is longer, one copy of the last frame is
    appended (only one); when shorter, the mel is cropped.
    """
    target = input_length // hop_size + 1
    if target > mel.shape[1]:
        mel = torch.cat((mel, mel[:, -1:, :]), dim=1)
    if target < mel.shape[1]:
        mel = mel[:, :target, :]
    return mel


class _Transpose(nn.Module):
    def __init__(self, first: int, second: int):
        super().__init__()
        self.dims = (first, second)

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(*self.dims)


class _Swish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * x.sigmoid()


class _DepthwiseConv(nn.Module):
    """Depthwise 1-D conv with 'same' zero padding: [B, C, T] -> [B, C, T]."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.padding = (kernel_size // 2, kernel_size // 2 - (kernel_size + 1) % 2)
        self.conv = nn.Conv1d(channels, channels, kernel_size, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, self.padding))


class ConformerConvModule(nn.Module):
    """LayerNorm -> pointwise conv (x4) -> GLU -> depthwise conv (31) -> swish -> pointwise.

    [B, T, C] -> [B, T, C]. Indices in `net` match the original's state-dict keys.
    The pointwise convs (nearly all of FCPE's arithmetic) run as matrix products on the
    [B, T, C] layout: the same sums as kernel-1 convolutions without PyTorch's CPU
    kernel-1 path (im2col copy, transposes), which costs about twice as much on the
    short windows of live conversion (10-40 frames).
    """

    def __init__(self, channels: int, expansion: int = 2, kernel_size: int = 31):
        super().__init__()
        inner = channels * expansion
        self.net = nn.Sequential(
            nn.LayerNorm(channels),
            _Transpose(1, 2),
            nn.Conv1d(channels, inner * 2, 1),
            nn.GLU(dim=1),
            _DepthwiseConv(inner, kernel_size),
            _Swish(),
            nn.Conv1d(inner, channels, 1),
            _Transpose(1, 2),
            nn.Dropout(0.0),
        )

    def forward(self, x: Tensor) -> Tensor:
        norm, depthwise = self.net[0], self.net[4]
        expand, project = cast(nn.Conv1d, self.net[2]), cast(nn.Conv1d, self.net[6])
        x = F.linear(norm(x), expand.weight[:, :, 0], expand.bias)  # [B, T, 2 * inner]
        x = F.glu(x, dim=-1)
        x = depthwise(x.transpose(1, 2)).transpose(1, 2)  # [B, T, inner]
        x = x * x.sigmoid()
        return F.linear(x, project.weight[:, :, 0], project.bias)


def _random_feature_projection(n_features: int, head_dim: int) -> Tensor:
    """Gaussian orthogonal random features [n_features, head_dim] (Performer init).

    Only an initial value: checkpoints carry the projection the network was trained with.
    """
    blocks = []
    for start in range(0, n_features, head_dim):
        q, _ = torch.linalg.qr(torch.randn(head_dim, head_dim))
        blocks.append(q.t()[: n_features - start])
    scale = torch.randn(n_features, head_dim).norm(dim=1)
    return scale[:, None] * torch.cat(blocks)


class FastAttention(nn.Module):
    """Non-causal Performer (FAVOR+) attention with positive softmax-kernel features.

    q, k, v [B, H, T, D] -> [B, H, T, D]. Kept quirk of the original kernel: the key
    features are exp(x·w - |x|^2/2 + 1e-4) (the epsilon sits inside the exp, and no max
    is subtracted), the query features exp(x·w - |x|^2/2 - max) + 1e-4.
    With `normalize_inputs` (torchfcpe's use_fa_norm) q and k are first scaled to unit
    length.
    """

    projection_matrix: Tensor

    def __init__(self, head_dim: int, normalize_inputs: bool = False):
        super().__init__()
        n_features = int(head_dim * math.log(head_dim))
        self.register_buffer("projection_matrix", _random_feature_projection(n_features, head_dim))
        self.normalize_inputs = normalize_inputs

    def _features(self, x: Tensor, is_query: bool) -> Tensor:
        projection = self.projection_matrix
        normalizer = x.shape[-1] ** -0.25
        ratio = projection.shape[0] ** -0.5
        dash = torch.matmul(normalizer * x, projection.t().to(x.dtype))
        diagonal = (x.pow(2).sum(dim=-1) / 2.0 * normalizer**2).unsqueeze(-1)
        if is_query:
            peak = dash.max(dim=-1, keepdim=True).values
            return ratio * (torch.exp(dash - diagonal - peak) + 1e-4)
        return ratio * torch.exp(dash - diagonal + 1e-4)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.normalize_inputs:
            q = q / (q.norm(dim=-1, keepdim=True) + 1e-8)
            k = k / (k.norm(dim=-1, keepdim=True) + 1e-8)
        q = self._features(q, is_query=True)
        k = self._features(k, is_query=False)
        denominator = 1.0 / (torch.matmul(q, k.sum(dim=-2).unsqueeze(-1)).squeeze(-1) + 1e-8)
        context = torch.matmul(k.transpose(-1, -2), v)
        return torch.matmul(q, context) * denominator.unsqueeze(-1)


class SelfAttention(nn.Module):
    """Multi-head linear self-attention: [B, T, C] -> [B, T, C] (heads of 64 dims)."""

    def __init__(
        self, channels: int, heads: int = 8, head_dim: int = 64, normalize_inputs: bool = False
    ):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.fast_attention = FastAttention(head_dim, normalize_inputs)
        self.to_q = nn.Linear(channels, inner)
        self.to_k = nn.Linear(channels, inner)
        self.to_v = nn.Linear(channels, inner)
        self.to_out = nn.Linear(inner, channels)

    def forward(self, x: Tensor) -> Tensor:
        batch, frames, _ = x.shape

        def split(t: Tensor) -> Tensor:
            return t.reshape(batch, frames, self.heads, -1).transpose(1, 2)

        out = self.fast_attention(split(self.to_q(x)), split(self.to_k(x)), split(self.to_v(x)))
        return self.to_out(out.transpose(1, 2).reshape(batch, frames, -1))


class EncoderLayer(nn.Module):
    """x + attention(LayerNorm(x)) (skipped when attention is off), then x + conformer(x)."""

    def __init__(
        self, channels: int, heads: int, use_attention: bool, normalize_attention: bool
    ):
        super().__init__()
        self.conformer = ConformerConvModule(channels)
        self.norm = nn.LayerNorm(channels)
        self.attn = (
            SelfAttention(channels, heads, normalize_inputs=normalize_attention)
            if use_attention
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.attn is not None:
            x = x + self.attn(self.norm(x))
        return x + self.conformer(x)


class _LayerStack(nn.Module):
    def __init__(self, layers: list[EncoderLayer]):
        super().__init__()
        self._layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self._layers:
            x = layer(x)
        return x


class FcpeModel(nn.Module):
    """The FCPE network with its mel front end.

    input_channels: mel bands; out_dims: pitch bins; n_layers / n_chans: encoder depth and
    width; n_heads: attention heads (of 64 dims each); f0_min / f0_max: Hz of the first /
    last bin; use_attention: False for torchfcpe's conv_only models; normalize_attention:
    torchfcpe's use_fa_norm; mel: the front end's settings. so-vits-svc's FCPE is the
    default (with its n_layers 12, n_chans 512).
    """

    cent_table: Tensor

    def __init__(
        self,
        *,
        input_channels: int = 128,
        out_dims: int = 360,
        n_layers: int = 12,
        n_chans: int = 512,
        n_heads: int = 8,
        f0_min: float = 32.70,
        f0_max: float = 1975.5,
        use_attention: bool = True,
        normalize_attention: bool = False,
        mel: FcpeMelConfig | None = None,
    ):
        super().__init__()
        self.mel_config = FcpeMelConfig() if mel is None else mel
        self.input_channels = input_channels
        self.out_dims = out_dims
        self.f0_min = f0_min
        self.f0_max = f0_max
        # float32 log2 of the limits, spread in float64 as the original does
        low = 1200.0 * torch.log2(torch.tensor([f0_min]) / 10.0)[0]
        high = 1200.0 * torch.log2(torch.tensor([f0_max]) / 10.0)[0]
        table = np.linspace(low.item(), high.item(), out_dims)
        self.register_buffer("cent_table", torch.tensor(table, dtype=torch.float32))
        self.stack = nn.Sequential(
            nn.Conv1d(input_channels, n_chans, 3, 1, 1),
            nn.GroupNorm(4, n_chans),
            nn.LeakyReLU(),
            nn.Conv1d(n_chans, n_chans, 3, 1, 1),
        )
        self.decoder = _LayerStack(
            [
                EncoderLayer(n_chans, n_heads, use_attention, normalize_attention)
                for _ in range(n_layers)
            ]
        )
        self.norm = nn.LayerNorm(n_chans)
        self.dense_out = weight_norm(nn.Linear(n_chans, out_dims))

    def forward(self, mel: Tensor) -> Tensor:
        """Salience of log-mel frames: [B, T, n_mels] -> [B, T, out_dims] in (0, 1)."""
        x = self.stack(mel.transpose(1, 2)).transpose(1, 2)
        x = self.norm(self.decoder(x))
        return torch.sigmoid(self.dense_out(x))

    def mel(self, audio: Tensor, input_length: int | None = None) -> Tensor:
        """Log-mel of waves at the model rate: [B, N] -> [B, input_length // hop + 1, M].

        `input_length` is the length of the wave before it was resampled to the model
        rate (default N); see `force_frame_count`.
        """
        config = self.mel_config
        mel = vocoder_mel(
            audio,
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            n_mels=self.input_channels,
            hop_length=config.hop_size,
            win_length=config.win_size,
            fmin=config.fmin,
            fmax=config.fmax,
        ).transpose(1, 2)
        length = audio.shape[-1] if input_length is None else input_length
        return force_frame_count(mel, length, config.hop_size)

    @torch.no_grad()
    def infer(
        self,
        audio: Tensor,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        decoder: Decoder = "local_argmax",
        input_length: int | None = None,
    ) -> Tensor:
        """f0 of a wave at the model rate: [N] -> float32 [frames] Hz, 0 where unvoiced."""
        dtype = self.dense_out.bias.dtype
        mel = self.mel(audio[None].to(dtype), input_length)
        salience = self.forward(mel)[0].float()
        return cents_to_f0(decode_cents(salience, self.cent_table.float(), threshold, decoder))


def decode_cents(
    salience: Tensor,
    cent_table: Tensor,
    threshold: float = DEFAULT_THRESHOLD,
    decoder: Decoder = "local_argmax",
) -> Tensor:
    """Cents of each frame: salience [..., bins] -> [...], -inf where unvoiced.

    "local_argmax": weighted mean of `cent_table` over argmax - 4 .. argmax + 4, the
    indices clamped to the table (so edge bins count several times); "argmax": weighted
    mean over every bin. A frame is unvoiced when its peak is <= threshold.
    """
    peak, center = salience.max(dim=-1, keepdim=True)
    if decoder == "local_argmax":
        index = (center + torch.arange(-4, 5, device=salience.device)).clamp(
            0, salience.shape[-1] - 1
        )
        weights = torch.gather(salience, -1, index)
        cents = (cent_table[index] * weights).sum(-1) / weights.sum(-1)
    elif decoder == "argmax":
        cents = (cent_table * salience).sum(-1) / salience.sum(-1)
    else:
        raise ValueError(f"unknown FCPE decoder {decoder!r}; use 'local_argmax' or 'argmax'")
    return torch.where(peak[..., 0] > threshold, cents, -math.inf)


def cents_to_f0(cents: Tensor) -> Tensor:
    """Hz from cents above 10 Hz (-inf gives 0 Hz). Shape kept."""
    return 10.0 * 2 ** (cents / 1200.0)


_TORCHFCPE_PREFIXES = (
    ("input_stack.", "stack."),
    ("net.encoder_layers.", "decoder._layers."),
    ("output_proj.", "dense_out."),
)
_TORCHFCPE_UNUSED = ("gaussian_blurred_cent_mask",)  # training-only buffer


def _config_section(config: Mapping[str, Any], name: str, where: Path) -> Mapping[str, Any]:
    section = config.get(name)
    if not isinstance(section, Mapping):
        raise CheckpointError(f"FCPE config has no '{name}' section", where=where)
    return section


def _value(section: Mapping[str, Any], key: str, default: Any, where: Path) -> Any:
    value = section.get(key, default)
    if value is None:
        if default is None:
            raise CheckpointError(f"FCPE config lacks '{key}'", where=where)
        return default
    return value


def _mel_config(section: Mapping[str, Any], where: Path) -> FcpeMelConfig:
    mel_type = str(section.get("type", "default")).lower()
    if mel_type not in ("default", "none"):
        raise CheckpointError(f"unsupported FCPE mel type {mel_type!r}", where=where)
    # so-vits-svc's config names the rate "sampling_rate", torchfcpe's "sr"
    rate_key = "sampling_rate" if "sampling_rate" in section else "sr"
    return FcpeMelConfig(
        sample_rate=int(_value(section, rate_key, 16000, where)),
        n_fft=int(_value(section, "n_fft", 1024, where)),
        win_size=int(_value(section, "win_size", 1024, where)),
        hop_size=int(_value(section, "hop_size", 160, where)),
        fmin=float(_value(section, "fmin", 0, where)),
        fmax=float(_value(section, "fmax", 8000, where)),
    )


def _sovits_layout(
    config: Mapping[str, Any], state_dict: Mapping[str, Tensor], where: Path
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    model = _config_section(config, "model", where)
    mel = _config_section(config, "mel", where)
    for flag in ("use_siren", "use_full"):
        if model.get(flag):
            raise CheckpointError(f"FCPE with {flag}=true is not supported", where=where)
    arguments = {
        "input_channels": int(_value(model, "input_channel", None, where)),
        "out_dims": int(_value(model, "out_dims", None, where)),
        "n_layers": int(_value(model, "n_layers", None, where)),
        "n_chans": int(_value(model, "n_chans", None, where)),
        "f0_min": float(_value(model, "f0_min", 32.70, where)),
        "f0_max": float(_value(model, "f0_max", 1975.5, where)),
        "mel": _mel_config(mel, where),
    }
    if int(mel.get("num_mels", arguments["input_channels"])) != arguments["input_channels"]:
        raise CheckpointError("FCPE config: mel num_mels differs from input_channel", where=where)
    return arguments, dict(state_dict)


def _torchfcpe_layout(
    config: Mapping[str, Any], state_dict: Mapping[str, Tensor], where: Path
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    model = _config_section(config, "model", where)
    mel = _config_section(config, "mel", where)
    if model.get("type", "CFNaiveMelPE") != "CFNaiveMelPE":
        raise CheckpointError(
            f"unsupported torchfcpe model type {model.get('type')!r}", where=where
        )
    if model.get("use_harmonic_emb"):
        raise CheckpointError(
            "torchfcpe models with use_harmonic_emb are not supported", where=where
        )
    arguments = {
        "input_channels": int(_value(mel, "num_mels", 128, where)),
        "out_dims": int(_value(model, "out_dims", None, where)),
        "n_layers": int(_value(model, "n_layers", None, where)),
        "n_chans": int(_value(model, "hidden_dims", None, where)),
        "n_heads": int(_value(model, "n_heads", 8, where)),
        "f0_min": float(_value(model, "f0_min", 32.70, where)),
        "f0_max": float(_value(model, "f0_max", 1975.5, where)),
        "use_attention": not bool(model.get("conv_only", False)),
        "normalize_attention": bool(model.get("use_fa_norm", False)),
        "mel": _mel_config(mel, where),
    }
    renamed = {}
    for key, tensor in state_dict.items():
        if key in _TORCHFCPE_UNUSED:
            continue
        for old, new in _TORCHFCPE_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = tensor
    return arguments, renamed


def load_fcpe(path: str | Path, *, device: str | torch.device = "cpu") -> FcpeModel:
    """Load an FCPE checkpoint: so-vits-svc's fcpe.pt or torchfcpe's bundled file.

    Read with `torch.load(weights_only=True, map_location="cpu")`; the constructor
    arguments come from the file's own config; the load is strict. Raises
    MissingFileError or CheckpointError. The model is returned in eval mode.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError("FCPE checkpoint not found", where=path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read the FCPE checkpoint: {error}", where=path) from error
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("model"), Mapping):
        raise CheckpointError("not an FCPE checkpoint: no 'model' state dict", where=path)
    state_dict = checkpoint["model"]
    if isinstance(checkpoint.get("config"), Mapping):
        arguments, state_dict = _sovits_layout(checkpoint["config"], state_dict, path)
    elif isinstance(checkpoint.get("config_dict"), Mapping):
        arguments, state_dict = _torchfcpe_layout(checkpoint["config_dict"], state_dict, path)
    else:
        raise CheckpointError(
            "not an FCPE checkpoint: expected a 'config' (so-vits-svc) or 'config_dict' "
            "(torchfcpe) entry",
            where=path,
        )
    model = FcpeModel(**arguments)
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise CheckpointError(
            f"FCPE state dict does not fit the network: {error}", where=path
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"FCPE state dict does not fit the network: missing {result.missing_keys[:5]} "
            f"({len(result.missing_keys)}), unexpected {result.unexpected_keys[:5]} "
            f"({len(result.unexpected_keys)})",
            where=path,
        )
    return model.to(device).eval()


class FcpeExtractor:
    """PitchExtractor using FCPE, with so-vits-svc's FCPEF0Predictor behaviour.

    model: an FcpeModel, a checkpoint path (so-vits-svc fcpe.pt or torchfcpe format), or
        None for torchfcpe's bundled weights (`fcpe_c_v001.pt`, found through
        `resolve_weights`, which also looks inside an installed torchfcpe package).
    threshold: salience a frame's peak must exceed to count as voiced (cr_threshold).
    decoder: "local_argmax" (what so-vits-svc uses) or "argmax".
    """

    name = "fcpe"

    def __init__(
        self,
        model: FcpeModel | str | Path | None = None,
        *,
        device: str | torch.device = "cpu",
        threshold: float = DEFAULT_THRESHOLD,
        decoder: Decoder = "local_argmax",
    ):
        if not isinstance(model, FcpeModel):
            path = resolve_weights(BUNDLED_WEIGHTS) if model is None else Path(model)
            # inference only: the output layer's weight norm is computed once, not per call
            model = load_fcpe(path, device=device)
            fold_weight_norm(model)
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.threshold = threshold
        self.decoder: Decoder = decoder

    def raw_f0(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """Network f0 before post-processing: float32 [len(wave) // hop + 1] Hz, 0 = unvoiced.

        The wave is resampled to the model rate with soxr when needed; the frame count
        follows the original's quirk (see `force_frame_count`).
        """
        model_rate = self.model.mel_config.sample_rate
        audio = wave
        if sample_rate != model_rate:
            import soxr

            audio = np.asarray(soxr.resample(wave, sample_rate, model_rate), dtype=np.float32)
        f0 = self.model.infer(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device),
            self.threshold,
            decoder=self.decoder,
            input_length=wave.shape[0],
        )
        return f0.cpu().numpy()

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
        return track_from_raw_f0(self.raw_f0(audio, sample_rate), frames, sample_rate, hop_length)
