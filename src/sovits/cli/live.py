"""The `sovits live` command: live conversion from a device or a file, block by block.

The stream's own options (`--block-ms`, `--low-latency`, `--no-gate`, ...) are generated
from `sovits.inference.live_settings.LiveSettings`, which the live WebSocket and the web
UI's Live tab share. Model options are those of `sovits infer`, made by the same generator from
ConvertOptions' OptionSpecs (`sovits.cli._options.conversion_options`), less the ones that
only make sense offline (slicing, diffusion, the enhancer, f0 files, speaker-mix
tracks). The f0 method defaults to fcpe, as so-vits-svc's README recommends for real
time.

Modes:

* devices (default): sounddevice / PortAudio, full duplex at the model's rate;
  `--list-devices`, `--input-device`, `--output-device` (index or part of a name).
  Prints the algorithmic latency, then once a second the compute time per block.
  Ctrl-C stops cleanly and prints the summary (with --json, one JSON object).
* file (`--input-file`, `--output-file`): the file is fed block by block (as fast as
  possible, or at the pace of a device with `--realtime`); the output file has the
  input's length and is time-aligned with it (the stated delay removed).
* round trip (`--round-trip`): plays a click and records it back through a loopback
  (a cable from output to input, or the interface's loopback channel), and prints the
  measured device round trip; the conversion's latency is that plus the algorithmic
  latency.

--json prints one JSON object at the end: algorithmic_latency_ms, blocks,
compute_ms_mean, compute_ms_p95, compute_ms_max, rtf, underruns, delay_samples,
sample_rate, block_ms (and the output file in file mode).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from sovits.cli._options import CommandOption, conversion_options, schema_options, set_options
from sovits.errors import InputError

__all__ = ["live", "register"]

_OFFLINE_ONLY_GROUPS = frozenset({"slicing", "diffusion"})
"""OptionSpec groups that live conversion has no use for."""
_OFFLINE_ONLY_FIELDS = frozenset(
    {"f0_file", "auto_predict_f0", "audio_format", "use_speaker_mix", "speaker_mix_path",
     "enhance", "enhancer_adaptive_key"}
)
"""ConvertOptions fields live conversion refuses (see sovits.inference.streaming)."""
_LIVE_F0_DEFAULT = "fcpe"

_OWN_OPTIONS: list[tuple[str, Any, Any]] = [
    ("model", Path | None, typer.Option(None, "--model", "-m", "--model_path",
                                        help="Model file (G_*.pth or a release .pth).")),
    ("config", Path | None, typer.Option(None, "--config", "-c", "--config_path",
                                         help="The model's config.json.")),
    ("device", str | None, typer.Option(None, "--device", "-d",
                                        help="torch device; default cuda when available.")),
    ("speaker_weights", str | None, typer.Option(
        None, "--speaker-weights",
        help="A fixed speaker mix instead of -s, e.g. 'alto=0.7,tenor=0.3'.")),
    ("input_file", Path | None, typer.Option(None, "--input-file",
                                             help="File mode: audio file to stream.")),
    ("output_file", Path | None, typer.Option(None, "--output-file",
                                              help="File mode: where to write the result.")),
    ("realtime", bool, typer.Option(False, "--realtime",
                                    help="File mode: feed blocks at real-time pace.")),
    ("list_devices", bool, typer.Option(False, "--list-devices",
                                        help="List audio devices and exit.")),
    ("input_device", str | None, typer.Option(
        None, "--input-device", help="Input device: index or part of its name.")),
    ("output_device", str | None, typer.Option(
        None, "--output-device", help="Output device: index or part of its name.")),
    ("seconds", float | None, typer.Option(
        None, "--seconds", help="Device mode: stop after this many seconds.")),
    ("round_trip", bool, typer.Option(
        False, "--round-trip", help="Measure the devices' round trip with a click "
        "through a loopback, and exit.")),
    ("as_json", bool, typer.Option(False, "--json",
                                   help="Print one JSON object with the figures at the end.")),
]
"""(parameter, type, typer option) of the options that are neither ConvertOptions nor
LiveSettings fields."""


def _schema_options() -> list[CommandOption]:
    """`sovits infer`'s generated conversion options that apply live (f0 default fcpe)."""
    from sovits.config.options_schema import option_specs
    from sovits.inference.options import ConvertOptions

    excluded = {
        item.name for item, spec in option_specs(ConvertOptions)
        if spec.group in _OFFLINE_ONLY_GROUPS or item.name in _OFFLINE_ONLY_FIELDS
    }
    # one speaker, which --speaker-weights may replace
    return conversion_options(
        exclude=excluded, defaults={"f0_method": _LIVE_F0_DEFAULT, "speaker": None}
    )


