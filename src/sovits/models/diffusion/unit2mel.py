"""Unit2Mel: so-vits-svc 4.1's diffusion model from content units, pitch and volume to a mel.

The conditioning is `unit_embed(units) + f0_embed(log(1 + f0 / 700)) +
volume_embed(volume)`, plus a speaker term when the model has several speakers and an
optional pitch-shift term (`aug_shift_embed`, training augmentation). It conditions a
`GaussianDiffusion` (state-dict prefix `decoder.`) whose WaveNet predicts noise.
Parameter names equal the original's, so its `model_*.pt` files load strictly.

Speakers can be given three ways: ids [B, 1], a fixed mix {id: weight}, or per-frame
weights [B, T, n_speakers]. The original's per-frame path crashes (its `init_spkmix`
references a missing attribute); here it is the weighted sum of speaker embeddings per
frame, which a one-hot weight turns back into the plain id.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sovits.errors import InputError
from sovits.models.diffusion.denoiser import WaveNet
from sovits.models.diffusion.gaussian import GaussianDiffusion
from sovits.models.noise import NoiseSource

DEFAULT_K_STEP = 100
"""Shallow-diffusion depth so-vits-svc's inference uses unless told otherwise (-ks)."""

DEFAULT_DIFFUSION_SEED = 52468
"""Seed of the noise when `infer` gets neither a NoiseSource nor a seed."""


