"""`sovits f0 -m dspitch` and `sovits infer -f0p dspitch` end to end with a fake bank, and
the dspitch fields of ConvertOptions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from sovits import cli
from sovits.config.options_schema import option_specs
from sovits.errors import InputError
from sovits.features.pitch.dspitch.blend import BLEND_MODES
from sovits.features.pitch.export import load_f0_curve
from sovits.features.pitch.registry import PITCH_METHODS
from sovits.inference.options import F0_METHODS, ConvertOptions
from tests.conftest import SOVITS41
from tests.features.dspitch._bank import sine_wave, some_notes, write_bank

MODEL = SOVITS41 / "variants" / "a_default" / "G_0_release.pth"


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "song.wav"
    soundfile.write(path, sine_wave(), 44100)
    return path


def test_f0_command_exports_the_curve(banks: dict[str, Path], song: Path, tmp_path: Path) -> None:
    output = tmp_path / "song.csv"
    args = ["f0", str(song), "-m", "dspitch", "--dspitch-folder", str(banks["v2025"]),
            "--dspitch-expressiveness", "0", "--dspitch-speaker", "tenor", "-o", str(output)]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "258 frames, 226 voiced (dspitch, hop 512)" in result.output
    curve = load_f0_curve(output)
    midi, rest, seconds = some_notes(banks["v2025"], sine_wave())
    ends = np.cumsum(seconds.astype(np.float64))
    notes = np.minimum(np.searchsorted(ends, curve.times, side="right"), len(ends) - 1)
    assert curve.voiced.tolist() == (~rest[notes]).tolist()
    # the tenor embedding adds one semitone to the notes
    middle = np.abs(curve.times - (ends[notes] - seconds[notes] / 2)) < 0.04
    middle &= curve.voiced & (seconds[notes] > 0.1)
    expected = 440.0 * 2 ** ((midi[notes][middle] + 1.0 - 69.0) / 12)
    assert np.abs(1200 * np.log2(curve.f0[middle] / expected)).max() < 0.01

    missing = CliRunner().invoke(
        cli.app, ["f0", str(song), "-m", "dspitch", "--dspitch-folder", str(tmp_path),
                  "-o", str(tmp_path / "x.csv")]
    )
    assert missing.exit_code != 0
    assert "dsconfig.yaml" in str(missing.exception) + missing.output


def test_infer_converts_with_the_bank(
    song: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bank found at $SOVITS_HOME/pretrain/ds_enhance, as `-f0p dspitch` alone expects."""
    home = tmp_path / "home"
    write_bank(home / "pretrain" / "ds_enhance", "v2023")
    monkeypatch.setenv("SOVITS_HOME", str(home))
    data = json.loads((MODEL.parent / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(data))
    out = tmp_path / "results"
    args = ["infer", "-m", str(MODEL), "-c", str(config), "-o", str(out), "-n", str(song),
            "-s", "spk_a", "-f0p", "dspitch", "-t", "2", "-wf", "wav", "-p", "0.1"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    written = sorted(out.iterdir())
    assert [path.name for path in written] == ["song_2key_spk_a_sovits_dspitch.wav"]
    audio, rate = soundfile.read(written[0])
    assert rate == 44100 and audio.shape == (len(sine_wave()),)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0

    # the same through the generated dspitch flags, with a blend
    monkeypatch.delenv("SOVITS_HOME")
    folder = write_bank(tmp_path / "bank", "v2025")
    flags = ["--dspitch-folder", str(folder), "--dspitch-speaker", "tenor",
             "--dspitch-expressiveness", "0", "--dspitch-blend", "confident",
             "--dspitch-blend-source", "dio", "--dspitch-steps", "4"]
    args[args.index("-o") + 1] = str(tmp_path / "blended")
    result = CliRunner().invoke(cli.app, [*args, *flags])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "blended").iterdir()] == [written[0].name]
    args[args.index("-o") + 1] = str(tmp_path / "never")
    bad = CliRunner().invoke(cli.app, [*args, "--dspitch-folder", str(tmp_path / "none")])
    assert bad.exit_code != 0
    assert "bank folder not found" in str(bad.exception) + bad.output


def test_convert_options_carry_the_dspitch_settings() -> None:
    assert "dspitch" in F0_METHODS and "dspitch" in PITCH_METHODS
    specs = {item.name: spec for item, spec in option_specs(ConvertOptions)}
    names = [name for name in specs if name.startswith("dspitch_")]
    assert names == [
        "dspitch_folder", "dspitch_steps", "dspitch_expressiveness", "dspitch_speaker",
        "dspitch_vowel", "dspitch_language", "dspitch_blend", "dspitch_blend_ratio",
        "dspitch_blend_source",
    ]
    assert all(specs[name].group == "pitch" for name in names)
    assert specs["dspitch_blend"].choices == BLEND_MODES
    assert specs["dspitch_folder"].path_kind == "folder"
    assert "dspitch" not in (specs["dspitch_blend_source"].choices or ())
    options = ConvertOptions(speaker="a", f0_method="dspitch", dspitch_steps=20)
    assert options.dspitch_steps == 20
    for bad in ({"dspitch_steps": 0}, {"dspitch_expressiveness": 2.0},
                {"dspitch_blend": "median"}, {"dspitch_blend_ratio": float("nan")},
                {"dspitch_blend_source": "dspitch"}):
        with pytest.raises(InputError):
            ConvertOptions(speaker="a", **bad)  # type: ignore[arg-type]
