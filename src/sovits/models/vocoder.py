"""The one NSF-HiFiGAN generator of sovits and its harmonic source.

The generator turns frames [B, C, T] and frame-rate f0 into audio at
T * prod(upsample_rates) samples. A neural-source-filter (NSF) excitation, a sum of
harmonic sines built from f0, is injected after every upsampling stage. Two variants
share this code:

* "so-vits-svc": the decoder of so-vits-svc 4.1 (`dec` of the synthesizer, latents in,
  speaker conditioning `cond`). Parameter names reproduce the original `dec.*` keys
  (vdecoder/hifigan and vdecoder/hifiganwithsnake), so original checkpoints load strictly.
* "openvpi": the standalone vocoder of openvpi's NSF-HiFiGAN releases (mel in, no speaker;
  so-vits-svc's vdecoder/nsf_hifigan), used by the enhancer and shallow diffusion. It
  rounds two paddings down instead of up and accumulates the source phase at frame rate
  in float64. Keys equal the `generator` state dict of its `model` file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar, Union, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sovits.errors import ConfigError
from sovits.models.noise import NoiseSource
from sovits.models.snake import SnakeAlias
from sovits.models.weight_norm import weight_norm

_PackT = TypeVar("_PackT", "_ChannelsLastConv", "_PolyphaseUpsample")
_FastModule = Union["_ChannelsLastConv", "_PolyphaseUpsample"]

LEAKY_RELU_SLOPE = 0.1
# Both originals' last activation is F.leaky_relu with torch's default slope, not 0.1.
FINAL_LEAKY_RELU_SLOPE = 0.01

SineMode = Literal["sample-rate", "frame-rate", "frame-rate-float64"]
"""How `SineGenerator` accumulates phase: see its docstring."""

GeneratorVariant = Literal["so-vits-svc", "openvpi"]
"""Which original `NsfHifiganGenerator` reproduces: see the module docstring."""


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution (odd kernels)."""
    return (kernel_size * dilation - dilation) // 2


