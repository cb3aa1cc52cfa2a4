"""Safe reading of checkpoints that carry fairseq objects, and refusal of code payloads."""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError, MissingFileError
from sovits.features.content.hubert import load_fairseq_hubert
from sovits.features.content.safe_unpickle import InertObject, load_checkpoint, plain_config
from tests.features.content._factory import fairseq_checkpoint, save_with_fairseq_names


class _SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"echo ran > {self.marker}",))


class _EvalPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (eval, (f"open({str(self.marker)!r}, 'w').write('ran')",))


class _PopenPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (subprocess.Popen, (["touch", str(self.marker)],))


@pytest.mark.parametrize(
    ("payload", "global_name"),
    [(_SystemPayload, "system"), (_EvalPayload, "eval"), (_PopenPayload, "Popen")],
)
def test_code_payload_is_refused_and_never_runs(
    tmp_path: Path, payload: type, global_name: str
) -> None:
    marker = tmp_path / "payload-ran"
    checkpoint = fairseq_checkpoint(
        {"encoder.layer_norm.weight": torch.ones(4)}, {}, style="dict"
    )
    checkpoint["extra_state"]["hook"] = payload(marker)
    path = save_with_fairseq_names(checkpoint, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=f"refused to load.*{global_name}"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_fairseq_hubert(path)
    assert not marker.exists()


def test_payload_inside_a_fairseq_object_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    checkpoint = fairseq_checkpoint({"w": torch.ones(2)}, {}, style="cfg")
    checkpoint["task_state"]["dictionaries"][0].symbols.append(_SystemPayload(marker))
    path = save_with_fairseq_names(checkpoint, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_fairseq_objects_become_inert_records(tmp_path: Path) -> None:
    state = OrderedDict(weight=torch.arange(6, dtype=torch.float16).reshape(2, 3))
    model_config = {"encoder_layers": 12, "layer_norm_first": False}
    checkpoint = fairseq_checkpoint(state, model_config, style="cfg")
    path = save_with_fairseq_names(checkpoint, tmp_path / "fairseq.pt")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # torch's own safe loader refuses this file
    loaded = load_checkpoint(path)
    torch.testing.assert_close(loaded["model"]["weight"], state["weight"])
    assert loaded["model"]["weight"].dtype == torch.float16
    dictionary = loaded["task_state"]["dictionaries"][0]
    assert isinstance(dictionary, InertObject)
    assert dictionary.pickled_name == "fairseq.data.dictionary.Dictionary"
    assert dictionary.state["symbols"][:2] == ["<s>", "<pad>"]
    best = loaded["optimizer_history"][0]["lr_scheduler_state"]["best"]
    assert isinstance(best, InertObject) and "numpy" in best.pickled_name
    config = plain_config(loaded["cfg"])
    assert config["model"] == {"_name": "hubert", "encoder_layers": 12, "layer_norm_first": False}
    assert config["task"]["labels"] == ["km"]


def test_plain_config_reads_namespaces_and_dicts() -> None:
    namespace = argparse.Namespace(encoder_layers=24, nested={"a": [1, 2]})
    assert plain_config(namespace) == {"encoder_layers": 24, "nested": {"a": [1, 2]}}
    assert plain_config({"x": (1, [2])}) == {"x": (1, [2])}


def test_plain_tensor_files_use_torchs_weights_only_loader(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"dims": {"n_mels": 80}, "model_state_dict": {"w": torch.ones(3)}}, path)
    loaded = load_checkpoint(path)
    assert loaded["dims"] == {"n_mels": 80}


def test_numpy_arrays_are_inert(tmp_path: Path) -> None:
    path = tmp_path / "numpy.pt"
    namespace = argparse.Namespace(a=1)
    torch.save({"weights": torch.ones(2), "array": np.arange(3), "namespace": namespace}, path)
    loaded = load_checkpoint(path)
    assert isinstance(loaded["array"], InertObject)
    assert loaded["namespace"].a == 1


def test_bad_codecs_call_is_refused(tmp_path: Path) -> None:
    # protocol 2 rebuilds bytes with _codecs.encode(text, "latin1"); nothing else is allowed
    import codecs

    class _Codec:
        def __reduce__(self) -> tuple[object, ...]:
            return (codecs.encode, ("abc", "rot13"))

    path = tmp_path / "codec.pt"
    torch.save({"x": _Codec(), "y": np.arange(2)}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        load_checkpoint(tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(corrupt)


def test_conv_feature_layers_are_parsed_without_eval(tmp_path: Path) -> None:
    from sovits.features.content._wav2vec2 import STANDARD_CONV_LAYERS, parse_conv_layers

    text = "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2"
    assert parse_conv_layers(text) == STANDARD_CONV_LAYERS
    marker = tmp_path / "ran"
    with pytest.raises(CheckpointError, match="conv_feature_layers"):
        parse_conv_layers(f"__import__('os').system('touch {marker}')")
    with pytest.raises(CheckpointError, match="conv_feature_layers"):
        parse_conv_layers("[(512, 10, 5)] * 10000000000")
    assert not marker.exists()
