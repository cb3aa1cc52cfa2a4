"""The `sovits infer` command: so-vits-svc's inference_main.py flags over `Converter`.

The conversion options are not written here: each field of `ConvertOptions` becomes
an option from its OptionSpec (canonical flag, then the original's spellings as
aliases; help, range and unit), so the CLI, the HTTP API and the web UI offer the same
options. Only what is not a conversion option (inputs, model, config, output folder,
device, --overwrite, --json) is declared here. -n, -t and -s take several values
after one flag, as the original's argparse `nargs='+'` did.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from sovits.cli._options import CommandOption, conversion_options, set_options
from sovits.config.options_schema import option_specs
from sovits.inference.options import ConvertOptions

__all__ = ["infer", "register"]

_LIST_FIELDS = {"speaker": "speakers", "transpose": "transposes"}
"""ConvertOptions fields that take one value per input / speaker on the command line."""

_OWN_OPTIONS: list[tuple[str, Any, Any]] = [
    ("inputs", list[Path], typer.Option(..., "--input", "-n", "--clean_names",
                                        help="Audio files to convert (several after one -n).")),
    ("model", Path | None, typer.Option(
        None, "--model", "-m", "--model_path",
        help="Model file (G_*.pth, release, or .onnx from export-onnx); not with -od.")),
    ("config", Path | None, typer.Option(None, "--config", "-c", "--config_path",
                                         help="The model's config.json.")),
    ("output_dir", Path, typer.Option(Path("results"), "--output", "-o", "--output-dir",
                                      help="Folder for the results.")),
    ("device", str | None, typer.Option(None, "--device", "-d",
                                        help="torch device; default cuda when available.")),
    ("overwrite", bool, typer.Option(False, "--overwrite",
                                     help="Replace results that already exist.")),
    ("as_json", bool, typer.Option(False, "--json",
                                   help="Print the finished jobs as JSON (as the HTTP API "
                                   "returns them).")),
]
"""(parameter, type, typer option) of the options that are not ConvertOptions fields."""

_DEFAULT_MIX_TRACKS = (Path("spkmix.json"), Path("spkmix.yaml"), Path("spkmix.py"))
"""Where the -usm track is looked for without --speaker-mix-track."""


def _schema_options() -> list[CommandOption]:
    """(parameter, type, typer option) of every ConvertOptions field with CLI flags."""
    return conversion_options(list_fields=_LIST_FIELDS)


def _list_flags() -> frozenset[str]:
    """Flags that take several values after one occurrence (-n, -t, -s and spellings)."""
    flags = set(_OWN_OPTIONS[0][2].param_decls) | {_OWN_OPTIONS[0][2].default}
    for item, spec in option_specs(ConvertOptions):
        if item.name in _LIST_FIELDS:
            flags.update(spec.flags)
    return frozenset(flag for flag in flags if isinstance(flag, str) and flag.startswith("-"))


def _is_option_token(token: str) -> bool:
    """A token that starts another option (negative numbers are values, as in argparse)."""
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


class _InferCommand(TyperCommand):
    """Lets -n, -t and -s take several values after one flag (`-n a.wav b.wav`), as
    the original's argparse `nargs='+'` did, by repeating the flag for each value."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        list_flags = _list_flags()
        spread: list[str] = []
        flag: str | None = None
        for index, token in enumerate(args):
            if token == "--":
                spread.extend(args[index:])
                break
            if token in list_flags:
                flag = token
                spread.append(token)
                continue
            if _is_option_token(token):
                flag = None
            elif flag is not None and spread and spread[-1] != flag:
                spread.append(flag)  # a further value of the last list flag
            spread.append(token)
        return super().parse_args(ctx, spread)


def _infer_input(path: Path) -> Path:
    """An input as given, or as the original looked it up: raw/<name>, ".wav" added
    to a name without a suffix."""
    from sovits.errors import InputError

    names = [path, path.with_name(path.name + ".wav")] if not path.suffix else [path]
    for name in names:
        for candidate in (name, Path("raw") / name):
            if candidate.is_file():
                return candidate
    if path.is_dir():
        raise InputError("is a folder, expected an audio file", where=path)
    raise InputError("audio file not found", where=path)


def _first_existing(paths: tuple[Path, ...]) -> Path | None:
    return next((path for path in paths if path.exists()), None)


