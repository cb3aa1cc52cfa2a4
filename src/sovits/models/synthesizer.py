"""The so-vits-svc 4.1 synthesizer (the original's `SynthesizerTrn`).

Owns the content encoder (`TextEncoder`, state-dict prefix `enc_p`), the posterior
encoder (`PosteriorEncoder`, `enc_q`, training only), the F0 decoder (`F0Decoder`,
`f0_decoder`), speaker embedding and speaker mixing, and `Synthesizer`, which wires
them to the flow (`flow`) and the NSF-HiFiGAN vocoder (`dec`, see
`sovits.models.vocoder`). State-dict keys and shapes equal the original's, so its
checkpoints load unchanged.

Randomness goes through `NoiseSource` (inference) or an optional `torch.Generator`
(training); the global RNG is never seeded. Call `.eval()` before inference so
dropout is off.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sovits.dsp.f0 import f0_to_coarse, f0_to_lf0, lf0_to_f0, normalize_f0
from sovits.errors import ConfigError, InputError
from sovits.models.attention import CausalTransformer, TransformerEncoder
from sovits.models.flows import ResidualCouplingBlock, TransformerCouplingBlock
from sovits.models.noise import NoiseSource
from sovits.models.segments import rand_slice_segments_with_pitch, sequence_mask
from sovits.models.vocoder import NsfHifiganGenerator
from sovits.models.wavenet import WaveNet

logger = logging.getLogger(__name__)

VocoderName = Literal["nsf-hifigan", "nsf-snake-hifigan"]
VOCODER_NAMES: tuple[str, ...] = ("nsf-hifigan", "nsf-snake-hifigan")

POSTERIOR_ENCODER_LAYERS = 16
"""WaveNet depth of `enc_q`. The original hard-codes it (its config key
`n_layers_q` has no effect), and every released checkpoint has 16 layers."""
POSTERIOR_ENCODER_KERNEL_SIZE = 5
FLOW_KERNEL_SIZE = 5
"""Kernel of the flow conditioners: WaveNet convs, or the transformer flow's FFN."""
DEFAULT_SEED = 52468
"""The original `infer`'s default seed."""


class TextEncoder(nn.Module):
    """Prior (content) encoder `enc_p`: adds the coarse-pitch embedding, runs the
    relative-position transformer and projects to the prior's mean and log-scale."""

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int,
        *,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)
        self.f0_emb = nn.Embedding(256, hidden_channels)
        self.enc_ = TransformerEncoder(
            hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout
        )

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        f0_coarse: Tensor,
        *,
        noise: NoiseSource,
        noise_scale: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x: [B, H, T]; mask: [B, 1, T]; f0_coarse: [B, T] int64 bins.

        Returns (z, m, logs), each [B, out, T], with
        z = (m + n * exp(logs) * noise_scale) * mask and n one standard-normal draw
        of shape [B, out, T] from `noise` (drawn even when noise_scale is 0).
        """
        x = x + self.f0_emb(f0_coarse).transpose(1, 2)
        x = self.enc_(x * mask, mask)
        stats = self.proj(x) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        draw = noise.normal(m.shape, like=m)
        z = (m + draw * torch.exp(logs) * noise_scale) * mask
        return z, m, logs


class PosteriorEncoder(nn.Module):
    """Posterior encoder `enc_q` (training only): linear spectrogram -> z ~ q(z|spec)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        *,
        kernel_size: int = POSTERIOR_ENCODER_KERNEL_SIZE,
        dilation_rate: int = 1,
        n_layers: int = POSTERIOR_ENCODER_LAYERS,
        gin_channels: int = 0,
        use_depthwise_conv: bool = False,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WaveNet(
            hidden_channels,
            kernel_size,
            dilation_rate,
            n_layers,
            gin_channels=gin_channels,
            use_depthwise_conv=use_depthwise_conv,
        )
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, spec: Tensor, lengths: Tensor, *, g: Tensor | None, noise: NoiseSource
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """spec: [B, spec_channels, T]; lengths: [B] frames; g: [B, gin, 1].

        Returns (z, m, logs, mask): z, m, logs [B, out, T]; mask [B, 1, T].
        """
        mask = sequence_mask(lengths, spec.size(2)).unsqueeze(1).to(spec.dtype)
        x = self.pre(spec) * mask
        x = self.enc(x, mask, g=g)
        stats = self.proj(x) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + noise.normal(m.shape, like=m) * torch.exp(logs)) * mask
        return z, m, logs, mask


