"""`sovits f0`: extract a curve from an audio file; unusable input gives one error line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from sovits import cli
from sovits.features.pitch.export import load_f0_curve


@pytest.fixture(scope="module")
def tone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.5 s stereo 200 Hz harmonic tone at 22.05 kHz (so the command resamples it)."""
    time = np.arange(11025) / 22050
    wave = sum(0.2 / k * np.sin(2 * np.pi * 200 * k * time) for k in range(1, 6))
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    soundfile.write(path, np.stack([wave, wave], axis=1).astype(np.float32), 22050)
    return path


def test_writes_a_csv_and_a_transposed_npy(tone: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    csv = tmp_path / "tone.csv"
    result = runner.invoke(cli.app, ["f0", str(tone), "--method", "dio", "-o", str(csv)])
    assert result.exit_code == 0, result.output
    assert "43 frames" in result.output  # 0.5 s at 44.1 kHz, hop 512
    assert csv.read_text().splitlines()[0] == "time_s,f0_hz,voiced"
    plain = load_f0_curve(csv)
    assert len(plain) == 22050 // 512
    assert 195 < np.median(plain.f0[plain.voiced]) < 205

    npy = tmp_path / "tone.npy"
    args = ["f0", str(tone), "-f0p", "dio", "-t", "-12", "--hop", "512", "-o", str(npy)]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    lowered = load_f0_curve(npy)
    np.testing.assert_allclose(lowered.f0, plain.f0 / 2, rtol=1e-6)
    np.testing.assert_array_equal(lowered.voiced, plain.voiced)


def test_sample_rate_and_hop(tone: Path, tmp_path: Path) -> None:
    output = tmp_path / "tone16k.csv"
    args = ["f0", str(tone), "-m", "pm", "--sample-rate", "16000", "--hop", "160"]
    result = CliRunner().invoke(cli.app, [*args, "-o", str(output)])
    assert result.exit_code == 0, result.output
    curve = load_f0_curve(output)
    assert len(curve) == 8000 // 160
    assert curve.times[1] == pytest.approx(0.01)


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the console entry point in this process; returns its exit code."""
    monkeypatch.setattr(sys, "argv", ["sovits", *args])
    with pytest.raises(SystemExit) as caught:
        cli.main()
    code = caught.value.code
    return code if isinstance(code, int) else 1


def test_unusable_input_is_one_error_line(
    tmp_path: Path, tone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros((0, 1), dtype=np.float32), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    nan = tmp_path / "nan.wav"
    soundfile.write(nan, np.full((4000, 1), np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    output = tmp_path / "out.csv"
    cases = [
        ([str(empty), "-m", "pm", "-o", str(output)], "no samples"),
        ([str(corrupt), "-m", "pm", "-o", str(output)], "cannot read the audio"),
        ([str(nan), "-m", "pm", "-o", str(output)], "NaN"),
        ([str(tone), "-m", "yin", "-o", str(output)], "valid methods: pm, dio, harvest, crepe"),
        ([str(tone), "-m", "pm", "-o", str(tmp_path / "out.txt")], "use a .csv or .npy"),
    ]
    for args, message in cases:
        assert _main(monkeypatch, "f0", *args) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert message in lines[0]
    assert not output.exists()


def test_error_line_from_a_real_process(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC broken")
    command = [sys.executable, "-c", "from sovits.cli import main; main()", "f0", str(corrupt)]
    result = subprocess.run(
        [*command, "-m", "dio", "-o", str(tmp_path / "out.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize("method", ["pm", "dio", "harvest", "crepe", "rmvpe", "fcpe"])
def test_every_method_exports_a_curve(
    method: str, tone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rmvpe has no shipped weights: a tiny random RMVPE in the original format stands in,
    # found through SOVITS_HOME as a user's pretrain/rmvpe.pt would be.
    home = tmp_path / "home"
    (home / "pretrain").mkdir(parents=True)
    rmvpe = Path(__file__).parent / "fixtures" / "sovits41-extras" / "rmvpe" / "rmvpe_tiny.pt"
    (home / "pretrain" / "rmvpe.pt").write_bytes(rmvpe.read_bytes())
    monkeypatch.setenv("SOVITS_HOME", str(home))
    output = tmp_path / f"{method}.csv"
    args = ["f0", str(tone), "-m", method, "--sample-rate", "16000", "--hop", "160"]
    result = CliRunner().invoke(cli.app, [*args, "-o", str(output)])
    assert result.exit_code == 0, result.output
    curve = load_f0_curve(output)
    assert len(curve) == 8000 // 160
    assert np.all(np.isfinite(curve.f0))


def test_json_is_the_api_f0_job(tone: Path, tmp_path: Path) -> None:
    import json

    csv = tmp_path / "tone.csv"
    result = CliRunner().invoke(
        cli.app, ["f0", str(tone), "--f0-method", "dio", "-o", str(csv), "--json"]
    )
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert (view["kind"], view["state"], view["results"]) == ("f0", "done", [str(csv.resolve())])
    assert view["params"]["method"] == "dio" and view["params"]["format"] == "csv"
    assert "43 frames" in view["log"][0]
    assert len(load_f0_curve(csv)) == 43
