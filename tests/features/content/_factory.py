"""Test helpers: tiny checkpoints in the original files' layouts, and reference networks.

Files that the original code wrote with fairseq name fairseq / omegaconf classes in
their pickles. `pickled_as` installs stand-in modules under those names only while a
file is written, so the loader under test reads it in a process without them.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

SEED = 20240531


def randomize(module: torch.nn.Module, *, seed: int = SEED, scale: float = 0.3) -> None:
    """Give every parameter random values (LayerNorm gains near 1), so no part is trivial."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * scale
            if name.endswith(("layer_norm.weight", "norm.weight", "ln.weight", "_ln.weight")) or (
                parameter.dim() == 1 and "norm" in name and name.endswith("weight")
            ):
                parameter.copy_(1.0 + noise)
            else:
                parameter.copy_(noise)


def sample_wave(n_samples: int, *, seed: int = 7) -> Tensor:
    """A reproducible float32 wave in [-1, 1] with some tonal content."""
    generator = torch.Generator().manual_seed(seed)
    time = torch.arange(n_samples, dtype=torch.float64) / 16000
    tone = 0.4 * torch.sin(2 * torch.pi * 220 * time) + 0.2 * torch.sin(2 * torch.pi * 1330 * time)
    noise = 0.05 * torch.randn(n_samples, generator=generator, dtype=torch.float64)
    return (tone + noise).to(torch.float32)


# --- pickles that name fairseq / omegaconf classes -----------------------------------


class _Dictionary:
    """Shape of fairseq.data.dictionary.Dictionary as pickled in task_state."""

    def __init__(self, symbols: list[str]):
        self.symbols = symbols
        self.count = [1] * len(symbols)
        self.indices = {symbol: index for index, symbol in enumerate(symbols)}


class _AverageMeter:
    """Shape of fairseq.logging.meters.AverageMeter as pickled in extra_state."""

    def __init__(self, value: float):
        self.val = value
        self.sum = value
        self.count = 1
        self.round = 3


class _ChoiceEnum:
    """Stands for a fairseq ChoiceEnum member (pickled as class + value)."""

    def __init__(self, value: str):
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.value,))


class _Metadata:
    def __init__(self) -> None:
        self.ref_type = None
        self.object_type = dict
        self.optional = True
        self.key = None
        self.flags: dict[str, bool] = {}


class _AnyNode:
    """Shape of omegaconf.nodes.AnyNode: the value sits in `_val`."""

    def __init__(self, value: Any):
        self.__dict__["_val"] = value
        self.__dict__["_metadata"] = _Metadata()
        self.__dict__["_parent"] = None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _DictConfig:
    """Shape of omegaconf.DictConfig: children (nodes or configs) sit in `_content`."""

    def __init__(self, content: Mapping[str, Any]):
        children: dict[str, Any] = {}
        for key, value in content.items():
            children[key] = _DictConfig(value) if isinstance(value, Mapping) else _AnyNode(value)
        self.__dict__["_content"] = children
        self.__dict__["_metadata"] = _Metadata()
        self.__dict__["_parent"] = None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


_PICKLED_NAMES: dict[str, type] = {
    "fairseq.data.dictionary.Dictionary": _Dictionary,
    "fairseq.logging.meters.AverageMeter": _AverageMeter,
    "fairseq.dataclass.constants.ChoiceEnum": _ChoiceEnum,
    "omegaconf.base.Metadata": _Metadata,
    "omegaconf.nodes.AnyNode": _AnyNode,
    "omegaconf.dictconfig.DictConfig": _DictConfig,
}


@contextlib.contextmanager
def pickled_as() -> Iterator[None]:
    """While active, the stand-in classes pickle under their fairseq / omegaconf names."""
    added: list[str] = []
    saved: dict[type, tuple[str, str]] = {}
    try:
        for qualified, cls in _PICKLED_NAMES.items():
            module_name, class_name = qualified.rsplit(".", 1)
            parts = module_name.split(".")
            for depth in range(1, len(parts) + 1):
                name = ".".join(parts[:depth])
                if name not in sys.modules:
                    sys.modules[name] = types.ModuleType(name)
                    added.append(name)
            setattr(sys.modules[module_name], class_name, cls)
            saved[cls] = (cls.__module__, cls.__qualname__)
            cls.__module__ = module_name
            cls.__qualname__ = class_name
        yield
    finally:
        for cls, (module_name, qualname) in saved.items():
            cls.__module__ = module_name
            cls.__qualname__ = qualname
        for name in added:
            del sys.modules[name]


