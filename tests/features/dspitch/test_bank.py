"""The bank folder: where it is looked for, which file names count, missing-file messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sovits.errors import ConfigError, MissingFileError
from sovits.features.pitch.dspitch import DsPitchExtractor
from sovits.features.pitch.dspitch.bank import (
    DEFAULT_FOLDER,
    bank_search_folders,
    find_bank_folder,
    read_bank,
    read_phonemes,
)
from tests.features.dspitch._bank import sine_wave, write_bank
from tests.tolerance import HZ, assert_close


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty working directory, SOVITS_HOME and user cache, each with its own root."""
    roots = {name: tmp_path / name for name in ("cwd", "home", "cache")}
    for root in roots.values():
        root.mkdir()
    monkeypatch.chdir(roots["cwd"])
    monkeypatch.setenv("SOVITS_HOME", str(roots["home"]))
    monkeypatch.setattr(
        "sovits.features.pretrained.user_cache_dir", lambda: roots["cache"]
    )
    return roots


def test_lookup_order(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    home, cwd, cache = (places[n] / DEFAULT_FOLDER for n in ("home", "cwd", "cache"))
    assert bank_search_folders() == [home, cwd, cache]
    with pytest.raises(MissingFileError, match="no DiffSinger pitch bank") as error:
        find_bank_folder()
    assert str(cwd) in str(error.value) and "dspitch folder" in str(error.value)

    (cwd).mkdir(parents=True)
    (cwd / "put_diffsinger_dspitch_here").touch()  # the fork's placeholder does not count
    write_bank(cache, "v2023")
    assert find_bank_folder() == cache
    write_bank(cwd, "v2023")
    assert find_bank_folder() == cwd, "the working directory beats the user cache"
    write_bank(home, "v2023")
    assert find_bank_folder() == home, "an explicit SOVITS_HOME beats the working directory"
    monkeypatch.delenv("SOVITS_HOME")
    assert find_bank_folder() == cwd
    explicit = write_bank(places["cwd"] / "elsewhere", "v2024")
    assert find_bank_folder(explicit) == explicit
    assert DsPitchExtractor().bank.folder == cwd
    with pytest.raises(MissingFileError, match="bank folder not found"):
        find_bank_folder(places["cwd"] / "nowhere")


def test_missing_files_say_what_where_and_how(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank", "v2023")
    (folder / "SOME.onnx").unlink()
    with pytest.raises(MissingFileError) as error:
        DsPitchExtractor(folder=folder)
    text = str(error.value)
    assert "SOME.onnx" in text and str(folder) in text and "export.py" in text

    (folder / "ds_pitch.onnx").unlink()
    with pytest.raises(MissingFileError, match=r"pitch model .*ds_pitch\.onnx.* missing") as error:
        read_bank(folder)
    assert "dspitch folder" in str(error.value)

    (folder / "dsconfig.yaml").unlink()
    with pytest.raises(MissingFileError, match=r"dsconfig\.yaml") as error:
        DsPitchExtractor(folder=folder)
    assert "OpenUtau DiffSinger voicebank" in str(error.value)


def test_exporter_and_openutau_names(tmp_path: Path) -> None:
    """dsconfig keys name the models, phonemes.json, some.yaml names SOME; the same
    notes and curve as the fork layout."""
    exporter = write_bank(tmp_path / "exporter", "v2025", layout="exporter")
    fork = write_bank(tmp_path / "fork", "v2025")
    bank = read_bank(exporter)
    assert bank.linguistic.name == "bank.linguistic.onnx"
    assert bank.pitch.name == "bank.pitch.onnx"
    assert bank.some == exporter / "some" / "model.onnx" and bank.some_sample_rate == 44100
    assert bank.phonemes["zh/a"] == 6 and bank.config.speakers == ("spk.alto", "spk.tenor")
    wave = sine_wave()
    ours = DsPitchExtractor(folder=exporter).extract(wave, 44100, 512)
    theirs = DsPitchExtractor(folder=fork).extract(wave, 44100, 512)
    assert_close(ours.f0, theirs.f0, HZ, what="exporter layout = fork layout")

    wiki = tmp_path / "wiki"
    wiki.mkdir()
    for source, target in (("bank.linguistic.onnx", "linguistic.onnx"),
                           ("bank.pitch.onnx", "pitch.onnx")):
        (wiki / target).write_bytes((exporter / source).read_bytes())
    for name in ("bank.phonemes.json", "languages.json", "spk.alto.emb", "spk.tenor.emb"):
        (wiki / name).write_bytes((exporter / name).read_bytes())
    config = (exporter / "dsconfig.yaml").read_text()
    config = config.replace("linguistic: bank.linguistic.onnx\n", "").replace(
        "pitch: bank.pitch.onnx\n", ""
    ).replace("phonemes: bank.phonemes.json\n", "")
    (wiki / "dsconfig.yaml").write_text(config)
    (wiki / "some.onnx").write_bytes((exporter / "some" / "model.onnx").read_bytes())
    bank = read_bank(wiki)
    assert (bank.linguistic.name, bank.pitch.name, bank.some.name) == (
        "linguistic.onnx", "pitch.onnx", "some.onnx"
    )
    assert bank.phonemes == read_phonemes(exporter / "bank.phonemes.json")


def test_config_and_phoneme_files(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank", "v2023")
    bank = read_bank(folder)
    assert (bank.config.sample_rate, bank.config.hop_size) == (44100, 512)
    assert bank.phonemes["SP"] == 2 and bank.phonemes["<PAD>"] == 0
    (folder / "dsconfig.yaml").write_text("hop_size: -3\n")
    with pytest.raises(ConfigError, match="hop_size must be a positive integer"):
        read_bank(folder)
    (folder / "dsconfig.yaml").write_text("{}\n")
    assert read_bank(folder).config.hop_size == 512  # OpenUtau's defaults
    bad = tmp_path / "phonemes.json"
    bad.write_text(json.dumps(["a", "b"]))
    with pytest.raises(ConfigError, match="phoneme names to token ids"):
        read_phonemes(bad)
    for name in ("x.pitch.onnx", "y.pitch.onnx"):
        (folder / name).write_bytes(b"")
    (folder / "ds_pitch.onnx").unlink()
    with pytest.raises(Exception, match="several pitch model files"):
        read_bank(folder)


def test_speaker_files_and_languages(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "bank", "v2025")
    (folder / "languages.json").unlink()
    with pytest.raises(MissingFileError, match=r"languages\.json is missing"):
        DsPitchExtractor(folder=folder, language="zh")
    np.zeros(16, "<f4").tofile(folder / "spk.alto.emb")
    (folder / "dsconfig.yaml").write_text(
        (folder / "dsconfig.yaml").read_text().replace("- spk.alto\n- spk.tenor\n", "[]\n")
        .replace("speakers:\n[]", "speakers: []")
    )
    with pytest.raises(ConfigError, match="lists no speakers"):
        DsPitchExtractor(folder=folder)


def test_dsconfig_flags_are_only_a_cross_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_bank(tmp_path / "bank", "v2024")  # word mode, steps, no note_rest
    text = (folder / "dsconfig.yaml").read_text()
    (folder / "dsconfig.yaml").write_text(
        text.replace("predict_dur: true", "predict_dur: false")
        .replace("use_note_rest: false", "use_note_rest: true")
    )
    with caplog.at_level("WARNING"):
        track = DsPitchExtractor(folder=folder).extract(sine_wave(), 44100, 512)
    assert "predict_dur: False" in caplog.text and "use_note_rest: True" in caplog.text
    assert track.voiced.sum() == 226