def live(**values: Any) -> None:
    """Convert live: a microphone to speakers, or a file block by block (file mode)."""
    if values["list_devices"]:
        typer.echo(_device_listing())
        return
    if values["round_trip"]:
        _round_trip(values)
        return
    file_mode = values["input_file"] is not None or values["output_file"] is not None
    if not file_mode:  # a bad device name fails before the model loads
        resolve_device(values["input_device"], "input")
        resolve_device(values["output_device"], "output")
    streamer = _streamer(values)
    info = {
        "algorithmic_latency_ms": round(streamer.algorithmic_latency_ms, 2),
        "delay_samples": streamer.delay_samples,
        "sample_rate": streamer.sample_rate,
        "block_ms": round(1000.0 * streamer.block_samples / streamer.sample_rate, 2),
    }
    if file_mode:
        summary = _file_mode(streamer, values, info)
    else:
        summary = _device_mode(streamer, values, info)
    if values["as_json"]:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        typer.echo(
            f"blocks {summary['blocks']}, compute per block {summary['compute_ms_mean']:.1f} ms "
            f"(p95 {summary['compute_ms_p95']:.1f}, max {summary['compute_ms_max']:.1f}), "
            f"real-time factor {summary['rtf']:.2f}", err=True,
        )


# ------------------------------------------------------------------ building


def _settings_options() -> list[CommandOption]:
    """The stream's own options (block, context, gate ...), generated from LiveSettings,
    the definition the live WebSocket and the web UI's Live tab share."""
    from sovits.inference.live_settings import LiveSettings

    return schema_options(LiveSettings)


def _settings(values: dict[str, Any]) -> Any:
    """The StreamSettings the LiveSettings options describe."""
    from dataclasses import fields

    from sovits.inference.live_settings import LiveSettings

    chosen = {item.name: values[item.name] for item in fields(LiveSettings)}
    return LiveSettings(**chosen).stream_settings()


