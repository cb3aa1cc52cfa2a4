"""A tiny preprocessed diffusion dataset and config for the diffusion training tests.

`build_project(root)` writes, under `root`, what a user has after `sovits resample`,
`sovits preprocess-config` and `sovits preprocess --use-diff`, scaled down: two singers
of 8 kHz harmonic tones, features from the download-free `spectral` encoder and dio,
a 16-band vocoder mel at hop 128, filelists and configs/diffusion.yaml for a Unit2Mel of
a few thousand parameters. `write_tiny_vocoder` adds a matching random NSF-HiFiGAN
folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from sovits.config import parse_svc_config, template_config
from sovits.config.diffusion import DiffusionConfig, parse_diffusion_config, save_diffusion_config
from sovits.data.diffusion_dataset import DiffusionBatch
from sovits.data.filelists import build_diffusion_config, build_svc_config, write_filelist
from sovits.data.preprocess import PreprocessSettings, VocoderMelSettings, preprocess_dataset

RATE = 8000
HOP = 128
N_MELS = 16
UNIT_DIM = 64  # the spectral encoder's width
SPEAKERS = {"alice": 0, "bob": 1}
MEL = VocoderMelSettings(
    sample_rate=RATE, n_mels=N_MELS, n_fft=512, win_length=512, hop_length=HOP,
    fmin=40.0, fmax=4000.0,
)
SHORT_CLIP = "alice/alice_short.wav"
"""A 0.5 s clip: shorter than duration (0.5 s) + 0.1 s, so training leaves it out."""


def harmonic_tone(seconds: float, f0: float, *, seed: int) -> np.ndarray:
    """A sung-like tone: 6 harmonics of a wobbling f0 with a little noise, float32 [N]."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    track = f0 * (1.0 + 0.05 * np.sin(2 * np.pi * 2.5 * t))
    phase = 2 * np.pi * np.cumsum(track) / RATE
    wave = sum((0.3 / k) * np.sin(k * phase) for k in range(1, 7))
    wave = wave + 0.003 * rng.standard_normal(len(t))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) * 20.0)
    return (wave * fade).astype(np.float32)


def diffusion_dict(root: Path, **train: Any) -> dict[str, Any]:
    """The tiny diffusion.yaml as a dict (expdir under `root`)."""
    svc = _svc_config()
    data = build_diffusion_config(SPEAKERS, svc)
    data["data"].update(
        duration=0.5,
        training_files="filelists/train.txt",
        validation_files="filelists/val.txt",
    )
    data["model"].update(n_layers=2, n_chans=8, n_hidden=8, timesteps=100, k_step_max=0,
                         n_spk=2, use_pitch_aug=True)
    data["device"] = "cpu"
    data["vocoder"]["ckpt"] = "pretrain/nsf_hifigan_tiny/model"
    data["env"]["expdir"] = str(root / "logs" / "44k" / "diffusion")
    data["train"].update(
        num_workers=0, batch_size=4, cache_all_data=True, cache_fp16=False, epochs=10000,
        interval_log=5, interval_val=10, interval_force_save=20, lr=2e-3, decay_step=1000,
        gamma=0.5, save_opt=False,
    )
    data["train"].update(train)
    return data


def tiny_diffusion_config(root: Path, **train: Any) -> DiffusionConfig:
    return parse_diffusion_config(diffusion_dict(root, **train), source="tiny diffusion")


def _svc_config() -> Any:
    data = template_config(tiny=True).to_dict()
    data["data"].update(sampling_rate=RATE, hop_length=HOP, filter_length=512, win_length=512,
                        mel_fmax=4000)
    data["model"].update(upsample_rates=[8, 4, 4], upsample_kernel_sizes=[16, 8, 8])
    base = parse_svc_config(data, source="tiny")
    return build_svc_config(SPEAKERS, speech_encoder="spectral", base=base)


def build_project(root: Path) -> Path:
    """The dataset, features, filelists and configs/diffusion.yaml under `root`."""
    dataset = root / "dataset" / "44k"
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for speaker, f0 in (("alice", 220.0), ("bob", 140.0)):
        folder = dataset / speaker
        folder.mkdir(parents=True)
        for index in range(4):
            name = f"{speaker}_{index}.wav"
            wave = harmonic_tone(0.9 + 0.15 * index, f0 * (1 + 0.04 * index), seed=index)
            soundfile.write(folder / name, wave, RATE, subtype="PCM_16")
            lines["val" if index == 0 else "train"].append(f"dataset/44k/{speaker}/{name}")
    soundfile.write(dataset / SHORT_CLIP, harmonic_tone(0.5, 250.0, seed=9), RATE,
                    subtype="PCM_16")
    lines["train"].append(f"dataset/44k/{SHORT_CLIP}")
    report = preprocess_dataset(
        dataset,
        _svc_config(),
        PreprocessSettings(f0_method="dio", use_diff=True, vocoder_mel=MEL),
    )
    assert report.ok, report.failed
    write_filelist(lines["train"], root / "filelists" / "train.txt")
    write_filelist(lines["val"], root / "filelists" / "val.txt")
    save_diffusion_config(tiny_diffusion_config(root), root / "configs" / "diffusion.yaml")
    return root


def write_tiny_vocoder(folder: Path, *, seed: int = 0) -> Path:
    """A random openvpi NSF-HiFiGAN folder (config.json + model) for 16 mels at hop 128."""
    from sovits.checkpoints.vocoder import parse_nsf_hifigan_config
    from sovits.models.vocoder import NsfHifiganGenerator

    config = {
        "resblock": "1",
        "upsample_rates": [8, 4, 4],
        "upsample_kernel_sizes": [16, 8, 8],
        "upsample_initial_channel": 16,
        "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3]],
        "num_mels": N_MELS,
        "sampling_rate": RATE,
        "n_fft": 512,
        "win_size": 512,
        "hop_size": HOP,
        "fmin": 40,
        "fmax": 4000,
    }
    arguments, _ = parse_nsf_hifigan_config(config)
    torch.manual_seed(seed)
    generator = NsfHifiganGenerator(**arguments)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.save({"generator": generator.state_dict()}, folder / "model")
    return folder / "model"


def synthetic_batches(
    count: int, *, units: int, n_mels: int, frames: int = 20, batch_size: int = 2,
    n_speakers: int = 2, seed: int = 0,
) -> list[DiffusionBatch]:
    """Random DiffusionBatches of the given widths (for models without a dataset)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        batches.append(
            DiffusionBatch(
                units=torch.randn(batch_size, frames, units, generator=generator),
                f0=100.0 + 300.0 * torch.rand(batch_size, frames, 1, generator=generator),
                volume=torch.rand(batch_size, frames, 1, generator=generator),
                mel=-10.0 + 8.0 * torch.rand(batch_size, frames, n_mels, generator=generator),
                speaker=torch.arange(batch_size).reshape(-1, 1) % n_speakers,
                aug_shift=torch.zeros(batch_size, 1, 1),
                paths=tuple(Path(f"spk/clip_{i}.wav") for i in range(batch_size)),
            )
        )
    return batches