class Unit2Mel(nn.Module):
    """Content units + f0 + volume (+ speaker) -> log-mel, by (shallow) diffusion.

    unit_channels: C, width of the content units (`data.encoder_out_channels`);
    n_speakers: speaker count (`model.n_spk`; 1 means no speaker embedding);
    use_pitch_aug: whether `aug_shift_embed` exists; n_mels: M, the vocoder's mel bins;
    n_layers, residual_channels (`n_chans`), hidden_channels (`n_hidden`): WaveNet
    size; timesteps: schedule length; k_step_max: deepest trained step (0 = all).
    """

    def __init__(
        self,
        unit_channels: int,
        n_speakers: int = 1,
        use_pitch_aug: bool = True,
        n_mels: int = 128,
        n_layers: int = 20,
        residual_channels: int = 512,
        hidden_channels: int = 256,
        timesteps: int = 1000,
        k_step_max: int = 0,
    ):
        super().__init__()
        self.unit_channels = unit_channels
        self.n_speakers = n_speakers
        self.hidden_channels = hidden_channels
        self.unit_embed = nn.Linear(unit_channels, hidden_channels)
        self.f0_embed = nn.Linear(1, hidden_channels)
        self.volume_embed = nn.Linear(1, hidden_channels)
        self.aug_shift_embed = (
            nn.Linear(1, hidden_channels, bias=False) if use_pitch_aug else None
        )
        self.spk_embed = nn.Embedding(n_speakers, hidden_channels) if n_speakers > 1 else None
        self.decoder = GaussianDiffusion(
            WaveNet(n_mels, n_layers, residual_channels, hidden_channels),
            n_mels=n_mels,
            timesteps=timesteps,
            k_step_max=k_step_max,
        )

    @property
    def n_mels(self) -> int:
        return self.decoder.n_mels

    @property
    def timesteps(self) -> int:
        return self.decoder.num_timesteps

    @property
    def k_step_max(self) -> int:
        """Deepest step the model denoises from (timesteps when trained on the full chain)."""
        return self.decoder.k_step_max

    # ------------------------------------------------------------------ conditioning

    def _frames(self, name: str, value: Tensor, batch: int, frames: int) -> Tensor:
        if value.dim() == 2:
            value = value.unsqueeze(-1)
        if value.dim() != 3 or value.shape[2] != 1 or value.shape[1] != frames or (
            value.shape[0] not in (1, batch)
        ):
            raise InputError(
                f"{name} must be [B, T, 1] = [{batch}, {frames}, 1], got {list(value.shape)}"
            )
        return value

    def _speaker_index(self, speaker: Tensor | int, batch: int, device: torch.device) -> Tensor:
        ids = torch.as_tensor(speaker, device=device)
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise InputError(f"speaker ids must be integers, got {ids.dtype}")
        ids = ids.long().reshape(-1, 1) if ids.dim() <= 1 else ids.long()
        if ids.dim() != 2 or ids.shape[1] != 1 or ids.shape[0] not in (1, batch):
            raise InputError(f"speaker ids must be [B, 1], got {list(ids.shape)}")
        self._check_speaker_range(ids.min().item(), ids.max().item())
        return ids

    def _check_speaker_range(self, low: int | float, high: int | float) -> None:
        if low < 0 or high >= self.n_speakers:
            raise InputError(
                f"speaker id out of range: this diffusion model has {self.n_speakers} speakers "
                f"(ids 0..{self.n_speakers - 1})"
            )

    def _speaker_term(
        self,
        x: Tensor,
        speaker: Tensor | int | None,
        speaker_mix: Mapping[int, float] | None,
        speaker_weights: Tensor | None,
    ) -> Tensor:
        given = [name for name, value in (
            ("speaker", speaker), ("speaker_mix", speaker_mix),
            ("speaker_weights", speaker_weights)) if value is not None]
        if self.spk_embed is None:
            return x
        if len(given) != 1:
            raise InputError(
                f"this diffusion model has {self.n_speakers} speakers: give exactly one of "
                f"speaker, speaker_mix or speaker_weights (got {', '.join(given) or 'none'})"
            )
        embed = self.spk_embed
        if speaker_mix is not None:
            if not speaker_mix:
                raise InputError("speaker_mix is empty")
            for key in speaker_mix:
                if isinstance(key, bool) or not isinstance(key, int):
                    raise InputError(f"speaker_mix keys must be speaker ids (int), got {key!r}")
            self._check_speaker_range(min(speaker_mix), max(speaker_mix))
            for key, weight in speaker_mix.items():
                ids = torch.tensor([[key]], dtype=torch.long, device=x.device)
                x = x + float(weight) * embed(ids)
            return x
        if speaker_weights is not None:
            batch, frames = x.shape[0], x.shape[1]
            if speaker_weights.dim() != 3 or tuple(speaker_weights.shape[1:]) != (
                frames, self.n_speakers
            ) or speaker_weights.shape[0] not in (1, batch):
                raise InputError(
                    f"speaker_weights must be [B, T, n_speakers] = "
                    f"[{batch}, {frames}, {self.n_speakers}], got {list(speaker_weights.shape)}"
                )
            weights = speaker_weights.to(device=embed.weight.device, dtype=embed.weight.dtype)
            return x + torch.matmul(weights, embed.weight)
        assert speaker is not None
        return x + embed(self._speaker_index(speaker, x.shape[0], x.device))

    def cond(
        self,
        units: Tensor,
        f0: Tensor,
        volume: Tensor,
        *,
        speaker: Tensor | int | None = None,
        speaker_mix: Mapping[int, float] | None = None,
        speaker_weights: Tensor | None = None,
        aug_shift: Tensor | None = None,
    ) -> Tensor:
        """The conditioning [B, H, T] of the denoiser.

        units: [B, T, C]; f0: [B, T, 1] Hz (0 = unvoiced); volume: [B, T, 1].
        Speaker (multi-speaker models only; ignored when n_speakers is 1), exactly one of:
        speaker: int64 ids [B, 1] (0-based, the config's `spk` values) or an int;
        speaker_mix: {id: weight}, sum of weight * embedding (weights used as given);
        speaker_weights: [B, T, n_speakers] per-frame weights, sum of w * embedding per frame.
        aug_shift: [B, 1, 1] or [B, T, 1] semitones, used when the model has
        `aug_shift_embed` (training augmentation; inference leaves it out).
        """
        if units.dim() != 3 or units.shape[2] != self.unit_channels:
            raise InputError(
                f"units must be [B, T, {self.unit_channels}], got {list(units.shape)}"
            )
        batch, frames = units.shape[0], units.shape[1]
        f0 = self._frames("f0", f0, batch, frames)
        volume = self._frames("volume", volume, batch, frames)
        x = self.unit_embed(units) + self.f0_embed((1 + f0 / 700).log()) + self.volume_embed(
            volume
        )
        x = self._speaker_term(x, speaker, speaker_mix, speaker_weights)
        if self.aug_shift_embed is not None and aug_shift is not None:
            x = x + self.aug_shift_embed(aug_shift / 5)
        return x.transpose(1, 2)

    # ------------------------------------------------------------------ use

    @torch.no_grad()
    def infer(
        self,
        units: Tensor,
        f0: Tensor,
        volume: Tensor,
        *,
        speaker: Tensor | int | None = None,
        speaker_mix: Mapping[int, float] | None = None,
        speaker_weights: Tensor | None = None,
        aug_shift: Tensor | None = None,
        gt_spec: Tensor | None = None,
        k_step: int = DEFAULT_K_STEP,
        speedup: int = 10,
        method: str | None = "dpm-solver++",
        noise: NoiseSource | None = None,
        seed: int = DEFAULT_DIFFUSION_SEED,
    ) -> Tensor:
        """Render a log-mel [B, T, M] (the vocoder's natural-log scale).

        Inputs as for `cond`. gt_spec [B, T, M]: the mel to refine (shallow diffusion,
        denoised from step k_step - 1; k_step <= k_step_max); None: sample from pure
        noise over the whole chain (only for models with k_step_max 0; k_step ignored).
        speedup 1 runs plain DDPM over every step; otherwise `method` ('ddim', 'pndm',
        'dpm-solver', 'dpm-solver++', 'unipc') samples with k_step // speedup steps.
        Random draws come from `noise`, else from a NoiseSource seeded with `seed` on
        the units' device. Raises InputError for unusable inputs or options.
        """
        condition = self.cond(
            units,
            f0,
            volume,
            speaker=speaker,
            speaker_mix=speaker_mix,
            speaker_weights=speaker_weights,
            aug_shift=aug_shift,
        )
        if noise is None:
            noise = NoiseSource.from_seed(seed, units.device)
        return self.decoder.sample(
            condition, gt_spec=gt_spec, k_step=k_step, speedup=speedup, method=method, noise=noise
        )

    def training_loss(
        self,
        units: Tensor,
        f0: Tensor,
        volume: Tensor,
        mel: Tensor,
        *,
        speaker: Tensor | int | None = None,
        aug_shift: Tensor | None = None,
        steps: Tensor | None = None,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The diffusion training loss (scalar): MSE of the predicted noise.

        units, f0, volume, speaker, aug_shift as for `cond`; mel: [B, T, M] target
        log-mel. steps [B] int64 in [0, k_step_max) and noise [B, 1, M, T] are drawn
        in that order from `generator` (or the global RNG) unless given.
        """
        condition = self.cond(units, f0, volume, speaker=speaker, aug_shift=aug_shift)
        return self.decoder.training_loss(
            condition, mel, steps=steps, noise=noise, generator=generator
        )

    # Calling the module runs `training_loss`, so distributed wrappers that call it see it.
    forward = training_loss