class SineGenerator(nn.Module):
    """Harmonic sine source of the NSF vocoder (the originals' `SineGen`).

    Modes (`mode`):

    * "sample-rate" (default; so-vits-svc's PyTorch mode): f0 already repeated to the
      sample rate, phase accumulated per sample.
    * "frame-rate" (`onnx_compatible=True`, what so-vits-svc's `OnnxExport()` switches on):
      frame-rate f0; the running phase is accumulated per frame in float32, linearly
      interpolated to the sample rate and only used to find where the phase wraps. A
      different algorithm; it does not match "sample-rate" numerically.
    * "frame-rate-float64" (openvpi's NSF-HiFiGAN): as "frame-rate", but both running sums
      (per frame and per sample) and the sine are computed in float64.

    Frame-rate modes compute in float32 whatever f0's dtype.

    Random draws, in order: uniform [B, harmonic_num + 1] initial phases (the fundamental's
    is set to zero), then normal [B, N, harmonic_num + 1] additive noise.
    """

    def __init__(
        self,
        sampling_rate: int,
        harmonic_num: int = 8,
        sine_amplitude: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
        onnx_compatible: bool = False,
        mode: SineMode | None = None,
    ):
        super().__init__()
        if mode is None:
            mode = "frame-rate" if onnx_compatible else "sample-rate"
        elif onnx_compatible and mode != "frame-rate":
            raise ValueError(f"onnx_compatible=True contradicts mode={mode!r}")
        if mode not in ("sample-rate", "frame-rate", "frame-rate-float64"):
            raise ValueError(f"unknown sine generator mode {mode!r}")
        self.sampling_rate = sampling_rate
        self.harmonic_num = harmonic_num
        self.dim = harmonic_num + 1
        self.sine_amplitude = sine_amplitude
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold
        self.mode: SineMode = mode

    @property
    def onnx_compatible(self) -> bool:
        """Whether the mode is so-vits-svc's ONNX-export algorithm ("frame-rate")."""
        return self.mode == "frame-rate"

    @onnx_compatible.setter
    def onnx_compatible(self, value: bool) -> None:
        self.mode = "frame-rate" if value else "sample-rate"

    @property
    def takes_frame_rate_f0(self) -> bool:
        """Whether `forward` takes f0 per frame (with an upsample factor)."""
        return self.mode != "sample-rate"

    def forward(
        self, f0: Tensor, noise: NoiseSource, upsample_factor: int | None = None
    ) -> tuple[Tensor, Tensor]:
        """Sines with additive noise, and the voiced mask.

        "sample-rate" mode: f0 [B, N, 1] Hz at the sample rate. Frame-rate modes: f0 [B, T] Hz
        per frame and `upsample_factor` samples per frame (N = T * upsample_factor).
        Returns sine_waves [B, N, harmonic_num + 1] and uv [B, N, 1] (1.0 where f0 > threshold).
        """
        with torch.no_grad():
            if self.takes_frame_rate_f0:
                if upsample_factor is None:
                    raise ValueError(f"{self.mode} SineGenerator needs upsample_factor")
                return self._frame_rate_sines(f0, noise, upsample_factor)
            return self._sample_rate_sines(f0, noise)

    def _harmonics(self, f0: Tensor) -> Tensor:
        """[B, L, 1] -> [B, L, dim]: f0 times 1, 2, ..., harmonic_num + 1.

        The multiples are float32, as in the original, so float16 f0 gives float32 phases.
        """
        multiples = torch.arange(1, self.dim + 1, dtype=torch.float32, device=f0.device)
        return f0 * multiples

    def _initial_phase(self, f0: Tensor, noise: NoiseSource) -> Tensor:
        """Random initial phase per harmonic [B, dim], zero for the fundamental.

        Drawn in float32 whatever f0's dtype, as the original's `torch.rand` did.
        """
        like = torch.empty((), dtype=torch.float32, device=f0.device)
        phase = noise.uniform((f0.shape[0], self.dim), like=like)
        phase[:, 0] = 0
        return phase

    def _add_noise(self, sines: Tensor, uv: Tensor, noise: NoiseSource) -> Tensor:
        # Voiced samples get faint noise; unvoiced ones noise of about the sine's amplitude.
        noise_amplitude = uv * self.noise_std + (1 - uv) * self.sine_amplitude / 3
        additive = noise_amplitude * noise.normal(sines.shape, like=sines)
        return sines * uv + additive

    def _sample_rate_sines(self, f0: Tensor, noise: NoiseSource) -> tuple[Tensor, Tensor]:
        # Phase increment per sample in cycles; the integer part never matters.
        increment = (self._harmonics(f0) / self.sampling_rate) % 1
        increment[:, 0, :] = increment[:, 0, :] + self._initial_phase(f0, noise)
        # Subtract 1 wherever the running phase wraps, so the cumulative sum stays small
        # (a wrap is where the fractional part of the running sum decreases).
        fractional = torch.cumsum(increment, 1) % 1
        wrapped = (fractional[:, 1:, :] - fractional[:, :-1, :]) < 0
        shift = torch.zeros_like(increment)
        shift[:, 1:, :] = wrapped * -1.0
        phase = torch.cumsum(increment + shift, dim=1)
        sines = torch.sin(phase * 2 * math.pi) * self.sine_amplitude
        uv = (f0 > self.voiced_threshold).to(torch.float32)
        return self._add_noise(sines, uv, noise), uv

    def _frame_rate_sines(
        self, f0: Tensor, noise: NoiseSource, upsample_factor: int
    ) -> tuple[Tensor, Tensor]:
        wide = self.mode == "frame-rate-float64"
        f0 = f0[:, None].transpose(1, 2)  # [B, T, 1]
        # so-vits-svc copies f0 into a float32 buffer before taking harmonics.
        increment = (self._harmonics(f0.to(torch.float32)) / self.sampling_rate) % 1
        increment[:, 0, :] = increment[:, 0, :] + self._initial_phase(f0, noise)
        # Running phase at frame rate, in samples-worth of cycles, linearly interpolated.
        if wide:
            running = torch.cumsum(increment.to(torch.float64), 1).to(increment.dtype)
        else:
            running = torch.cumsum(increment, 1)
        running *= upsample_factor
        running = F.interpolate(
            running.transpose(2, 1),
            scale_factor=float(upsample_factor),
            mode="linear",
            align_corners=True,
        ).transpose(2, 1)
        increment = F.interpolate(
            increment.transpose(2, 1), scale_factor=float(upsample_factor), mode="nearest"
        ).transpose(2, 1)
        running %= 1
        wrapped = (running[:, 1:, :] - running[:, :-1, :]) < 0
        shift = torch.zeros_like(increment)
        shift[:, 1:, :] = wrapped * -1.0
        if wide:
            phase = torch.cumsum(increment.to(torch.float64) + shift.to(torch.float64), dim=1)
            sines = torch.sin(phase * 2 * math.pi).to(increment.dtype)
        else:
            sines = torch.sin(torch.cumsum(increment + shift, dim=1) * 2 * math.pi)
        sines = sines * self.sine_amplitude
        uv = (f0 > self.voiced_threshold).to(torch.float32)
        uv = F.interpolate(
            uv.transpose(2, 1), scale_factor=float(upsample_factor), mode="nearest"
        ).transpose(2, 1)
        return self._add_noise(sines, uv, noise), uv


