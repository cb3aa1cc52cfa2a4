"""`sovits live`: file mode with --json, infer's model options, clear device errors."""

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
RATE = 44100


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A spectral-encoder config for the a_default model and a wav: 0.5 s of silence,
    then 0.8 s of a sung tone, then 0.4 s of silence."""
    folder = tmp_path_factory.mktemp("live")
    data = json.loads((MODEL.parent / "config.json").read_text())
    data["model"]["speech_encoder"] = "spectral"
    config = folder / "config.json"
    config.write_text(json.dumps(data))
    time = np.arange(int(0.8 * RATE)) / RATE
    tone = sum(0.15 / k * np.sin(2 * np.pi * 220 * k * time) for k in range(1, 5))
    wave = np.concatenate([np.zeros(RATE // 2), tone, np.zeros(int(0.4 * RATE))])
    source = folder / "sung.wav"
    soundfile.write(source, wave.astype(np.float32), RATE, subtype="FLOAT")
    return {"config": config, "input": source}


def _model_args(files: dict[str, Path]) -> list[str]:
    return ["live", "-m", str(MODEL), "-c", str(files["config"]), "-s", "spk_b"]


def test_file_mode_prints_the_figures_and_writes_an_aligned_file(
    files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "live.wav"
    args = [*_model_args(files), "-t", "-2", "-f0p", "pm", "--block-ms", "80",
            "--input-file", str(files["input"]), "--output-file", str(out), "--json"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("algorithmic_latency_ms", "blocks", "compute_ms_mean", "compute_ms_p95", "rtf"):
        assert isinstance(figures[key], (int, float)), key
    assert figures["blocks"] >= int(1.7 / 0.08)
    assert figures["compute_ms_p95"] >= figures["compute_ms_mean"] > 0
    source, _ = soundfile.read(files["input"])
    converted, rate = soundfile.read(out)
    assert rate == RATE and converted.shape == source.shape
    # Time-aligned: the gate opens where the sung tone starts, not a delay later.
    onset = int(np.argmax(np.abs(converted) > 1e-4))
    assert abs(onset - RATE // 2) <= 1024, onset
    assert np.abs(converted[RATE // 2 + 4096 : RATE]).max() > 0.01


def test_low_latency_setting_is_at_most_100_ms(files: dict[str, Path], tmp_path: Path) -> None:
    args = [*_model_args(files), "--low-latency", "-f0p", "pm", "--no-vad",
            "--input-file", str(files["input"]), "--output-file", str(tmp_path / "o.wav"),
            "--json"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["algorithmic_latency_ms"] <= 100


def test_offline_only_options_are_not_offered_and_fcpe_is_the_default() -> None:
    result = CliRunner().invoke(cli.app, ["live", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("-cr", "-f0p", "-ns", "-lea", "--block-ms", "--input-file", "--json"):
        assert flag in result.output, flag
    for flag in ("-shd", "--slice-db", "-eh", "--f0-file"):
        assert flag not in result.output, flag
    from sovits.cli.live import _schema_options

    methods = {name: info.default for name, _, info in _schema_options()}
    assert methods["f0_method"] == "fcpe"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from sovits.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_a_bad_device_name_is_one_clear_error(files: dict[str, Path]) -> None:
    completed = _run_cli(*_model_args(files), "-f0p", "pm", "--input-device",
                         "no-such-microphone-xyz", "--seconds", "0.5")
    assert completed.returncode == 2
    assert "error: no input device 'no-such-microphone-xyz'" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_rate_the_device_cannot_run_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sounddevice

    from sovits.cli.live import check_rate, resolve_device

    device = {"name": "USB Mic", "index": 3, "max_input_channels": 1, "max_output_channels": 0}

    def query(key: Any = None, kind: Any = None) -> Any:
        if key is None:
            return [device]
        if key in (3, "USB Mic", "USB"):
            return device
        raise ValueError(f"No {kind} device matching {key!r}")

    def check_input(**kw: Any) -> None:
        if kw["samplerate"] != 48000:
            raise sounddevice.PortAudioError("Invalid sample rate")

    monkeypatch.setattr(sounddevice, "query_devices", query)
    monkeypatch.setattr(sounddevice, "check_input_settings", check_input)
    assert resolve_device("USB", "input") == 3
    with pytest.raises(InputError, match="no input device 'Webcam'") as caught:
        resolve_device("Webcam", "input")
    assert "3: USB Mic" in str(caught.value)
    check_rate(3, "input", 48000)
    with pytest.raises(InputError, match="cannot run at 44100 Hz"):
        check_rate(3, "input", 44100)


def test_list_devices_works_without_any_device() -> None:
    result = CliRunner().invoke(cli.app, ["live", "--list-devices"])
    assert result.exit_code == 0, result.output
    assert result.output.strip()


def test_live_settings_are_defined_once_for_the_cli_the_websocket_and_the_ui() -> None:
    """`sovits live`'s stream flags, the WebSocket's accepted setting keys and the Live
    tab's settings widgets all come from LiveSettings' OptionSpecs."""
    import gradio as gr
    import typer

    from sovits.config.options_schema import option_specs
    from sovits.inference.live_settings import LiveSettings
    from sovits.server.live import live_settings
    from sovits.webui.live import build_live_tab
    from sovits.webui.widgets import option_label

    specs = {item.name: spec for item, spec in option_specs(LiveSettings)}
    assert {"block_ms", "low_latency", "gate", "gate_db", "vad"} <= set(specs)
    # the CLI: one option per field, spelled as its spec says
    command = typer.main.get_command(cli.app).commands["live"]  # type: ignore[attr-defined]
    params = {param.name: param for param in command.params}
    for name, spec in specs.items():
        spellings = [*params[name].opts, *params[name].secondary_opts]
        assert "/".join(spellings) in spec.flags or spellings == list(spec.flags), name
    for flag in ("--block-ms", "--context-ms", "--f0-context-ms", "--crossfade-ms",
                 "--search-ms", "--lookahead-ms", "--decoder-margin", "--low-latency",
                 "--no-gate", "--gate-db", "--gate-hangover-ms", "--no-vad"):
        assert any(flag in [*p.opts, *p.secondary_opts] for p in command.params), flag
    # the WebSocket: exactly the field names
    every = {"block_ms": 80, "low_latency": True, "gate": False, "context_ms": 400,
             "f0_context_ms": 200, "crossfade_ms": 8, "search_ms": 4, "lookahead_ms": 10,
             "decoder_margin": 6, "gate_db": -40, "gate_hangover_ms": 300, "vad": False}
    assert set(every) == set(specs)
    assert live_settings(every) == LiveSettings(**every)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown live setting"):
        live_settings({"block": 80})

    # the UI: one widget per field, labelled from its spec
    class NoModels:
        def models(self) -> list[Any]:
            return []

    with gr.Blocks():
        tab = build_live_tab(NoModels())  # type: ignore[arg-type]
    widgets = tab["settings"].widgets
    assert list(widgets) == list(specs)
    for name, widget in widgets.items():
        assert widget.label == option_label(name, specs[name])
        assert widget.elem_id == "live-" + name.replace("_", "-")


def test_low_latency_fills_in_only_what_is_not_given() -> None:
    from sovits.inference.live_settings import LiveSettings
    from sovits.inference.streaming import LOW_LATENCY, StreamSettings

    settings = LiveSettings(low_latency=True, block_ms=80, gate=False).stream_settings()
    assert settings.block_seconds == 0.08 and settings.gate is None
    assert settings.context_seconds == LOW_LATENCY.context_seconds
    assert settings.crossfade_seconds == LOW_LATENCY.crossfade_seconds
    plain = LiveSettings(gate_db=-40, gate_hangover_ms=250, vad=False).stream_settings()
    assert plain.block_seconds == StreamSettings().block_seconds
    assert plain.gate is not None and plain.gate.silence_db == -40
    assert plain.gate.hangover_seconds == 0.25 and not plain.gate.use_vad
    with pytest.raises(InputError, match=r"block_ms must be within 5\.\.5000 ms"):
        LiveSettings(block_ms=1)