def _speaker_weights(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(
                f"bad --speaker-weights entry {part!r}", hint="write name=weight,name=weight"
            )
    return weights


def _streamer(values: dict[str, Any]) -> Any:
    """The StreamingConverter the options describe (the model loaded)."""
    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions
    from sovits.inference.streaming import StreamingConverter

    own = {name for name, _, _ in [*_OWN_OPTIONS, *_settings_options()]}
    fields = {key: value for key, value in values.items() if key not in own}
    speaker = fields.pop("speaker", None)
    weights = _speaker_weights(values["speaker_weights"])
    if speaker is None and weights is None:
        raise InputError("name a target speaker with -s (or mix with --speaker-weights)")
    speaker = speaker or next(iter(weights or {"mix": 1.0}))
    if values["model"] is None:
        raise InputError("a model file is needed (-m)")
    settings = _settings(values)
    if fields.get("cluster_ratio", 0) != 0 and fields.get("cluster_model_path") is None:
        from sovits.retrieval.locate import find_timbre_model

        fields["cluster_model_path"] = find_timbre_model(
            values["model"], feature_retrieval=bool(fields.get("feature_retrieval"))
        )
    options = ConvertOptions(speaker=speaker, **fields)
    converter = Converter(
        values["model"], values["config"], device=values["device"], precision=options.precision
    )
    return StreamingConverter(converter, options, settings, speaker_weights=weights)


# ------------------------------------------------------------------ file mode


def _file_mode(streamer: Any, values: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    from sovits.audio.io import load_audio, save_audio
    from sovits.audio.resample import resample
    from sovits.inference.streaming import stream_wave

    source, target = values["input_file"], values["output_file"]
    if source is None or target is None:
        raise InputError("file mode needs both --input-file and --output-file")
    wave, rate = load_audio(source)
    mono = wave if wave.ndim == 1 else wave.mean(axis=0)
    model_rate = streamer.sample_rate
    if not values["as_json"]:
        typer.echo(f"algorithmic latency {info['algorithmic_latency_ms']:.1f} ms "
                   f"(block {info['block_ms']:.1f} ms)", err=True)
    samples = resample(mono.astype("float32"), rate, model_rate)
    converted = stream_wave(streamer, samples, realtime=values["realtime"])
    if rate != model_rate:
        converted = resample(converted, model_rate, rate)[: mono.shape[0]]
    written = save_audio(target, converted, rate)
    return {**info, **_summary(streamer), "output_file": str(written)}


def _summary(streamer: Any) -> dict[str, Any]:
    figures = streamer.stats.summary()
    return {
        "blocks": int(figures["blocks"]),
        "compute_ms_mean": round(figures["compute_ms_mean"], 3),
        "compute_ms_p95": round(figures["compute_ms_p95"], 3),
        "compute_ms_max": round(figures["compute_ms_max"], 3),
        "rtf": round(figures["rtf"], 4),
        "underruns": int(figures["underruns"]),
    }


# ------------------------------------------------------------------ devices


def _sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise InputError(
            f"audio devices are unavailable: {error}",
            hint="pip install 'sovits[live]' and the PortAudio library (Debian: libportaudio2)",
        ) from None
    return sounddevice


def _device_listing() -> str:
    sd = _sounddevice()
    devices = sd.query_devices()
    if len(devices) == 0:
        return "no audio devices found"
    return str(devices)


def resolve_device(spec: str | None, kind: str) -> int | None:
    """The device index of `spec` (an index or part of a name) for `kind` ("input" or
    "output"); None for the default. InputError naming the devices there are."""
    sd = _sounddevice()
    if spec is None:
        return None
    key: int | str = int(spec) if spec.strip().isdigit() else spec
    try:
        found = sd.query_devices(key, kind)
    except (ValueError, sd.PortAudioError) as error:
        names = [f"{device.get('index', index)}: {device['name']}"
                 for index, device in enumerate(sd.query_devices())
                 if device[f"max_{kind}_channels"] > 0]
        raise InputError(
            f"no {kind} device {spec!r} ({error})",
            hint=("devices: " + "; ".join(names)) if names else "no audio devices were found",
        ) from None
    return int(found["index"])


def check_rate(device: int | None, kind: str, rate: int) -> None:
    """InputError when the device cannot run at `rate` Hz (mono float32)."""
    sd = _sounddevice()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device, samplerate=rate, channels=1, dtype="float32")
    except (ValueError, sd.PortAudioError) as error:
        name = "the default" if device is None else f"device {device}"
        raise InputError(
            f"{kind} {name} cannot run at {rate} Hz ({error})",
            hint="the stream runs at the model's rate; pick a device that supports it, or "
            "route through a system mixer (PulseAudio / PipeWire / an aggregate device)",
        ) from None


def _open_devices(values: dict[str, Any], rate: int) -> tuple[int | None, int | None]:
    inp = resolve_device(values["input_device"], "input")
    out = resolve_device(values["output_device"], "output")
    check_rate(inp, "input", rate)
    check_rate(out, "output", rate)
    return inp, out


def _device_mode(streamer: Any, values: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    sd = _sounddevice()
    rate = streamer.sample_rate
    inp, out = _open_devices(values, rate)
    failures: list[BaseException] = []

    def callback(indata: Any, outdata: Any, frames: int, _time: Any, status: Any) -> None:
        if failures:
            outdata.fill(0)
            return
        try:
            outdata[:, 0] = streamer.process(indata[:, 0])
        except BaseException as error:  # reported and re-raised by the main thread
            failures.append(error)
            outdata.fill(0)
            raise sd.CallbackAbort from None

    typer.echo(f"algorithmic latency {info['algorithmic_latency_ms']:.1f} ms "
               f"(block {info['block_ms']:.1f} ms); Ctrl-C stops", err=True)
    started = time.monotonic()
    try:
        with sd.Stream(samplerate=rate, blocksize=streamer.block_samples, device=(inp, out),
                       channels=1, dtype="float32", latency="low", callback=callback):
            shown = 0
            while not failures:
                time.sleep(0.1)
                elapsed = time.monotonic() - started
                if values["seconds"] is not None and elapsed >= values["seconds"]:
                    break
                if not values["as_json"] and int(elapsed) > shown:
                    shown = int(elapsed)
                    times = streamer.stats.compute_seconds[-20:]
                    if times:
                        block_ms = 1000.0 * streamer.block_samples / rate
                        mean = 1000.0 * sum(times) / len(times)
                        sys.stderr.write(f"\rcompute {mean:6.1f} ms per {block_ms:.0f} ms block")
                        sys.stderr.flush()
    except KeyboardInterrupt:
        pass
    finally:
        if not values["as_json"]:
            sys.stderr.write("\n")
    if failures:
        raise failures[0]
    return {**info, **_summary(streamer)}


def _round_trip(values: dict[str, Any]) -> None:
    """Play a click, record it through a loopback, print the measured round trip."""
    import numpy as np

    sd = _sounddevice()
    rate = 48000
    inp, out = _open_devices(values, rate)
    signal = np.zeros(rate, np.float32)
    signal[rate // 10 : rate // 10 + 48] = np.hanning(48).astype(np.float32) * 0.8
    recorded = sd.playrec(signal, samplerate=rate, channels=1, device=(inp, out),
                          dtype="float32", blocking=True)[:, 0]
    played_at = rate // 10
    heard = int(np.argmax(np.abs(np.correlate(recorded, signal[played_at:played_at + 48],
                                              mode="valid"))))
    if np.abs(recorded).max() < 0.01:
        raise InputError("the click was not heard back",
                         hint="connect the output to the input (a loopback cable or channel)")
    latency_ms = 1000.0 * (heard - played_at) / rate
    result = {"round_trip_ms": round(latency_ms, 2), "sample_rate": rate}
    if values["as_json"]:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"measured device round trip: {latency_ms:.1f} ms (add the algorithmic "
                   "latency `sovits live` prints for the conversion's total)")


def register(app: typer.Typer) -> None:
    """Add `live` to `app`, its model options generated as `sovits infer`'s."""
    set_options(live, [*_OWN_OPTIONS, *_settings_options(), *_schema_options()])
    app.command("live")(live)