class HarmonicSource(nn.Module):
    """NSF excitation: harmonic sines merged by `tanh(Linear(harmonic_num + 1 -> 1))`.

    The original's `SourceModuleHnNSF`. Its noise branch (one more normal draw of [B, N, 1])
    never reaches the decoder output, so it is not drawn here; it was the last draw of
    `infer`, so skipping it changes no other random number.
    """

    def __init__(
        self,
        sampling_rate: int,
        harmonic_num: int = 8,
        sine_amplitude: float = 0.1,
        noise_std: float = 0.003,
        voiced_threshold: float = 0.0,
        mode: SineMode = "sample-rate",
    ):
        super().__init__()
        self.sine_generator = SineGenerator(
            sampling_rate, harmonic_num, sine_amplitude, noise_std, voiced_threshold, mode=mode
        )
        self.l_linear = nn.Linear(harmonic_num + 1, 1)

    def forward(self, f0: Tensor, noise: NoiseSource, upsample_factor: int | None = None) -> Tensor:
        """f0 as SineGenerator takes it -> excitation [B, N, 1] in (-1, 1)."""
        sines, _ = self.sine_generator(f0, noise, upsample_factor)
        return torch.tanh(self.l_linear(sines.to(self.l_linear.weight.dtype)))


def _activation(channels: int, snake: bool) -> nn.Module | None:
    return SnakeAlias(channels) if snake else None