class F0Decoder(nn.Module):
    """Predicts normalised log-f0 from the content features (`f0_decoder`).

    Input is `x.detach() + cond(g) + f0_prenet(norm_lf0)`, then a conv prenet, a
    causal transformer and a 1x1 projection.
    """

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int,
        *,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        spk_channels: int,
    ):
        super().__init__()
        self.prenet = nn.Conv1d(hidden_channels, hidden_channels, 3, padding=1)
        self.decoder = CausalTransformer(
            hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout
        )
        self.proj = nn.Conv1d(hidden_channels, out_channels, 1)
        self.f0_prenet = nn.Conv1d(1, hidden_channels, 3, padding=1)
        self.cond = nn.Conv1d(spk_channels, hidden_channels, 1)

    def forward(
        self, x: Tensor, norm_lf0: Tensor, mask: Tensor, speaker: Tensor | None = None
    ) -> Tensor:
        """x: [B, H, T] content features; norm_lf0: [B, 1, T]; mask: [B, 1, T];
        speaker: [B, gin, 1 or T] -> predicted log-f0 [B, out, T]."""
        x = torch.detach(x)
        if speaker is not None:
            x = x + self.cond(speaker)
        x = x + self.f0_prenet(norm_lf0)
        x = self.prenet(x) * mask
        x = self.decoder(x * mask, mask)
        return self.proj(x) * mask


@dataclass
class SynthesisOutput:
    """Result of `Synthesizer.infer`."""

    audio: Tensor
    """[B, 1, T * hop] waveform in [-1, 1]."""
    f0: Tensor
    """[B, T] Hz: the f0 that drove the vocoder (predicted when predict_f0)."""


@dataclass
class TrainingOutput:
    """Result of `Synthesizer.forward` (what the original returned as a tuple)."""

    y_hat: Tensor
    """[B, 1, segment_size * hop] generated audio of the random segment."""
    ids_slice: Tensor
    """[B] int64 start frame of each segment."""
    z_mask: Tensor
    """[B, 1, T] spectrogram frame mask."""
    z: Tensor
    """[B, inter, T] posterior sample."""
    z_p: Tensor
    """[B, inter, T] flow(z)."""
    m_p: Tensor
    logs_p: Tensor
    """[B, inter, T] prior mean and log-scale."""
    m_q: Tensor
    logs_q: Tensor
    """[B, inter, T] posterior mean and log-scale."""
    pred_lf0: Tensor | None
    norm_lf0: Tensor | None
    lf0: Tensor | None
    """[B, 1, T] predicted / normalised / true log-f0; None without the F0 decoder."""


