"""WavLM Base+ (wavlmbase+): unilm's {'cfg', 'model'} file, checked against transformers'
WavLMModel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sovits.features.content import load_content_encoder
from sovits.features.content.wavlm import relative_position_buckets
from tests.features.content._factory import (
    randomize,
    sample_wave,
    tiny_conv_config,
    transformers_to_fairseq,
)

transformers = pytest.importorskip("transformers")

WIDTH = 16
HEADS = 2
BUCKETS = 16
MAX_DISTANCE = 40


def _reference() -> torch.nn.Module:
    config = transformers.WavLMConfig(
        hidden_size=WIDTH,
        num_hidden_layers=3,
        num_attention_heads=HEADS,
        intermediate_size=24,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        conv_bias=False,
        do_stable_layer_norm=False,
        num_buckets=BUCKETS,
        max_bucket_distance=MAX_DISTANCE,
        **tiny_conv_config(8),
    )
    model = transformers.WavLMModel(config)
    randomize(model, scale=0.15)
    return model.eval()


def _unilm_checkpoint(reference: torch.nn.Module, *, normalize: bool) -> dict[str, object]:
    state = transformers_to_fairseq(reference.state_dict(), layer_norm_mode=False)
    cfg = {
        "extractor_mode": "default",
        "encoder_layers": 3,
        "encoder_embed_dim": WIDTH,
        "encoder_ffn_embed_dim": 24,
        "encoder_attention_heads": HEADS,
        "activation_fn": "gelu",
        "layer_norm_first": False,
        "conv_feature_layers": "[(8,10,5)] + [(8,3,2)] * 4 + [(8,2,2)] * 2",
        "conv_bias": False,
        "normalize": normalize,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "relative_position_embedding": True,
        "num_buckets": BUCKETS,
        "max_distance": MAX_DISTANCE,
        "gru_rel_pos": True,
    }
    return {"cfg": cfg, "model": state}


@pytest.mark.parametrize("normalize", [False, True])
def test_wavlm_matches_transformers(tmp_path: Path, normalize: bool) -> None:
    reference = _reference()
    path = tmp_path / "WavLM-Base+.pt"
    torch.save(_unilm_checkpoint(reference, normalize=normalize), path)
    encoder = load_content_encoder("wavlmbase+", path)
    wave = sample_wave(16000) * 0.5
    features = encoder.encode(wave)
    model_input = F.layer_norm(wave, wave.shape) if normalize else wave
    with torch.no_grad():
        expected = reference(model_input[None]).last_hidden_state[0]
    assert features.shape == (49, WIDTH) and encoder.dim == WIDTH
    torch.testing.assert_close(features, expected, atol=2e-5, rtol=1e-5)


def test_relative_position_buckets_match_transformers() -> None:
    attention = _reference().encoder.layers[0].attention
    positions = torch.arange(60)
    offsets = positions[None, :] - positions[:, None]
    expected = attention._relative_positions_bucket(offsets)
    torch.testing.assert_close(relative_position_buckets(60, BUCKETS, MAX_DISTANCE), expected)
