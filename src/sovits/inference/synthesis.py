"""Conversion stage 5: synthesis (so-vits synthesizer, shallow diffusion, enhancer).

`SynthesisStage` holds what renders audio from units and pitch: the so-vits
synthesizer (PyTorch or ONNX; None when only diffusion renders), the diffusion
renderers and the NSF-HiFiGAN enhancer, each loaded on first use. `render` turns one
padded clip's units, pitch, volume and speaker into audio, as so-vits-svc's
`Svc.infer`.

The streaming converter uses the same synthesizer in two steps (`prior_latents`, then
`decode_frames`): the prior encoder and flow run over the whole block window, and the
decoder renders only the new frames plus its receptive-field margin on the left
(`decoder_margin_frames`), which gives the same samples as decoding the whole window.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sovits.errors import InputError
from sovits.inference.options import ConvertOptions
from sovits.inference.pitch import PitchFrames
from sovits.inference.units import UnitStage
from sovits.models.noise import NoiseSource

if TYPE_CHECKING:
    from sovits.config import SvcConfig
    from sovits.inference.diffusion import DiffusionRenderer
    from sovits.inference.enhancer import Enhancer
    from sovits.inference.onnx_backend import OnnxSynthesizer
    from sovits.models.synthesizer import Synthesizer
    from sovits.models.vocoder import NsfHifiganGenerator

__all__ = [
    "SynthesisStage",
    "decode_frames",
    "decoder_margin_frames",
    "flow_margin_frames",
    "prior_latents",
    "speaker_condition",
    "volume_frames",
]


def volume_frames(wave: np.ndarray, hop: int, n_frames: int, device: torch.device) -> torch.Tensor:
    """The volume input [1, n_frames] of a wave (float32 [N], model rate)."""
    from sovits.features.volume import VolumeExtractor

    volume = VolumeExtractor(hop).extract(torch.from_numpy(wave).to(device))
    return volume[None, :n_frames]


def speaker_condition(speaker: int | np.ndarray, device: torch.device) -> torch.Tensor:
    """The synthesizer's speaker input: ids [[id]] or per-frame mixing weights [T, S]."""
    if isinstance(speaker, np.ndarray):
        return torch.from_numpy(speaker).to(device)
    return torch.tensor([[speaker]], dtype=torch.long, device=device)