class Synthesizer(nn.Module):
    """so-vits-svc 4.1 `SynthesizerTrn`: content units + f0 + speaker -> waveform.

    Arguments mirror the "model" section of a so-vits-svc config.json, plus
    spec_channels (filter_length // 2 + 1), segment_size (training segment in frames,
    segment_size // hop_length) and sampling_rate from the "data" section.
    The config's `n_layers_q` is not an argument: the original ignores it (the
    posterior encoder always has `POSTERIOR_ENCODER_LAYERS` layers).
    """

    def __init__(
        self,
        *,
        spec_channels: int,
        segment_size: int,
        inter_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        resblock: Literal["1", "2"],
        resblock_kernel_sizes: list[int],
        resblock_dilation_sizes: list[list[int]],
        upsample_rates: list[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: list[int],
        gin_channels: int,
        ssl_dim: int,
        n_speakers: int,
        sampling_rate: int = 44100,
        vol_embedding: bool = False,
        vocoder_name: VocoderName = "nsf-hifigan",
        use_depthwise_conv: bool = False,
        use_automatic_f0_prediction: bool = True,
        flow_share_parameter: bool = False,
        n_flow_layer: int = 4,
        n_layers_trans_flow: int = 3,
        use_transformer_flow: bool = False,
    ):
        super().__init__()
        if vocoder_name not in VOCODER_NAMES:
            raise ConfigError(
                f"unknown vocoder_name {vocoder_name!r}",
                where="model.vocoder_name",
                hint=f"use one of {', '.join(VOCODER_NAMES)}",
            )
        self.spec_channels = spec_channels
        self.segment_size = segment_size
        self.inter_channels = inter_channels
        self.hidden_channels = hidden_channels
        self.gin_channels = gin_channels
        self.ssl_dim = ssl_dim
        self.n_speakers = n_speakers
        self.sampling_rate = sampling_rate
        self.hop_length = 1
        for rate in upsample_rates:
            self.hop_length *= rate

        # Registration order = state-dict order of the original.
        self.emb_g = nn.Embedding(n_speakers, gin_channels)
        self.emb_vol: nn.Linear | None = (
            nn.Linear(1, hidden_channels) if vol_embedding else None
        )
        self.pre = nn.Conv1d(ssl_dim, hidden_channels, kernel_size=5, padding=2)
        self.enc_p = TextEncoder(
            inter_channels,
            hidden_channels,
            filter_channels=filter_channels,
            n_heads=n_heads,
            n_layers=n_layers,
            kernel_size=kernel_size,
            p_dropout=p_dropout,
        )
        self.dec = NsfHifiganGenerator(
            in_channels=inter_channels,
            gin_channels=gin_channels,
            sampling_rate=sampling_rate,
            resblock=resblock,
            resblock_kernel_sizes=resblock_kernel_sizes,
            resblock_dilation_sizes=resblock_dilation_sizes,
            upsample_rates=upsample_rates,
            upsample_initial_channel=upsample_initial_channel,
            upsample_kernel_sizes=upsample_kernel_sizes,
            snake=(vocoder_name == "nsf-snake-hifigan"),
        )
        self.enc_q = PosteriorEncoder(
            spec_channels,
            inter_channels,
            hidden_channels,
            gin_channels=gin_channels,
            use_depthwise_conv=use_depthwise_conv,
        )
        self.flow: ResidualCouplingBlock | TransformerCouplingBlock
        if use_transformer_flow:
            self.flow = TransformerCouplingBlock(
                inter_channels,
                hidden_channels,
                filter_channels,
                n_heads,
                n_layers_trans_flow,
                FLOW_KERNEL_SIZE,
                p_dropout,
                n_flows=n_flow_layer,
                gin_channels=gin_channels,
                share_parameter=flow_share_parameter,
            )
        else:
            # n_flow_layer is the WaveNet depth here; the coupling count is fixed at 4.
            self.flow = ResidualCouplingBlock(
                inter_channels,
                hidden_channels,
                FLOW_KERNEL_SIZE,
                1,
                n_flow_layer,
                n_flows=4,
                gin_channels=gin_channels,
                share_parameter=flow_share_parameter,
                use_depthwise_conv=use_depthwise_conv,
            )
        self.f0_decoder: F0Decoder | None = None
        if use_automatic_f0_prediction:
            self.f0_decoder = F0Decoder(
                1,
                hidden_channels,
                filter_channels=filter_channels,
                n_heads=n_heads,
                n_layers=n_layers,
                kernel_size=kernel_size,
                p_dropout=p_dropout,
                spk_channels=gin_channels,
            )
        self.emb_uv = nn.Embedding(2, hidden_channels)

    # ------------------------------------------------------------------ helpers

    def speaker_condition(self, speaker: Tensor, frames: int) -> Tensor:
        """Speaker conditioning g for the flow, F0 decoder and vocoder.

        speaker: int64 ids [B] or [B, 1] -> emb_g rows [B, gin, 1]; or float
        per-frame mixing weights [frames, n_speakers] -> the weighted sum of emb_g
        rows per frame, [1, gin, frames] (batch 1 only).
        """
        if not torch.is_floating_point(speaker):
            if speaker.dim() == 1:
                speaker = speaker.unsqueeze(1)
            if speaker.dim() != 2 or speaker.size(1) != 1:
                raise InputError(
                    f"speaker ids must have shape [B] or [B, 1], got {list(speaker.shape)}"
                )
            if speaker.numel() and (
                int(speaker.min()) < 0 or int(speaker.max()) >= self.n_speakers
            ):
                raise InputError(
                    f"speaker id out of range 0..{self.n_speakers - 1}: "
                    f"{speaker.flatten().tolist()}"
                )
            return self.emb_g(speaker).transpose(1, 2)
        if speaker.dim() != 2 or speaker.shape != (frames, self.n_speakers):
            raise InputError(
                f"speaker mixing weights must have shape [frames={frames}, "
                f"n_speakers={self.n_speakers}], got {list(speaker.shape)}"
            )
        table = self.emb_g.weight.to(speaker.dtype)  # [S, gin]
        mixed = (speaker.unsqueeze(2) * table.unsqueeze(0)).sum(dim=1)  # [frames, gin]
        return mixed.transpose(0, 1).unsqueeze(0).to(self.emb_g.weight.dtype)

    def content_features(
        self, content: Tensor, uv: Tensor, mask: Tensor, volume: Tensor | None
    ) -> Tensor:
        """pre(content) * mask + emb_uv(uv) (+ emb_vol(volume)): [B, H, T]."""
        x = self.pre(content) * mask + self.emb_uv(uv.long()).transpose(1, 2)
        if self.emb_vol is not None:
            if volume is None:
                raise InputError(
                    "this model has a volume embedding (vol_embedding) and needs volume",
                    hint="pass the per-frame volume envelope [B, T]",
                )
            x = x + self.emb_vol(volume[:, :, None]).transpose(1, 2)
        return x

    def _check_frames(self, content: Tensor, **per_frame: Tensor | None) -> None:
        if content.dim() != 3 or content.size(1) != self.ssl_dim:
            raise InputError(
                f"content must have shape [B, ssl_dim={self.ssl_dim}, T], "
                f"got {list(content.shape)}"
            )
        batch, frames = content.size(0), content.size(2)
        for name, tensor in per_frame.items():
            if tensor is not None and tuple(tensor.shape) != (batch, frames):
                raise InputError(
                    f"{name} must have shape [B={batch}, T={frames}] like content, "
                    f"got {list(tensor.shape)}"
                )

    # ---------------------------------------------------------------- inference

    @torch.no_grad()
    def infer(
        self,
        content: Tensor,
        f0: Tensor,
        uv: Tensor,
        *,
        speaker: Tensor,
        noise_scale: float = 0.35,
        predict_f0: bool = False,
        volume: Tensor | None = None,
        noise: NoiseSource | None = None,
        seed: int = DEFAULT_SEED,
    ) -> SynthesisOutput:
        """Render audio from content units and pitch.

        content: [B, ssl_dim, T] units at frame rate; f0: [B, T] Hz; uv: [B, T]
        (1 = voiced); speaker: ids or mixing weights (see `speaker_condition`);
        volume: [B, T] (required when the model has a volume embedding, ignored
        otherwise). With predict_f0 the F0 decoder's prediction replaces f0.
        Random draws (prior noise [B, inter, T] first, then the vocoder's) come from
        `noise`, or from `NoiseSource.from_seed(seed)` on content's device.
        """
        self._check_frames(content, f0=f0, uv=uv, volume=volume)
        if noise is None:
            noise = NoiseSource.from_seed(seed, content.device)
        # A model cast to a lower precision takes its inputs in that type; f0 stays as
        # given (float32 keeps the pitch exact: see sovits.checkpoints.precision).
        dtype = self.pre.weight.dtype
        content = content.to(dtype)
        volume = None if volume is None else volume.to(dtype)
        # Lower precision: ops on autocast's float32 list stay in float32, and float32
        # inputs (f0, speaker weights) meet the weights in their type.
        with lower_precision(dtype, content.device):
            batch, _, frames = content.shape
            g = self.speaker_condition(speaker, frames)
            mask = torch.ones(batch, 1, frames, dtype=content.dtype, device=content.device)
            x = self.content_features(content, uv, mask, volume)

            if predict_f0:
                if self.f0_decoder is None:
                    raise InputError(
                        "this model has no F0 decoder (use_automatic_f0_prediction is off)",
                        hint="turn off f0 prediction for this model",
                    )
                lf0 = f0_to_lf0(f0)
                norm_lf0 = normalize_f0(lf0, mask, uv, random_scale=False)
                pred_lf0 = self.f0_decoder(x, norm_lf0, mask, speaker=g).to(f0)
                f0 = lf0_to_f0(pred_lf0)

            z_p, _, _ = self.enc_p(
                x, mask, f0_to_coarse(f0), noise=noise, noise_scale=noise_scale
            )
            z = self.flow(z_p, mask, g=g, reverse=True)
            audio = self.dec(z * mask, f0, g=g, noise=noise)
        return SynthesisOutput(audio=audio, f0=f0)

    # ----------------------------------------------------------------- training

    def forward(
        self,
        content: Tensor,
        f0: Tensor,
        uv: Tensor,
        spec: Tensor,
        speaker: Tensor,
        content_lengths: Tensor,
        spec_lengths: Tensor,
        volume: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> TrainingOutput:
        """Training pass (the original's `SynthesizerTrn.forward`).

        content: [B, ssl_dim, T]; f0, uv: [B, T]; spec: [B, spec_channels, T] linear
        spectrogram; speaker: int64 [B] or [B, 1]; content_lengths, spec_lengths: [B]
        frames; volume: [B, T] when the model has a volume embedding.

        Draw order follows the original: f0 scale factor (CPU), prior noise, posterior
        noise, segment starts (CPU), vocoder. All come from `generator` when given;
        draws the original made on the CPU use the global CPU RNG instead when
        `generator` is not a CPU generator. Without `generator` the global RNGs are
        used (never seeded here), as in the original.
        """
        self._check_frames(content, f0=f0, uv=uv, volume=volume)
        if generator is not None:
            noise = NoiseSource(generator)
            cpu_generator = generator if generator.device.type == "cpu" else None
        else:
            noise = _global_noise(content.device)
            cpu_generator = None

        g = self.speaker_condition(speaker, content.size(2))
        x_mask = sequence_mask(content_lengths, content.size(2)).unsqueeze(1).to(content.dtype)
        x = self.content_features(content, uv, x_mask, volume)

        lf0 = norm_lf0 = pred_lf0 = None
        if self.f0_decoder is not None:
            lf0 = f0_to_lf0(f0)
            norm_lf0 = normalize_f0(lf0, x_mask, uv, random_scale=True, generator=cpu_generator)
            pred_lf0 = self.f0_decoder(x, norm_lf0, x_mask, speaker=g)

        _, m_p, logs_p = self.enc_p(x, x_mask, f0_to_coarse(f0), noise=noise, noise_scale=1.0)
        z, m_q, logs_q, spec_mask = self.enc_q(spec, spec_lengths, g=g, noise=noise)
        z_p = self.flow(z, spec_mask, g=g)
        z_slice, pitch_slice, ids_slice = rand_slice_segments_with_pitch(
            z, f0, spec_lengths, self.segment_size, cpu_generator
        )
        y_hat = self.dec(z_slice, pitch_slice, g=g, noise=noise)
        return TrainingOutput(
            y_hat=y_hat,
            ids_slice=ids_slice,
            z_mask=spec_mask,
            z=z,
            z_p=z_p,
            m_p=m_p,
            logs_p=logs_p,
            m_q=m_q,
            logs_q=logs_q,
            pred_lf0=pred_lf0,
            norm_lf0=norm_lf0,
            lf0=lf0,
        )


def _global_noise(device: torch.device) -> NoiseSource:
    """A NoiseSource over torch's default generator for `device` (advanced, never seeded)."""
    if device.type == "cpu":
        return NoiseSource(torch.default_generator)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return NoiseSource(torch.cuda.default_generators[index])
    return NoiseSource(torch.Generator(device=device))


def lower_precision(
    dtype: torch.dtype, device: torch.device
) -> contextlib.AbstractContextManager[object]:
    """Autocast to `dtype` for a model cast to bfloat16 / float16; nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