class ResBlock1(nn.Module):
    """HiFiGAN residual block type 1: per dilation, act -> conv(dilated) -> act -> conv, + skip.

    Keys: convs1.N and convs2.N (weight-normed Conv1d), activations.M (snake only; M = 2N is
    the one before convs1.N, 2N+1 the one before convs2.N). [B, C, T] -> [B, C, T].
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation: Sequence[int] = (1, 3, 5),
        snake: bool = False,
    ):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    1,
                    dilation=d,
                    padding=same_padding(kernel_size, d),
                )
            )
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, 1, padding=same_padding(kernel_size))
            )
            for _ in dilation
        )
        self.activations = (
            nn.ModuleList(SnakeAlias(channels) for _ in range(2 * len(dilation))) if snake else None
        )

    def _act(self, x: Tensor, index: int) -> Tensor:
        if self.activations is None:
            return F.leaky_relu(x, LEAKY_RELU_SLOPE)
        return self.activations[index](x)

    def forward(self, x: Tensor) -> Tensor:
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            residual = conv1(self._act(x, 2 * i))
            residual = conv2(self._act(residual, 2 * i + 1))
            x = residual + x
        return x


class ResBlock2(nn.Module):
    """HiFiGAN residual block type 2: per dilation, act -> conv(dilated), + skip.

    Keys: convs.N (weight-normed Conv1d), activations.N (snake only). [B, C, T] -> [B, C, T].
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        dilation: Sequence[int] = (1, 3),
        snake: bool = False,
    ):
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    1,
                    dilation=d,
                    padding=same_padding(kernel_size, d),
                )
            )
            for d in dilation
        )
        self.activations = (
            nn.ModuleList(SnakeAlias(channels) for _ in range(len(dilation))) if snake else None
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            if self.activations is None:
                residual = F.leaky_relu(x, LEAKY_RELU_SLOPE)
            else:
                residual = self.activations[i](x)
            x = conv(residual) + x
        return x


class NsfHifiganGenerator(nn.Module):
    """NSF-HiFiGAN: the so-vits-svc 4.1 decoder (or its snake variant), or openvpi's vocoder.

    variant="so-vits-svc" (default): built from the model section of a so-vits-svc config
    (in_channels = inter_channels). Keys equal the original `dec.*` keys:
    m_source.l_linear, noise_convs.N, conv_pre, ups.N, resblocks.N, conv_post, cond, and
    with `snake=True` also snakes.N, snake_post and each resblock's activations.

    variant="openvpi": built from an openvpi config.json (in_channels = num_mels,
    gin_channels = 0). Transposed convolutions are padded by (kernel - rate) // 2 and the
    excitation's strided convolutions by stride // 2 (so-vits-svc rounds both up), and the
    source runs SineGenerator's "frame-rate-float64" mode. Keys are the same less `cond`.

    gin_channels = 0 means no speaker conditioning: no `cond` layer.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        gin_channels: int,
        sampling_rate: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        snake: bool = False,
        harmonic_num: int = 8,
        variant: GeneratorVariant = "so-vits-svc",
    ):
        super().__init__()
        if variant not in ("so-vits-svc", "openvpi"):
            raise ValueError(f"unknown NSF-HiFiGAN variant {variant!r}")
        if resblock not in ("1", "2"):
            raise ConfigError(
                f"resblock must be '1' or '2', got {resblock!r}", where="model.resblock"
            )
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ConfigError(
                "upsample_rates and upsample_kernel_sizes differ in length",
                where="model.upsample_kernel_sizes",
            )
        if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
            raise ConfigError(
                "resblock_kernel_sizes and resblock_dilation_sizes differ in length",
                where="model.resblock_dilation_sizes",
            )
        self.snake = snake
        self.variant: GeneratorVariant = variant
        # so-vits-svc rounds these paddings up, openvpi down (equal for even differences).
        round_up = 1 if variant == "so-vits-svc" else 0
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upsample_rates = tuple(int(u) for u in upsample_rates)
        self.upsample_factor = math.prod(self.upsample_rates)
        self.sampling_rate = sampling_rate

        self.m_source = HarmonicSource(
            sampling_rate,
            harmonic_num,
            mode="sample-rate" if variant == "so-vits-svc" else "frame-rate-float64",
        )
        self.noise_convs = nn.ModuleList()
        self.conv_pre = weight_norm(
            nn.Conv1d(in_channels, upsample_initial_channel, 7, 1, padding=3)
        )
        self.ups = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            channels_in = upsample_initial_channel // (2**i)
            channels_out = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(
                weight_norm(
                    nn.ConvTranspose1d(
                        channels_in,
                        channels_out,
                        kernel,
                        rate,
                        padding=(kernel - rate + round_up) // 2,
                    )
                )
            )
            if i + 1 < len(upsample_rates):
                # Brings the sample-rate excitation down to this stage's rate.
                stride = math.prod(upsample_rates[i + 1 :])
                self.noise_convs.append(
                    nn.Conv1d(
                        1,
                        channels_out,
                        kernel_size=stride * 2,
                        stride=stride,
                        padding=(stride + round_up) // 2,
                    )
                )
            else:
                self.noise_convs.append(nn.Conv1d(1, channels_out, kernel_size=1))

        block = ResBlock1 if resblock == "1" else ResBlock2
        self.resblocks = nn.ModuleList()
        self.snakes = nn.ModuleList() if snake else None
        channels = upsample_initial_channel
        for i in range(self.num_upsamples):
            channels = upsample_initial_channel // (2 ** (i + 1))
            if self.snakes is not None:
                self.snakes.append(SnakeAlias(upsample_initial_channel // (2**i)))
            for kernel, dilations in zip(
                resblock_kernel_sizes, resblock_dilation_sizes, strict=True
            ):
                self.resblocks.append(block(channels, kernel, dilations, snake=snake))

        self.conv_post = weight_norm(nn.Conv1d(channels, 1, 7, 1, padding=3))
        self.snake_post = SnakeAlias(channels) if snake else None
        self.cond = (
            nn.Conv1d(gin_channels, upsample_initial_channel, 1) if gin_channels > 0 else None
        )
        self.fast_cpu_inference = False
        self._pack_cache: dict[str, tuple[_SourceStamp, _FastModule]] = {}

    @property
    def onnx_compatible(self) -> bool:
        """Whether the source runs so-vits-svc's ONNX-export algorithm (frame-rate phase).

        Only the "so-vits-svc" variant can switch; openvpi's has one algorithm.
        """
        return self.m_source.sine_generator.onnx_compatible

    @onnx_compatible.setter
    def onnx_compatible(self, value: bool) -> None:
        if self.variant != "so-vits-svc":
            raise ValueError(f"the {self.variant} generator has no ONNX-compatible mode")
        self.m_source.sine_generator.onnx_compatible = value

    def excitation(self, f0: Tensor, noise: NoiseSource) -> Tensor:
        """Frame-rate f0 [B, T] Hz -> harmonic excitation [B, 1, T * upsample_factor]."""
        if self.m_source.sine_generator.takes_frame_rate_f0:
            source = self.m_source(f0, noise, self.upsample_factor)
        else:
            f0_samples = F.interpolate(
                f0[:, None], scale_factor=float(self.upsample_factor), mode="nearest"
            ).transpose(1, 2)
            source = self.m_source(f0_samples, noise)
        return source.transpose(1, 2)

    def _conditioning(self, g: Tensor) -> Tensor:
        if self.cond is None:
            raise ValueError("this generator has no speaker conditioning (gin_channels=0)")
        return self.cond(g)

    def _stage_activation(self, x: Tensor, stage: int) -> Tensor:
        if self.snakes is None:
            return F.leaky_relu(x, LEAKY_RELU_SLOPE)
        return self.snakes[stage](x)

    def decode(self, x: Tensor, excitation: Tensor, g: Tensor | None = None) -> Tensor:
        """Frames [B, in, T], excitation [B, 1, N], speaker [B, gin, 1 or T] -> audio [B, 1, N].

        `g` must be None when gin_channels is 0.

        With `fast_cpu_inference` on (see `enable_fast_cpu_inference`), CPU calls without
        autograd take the fast channels-last path; otherwise the original operation order.
        """
        if self.uses_fast_path(x):
            return self._decode_fast(x, excitation, g)
        x = self.conv_pre(x)
        if g is not None:
            x = x + self._conditioning(g)
        for i in range(self.num_upsamples):
            x = self._stage_activation(x, i)
            x = self.ups[i](x)
            x = x + self.noise_convs[i](excitation)
            total = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                total += self.resblocks[i * self.num_kernels + j](x)
            x = total / self.num_kernels
        if self.snake_post is None:
            x = F.leaky_relu(x, FINAL_LEAKY_RELU_SLOPE)
        else:
            x = self.snake_post(x)
        return torch.tanh(self.conv_post(x))

    def forward(
        self, x: Tensor, f0: Tensor, g: Tensor | None = None, noise: NoiseSource | None = None
    ) -> Tensor:
        """Frames [B, in, T], f0 [B, T] Hz, speaker [B, gin, 1 or T] -> audio [B, 1, T * hop].

        Frames are latents (so-vits-svc) or a natural-log mel (openvpi).

        `noise` gives the source's random draws (a fresh unseeded NoiseSource if None).
        """
        if noise is None:
            noise = NoiseSource()
        return self.decode(x, self.excitation(f0, noise), g)

    # ----- fast CPU inference -------------------------------------------------------------
    # The fast path keeps activations as [B, C, 1, T] channels-last tensors (memory [B, T, C])
    # so torch's oneDNN convolutions skip their layout conversions, caches the converted
    # weights, works in place where the original allocated, computes the first leaky ReLU
    # of a stage once for all its residual blocks, and runs each transposed convolution as
    # one matrix product (polyphase form). The maths is the same; only the order of float
    # additions inside each convolution differs, so audio differs from the original's by
    # about 1e-6.

    def uses_fast_path(self, x: Tensor) -> bool:
        """Whether `decode` takes the fast channels-last path for this input."""
        return (
            self.fast_cpu_inference
            and self.snakes is None
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16)  # bf16: native on some CPUs
            and not torch.is_grad_enabled()
            and torch.backends.mkldnn.is_available()
            and bool(torch.backends.mkldnn.enabled)
        )

    def _cached(self, name: str, module: nn.Module, build: Callable[[nn.Module], _PackT]) -> _PackT:
        """`build(module)`, reused until the module's weights change."""
        sources = _weight_sources(module)
        entry = self._pack_cache.get(name)
        if entry is not None and entry[0].matches(sources):
            packed = entry[1]
            assert isinstance(packed, (_ChannelsLastConv, _PolyphaseUpsample))
            return cast(_PackT, packed)
        built = build(module)
        stamp = _SourceStamp.of(sources)
        if stamp is not None:
            self._pack_cache[name] = (stamp, built)
        return built

    def _conv(self, name: str) -> _ChannelsLastConv:
        return self._cached(name, self.get_submodule(name), _ChannelsLastConv.from_conv)

    def _decode_fast(self, x: Tensor, excitation: Tensor, g: Tensor | None) -> Tensor:
        batch = x.shape[0]
        source = excitation.unsqueeze(2).contiguous()  # [B, 1, 1, N]: one channel, any layout
        x = self._conv("conv_pre")(_to_channels_last(x))
        if g is not None:
            x.add_(self._conditioning(g).unsqueeze(2))
        for i in range(self.num_upsamples):
            x = F.leaky_relu_(x, LEAKY_RELU_SLOPE)
            x = self._cached(f"ups.{i}", self.ups[i], _PolyphaseUpsample.from_transposed)(x)
            x = self._conv(f"noise_convs.{i}")(source).add_(x)
            activated = F.leaky_relu(x, LEAKY_RELU_SLOPE)  # every resblock starts with this
            total: Tensor | None = None
            for j in range(self.num_kernels):
                y = self._resblock_fast(i * self.num_kernels + j, x, activated)
                total = y if total is None else total.add_(y)
            assert total is not None
            x = total.div_(self.num_kernels)
        x = F.leaky_relu_(x, FINAL_LEAKY_RELU_SLOPE)
        audio = self._conv("conv_post")(x)
        return torch.tanh_(audio).reshape(batch, 1, -1)

    def _resblock_fast(self, index: int, x: Tensor, activated: Tensor) -> Tensor:
        """One residual block on channels-last x; `activated` is leaky_relu(x), shared."""
        block = self.resblocks[index]
        prefix = f"resblocks.{index}"
        names: list[tuple[str, str | None]]
        if isinstance(block, ResBlock1):
            count = len(block.convs1)
            names = [(f"{prefix}.convs1.{k}", f"{prefix}.convs2.{k}") for k in range(count)]
        else:
            assert isinstance(block, ResBlock2)
            names = [(f"{prefix}.convs.{k}", None) for k in range(len(block.convs))]
        y = x
        for k, (first, second) in enumerate(names):
            t = activated if k == 0 else F.leaky_relu(y, LEAKY_RELU_SLOPE)
            t = self._conv(first)(t)
            if second is not None:
                t = self._conv(second)(F.leaky_relu_(t, LEAKY_RELU_SLOPE))
            # conv(...) + residual, accumulated into the fresh conv output: the block's
            # input x is shared with its sibling blocks and must not be written to.
            y = t.add_(y)
        return y

    def __getstate__(self) -> dict[str, object]:
        # Converted weights are a cache of the parameters: copies rebuild their own.
        state = self.__dict__.copy()
        state["_pack_cache"] = {}
        return state


def enable_fast_cpu_inference(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every NSF-HiFiGAN decoder inside `model` to (or off) the fast CPU path.

    The fast path applies to CPU float32 (and bfloat16) calls made without autograd
    (`torch.no_grad()` or `torch.inference_mode()`), for the "nsf-hifigan" decoder and
    openvpi's vocoder; other calls (training, GPU, fp16, the snake decoder) keep the
    original operation order. It
    makes the decoder about 1.5x faster and matches the original within about 1e-5 on audio
    instead of bit for bit.
    It keeps a converted copy of the decoder's weights (about 4 bytes per parameter), made
    on first use and remade whenever the weights change. Returns `model`.
    """
    for module in model.modules():
        if isinstance(module, NsfHifiganGenerator):
            module.fast_cpu_inference = enabled
            if not enabled:
                module._pack_cache.clear()  # free the converted weights
    return model


def _to_channels_last(x: Tensor) -> Tensor:
    """[B, C, T] -> [B, C, 1, T] stored as [B, T, C] (channels last)."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def _tensor_attribute(module: nn.Module, name: str) -> Tensor:
    value = getattr(module, name)
    assert isinstance(value, Tensor)
    return value


def _has_live_weight_norm(module: nn.Module) -> bool:
    """Weight-normed and not folded: the weight is recomputed from g and v on every call."""
    return "weight_v" in module._parameters and "weight" not in module._buffers


def _weight_sources(module: nn.Module) -> list[Tensor]:
    """The tensors a convolution's effective weight and bias are computed from."""
    names = ["weight_v", "weight_g"] if _has_live_weight_norm(module) else ["weight"]
    if module._parameters.get("bias") is not None:
        names.append("bias")
    return [_tensor_attribute(module, name) for name in names]


def _effective_weight(module: nn.Module) -> Tensor:
    """The weight a forward call would use (weight norm applied if it is not folded)."""
    if _has_live_weight_norm(module):
        v = _tensor_attribute(module, "weight_v")
        g = _tensor_attribute(module, "weight_g")
        return torch._weight_norm(v, g, 0)
    return _tensor_attribute(module, "weight")


class _SourceStamp:
    """Identifies the exact contents of some tensors, to know when a cached packing is stale.

    Holds a view of each tensor (so its storage cannot be freed and reused at the same
    address) and the tensor's in-place version counter.
    """

    def __init__(self, views: list[Tensor], versions: list[int]):
        self.views = views
        self.versions = versions

    @classmethod
    def of(cls, sources: list[Tensor]) -> _SourceStamp | None:
        if any(t.is_inference() for t in sources):
            return None  # inference tensors keep no version counter: do not cache
        return cls([t.detach() for t in sources], [t._version for t in sources])

    def matches(self, sources: list[Tensor]) -> bool:
        if len(sources) != len(self.views):
            return False
        for source, view, version in zip(sources, self.views, self.versions, strict=True):
            if source.is_inference() or source.data_ptr() != view.data_ptr():
                return False
            if source._version != version or source.dtype != view.dtype:
                return False
        return True


class _ChannelsLastConv:
    """A 1-D convolution run as a 2-D convolution on channels-last tensors.

    Tensors are [B, C, 1, T] in channels-last memory (stored as [B, T, C]); for these,
    torch's CPU convolution (oneDNN) needs no layout conversion and runs much faster than
    on [B, C, T]. The weight is converted once, when this object is built.
    """

    def __init__(
        self, weight: Tensor, bias: Tensor | None, *, padding: int, stride: int, dilation: int
    ):
        self.weight = weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
        self.bias = None if bias is None else bias.detach()
        self.padding = (0, padding)
        self.stride = (1, stride)
        self.dilation = (1, dilation)

    @classmethod
    def from_conv(cls, conv: nn.Module) -> _ChannelsLastConv:
        assert isinstance(conv, nn.Conv1d) and conv.groups == 1
        padding = conv.padding
        assert isinstance(padding, tuple)
        return cls(
            _effective_weight(conv),
            conv.bias,
            padding=padding[0],
            stride=conv.stride[0],
            dilation=conv.dilation[0],
        )

    def __call__(self, x: Tensor) -> Tensor:
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation
        ).contiguous(memory_format=torch.channels_last)


class _PolyphaseUpsample:
    """A transposed 1-D convolution as one ordinary convolution (polyphase form).

    With stride u and kernel K, output sample m*u + r is the sum over i of
    weight[:, :, i*u + r] applied to input m - i, for i < ceil(K / u). So one convolution
    with ceil(K / u) taps and u * C_out output channels, (phase r, channel), gives all u
    phases at once; read as [T', u, C_out] it is the uncropped output. It runs on oneDNN
    like the other convolutions, with no zero-stuffed input. Channels-last in and out.
    """

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None,
        *,
        rate: int,
        taps: int,
        kernel_size: int,
        padding: int,
        output_padding: int,
    ):
        self.weight = weight  # [rate * C_out, C_in, 1, taps], channels-last
        self.bias = bias
        self.rate = rate
        self.taps = taps
        self.kernel_size = kernel_size
        self.padding = padding
        self.output_padding = output_padding
        self.out_channels = weight.shape[0] // rate

    @classmethod
    def from_transposed(cls, conv: nn.Module) -> _PolyphaseUpsample:
        assert isinstance(conv, nn.ConvTranspose1d) and conv.groups == 1
        assert conv.dilation[0] == 1
        weight = _effective_weight(conv).detach()  # [C_in, C_out, K]
        in_channels, out_channels, kernel = weight.shape
        rate = conv.stride[0]
        taps = -(-kernel // rate)
        padded = F.pad(weight, (0, taps * rate - kernel))
        # [C_in, C_out, i, r] -> [(r, C_out), C_in, 1, tap j = taps-1-i]
        phases = padded.reshape(in_channels, out_channels, taps, rate).flip(2)
        polyphase = phases.permute(3, 1, 0, 2).reshape(rate * out_channels, in_channels, 1, taps)
        bias = None if conv.bias is None else conv.bias.detach().repeat(rate)
        padding = conv.padding
        output_padding = conv.output_padding
        assert isinstance(padding, tuple) and isinstance(output_padding, tuple)
        return cls(
            polyphase.contiguous(memory_format=torch.channels_last),
            bias,
            rate=rate,
            taps=taps,
            kernel_size=kernel,
            padding=padding[0],
            output_padding=output_padding[0],
        )

    def __call__(self, x: Tensor) -> Tensor:
        """[B, C_in, 1, T] -> [B, C_out, 1, L], L = (T - 1) * rate - 2 * padding + K."""
        batch, _, _, length = x.shape
        phases = F.conv2d(x, self.weight, self.bias, padding=(0, self.taps - 1))
        span = length + self.taps - 1
        # channels-last [B, rate * C_out, 1, T'] is stored as [B, T', rate, C_out]
        full = phases.permute(0, 2, 3, 1).reshape(batch, span * self.rate, self.out_channels)
        out_length = (length - 1) * self.rate - 2 * self.padding + self.kernel_size
        out_length += self.output_padding
        cropped = full[:, self.padding : self.padding + out_length]
        return cropped.permute(0, 2, 1).unsqueeze(2)
