"""Shallow diffusion and diffusion-only rendering at conversion time (-shd, -od, -se, -ks).

so-vits-svc 4.1's `Svc.infer` diffusion branch: the synthesizer's output is analysed by
the NSF-HiFiGAN vocoder's mel front end, noised to step k_step and denoised by the
diffusion model conditioned on the units, f0, volume and speaker; the vocoder renders
the refined mel. With only diffusion, the model starts from pure noise and no
synthesizer is involved.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sovits.config.diffusion import DiffusionConfig
from sovits.errors import CheckpointError, MissingFileError
from sovits.models.diffusion.unit2mel import DEFAULT_K_STEP, Unit2Mel
from sovits.models.noise import NoiseSource
from sovits.models.nsf_vocoder import NsfHifiganVocoder

__all__ = [
    "DEFAULT_DIFFUSION_CONFIG",
    "DEFAULT_DIFFUSION_MODEL",
    "DEFAULT_K_STEP",
    "DiffusionRenderer",
]

logger = logging.getLogger(__name__)

DEFAULT_DIFFUSION_MODEL = Path("logs/44k/diffusion/model_0.pt")
"""The original's -dm default."""
DEFAULT_DIFFUSION_CONFIG = Path("logs/44k/diffusion/config.yaml")
"""The original's -dc default."""


def _fit_frames(mel: Tensor, frames: int) -> Tensor:
    """Crop, or repeat the last frame of, a mel [B, T', M] to T = `frames`."""
    if mel.shape[1] >= frames:
        return mel[:, :frames]
    tail = mel[:, -1:].expand(-1, frames - mel.shape[1], -1)
    return torch.cat([mel, tail], dim=1)


@dataclass
class DiffusionRenderer:
    """A loaded diffusion model with its config and NSF-HiFiGAN vocoder."""

    model: Unit2Mel
    config: DiffusionConfig
    vocoder: NsfHifiganVocoder

    @classmethod
    def load(
        cls,
        model_path: str | os.PathLike[str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        *,
        device: torch.device | str = "cpu",
    ) -> DiffusionRenderer:
        """Load the diffusion model (default the original's logs/44k/diffusion/model_0.pt),
        its config (default: config.yaml beside a given model, else the original's
        logs/44k/diffusion/config.yaml) and the vocoder its `vocoder.ckpt` names.

        Raises MissingFileError for an absent model, config or vocoder; ConfigError /
        CheckpointError for files that cannot be used.
        """
        from sovits.checkpoints.diffusion import load_diffusion_model, resolve_vocoder_path
        from sovits.checkpoints.vocoder import load_nsf_hifigan

        model_file = Path(model_path) if model_path is not None else DEFAULT_DIFFUSION_MODEL
        config_file = Path(config_path) if config_path is not None else (
            model_file.parent / "config.yaml"
            if model_path is not None
            else DEFAULT_DIFFUSION_CONFIG
        )
        for what, path, flag in (("diffusion model", model_file, "-dm"),
                                 ("diffusion config", config_file, "-dc")):
            if not path.is_file():
                raise MissingFileError(
                    f"{what} not found",
                    where=path,
                    hint=f"pass it with {flag}; train one with `sovits train-diff`",
                )
        model, config = load_diffusion_model(model_file, config_file, device=device)
        vocoder_path = resolve_vocoder_path(config, config_file)
        if vocoder_path is None:
            raise MissingFileError(
                f"the NSF-HiFiGAN vocoder named by vocoder.ckpt ({config.vocoder.ckpt}) "
                "was not found",
                where=config_file,
                hint="put the openvpi nsf_hifigan folder (config.json + model) there, or "
                "fix vocoder.ckpt; see `sovits pretrained list`",
            )
        vocoder = load_nsf_hifigan(vocoder_path, device=device, mel_type=config.vocoder.type)
        if vocoder.num_mels != model.n_mels:
            raise CheckpointError(
                f"the diffusion model makes {model.n_mels}-bin mels but the vocoder takes "
                f"{vocoder.num_mels}",
                where=vocoder_path,
            )
        return cls(model=model, config=config, vocoder=vocoder)

    @property
    def sample_rate(self) -> int:
        """Rate of the diffusion model's audio, Hz (`data.sampling_rate`)."""
        return self.config.data.sampling_rate

    @property
    def hop_length(self) -> int:
        """Samples per frame (`data.block_size`)."""
        return self.config.data.block_size

    def check_fits(self, sample_rate: int, hop_length: int, unit_channels: int) -> None:
        """Refuse a diffusion model whose rate, hop or unit width differ from the
        synthesizer's (it would be conditioned on the wrong frames or features)."""
        problems = []
        if self.sample_rate != sample_rate:
            problems.append(f"sampling rate {self.sample_rate} vs the model's {sample_rate}")
        if self.hop_length != hop_length:
            problems.append(f"block_size {self.hop_length} vs the model's hop {hop_length}")
        if self.config.data.encoder_out_channels != unit_channels:
            problems.append(
                f"encoder_out_channels {self.config.data.encoder_out_channels} vs the "
                f"model's ssl_dim {unit_channels}"
            )
        if problems:
            raise CheckpointError(
                "the diffusion model does not fit the so-vits model: " + "; ".join(problems),
                hint="use the diffusion model trained on the same dataset and encoder",
            )

    def render(
        self,
        units: Tensor,
        f0: Tensor,
        volume: Tensor,
        *,
        speaker: Tensor,
        noise: NoiseSource,
        audio: Tensor | None = None,
        k_step: int | None = None,
        speedup: int | None = None,
        method: str | None = None,
    ) -> Tensor:
        """Audio [N] from units [1, C, T], f0 [1, T] Hz and volume [1, T].

        speaker: [[id]] or per-frame weights [T, n_speakers]. With `audio` (the
        synthesizer's output [T * hop]) this is shallow diffusion from step k_step
        (default 100); without, diffusion from pure noise (only diffusion). speedup and
        method default to the config's `infer` section.
        """
        frames = units.shape[-1]
        gt_spec = None
        if audio is not None:
            gt_spec = _fit_frames(self.vocoder.extract(audio[None], self.sample_rate), frames)
        mixing = speaker.is_floating_point()
        steps = k_step if k_step is not None else (
            DEFAULT_K_STEP if gt_spec is not None else self.model.timesteps
        )
        mel = self.model.infer(
            units.transpose(1, 2),
            f0[:, :, None],
            volume[:, :, None],
            gt_spec=gt_spec,
            k_step=steps,
            speedup=speedup if speedup is not None else self.config.infer.speedup,
            method=method if method is not None else self.config.infer.method,
            noise=noise,
            speaker=None if mixing else speaker,
            speaker_weights=speaker[None] if mixing else None,
        )
        return self.vocoder.infer(mel, f0[:, :, None], noise=noise)[0]
