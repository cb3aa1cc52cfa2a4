"""Whisper PPG (whisper-ppg, whisper-ppg-large): openai checkpoint layout, checked against
transformers' WhisperEncoder and a numpy log-mel written from Whisper's published recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.dsp.spectrogram import mel_filterbank
from sovits.errors import CheckpointError, InputError
from sovits.features.content import load_content_encoder
from sovits.features.content.whisper import whisper_log_mel
from tests.features.content._factory import randomize, sample_wave

transformers = pytest.importorskip("transformers")

N_MELS = 80
WIDTH = 16
HEADS = 2
LAYERS = 2


def _sinusoids(length: int, channels: int) -> torch.Tensor:
    increment = np.log(10000) / (channels // 2 - 1)
    inverse = torch.exp(-increment * torch.arange(channels // 2))
    scaled = torch.arange(length)[:, None] * inverse[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


def numpy_log_mel(audio: np.ndarray, n_mels: int) -> np.ndarray:
    """Whisper's log-mel in float64 numpy: centred STFT, |X|^2 without the last frame."""
    n_fft, hop = 400, 160
    padded = np.pad(audio.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = 1 + (len(padded) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(padded[index] * window, axis=1)) ** 2
    filters = mel_filterbank(sample_rate=16000, n_fft=n_fft, n_mels=n_mels).numpy()
    filters = filters.astype(np.float64)
    mel = filters @ power[:-1].T
    log_mel = np.log10(np.maximum(mel, 1e-10))
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return (log_mel + 4.0) / 4.0


def _reference() -> torch.nn.Module:
    config = transformers.WhisperConfig(
        num_mel_bins=N_MELS,
        d_model=WIDTH,
        encoder_layers=LAYERS,
        encoder_attention_heads=HEADS,
        encoder_ffn_dim=4 * WIDTH,
        max_source_positions=1500,
        activation_function="gelu",
    )
    encoder = transformers.models.whisper.modeling_whisper.WhisperEncoder(config)
    randomize(encoder, scale=0.2)
    with torch.no_grad():
        encoder.embed_positions.weight.copy_(_sinusoids(1500, WIDTH))
        for parameter in encoder.parameters():  # the openai files hold fp16 values
            parameter.copy_(parameter.half().float())
    return encoder.eval()


def _openai_checkpoint(reference: torch.nn.Module) -> dict[str, object]:
    source = reference.state_dict()
    state = {
        "encoder.conv1.weight": source["conv1.weight"],
        "encoder.conv1.bias": source["conv1.bias"],
        "encoder.conv2.weight": source["conv2.weight"],
        "encoder.conv2.bias": source["conv2.bias"],
        "encoder.positional_embedding": source["embed_positions.weight"],
        "encoder.ln_post.weight": source["layer_norm.weight"],
        "encoder.ln_post.bias": source["layer_norm.bias"],
    }
    for i in range(LAYERS):
        ours, theirs = f"encoder.blocks.{i}.", f"layers.{i}."
        for name, source_name in (
            ("attn.query", "self_attn.q_proj"),
            ("attn.value", "self_attn.v_proj"),
            ("attn.out", "self_attn.out_proj"),
            ("attn_ln", "self_attn_layer_norm"),
            ("mlp.0", "fc1"),
            ("mlp.2", "fc2"),
            ("mlp_ln", "final_layer_norm"),
        ):
            state[ours + name + ".weight"] = source[theirs + source_name + ".weight"]
            state[ours + name + ".bias"] = source[theirs + source_name + ".bias"]
        state[ours + "attn.key.weight"] = source[theirs + "self_attn.k_proj.weight"]
    # a few decoder entries, as in the real file; the encoder never reads them
    state["decoder.token_embedding.weight"] = torch.zeros(51865, 4)
    state["decoder.ln.weight"] = torch.ones(4)
    dims = {
        "n_mels": N_MELS,
        "n_vocab": 51865,
        "n_audio_ctx": 1500,
        "n_audio_state": WIDTH,
        "n_audio_head": HEADS,
        "n_audio_layer": LAYERS,
        "n_text_ctx": 448,
        "n_text_state": 4,
        "n_text_head": 1,
        "n_text_layer": 1,
    }
    return {"dims": dims, "model_state_dict": {k: v.half() for k, v in state.items()}}


def test_log_mel_matches_numpy_recipe() -> None:
    audio = sample_wave(24000)
    ours = whisper_log_mel(torch.nn.functional.pad(audio, (0, 8000)), N_MELS)
    expected = numpy_log_mel(np.pad(audio.numpy(), (0, 8000)), N_MELS)
    assert ours.shape == (N_MELS, 32000 // 160)
    np.testing.assert_allclose(ours.numpy(), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("name", ["whisper-ppg", "whisper-ppg-large"])
def test_whisper_ppg_matches_transformers_encoder(tmp_path: Path, name: str) -> None:
    reference = _reference()
    path = tmp_path / ("medium.pt" if name == "whisper-ppg" else "large-v2.pt")
    torch.save(_openai_checkpoint(reference), path)
    encoder = load_content_encoder(name, path)
    wave = sample_wave(20000)
    features = encoder.encode(wave)
    padded = np.pad(wave.numpy(), (0, 480000 - 20000))
    mel = torch.from_numpy(numpy_log_mel(padded, N_MELS)).float()
    with torch.no_grad():
        expected = reference(mel[None]).last_hidden_state[0][: 20000 // 320]
    assert features.shape == (62, WIDTH) and encoder.dim == WIDTH
    torch.testing.assert_close(features, expected, atol=5e-5, rtol=1e-4)


def test_longer_than_30_seconds_is_read_in_30_second_windows(tmp_path: Path) -> None:
    """A slice of 61.25 s: two full windows and a 1.25 s one, each encoded as the original
    encodes one slice of up to 30 s; N // 320 frames in all."""
    path = tmp_path / "medium.pt"
    torch.save(_openai_checkpoint(_reference()), path)
    encoder = load_content_encoder("whisper-ppg", path)
    window = 480000
    wave = torch.cat([sample_wave(window), sample_wave(window, seed=8), sample_wave(20000)])
    features = encoder.encode(wave)
    assert features.shape == (wave.shape[0] // 320, WIDTH) == (3062, WIDTH)
    pieces = [wave[:window], wave[window : 2 * window], wave[2 * window :]]
    expected = torch.cat([encoder.encode(piece) for piece in pieces])
    assert torch.equal(features, expected)
    assert not torch.equal(features[:1500], features[1500:3000])  # the windows differ
    # a tail shorter than one frame adds no frame, as for a single window
    assert encoder.encode(wave[: window + 100]).shape == (1500, WIDTH)
    with pytest.raises(InputError):
        encoder.encode(torch.zeros(2, 16000))


def test_not_a_whisper_file(tmp_path: Path) -> None:
    path = tmp_path / "medium.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="Whisper"):
        load_content_encoder("whisper-ppg", path)