def _run(values: dict[str, Any]) -> None:
    """The body of `sovits infer` with every option parsed into `values`."""
    from sovits.errors import InputError
    from sovits.inference.converter import Converter
    from sovits.inference.outputs import plan_output_paths

    inputs: list[Path] = values.pop("inputs")
    model: Path | None = values.pop("model")
    config: Path | None = values.pop("config")
    output_dir: Path = values.pop("output_dir")
    device: str | None = values.pop("device")
    overwrite: bool = values.pop("overwrite")
    as_json: bool = values.pop("as_json")
    speakers: list[str] | None = values.pop("speakers")
    transposes: list[float] | None = values.pop("transposes")

    if values["use_speaker_mix"]:
        if values["speaker_mix_path"] is None:
            values["speaker_mix_path"] = _first_existing(_DEFAULT_MIX_TRACKS)
            if values["speaker_mix_path"] is None:
                raise InputError(
                    "speaker mixing (-usm) needs a track file",
                    hint="pass --speaker-mix-track, or put spkmix.json / spkmix.yaml / "
                    "spkmix.py in the working folder",
                )
        speakers = ["spk_mix"]
    if not speakers:
        raise InputError("name a target speaker with -s (or mix speakers with -usm)")
    if values["cluster_ratio"] != 0 and values["cluster_model_path"] is None:
        from sovits.retrieval.locate import (
            DEFAULT_CLUSTER_MODELS,
            DEFAULT_INDEXES,
            find_timbre_model,
        )

        retrieval = bool(values["feature_retrieval"])
        found = find_timbre_model(model, feature_retrieval=retrieval) if model else None
        if found is None:
            defaults = DEFAULT_INDEXES if retrieval else DEFAULT_CLUSTER_MODELS
            raise InputError(
                "a cluster ratio (-cr) needs a cluster model or feature index (-cm); none "
                f"is next to the model or at the defaults ({', '.join(map(str, defaults))})",
                hint="train one with `sovits train-cluster` or `sovits train-index`",
            )
        values["cluster_model_path"] = found
    if model is None and not values["only_diffusion"]:
        raise InputError("a model file is needed (-m), unless only diffusion (-od) is used")
    shifts = list(transposes or [0.0])
    if len(shifts) > len(inputs):
        raise InputError(f"{len(shifts)} transposes (-t) for {len(inputs)} inputs (-n)")
    shifts += [shifts[0]] * (len(inputs) - len(shifts))
    jobs = [
        (path, ConvertOptions(speaker=speaker, transpose=shift, **values))
        for path, shift in zip(inputs, shifts, strict=True)
        for speaker in speakers
    ]
    # a missing input or a clash of outputs fails before any model is loaded
    jobs = [(_infer_input(path), options) for path, options in jobs]
    plan_output_paths(jobs, output_dir, overwrite=overwrite)
    if values["only_diffusion"]:
        converter = Converter.diffusion_only(
            values["diffusion_model_path"], values["diffusion_config_path"], device=device
        )
    else:
        # loaded once, in the precision the conversions ask for
        converter = Converter(model, config, device=device, precision=values["precision"])
    finished = []
    for index, (path, options) in enumerate(jobs, 1):
        written = converter.convert_file(path, output_dir, options)
        if as_json:
            finished.append(_job_view(index, model, path, options, written))
        else:
            typer.echo(f"{path} -> {written}")
    if as_json:
        typer.echo(json.dumps(finished, indent=2, ensure_ascii=False))


def _job_view(index: int, model: Path | None, path: Path, options: ConvertOptions,
              written: Path) -> dict[str, Any]:
    """A finished conversion as the HTTP API shows a done "convert" job."""
    import time

    from sovits.api.jobs import JobView

    now = time.time()
    params = json.loads(json.dumps({
        "model": None if model is None else str(model),
        "input": str(path),
        "options": dataclasses.asdict(options),
    }, default=str))
    return JobView(
        id=f"local-{index}", kind="convert", state="done", progress=1.0, stage="done",
        log=[f"{path.name} -> {written.name}"], results=[str(written.resolve())], error=None,
        params=params, created=now, started=now, finished=now,
    ).to_dict()


def infer(**values: Any) -> None:
    """Convert audio files to a model's voice (so-vits-svc's inference_main.py)."""
    _run(values)


def register(app: typer.Typer) -> None:
    """Add `infer` to `app`, its options made from ConvertOptions' OptionSpecs."""
    set_options(infer, [*_OWN_OPTIONS, *_schema_options()])
    app.command("infer", cls=_InferCommand)(infer)
