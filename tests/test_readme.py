"""The README's code blocks run as written.

Every ```python block runs (in this process, as a script) inside a folder laid out as
the README assumes (`logs/44k/G_30400.pth` + `configs/config.json` of a tiny random-weight model
with speakers alice, bob and carol and the download-free `spectral` encoder, `song.wav`, and
the same model as `models/alice/`). A block that needs files no test can have
(pretrained weights, a GPU) is skipped only when the line before its fence is
`<!-- no-test -->`. JSON blocks must parse; a JSON speaker-mix track must load.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import SOVITS41

README = Path(__file__).resolve().parents[1] / "README.md"
NO_TEST = "<!-- no-test -->"
_FENCE = re.compile(r"^```(\w*)\s*$")


def code_blocks(text: str, language: str) -> list[tuple[int, str, bool]]:
    """(line number, code, marked no-test) of each fenced block in `language`."""
    blocks: list[tuple[int, str, bool]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start, kind = index, match.group(1)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].strip() == "```"), len(lines)
        )
        before = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()),
                      "")
        if kind == language:
            blocks.append((start + 1, "\n".join(lines[start + 1 : end]) + "\n", before == NO_TEST))
        index = end + 1
    return blocks


PYTHON_BLOCKS = code_blocks(README.read_text(encoding="utf-8"), "python")
JSON_BLOCKS = code_blocks(README.read_text(encoding="utf-8"), "json")


def test_the_extraction_finds_the_library_example() -> None:
    assert any("Converter(" in code for _, code, _ in PYTHON_BLOCKS)
    assert all(skip is False for _, code, skip in PYTHON_BLOCKS if "Converter(" in code)
    assert code_blocks("x\n<!-- no-test -->\n\n```python\nprint(1)\n```\n", "python") == [
        (4, "print(1)\n", True)
    ]


def _place_model(folder: Path, model_name: str = "G_30400.pth") -> tuple[Path, Path]:
    """The a_default fixture model (random weights) renamed for the README: speakers
    alice, bob, carol; the spectral encoder; 44.1 kHz, hop 512."""
    variant = SOVITS41 / "variants" / "a_default"
    data = json.loads((variant / "config.json").read_text(encoding="utf-8"))
    data["model"]["speech_encoder"] = "spectral"
    data["spk"] = {"alice": 0, "bob": 1, "carol": 2}
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / model_name
    shutil.copy(variant / "G_0_release.pth", model)
    config = folder / "config.json"
    config.write_text(json.dumps(data), encoding="utf-8")
    return model, config


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    _, config = _place_model(root / "logs" / "44k")
    (root / "configs").mkdir()
    shutil.copy(config, root / "configs" / "config.json")
    _place_model(root / "models" / "alice")
    rate = 44100
    times = np.arange(int(1.5 * rate)) / rate
    melody = 220.0 * 2 ** (np.floor(times * 4) / 12)  # a rising scale, 4 notes a second
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(melody) / rate)
    soundfile.write(root / "song.wav", wave.astype(np.float32), rate)
    return root


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("line", "code", "skip"), PYTHON_BLOCKS, ids=[f"line{line}" for line, _, _ in PYTHON_BLOCKS]
)
def test_python_block_runs(
    project: Path, line: int, code: str, skip: bool, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if skip:
        pytest.skip(f"README line {line} is marked {NO_TEST}")
    monkeypatch.chdir(project)
    monkeypatch.setenv("SOVITS_HOME", str(project / "home"))
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    # a printed path with the expected one in a comment: `print(written)  # results/x.flac`
    for promised in re.findall(r"^print\(\w+\)\s*#\s*(\S+\.\w+)\s*$", code, re.MULTILINE):
        assert (project / promised).is_file(), f"README line {line} promises {promised}"
        assert promised in printed


@pytest.mark.parametrize(
    ("line", "code", "skip"), JSON_BLOCKS, ids=[f"line{line}" for line, _, _ in JSON_BLOCKS]
)
def test_json_blocks_parse_and_tracks_load(line: int, code: str, skip: bool) -> None:
    from sovits.inference.speaker_mix import SpeakerMixTrack

    if skip:
        pytest.skip(f"README line {line} is marked {NO_TEST}")
    data = json.loads(code)
    is_track = isinstance(data, dict) and data and all(
        isinstance(chain, list) and all(isinstance(s, list) and len(s) == 4 for s in chain)
        for chain in data.values()
    )
    if is_track:
        speakers = {name: index for index, name in enumerate(data)}
        track = SpeakerMixTrack.from_mapping(data, speakers=speakers, source=f"README:{line}")
        assert track.n_speakers == len(data)
