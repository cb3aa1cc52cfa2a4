"""`sovits infer`: the seed's flags, lists of inputs / transposes / speakers, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from sovits import cli
from sovits.errors import InputError
from tests.conftest import SOVITS41

MODEL = SOVITS41 / "variants" / "a_default" / "G_0_release.pth"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A spectral-encoder config for the a_default model and two short tones."""
    folder = tmp_path_factory.mktemp("infer")
    data = json.loads((MODEL.parent / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    config = folder / "config.json"
    config.write_text(json.dumps(data))
    paths = {"config": config}
    for name, frequency in (("low", 180.0), ("high", 300.0)):
        time = np.arange(int(0.3 * 44100)) / 44100
        path = folder / "in" / f"{name}.wav"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, 0.3 * np.sin(2 * np.pi * frequency * time), 44100)
        paths[name] = path
    return paths


def _base(files: dict[str, Path], out: Path) -> list[str]:
    return ["infer", "-m", str(MODEL), "-c", str(files["config"]), "-o", str(out), "-p", "0.1"]


def test_lists_after_one_flag_convert_every_input_for_every_speaker(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = [*_base(files, out), "-n", str(files["low"]), str(files["high"]),
            "-t", "-2", "3", "-s", "spk_a", "spk_c", "-wf", "wav", "-lea", "0.5"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "high_3key_spk_a_sovits_pm.wav",
        "high_3key_spk_c_sovits_pm.wav",
        "low_-2key_spk_a_sovits_pm.wav",
        "low_-2key_spk_c_sovits_pm.wav",
    ]
    data, rate = soundfile.read(out / "low_-2key_spk_a_sovits_pm.wav")
    assert rate == 44100 and data.shape == (int(0.3 * 44100),)


def test_long_names_repeated_flags_and_the_first_transpose_filling_in(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = [*_base(files, out), "--input", str(files["low"]), "--clean_names", str(files["high"]),
            "--trans", "5", "--spk_list", "spk_b", "-a", "-cl", "0.2", "-lg", "0.05"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "high_auto_spk_b_sovits_pm.flac",
        "low_auto_spk_b_sovits_pm.flac",
    ]


@pytest.mark.parametrize(
    ("extra", "error", "text"),
    [
        (["-cr", "0.5"], InputError, "-cm"),
        (["-usm"], InputError, "track"),
        (["-se"], InputError, "-shd"),
        (["-ks", "0"], InputError, "k_step"),
        (["-t", "60"], InputError, "transpose"),
        (["-lgr", "2"], InputError, "crossfade_retain"),
        (["-t", "0", "1", "2"], InputError, "transposes"),
    ],
)
def test_bad_options_fail_before_loading_the_model(
    files: dict[str, Path], tmp_path: Path, extra: list[str], error: type, text: str
) -> None:
    args = ["infer", "-m", str(tmp_path / "no-model.pth"), "-o", str(tmp_path),
            "-n", str(files["low"]), "-s", "spk_a", *extra]
    result = CliRunner().invoke(cli.app, args)
    assert isinstance(result.exception, error), result.output
    assert text in str(result.exception)


def test_errors_are_one_line_without_traceback(files: dict[str, Path], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt nonsense")
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from sovits.cli import main; main()"]
    for extra, text in (
        (["-n", str(corrupt), "-s", "spk_a"], "cannot read the audio"),
        (["-n", str(files["low"]), "-s", "nobody"], "unknown speaker 'nobody'"),
    ):
        result = subprocess.run(
            [*command, *_base(files, out), *extra], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert text in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_inputs_are_found_in_raw_as_the_original_did(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "song.wav").write_bytes(files["low"].read_bytes())
    monkeypatch.chdir(tmp_path)
    args = [*_base(files, tmp_path / "results"), "-n", "song", "-s", "spk_a", "-wf", "ogg"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    written = tmp_path / "results" / "song_0key_spk_a_sovits_pm.ogg"
    assert soundfile.info(written).samplerate == 44100


def test_every_conversion_option_is_a_flag_made_from_its_option_spec() -> None:
    from sovits.config.options_schema import option_specs
    from sovits.inference.options import ConvertOptions

    command = typer_command("infer")
    declared = {flag for param in command.params for flag in param.opts}
    for item, spec in option_specs(ConvertOptions):
        assert set(spec.flags) <= declared, item.name
    short = {"-n", "-m", "-c", "-s", "-t", "-cl", "-lg", "-lgr", "-f0p", "-a", "-ns", "-sd",
             "-p", "-lea", "-ft", "-wf", "-cm", "-cr", "-fr", "-usm", "-eh", "-eak", "-shd",
             "-od", "-se", "-dm", "-dc", "-ks", "-d"}
    assert short <= declared  # so-vits-svc's inference_main.py flags all still work


def typer_command(name: str) -> Any:
    import typer.main

    group = typer.main.get_command(cli.app)
    return group.commands[name]  # type: ignore[attr-defined]


def test_json_prints_the_api_job_objects_and_overwrite_is_needed_to_replace(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = [*_base(files, out), "-n", str(files["low"]), "-s", "spk_a", "-t", "2", "--json"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    jobs = json.loads(result.stdout)
    assert len(jobs) == 1
    job = jobs[0]
    assert set(job) == {"id", "kind", "state", "progress", "stage", "log", "results", "error",
                        "params", "created", "started", "finished"}
    assert job["kind"] == "convert" and job["state"] == "done" and job["error"] is None
    assert job["params"]["options"]["transpose"] == 2.0
    assert Path(job["results"][0]) == (out / "low_2key_spk_a_sovits_pm.flac").resolve()
    again = CliRunner().invoke(cli.app, args)
    assert isinstance(again.exception, InputError) and "--overwrite" in str(again.exception)
    replaced = CliRunner().invoke(cli.app, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output


def test_two_inputs_with_one_name_are_refused_before_converting(
    files: dict[str, Path], tmp_path: Path
) -> None:
    twin = tmp_path / "other" / "low.wav"
    twin.parent.mkdir()
    twin.write_bytes(files["low"].read_bytes())
    out = tmp_path / "results"
    args = [*_base(files, out), "-n", str(files["low"]), str(twin), "-s", "spk_a"]
    result = CliRunner().invoke(cli.app, args)
    assert isinstance(result.exception, InputError), result.output
    assert not out.exists() or not any(out.iterdir())
