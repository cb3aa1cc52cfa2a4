"""Speaker embeddings: Resemblyzer's GE2E encoder in sovits' code, its front end, and
what the similarities say about synthetic singers."""

from __future__ import annotations

import importlib.util
import sys
import types
from functools import cache

import numpy as np
import pytest
import torch

from sovits.demo.singer import SINGER_A, SINGER_B, SingerVoice, random_melody, synthesize_phrase
from sovits.errors import CheckpointError, MissingFileError
from sovits.features import speaker
from tests.assets import missing_asset
from tests.tolerance import INTERMEDIATE, assert_close

RATE = 16000


@pytest.fixture
def weights() -> None:
    """Skip (or, under SOVITS_REQUIRE_ASSETS, fail) without Resemblyzer's weights."""
    if importlib.util.find_spec("resemblyzer") is None:
        missing_asset("Resemblyzer's weights: pip install --no-deps resemblyzer==0.1.4")


needs_weights = pytest.mark.usefixtures("weights")


@cache
def embedder() -> speaker.SpeakerEmbedder:
    return speaker.SpeakerEmbedder()


def sing(voice: SingerVoice, seed: int, seconds: float = 4.0) -> np.ndarray:
    notes = random_melody(voice, np.random.default_rng([seed, 0]), seconds=seconds)
    wave, _ = synthesize_phrase(voice, notes, RATE, np.random.default_rng([seed, 1]))
    return wave


def test_the_mel_front_end_is_librosas() -> None:
    librosa = pytest.importorskip("librosa")
    wave = (0.1 * np.random.default_rng(0).standard_normal(RATE * 2 + 37)).astype(np.float32)
    expected = librosa.feature.melspectrogram(
        y=wave, sr=RATE, n_fft=400, hop_length=160, n_mels=40, pad_mode="reflect"
    ).T
    mel = speaker.speaker_mel(wave)
    assert mel.shape == expected.shape == (1 + len(wave) // 160, 40)
    assert_close(mel, expected, INTERMEDIATE, what="speaker mel")


@needs_weights
def test_the_network_equals_resemblyzers(monkeypatch: pytest.MonkeyPatch) -> None:
    # resemblyzer imports webrtcvad at import time; its network does not use it
    monkeypatch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
    pytest.importorskip("librosa")
    from resemblyzer import VoiceEncoder

    reference = VoiceEncoder(device="cpu", verbose=False)
    mels = torch.rand(3, 160, 40, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = reference(mels)
        actual = embedder().encoder(mels)
    assert_close(actual, expected, INTERMEDIATE, what="GE2E embeddings")
    for samples in (100, 16000, 25600, 40000, 123457):
        _, slices = VoiceEncoder.compute_partial_slices(samples, 1.3, 0.75)
        assert speaker.partial_slices(samples) == [(s.start, s.stop) for s in slices]


@needs_weights
def test_one_singer_is_more_similar_to_itself_than_to_another() -> None:
    model = embedder()
    a1, a2 = model.embed(sing(SINGER_A, 1), RATE), model.embed(sing(SINGER_A, 2), RATE)
    b1 = model.embed(sing(SINGER_B, 3), RATE)
    assert a1 is not None and a2 is not None and b1 is not None
    assert_close(float(np.linalg.norm(a1)), 1.0, INTERMEDIATE, what="embedding norm")
    same = speaker.cosine_similarity(a1, a2)
    other = speaker.cosine_similarity(a1, b1)
    # measured: 0.78 for two clips of singer A, 0.68 for A against B
    assert same > other + 0.03
    assert_close(speaker.cosine_similarity(a1, a1), 1.0, INTERMEDIATE, what="self cosine")


@needs_weights
def test_silence_has_no_embedding() -> None:
    assert embedder().embed(np.zeros(RATE, dtype=np.float32), RATE) is None
    assert embedder().embed_speaker([np.zeros(RATE, dtype=np.float32)], RATE) is None


def test_long_pauses_are_shortened_and_short_ones_kept() -> None:
    note = (0.3 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)).astype(np.float32)
    long_pause = np.concatenate([note, np.zeros(3 * RATE, dtype=np.float32), note])
    short_pause = np.concatenate([note, np.zeros(RATE // 10, dtype=np.float32), note])
    assert len(speaker.trim_long_pauses(long_pause)) < 2.6 * RATE
    kept = speaker.trim_long_pauses(short_pause)
    assert len(kept) >= len(short_pause) - speaker.VAD_WINDOW
    assert len(speaker.trim_long_pauses(np.zeros(RATE, dtype=np.float32))) == 0


def test_missing_weights_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speaker.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingFileError, match="pip install --no-deps resemblyzer"):
        speaker.load_speaker_encoder()


def test_a_foreign_file_is_a_checkpoint_error(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "other.pt"  # type: ignore[operator]
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        speaker.load_speaker_encoder(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(CheckpointError, match="model_state"):
        speaker.load_speaker_encoder(path)
