"""HuBERT-soft (hubertsoft): bshall's file layout, checked against transformers' HubertModel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sovits.errors import CheckpointError
from sovits.features.content import load_content_encoder
from tests.features.content._factory import randomize, sample_wave, tiny_conv_config

transformers = pytest.importorskip("transformers")

WIDTH = 128  # two heads of 64, as the original's 768 / 12
UNITS = 12


def _reference() -> torch.nn.Module:
    config = transformers.HubertConfig(
        hidden_size=WIDTH,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        conv_bias=False,
        do_stable_layer_norm=False,
        **tiny_conv_config(8),
    )
    model = transformers.HubertModel(config)
    randomize(model, scale=0.15)
    return model.eval()


def _bshall_state(reference: torch.nn.Module) -> dict[str, torch.Tensor]:
    """transformers weights in bshall/hubert's module layout (nn.TransformerEncoderLayer)."""
    source = {key: value.detach().clone() for key, value in reference.state_dict().items()}
    state: dict[str, torch.Tensor] = {"masked_spec_embed": source["masked_spec_embed"]}
    extractor = "feature_extractor.conv_layers."
    for i in range(7):
        state[f"feature_extractor.conv{i}.weight"] = source[f"{extractor}{i}.conv.weight"]
    for part in ("weight", "bias"):
        state[f"feature_extractor.norm0.{part}"] = source[f"{extractor}0.layer_norm.{part}"]
        state[f"feature_projection.norm.{part}"] = source[f"feature_projection.layer_norm.{part}"]
        projection = f"feature_projection.projection.{part}"
        state[projection] = source[projection]
        state[f"norm.{part}"] = source[f"encoder.layer_norm.{part}"]
    conv = "encoder.pos_conv_embed.conv."
    state["positional_embedding.conv.weight_g"] = source[conv + "parametrizations.weight.original0"]
    state["positional_embedding.conv.weight_v"] = source[conv + "parametrizations.weight.original1"]
    state["positional_embedding.conv.bias"] = source[conv + "bias"]
    renames = {
        "self_attn.out_proj": "attention.out_proj",
        "linear1": "feed_forward.intermediate_dense",
        "linear2": "feed_forward.output_dense",
        "norm1": "layer_norm",
        "norm2": "final_layer_norm",
    }
    for i in range(2):
        layer = f"encoder.layers.{i}."
        for part in ("weight", "bias"):
            state[layer + f"self_attn.in_proj_{part}"] = torch.cat(
                [source[layer + f"attention.{p}_proj.{part}"] for p in ("q", "k", "v")]
            )
            for ours, theirs in renames.items():
                state[f"{layer}{ours}.{part}"] = source[f"{layer}{theirs}.{part}"]
    generator = torch.Generator().manual_seed(11)
    state["proj.weight"] = torch.randn(UNITS, WIDTH, generator=generator) * 0.2
    state["proj.bias"] = torch.randn(UNITS, generator=generator) * 0.2
    state["label_embedding.weight"] = torch.randn(100, UNITS, generator=generator)
    return state


@pytest.mark.parametrize("wrapping", ["bare", "module-prefix", "hubert-key"])
def test_hubertsoft_units_match_transformers(tmp_path: Path, wrapping: str) -> None:
    reference = _reference()
    state = _bshall_state(reference)
    payload: object = state
    if wrapping == "module-prefix":
        payload = {f"module.{key}": value for key, value in state.items()}
    elif wrapping == "hubert-key":
        payload = {"hubert": state, "epoch": 3}
    path = tmp_path / "hubert-soft-0d54a1f4.pt"
    torch.save(payload, path)
    encoder = load_content_encoder("hubertsoft", path)
    wave = sample_wave(9000)
    units = encoder.encode(wave)
    with torch.no_grad():
        hidden = reference(F.pad(wave, (40, 40))[None]).last_hidden_state[0]
    expected = hidden @ state["proj.weight"].T + state["proj.bias"]
    assert units.shape == (9000 // 320, UNITS) and encoder.dim == UNITS
    torch.testing.assert_close(units, expected, atol=2e-5, rtol=1e-5)


def test_not_a_hubert_soft_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="HuBERT-soft"):
        load_content_encoder("hubertsoft", path)
