"""DPHuBERT (dphubert): a pruned torchaudio-layout checkpoint, checked against transformers.

The reference is an unpruned transformers HubertModel in which the pruned parts are
made inert (zeroed output weights of removed heads, units and blocks, zeroed channels
of a pruned convolution); the DPHuBERT file holds only the kept parts. Both must give
the same output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sovits.errors import CheckpointError
from sovits.features.content import load_content_encoder
from tests.features.content._factory import randomize, sample_wave, tiny_conv_config

transformers = pytest.importorskip("transformers")

WIDTH = 16
HEAD_DIM = 4
HEADS = 4
FFN = 24
KEPT_HEADS = ([0, 2], [], [1])  # layer 1 lost its attention block
KEPT_UNITS = (list(range(0, 24, 2))[:10], list(range(FFN)), [])  # layer 2 lost its feed-forward
KEPT_CHANNELS = [0, 1, 3, 4, 6, 7]  # of convolution 2


def _reference() -> torch.nn.Module:
    config = transformers.HubertConfig(
        hidden_size=WIDTH,
        num_hidden_layers=3,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        conv_bias=False,
        do_stable_layer_norm=False,
        **tiny_conv_config(8),
    )
    model = transformers.HubertModel(config)
    randomize(model)
    removed_channels = [c for c in range(8) if c not in KEPT_CHANNELS]
    with torch.no_grad():
        model.feature_extractor.conv_layers[2].conv.weight[removed_channels] = 0
        for i, layer in enumerate(model.encoder.layers):
            attention, ffn = layer.attention, layer.feed_forward
            for head in range(HEADS):
                if head not in KEPT_HEADS[i]:
                    attention.out_proj.weight[:, head * HEAD_DIM : (head + 1) * HEAD_DIM] = 0
            if not KEPT_HEADS[i]:
                attention.out_proj.bias.zero_()
            for unit in range(FFN):
                if unit not in KEPT_UNITS[i]:
                    ffn.output_dense.weight[:, unit] = 0
            if not KEPT_UNITS[i]:
                ffn.output_dense.bias.zero_()
    return model.eval()


def _dphubert_checkpoint(
    reference: torch.nn.Module, dummy_weight: torch.Tensor
) -> dict[str, object]:
    source = {key: value.detach().clone() for key, value in reference.state_dict().items()}
    state: dict[str, torch.Tensor] = {"feature_extractor.dummy_weight": dummy_weight}
    kept = torch.tensor(KEPT_CHANNELS)
    for i in range(7):
        weight = source[f"feature_extractor.conv_layers.{i}.conv.weight"]
        weight = weight[kept] if i == 2 else weight[:, kept] if i == 3 else weight
        state[f"feature_extractor.conv_layers.{i}.conv.weight"] = weight
    renames = {
        "feature_extractor.conv_layers.0.layer_norm": "feature_extractor.conv_layers.0.layer_norm",
        "encoder.feature_projection.layer_norm": "feature_projection.layer_norm",
        "encoder.feature_projection.projection": "feature_projection.projection",
        "encoder.transformer.layer_norm": "encoder.layer_norm",
    }
    for ours, theirs in renames.items():
        for part in ("weight", "bias"):
            state[f"{ours}.{part}"] = source[f"{theirs}.{part}"]
    conv, position = "encoder.pos_conv_embed.conv.", "encoder.transformer.pos_conv_embed.conv."
    state[position + "weight_g"] = source[conv + "parametrizations.weight.original0"]
    state[position + "weight_v"] = source[conv + "parametrizations.weight.original1"]
    state[position + "bias"] = source[conv + "bias"]
    for i in range(3):
        ours, theirs = f"encoder.transformer.layers.{i}.", f"encoder.layers.{i}."
        if KEPT_HEADS[i]:
            rows = torch.tensor(
                [h * HEAD_DIM + d for h in KEPT_HEADS[i] for d in range(HEAD_DIM)]
            )
            for name in ("attention.q_proj", "attention.k_proj", "attention.v_proj"):
                state[ours + name + ".weight"] = source[theirs + name + ".weight"][rows]
                state[ours + name + ".bias"] = source[theirs + name + ".bias"][rows]
            out = "attention.out_proj."
            state[ours + out + "weight"] = source[theirs + out + "weight"][:, rows]
            state[ours + out + "bias"] = source[theirs + out + "bias"]
        if KEPT_UNITS[i]:
            units = torch.tensor(KEPT_UNITS[i])
            inner, outer = "feed_forward.intermediate_dense.", "feed_forward.output_dense."
            state[ours + inner + "weight"] = source[theirs + inner + "weight"][units]
            state[ours + inner + "bias"] = source[theirs + inner + "bias"][units]
            state[ours + outer + "weight"] = source[theirs + outer + "weight"][:, units]
            state[ours + outer + "bias"] = source[theirs + outer + "bias"]
        for part in ("layer_norm.weight", "layer_norm.bias"):
            state[ours + part] = source[theirs + part]
            state[ours + "final_" + part] = source[theirs + "final_" + part]
    conv_config = [[8, 10, 5], [8, 3, 2], [len(KEPT_CHANNELS), 3, 2]]
    conv_config += [[8, 3, 2], [8, 3, 2], [8, 2, 2], [8, 2, 2]]
    config = {
        "extractor_mode": "group_norm",
        "extractor_conv_layer_config": conv_config,
        "extractor_conv_bias": False,
        "encoder_embed_dim": WIDTH,
        "encoder_projection_dropout": 0.1,
        "encoder_pos_conv_kernel": 16,
        "encoder_pos_conv_groups": 4,
        "encoder_num_layers": 3,
        "encoder_use_attention": [bool(h) for h in KEPT_HEADS],
        "encoder_use_feed_forward": [bool(u) for u in KEPT_UNITS],
        "encoder_num_heads": [len(h) for h in KEPT_HEADS],
        "encoder_head_dim": HEAD_DIM,
        "encoder_attention_dropout": 0.1,
        "encoder_ff_interm_features": [len(u) for u in KEPT_UNITS],
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.1,
        "encoder_layer_norm_first": False,
        "encoder_layer_drop": 0.05,
        "aux_num_out": None,
        "normalize_waveform": False,
        "extractor_prune_conv_channels": False,
        "encoder_prune_attention_heads": False,
        "encoder_prune_attention_layer": False,
        "encoder_prune_feed_forward_intermediate": False,
        "encoder_prune_feed_forward_layer": False,
    }
    return {"state_dict": state, "config": config}


def test_dphubert_matches_transformers_with_pruned_parts_zeroed(tmp_path: Path) -> None:
    reference = _reference()
    dummy_weight = torch.linspace(0.6, 1.0, 8)
    path = tmp_path / "DPHuBERT-sp0.75.pth"
    torch.save(_dphubert_checkpoint(reference, dummy_weight), path)
    encoder = load_content_encoder("dphubert", path)
    wave = sample_wave(12000)
    features = encoder.encode(wave)
    # the extractor output is scaled by dummy_weight before the projection's LayerNorm
    handle = reference.feature_extractor.register_forward_hook(
        lambda module, inputs, output: output * dummy_weight[:, None]
    )
    with torch.no_grad():
        expected = reference(wave[None]).last_hidden_state[0]
    handle.remove()
    assert features.shape == ((12000 - 400) // 320 + 1, WIDTH) and encoder.dim == WIDTH
    torch.testing.assert_close(features, expected, atol=2e-5, rtol=1e-5)


def test_checkpoint_taken_during_pruning_is_refused(tmp_path: Path) -> None:
    checkpoint = _dphubert_checkpoint(_reference(), torch.ones(8))
    checkpoint["config"]["encoder_prune_attention_heads"] = True  # type: ignore[index]
    path = tmp_path / "DPHuBERT-sp0.75.pth"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="during pruning"):
        load_content_encoder("dphubert", path)
