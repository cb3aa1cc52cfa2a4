"""Reading cluster models and feature indexes never runs code from the file.

Each malicious file carries a payload that creates a marker file when unpickled the way
so-vits-svc 4.1 reads it; sovits must refuse it with a CheckpointError, and the marker
must not exist afterwards.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from sovits.errors import CheckpointError
from sovits.retrieval.index import read_feature_index
from sovits.retrieval.kmeans import read_cluster_model
from tests.retrieval.conftest import INDEX_PKL


class _ExecPayload:
    """Unpickles as exec(code): creates the marker file."""

    def __init__(self, marker: Path):
        self.code = f"open({str(marker)!r}, 'w').close()"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (self.code,))


class _SystemPayload:
    """Unpickles as os.system("touch marker")."""

    def __init__(self, marker: Path):
        self.command = f"touch '{marker}'"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def _kmeans_like(payload: object) -> dict:
    return {"spk": {"n_features_in_": 4, "_n_threads": 1,
                    "cluster_centers_": np.zeros((2, 4), np.float32), "extra": payload}}


@pytest.mark.parametrize("payload_type", [_ExecPayload, _SystemPayload])
def test_a_kmeans_pt_with_a_payload_is_refused(tmp_path: Path, payload_type: type) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "kmeans_10000.pt"
    torch.save(_kmeans_like(payload_type(marker)), path)
    with pytest.raises(CheckpointError, match="refused"):
        read_cluster_model(path)
    assert not marker.exists()
    # the payload is live: the original's full unpickle runs it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_legacy_format_kmeans_pt_with_a_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "kmeans_10000.pt"
    torch.save(_kmeans_like(_ExecPayload(marker)), path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError):
        read_cluster_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload_type", [_ExecPayload, _SystemPayload])
def test_a_feature_index_pkl_with_a_payload_is_refused(tmp_path: Path,
                                                       payload_type: type) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "feature_and_index.pkl"
    path.write_bytes(pickle.dumps({0: payload_type(marker)}))
    with pytest.raises(CheckpointError, match="refused"):
        read_feature_index(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live
    assert marker.exists()


def _faiss_holder_pickle(state_opcodes: bytes) -> bytes:
    """{0: faiss.swigfaiss.IndexIVFFlat with BUILD state `state_opcodes`} (protocol 2)."""
    return (b"\x80\x02}K\x00cfaiss.swigfaiss\nIndexIVFFlat\n)\x81" + state_opcodes
            + b"bs.")


def _exec_opcodes(code: str) -> bytes:
    data = code.encode()
    return b"cbuiltins\nexec\nX" + struct.pack("<I", len(data)) + data + b"\x85R"


def test_a_payload_inside_a_faiss_index_state_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').close()"
    # {'this': exec(code)} as the state of a genuine-looking faiss index
    state = b"}X\x04\x00\x00\x00this" + _exec_opcodes(code) + b"s"
    path = tmp_path / "feature_and_index.pkl"
    path.write_bytes(_faiss_holder_pickle(state))
    with pytest.raises(CheckpointError, match=r"builtins\.exec"):
        read_feature_index(path)
    assert not marker.exists()


def test_faiss_names_cannot_smuggle_other_calls(tmp_path: Path) -> None:
    path = tmp_path / "feature_and_index.pkl"
    # a faiss function that is not the index class
    path.write_bytes(b"\x80\x02}K\x00cfaiss\nread_index\nX\x03\x00\x00\x00/x\x85Rs.")
    with pytest.raises(CheckpointError, match=r"faiss\.read_index"):
        read_feature_index(path)
    # the index class called with arguments (REDUCE) instead of rebuilt empty
    path.write_bytes(b"\x80\x02}K\x00cfaiss.swigfaiss\nIndexIVFFlat\nK\x04\x85Rs.")
    with pytest.raises(CheckpointError):
        read_feature_index(path)
    # a state that is not {'this': bytes}
    path.write_bytes(_faiss_holder_pickle(b"}X\x04\x00\x00\x00thisK\x01s"))
    with pytest.raises(CheckpointError, match="bytes"):
        read_feature_index(path)


def test_the_real_files_load_without_any_opt_in() -> None:
    # the genuine original pickle is read, and its globals are only the faiss class
    assert read_feature_index(INDEX_PKL).speaker_ids == (0, 1)