class SynthesisStage:
    """Renders audio for one model.

    synthesizer: the so-vits model (None: only diffusion); config: its config; units:
    the unit stage (for -se, the second encoding); diffusion: a renderer given up front
    (diffusion-only converters, or -dm loaded with the model).
    """

    def __init__(
        self,
        synthesizer: Synthesizer | OnnxSynthesizer | None,
        config: SvcConfig,
        units: UnitStage,
        *,
        device: torch.device,
        diffusion: DiffusionRenderer | None = None,
    ):
        self.synthesizer = synthesizer
        self.config = config
        self.units = units
        self.device = device
        self._diffusion_renderers: dict[tuple[Path | None, Path | None], DiffusionRenderer] = {}
        if diffusion is not None:
            self._diffusion_renderers[(None, None)] = diffusion
        self._enhancer: Enhancer | None = None

    @property
    def sample_rate(self) -> int:
        return self.config.data.sampling_rate

    @property
    def hop_length(self) -> int:
        return self.config.data.hop_length

    def diffusion(self, options: ConvertOptions) -> DiffusionRenderer:
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

    def enhancer(self) -> Enhancer:
        """The NSF-HiFiGAN enhancer (-eh), loaded on first use."""
        if self._enhancer is None:
            from sovits.inference.enhancer import Enhancer

            self._enhancer = Enhancer.load(device=self.device)
        return self._enhancer

    def check(self, options: ConvertOptions) -> None:
        """Fail early on options this model cannot render; load what they need."""
        if self.synthesizer is None and not options.only_diffusion:
            raise InputError("this converter has no so-vits model: only diffusion (-od) works")
        if options.auto_predict_f0 and self.synthesizer is None:
            raise InputError("automatic f0 prediction (-a) needs the so-vits model, not -od")
        if options.uses_diffusion:
            self.diffusion(options)
        elif options.enhance:
            self.enhancer()

    def render(
        self,
        padded: np.ndarray,
        content: torch.Tensor,
        pitch: PitchFrames,
        *,
        speaker: int | np.ndarray,
        options: ConvertOptions,
        noise: NoiseSource,
    ) -> np.ndarray:
        """Audio float32 [T * hop] of one padded clip (float32 [N], model rate) from its
        units [1, C, T] and pitch: the synthesizer, then shallow diffusion or the
        enhancer as the options say. Call under `torch.inference_mode()`."""
        hop = self.hop_length
        n_frames = content.shape[-1]
        f0 = pitch.f0
        volume = None
        if self.config.model.vol_embedding:
            volume = volume_frames(padded, hop, n_frames, self.device)
        condition = speaker_condition(speaker, self.device)
        rendered: torch.Tensor | None = None
        if self.synthesizer is not None and not options.only_diffusion:
            result = self.synthesizer.infer(
                content,
                f0,
                pitch.uv,
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
        audio: np.ndarray = rendered.cpu().numpy()
        if options.enhance and not options.uses_diffusion:
            audio, _ = self.enhancer().enhance(
                audio, self.sample_rate, f0[0], hop,
                adaptive_key=options.enhancer_adaptive_key, noise=noise,
            )
        return audio

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
            units = self.units.encode(rendered.cpu().numpy(), n_frames)
        return self.diffusion(options).render(
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


# ------------------------------------------------------------------ streaming synthesis


def _conv_radius(module: Any) -> int:
    """Samples a stride-1 Conv1d looks at on each side of its output sample."""
    kernel = int(module.kernel_size[0])
    dilation = int(module.dilation[0])
    return (kernel - 1) * dilation // 2 + 1


def _resblock_radius(block: Any) -> int:
    """Samples a HiFiGAN residual block (type 1 or 2, snake or not) looks at per side."""
    radius = 0
    if hasattr(block, "convs1"):
        for conv1, conv2 in zip(block.convs1, block.convs2, strict=True):
            radius += _conv_radius(conv1) + _conv_radius(conv2)
    else:
        for conv in block.convs:
            radius += _conv_radius(conv)
    activations = getattr(block, "activations", None)
    if activations is not None:  # anti-aliased snakes: 2x up- and down-sampling filters
        radius += sum(_snake_radius(act) for act in activations)
    return radius


def _snake_radius(activation: Any) -> int:
    """Samples (at the activation's rate) an anti-aliased snake looks at per side."""
    up = int(activation.upsample.kernel_size)
    down = int(activation.downsample.lowpass.kernel_size)
    return math.ceil((up + down) / 2) + 1


def decoder_margin_frames(decoder: NsfHifiganGenerator) -> int:
    """The decoder's receptive field to the left, in frames: an output sample depends
    on latent frames at most this many frames before its own (and the same after).

    Summed over the layers from the model's own sizes (conv_pre, each upsampling's
    kernel and rate, the residual blocks' kernels and dilations, the snakes' filters,
    the excitation convolutions, conv_post), each converted to frames at its stage's
    rate, and rounded up. Decoding latents [start - margin, end) and keeping the
    samples of [start, end) equals decoding [0, end) (see tests).
    """
    layers: Any = decoder  # its layers are read by attribute, as built
    upsample_factor = layers.upsample_factor
    total = float(_conv_radius(layers.conv_pre))  # in frames (frame rate)
    per_frame = 1  # samples per frame at the current stage
    for stage, (rate, up) in enumerate(zip(layers.upsample_rates, layers.ups, strict=True)):
        if layers.snakes is not None:
            total += _snake_radius(layers.snakes[stage]) / per_frame
        kernel = int(up.kernel_size[0])
        total += (math.ceil(kernel / rate) + 1) / per_frame
        per_frame *= rate
        noise_conv = layers.noise_convs[stage]
        # The excitation's strided convolution reads `kernel` samples at the output rate.
        total += (int(noise_conv.kernel_size[0]) + 1) / upsample_factor
        blocks = layers.resblocks[
            stage * layers.num_kernels : (stage + 1) * layers.num_kernels
        ]
        total += max(_resblock_radius(block) for block in blocks) / per_frame
    if layers.snake_post is not None:
        total += _snake_radius(layers.snake_post) / per_frame
    total += _conv_radius(layers.conv_post) / per_frame
    return math.ceil(total)


def prior_latents(
    synthesizer: Synthesizer,
    content: torch.Tensor,
    pitch: PitchFrames,
    *,
    speaker: torch.Tensor,
    volume: torch.Tensor | None,
    noise_scale: float,
    prior_noise: torch.Tensor,
    flow_from: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The flow's output z [1, inter, T - flow_from] and the speaker condition g of a
    window (frames [flow_from, T) of both when g is per frame).

    The synthesizer's own prior encoder and flow (`Synthesizer.infer` without the
    decoder); prior_noise [1, inter, T] is the standard-normal draw of the prior, kept
    per frame by the caller so a frame's noise does not change from window to window.
    The prior encoder sees the whole window (its attention does); the flow runs only
    from frame `flow_from`: frames at least `flow_margin_frames` after it are the same
    as when the flow runs over the whole window.
    """
    from sovits.dsp.f0 import f0_to_coarse
    from sovits.models.noise import ReplayNoise

    synthesizer._check_frames(content, f0=pitch.f0, uv=pitch.uv, volume=volume)
    frames = content.shape[-1]
    g = synthesizer.speaker_condition(speaker, frames)
    mask = torch.ones(1, 1, frames, dtype=content.dtype, device=content.device)
    x = synthesizer.content_features(content, pitch.uv, mask, volume)
    z_p, _, _ = synthesizer.enc_p(
        x, mask, f0_to_coarse(pitch.f0), noise=ReplayNoise([prior_noise]),
        noise_scale=noise_scale,
    )
    if flow_from > 0:
        z_p, mask = z_p[:, :, flow_from:], mask[:, :, flow_from:]
        g = g if g.shape[-1] == 1 else g[:, :, flow_from:]
    z = synthesizer.flow(z_p, mask, g=g, reverse=True)
    return z, g


def flow_margin_frames(flow: torch.nn.Module) -> int | None:
    """The flow's receptive field to each side, in frames, or None when it has none
    (a transformer flow attends to the whole window).

    The sum of every convolution's reach ((kernel - 1) * dilation / 2) over the
    WaveNet couplings: an upper bound, so running the flow over [start - margin, T)
    gives the frames [start, T) it gives over the whole window (see tests).
    """
    from sovits.models.flows import ResidualCouplingBlock

    if not isinstance(flow, ResidualCouplingBlock):
        return None
    reach = 0
    for coupling in flow.flows:
        for module in coupling.modules():
            if isinstance(module, torch.nn.Conv1d):
                if module.stride[0] != 1:
                    return None
                reach += (module.kernel_size[0] - 1) * module.dilation[0] // 2
    return reach


def decode_frames(
    decoder: NsfHifiganGenerator,
    z: torch.Tensor,
    excitation: torch.Tensor,
    g: torch.Tensor,
    *,
    start: int,
    margin: int,
) -> torch.Tensor:
    """Audio [N] of latent frames [start, T) of z [1, inter, T], decoding only from
    frame start - margin; excitation [1, 1, (T - start + margin') * hop] covers the
    decoded frames (margin' = min(margin, start)). With `margin` at least
    `decoder_margin_frames`, equal to decoding all of z and keeping frames [start, T).
    """
    first = max(0, start - margin)
    hop = decoder.upsample_factor
    cond = g if g.shape[-1] == 1 else g[:, :, first:]
    audio = decoder.decode(z[:, :, first:], excitation, cond)
    return audio[0, 0, (start - first) * hop :]