def fairseq_checkpoint(
    state: Mapping[str, Tensor], model_config: Mapping[str, Any], *, style: str
) -> dict[str, Any]:
    """A dict shaped like a fairseq training checkpoint (HuBERT pretraining).

    style "cfg": config in `cfg` as an omegaconf DictConfig (fairseq >= 0.10 with hydra);
    style "dict": config in `cfg` as a plain dict; style "args": the older flat argparse
    Namespace in `args` and `cfg` None.
    """
    import argparse

    full_config = {
        "_name": None,
        "common": {"fp16": True, "log_interval": 200, "seed": 1337},
        "model": {"_name": "hubert", **model_config},
        "task": {"_name": "hubert_pretraining", "normalize": False, "labels": ["km"]},
    }
    checkpoint: dict[str, Any] = {
        "model": OrderedDict((key, value.clone()) for key, value in state.items()),
        "criterion": None,
        "optimizer_history": [
            {
                "criterion_name": "HubertCriterion",
                "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {"best": np.float64(3.25)},
                "num_updates": 400000,
            }
        ],
        "task_state": {"dictionaries": [_Dictionary(["<s>", "<pad>", "</s>", "<unk>", "0", "1"])]},
        "extra_state": {
            "epoch": 300,
            "metrics": {"train": [("loss", _AverageMeter(2.5))]},
            "extractor_mode": _ChoiceEnum("default"),
            "previous_training_time": np.float32(12.5),
        },
        "last_optimizer_state": None,
    }
    if style == "cfg":
        checkpoint["args"] = None
        checkpoint["cfg"] = _DictConfig(full_config)
    elif style == "dict":
        checkpoint["args"] = None
        checkpoint["cfg"] = full_config
    elif style == "args":
        checkpoint["args"] = argparse.Namespace(arch="hubert", **model_config)
        checkpoint["cfg"] = None
    else:
        raise ValueError(style)
    return checkpoint


def save_with_fairseq_names(checkpoint: Any, path: Path) -> Path:
    """torch.save `checkpoint` with its stand-ins pickled under fairseq / omegaconf names."""
    with pickled_as():
        torch.save(checkpoint, path)
    return path


# --- transformers references -----------------------------------------------------------


def transformers_to_fairseq(
    state: Mapping[str, Tensor], *, layer_norm_mode: bool
) -> dict[str, Tensor]:
    """Rename a transformers Hubert/WavLM state dict to fairseq's keys.

    The inverse of the mapping documented in transformers'
    convert_hubert_original_pytorch_checkpoint_to_pytorch.py / convert_wavlm_*.py.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        new = key
        if key == "masked_spec_embed":
            new = "mask_emb"
        elif key.startswith("feature_extractor.conv_layers."):
            index = key.split(".")[2]
            if ".conv." in key:
                new = f"feature_extractor.conv_layers.{index}.0.{key.rsplit('.', 1)[1]}"
            elif layer_norm_mode:
                new = f"feature_extractor.conv_layers.{index}.2.1.{key.rsplit('.', 1)[1]}"
            else:
                new = f"feature_extractor.conv_layers.{index}.2.{key.rsplit('.', 1)[1]}"
        elif key.startswith("feature_projection.layer_norm."):
            new = "layer_norm." + key.rsplit(".", 1)[1]
        elif key.startswith("feature_projection.projection."):
            new = "post_extract_proj." + key.rsplit(".", 1)[1]
        elif key.startswith("encoder.pos_conv_embed.conv."):
            tail = key[len("encoder.pos_conv_embed.conv.") :]
            tail = {
                "parametrizations.weight.original0": "weight_g",
                "parametrizations.weight.original1": "weight_v",
            }.get(tail, tail)
            new = "encoder.pos_conv.0." + tail
        elif key.startswith("encoder.layers."):
            parts = key.split(".")
            index, rest = parts[2], ".".join(parts[3:])
            for source, target in (
                ("attention.gru_rel_pos_linear.", "self_attn.grep_linear."),
                ("attention.gru_rel_pos_const", "self_attn.grep_a"),
                ("attention.rel_attn_embed.", "self_attn.relative_attention_bias."),
                ("attention.", "self_attn."),
                ("layer_norm.", "self_attn_layer_norm."),
                ("feed_forward.intermediate_dense.", "fc1."),
                ("feed_forward.output_dense.", "fc2."),
                ("final_layer_norm.", "final_layer_norm."),
            ):
                if rest.startswith(source):
                    rest = target + rest[len(source) :]
                    break
            new = f"encoder.layers.{index}.{rest}"
        out[new] = value.detach().clone()
    return out


def tiny_conv_config(channels: int = 8) -> dict[str, Any]:
    """transformers config entries for the standard conv stack with few channels."""
    return {
        "conv_dim": (channels,) * 7,
        "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
        "conv_stride": (5, 2, 2, 2, 2, 2, 2),
    }


def tiny_fairseq_hubert_file(path: Path, *, layers: int = 12, seed: int = SEED) -> Path:
    """A small random ContentVec-style fairseq checkpoint (for tests that do not check numbers).

    The weights come from sovits' own network, so use it only where the values do not
    matter (file lookup, input validation).
    """
    from sovits.features.content._wav2vec2 import NetworkConfig, Wav2Vec2Network

    config = NetworkConfig(
        conv_layers=((8, 10, 5),) + ((8, 3, 2),) * 4 + ((8, 2, 2),) * 2,
        extractor_mode="default",
        conv_bias=False,
        embed_dim=16,
        num_heads=(2,) * layers,
        head_dim=8,
        ffn_dims=(24,) * layers,
        conv_pos=16,
        conv_pos_groups=4,
        layer_norm_first=False,
        final_dim=6,
    )
    network = Wav2Vec2Network(config)
    randomize(network, seed=seed)
    model_config = {
        "encoder_attention_heads": 2,
        "conv_feature_layers": "[(8,10,5)] + [(8,3,2)] * 4 + [(8,2,2)] * 2",
    }
    checkpoint = fairseq_checkpoint(network.state_dict(), model_config, style="dict")
    return save_with_fairseq_names(checkpoint, path)
