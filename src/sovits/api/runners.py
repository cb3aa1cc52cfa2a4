"""What each job kind does: checking its parameters (at submit) and running it.

`prepare_job` turns loosely typed parameters (JSON, form fields) into the checked
values a run needs, resolving model names and confining paths, so a bad request fails
before it is queued. `run_job` runs a prepared job with a JobContext and returns the
files it wrote. Each run calls the same library function the CLI command calls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovits.api.errors import PathNotAllowedError, ReportedError
from sovits.api.models import ModelInfo
from sovits.api.params import JOB_PARAMS, ConvertParams
from sovits.api.paths import confine_path
from sovits.config.options_schema import option_specs, values_from_mapping
from sovits.errors import InputError, SovitsError

if TYPE_CHECKING:
    from sovits.api.jobs import JobContext, JobService
    from sovits.inference.options import ConvertOptions

__all__ = ["CHILD_PROGRESS_PREFIX", "PreparedConvert", "prepare_job", "run_job"]

logger = logging.getLogger(__name__)

CHILD_PROGRESS_PREFIX = "@@sovits-progress "
"""A child process's stdout line `<prefix>{"progress": f, "stage": s}` reports progress;
other lines go to the job's log."""

_MODEL_ONLY_OPTIONS = (
    "cluster_model_path", "diffusion_model_path", "diffusion_config_path", "dspitch_folder",
)
"""Path options that may name pickled or model files: only from the models root, never
from the work folder where uploads land. Every other path option (path_kind set in its
OptionSpec) is confined to the work folder and the models root."""


@dataclass(frozen=True)
class PreparedConvert:
    """A checked conversion: the model, the input file and the options."""

    model: ModelInfo
    input: Path
    options: ConvertOptions


@dataclass(frozen=True)
class PreparedJob:
    """A checked job of another kind: its parameter object and the resolved models."""

    params: Any
    models: tuple[ModelInfo, ...]


def _as_params(cls: type, values: Mapping[str, Any]) -> Any:
    try:
        return cls(**values_from_mapping(cls, values))
    except (TypeError, ValueError) as error:
        raise InputError(f"bad parameters: {error}") from None


def _shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as JSON-ready values (paths as text)."""
    result: dict[str, Any] = json.loads(json.dumps(dict(values), default=str))
    return result


_AUDIO_INPUTS: dict[str, tuple[str, ...]] = {
    "f0": ("input",),
    "evaluate": ("source", "converted", "target_refs"),
}
"""Audio-file fields of each job kind (besides convert's input), checked against the
service's duration limit at submit."""

_CREATED_FOLDERS: dict[str, tuple[str, ...]] = {"resample": ("output",)}
"""Folder fields a job creates: confined like the others but need not exist yet."""


def _confine_fields(service: JobService, params: Any, *, model_only: tuple[str, ...] = (),
                    created: tuple[str, ...] = ()) -> Any:
    """`params` with each path field (path_kind set) confined to the service's roots;
    the fields in `created` may name a folder that does not exist yet."""
    changes: dict[str, Any] = {}
    for item, spec in option_specs(type(params)):
        value = getattr(params, item.name)
        if spec.path_kind is None or value is None:
            continue
        roots = (
            [service.models_root] if item.name in model_only
            else [service.work_dir, service.models_root]
        )
        kind = spec.path_kind

        def confine(path: Path, name: str = item.name, roots: list[Path] = roots,
                    kind: str = kind) -> Path:
            return confine_path(path, roots, what=name.replace("_", " "), kind=kind,
                                must_exist=name not in created)

        changes[item.name] = (
            [confine(path) for path in value] if isinstance(value, list) else confine(value)
        )
    return dataclasses.replace(params, **changes) if changes else params


def prepare_convert(service: JobService, params: Mapping[str, Any]) -> PreparedConvert:
    """Check a "convert" job's {"model", "input", "options"}."""
    from sovits.inference.options import ConvertOptions

    unknown = sorted(set(params) - {"model", "input", "options"})
    if unknown:
        raise InputError(f"unknown convert parameter(s): {', '.join(unknown)}",
                         hint="give model, input and options")
    base = _as_params(ConvertParams, {k: v for k, v in params.items() if k != "options"})
    info = service.model(base.model)
    source = confine_path(base.input, [service.work_dir, service.models_root], what="input")
    service.check_audio(source, readable=False)  # the duration limit; bad audio fails the job
    raw_options = params.get("options") or {}
    if not isinstance(raw_options, Mapping):
        raise InputError("options must be an object (option name -> value)")
    try:
        values = values_from_mapping(ConvertOptions, raw_options)
    except (TypeError, ValueError) as error:
        raise InputError(f"bad options: {error}") from None
    for item, spec in option_specs(ConvertOptions):
        name = item.name
        if spec.path_kind is None or values.get(name) is None:
            continue
        roots = [service.models_root] if name in _MODEL_ONLY_OPTIONS else [
            service.work_dir, service.models_root]
        kind = spec.path_kind
        if name == "cluster_model_path" and Path(values[name]).suffix == "":
            kind = "folder"  # a feature_index/ folder
        values[name] = confine_path(values[name], roots, what=name.replace("_", " "), kind=kind)
    if not values.get("speaker"):
        if not info.speakers:
            raise InputError(f"model {info.name!r} lists no speakers; name one in options.speaker")
        values["speaker"] = info.speakers[0]
    if values.get("cluster_ratio", 0) and values.get("cluster_model_path") is None:
        found = info.feature_index if values.get("feature_retrieval") else info.cluster_model
        if found is None:
            raise InputError(
                f"a cluster ratio needs a cluster model or feature index; model {info.name!r} "
                "has none next to it",
                hint="train one with a train-cluster / train-index job",
            )
        values["cluster_model_path"] = found
    if values.get("shallow_diffusion") or values.get("only_diffusion"):
        values.setdefault("diffusion_model_path", info.diffusion_model)
        values.setdefault("diffusion_config_path", info.diffusion_config)
    options = ConvertOptions(**values)
    if info.speakers and not options.use_speaker_mix and options.speaker not in info.speakers:
        raise InputError(
            f"model {info.name!r} has no speaker {options.speaker!r}",
            hint="its speakers: " + ", ".join(info.speakers),
        )
    return PreparedConvert(info, source, options)


def _models_of(service: JobService, params: Any) -> tuple[ModelInfo, ...]:
    names: list[str] = []
    if hasattr(params, "model"):
        names.append(params.model)
    if hasattr(params, "models"):
        names.extend(params.models)
    return tuple(service.model(name) for name in names)


def _model_folder(service: JobService, name: str) -> Path:
    """The folder `name` directly under the models root (it need not exist)."""
    from sovits.api.models import _NAME

    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise PathNotAllowedError(f"model name {name!r} is not a folder name under the root")
    return service.models_root / name


def _model_config(service: JobService, name: str) -> Path:
    """config.json of the model folder `name` (which need not hold a model file yet)."""
    config = _model_folder(service, name) / "config.json"
    if not config.is_file():
        raise InputError(f"model folder {name!r} has no config.json",
                         hint="put the model's config.json in its folder under the models root")
    return config


def prepare_job(
    service: JobService, kind: str, params: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Check `params` of a `kind` job; returns (what `run_job` needs, params as shown)."""
    if kind == "convert":
        prepared = prepare_convert(service, params)
        shown = _shown({
            "model": prepared.model.name,
            "input": str(prepared.input),
            "options": {k: v for k, v in dataclasses.asdict(prepared.options).items()},
        })
        return prepared, shown
    cls = JOB_PARAMS[kind]
    values = _as_params(cls, params)
    values = _confine_fields(service, values, created=_CREATED_FOLDERS.get(kind, ()))
    for name in _AUDIO_INPUTS.get(kind, ()):
        value = getattr(values, name)
        for path in value if isinstance(value, list) else [value]:
            service.check_audio(path, readable=False)
    models: tuple[ModelInfo, ...] = ()
    if kind in ("train", "preprocess"):
        _model_config(service, values.model)
    elif kind == "resample":
        _model_folder(service, values.model)
        if values.output == values.dataset:
            raise InputError("the output folder is the dataset folder: outputs would replace "
                             "the recordings", hint="write to another folder (dataset/44k)")
    elif kind == "prepare":
        config = _model_folder(service, values.model) / "config.json"
        if config.exists() and not values.overwrite:
            raise InputError(f"model folder {values.model!r} already has a config.json",
                             hint="tick overwrite to replace it, or name a new folder")
    else:
        models = _models_of(service, values)
    if kind == "merge" and len(models) < 2:
        raise InputError("merging needs two or more models")
    if kind == "merge" and values.rates is not None and len(values.rates) != len(models):
        raise InputError(f"{len(values.rates)} rates for {len(models)} models")
    return PreparedJob(values, models), _shown(dataclasses.asdict(values))


# ---------------------------------------------------------------------- running


def run_job(context: JobContext, kind: str, prepared: Any) -> list[Path]:
    """Run a prepared job; returns the files it wrote."""
    runner = _RUNNERS[kind]
    return runner(context, prepared)


def _run_convert(context: JobContext, prepared: PreparedConvert) -> list[Path]:
    from sovits.inference.outputs import plan_output_paths

    options = prepared.options
    context.progress(0.0, "loading model")
    diffusion = (options.diffusion_model_path, options.diffusion_config_path)
    converter, lock = context.converters.get(
        prepared.model, only_diffusion=options.only_diffusion, diffusion=diffusion
    )
    out_dir = context.output_dir()
    plan_output_paths([(prepared.input, options)], out_dir)  # a clash fails before converting
    context.progress(0.0, "waiting for the model" if lock.locked() else "converting")
    with lock:
        context.check_cancelled()
        written = converter.convert_file(
            prepared.input, out_dir, options, progress=context.progress,
            should_stop=lambda: context.cancel_requested,
        )
    context.log(f"{prepared.input.name} -> {written.name}")
    return [written]


def _run_f0(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.features.pitch.export import extract_f0_from_file, save_f0_curve

    params = prepared.params
    context.progress(0.0, f"extracting f0 ({params.method})")
    track = extract_f0_from_file(params.input, params.method, sample_rate=params.sample_rate,
                                 hop_length=params.hop, transpose=params.transpose)
    context.check_cancelled()
    path = save_f0_curve(track, context.output_dir() / f"{params.input.stem}_f0.{params.format}")
    context.log(f"{len(track)} frames, {int(track.voiced.sum())} voiced")
    return [path]


def _run_evaluate(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.evaluation import EvaluationSettings, evaluate_conversion

    params = prepared.params
    context.progress(0.0, "measuring")
    settings = EvaluationSettings(f0_method=params.method,
                                  speaker_similarity=params.speaker_similarity)
    result = evaluate_conversion(
        params.source, params.converted, target_references=tuple(params.target_refs),
        transpose=params.transpose, settings=settings,
    )
    for line in result.to_text().splitlines():
        context.log(line)
    path = context.output_dir() / "metrics.json"
    result.write_json(path)
    return [path]


def _run_inspect(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.tools.inspect import format_report, inspect_model

    info = prepared.models[0]
    context.progress(0.0, "inspecting")
    report = inspect_model(info.model_file, info.config)
    for line in format_report(report).splitlines():
        context.log(line)
    path = context.output_dir() / "inspect.json"
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return [path]


def _run_merge(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.tools.merge import merge_model_files

    params = prepared.params
    models = prepared.models
    rates = params.rates if params.rates is not None else [100.0] * len(models)
    if params.mode == "linear" and params.rates is None:
        raise InputError("linear mode needs a rate per model")
    context.progress(0.0, "merging")
    output = context.output_dir() / "G_merged.pth"
    configs = [info.config for info in models if info.config is not None]
    weights = merge_model_files(
        [info.model_file for info in models], rates, output, params.mode,
        configs=configs if len(configs) == len(models) else None,
    )
    context.log("weights: " + ", ".join(f"{info.name} {weight:.4f}"
                                        for info, weight in zip(models, weights.tolist(),
                                                                strict=True)))
    return [output]


def _run_compress(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.tools.compress import compress_model

    params = prepared.params
    info = prepared.models[0]
    context.progress(0.0, "compressing")
    suffix = ".safetensors" if params.release else ".pth"
    stem = info.model_file.stem  # a release (G_0_release.pth) is not named "release" twice
    base = stem if stem.endswith("_release") else f"{stem}_release"
    name = f"{base}{'_half' if params.half else ''}{suffix}"
    result = compress_model(info.model_file, context.output_dir() / name, config=info.config,
                            half=params.half, release=params.release)
    context.log(f"{result.kept_keys} tensors kept, {result.dropped_keys} dropped, {result.dtype}")
    return [result.output]


def _run_export_onnx(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.tools.onnx_export import export_onnx

    params = prepared.params
    info = prepared.models[0]
    context.progress(0.0, "exporting")
    path = export_onnx(info.model_file, info.config,
                       context.output_dir() / f"{info.name}_SoVits.onnx",
                       speaker_mix=params.speaker_mix, opset=params.opset)
    moevs = path.with_suffix(".json")
    return [path, moevs] if moevs.is_file() else [path]


def _run_train_cluster(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.retrieval.training import train_cluster_from_dataset

    params = prepared.params
    info = prepared.models[0]
    context.progress(0.0, "fitting k-means")
    output = info.path / f"kmeans_{params.n_clusters}.safetensors"
    train_cluster_from_dataset(params.dataset, output, n_clusters=params.n_clusters,
                               seed=params.seed, use_minibatch=params.minibatch)
    return [output]


def _run_train_index(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.config import load_svc_config
    from sovits.retrieval.training import train_index_from_dataset

    params = prepared.params
    info = prepared.models[0]
    if info.config is None:
        raise InputError(f"model {info.name!r} has no config.json (its spk map gives the ids)")
    context.progress(0.0, "building the index")
    output = info.path / "feature_index"
    train_index_from_dataset(params.dataset, load_svc_config(info.config).spk, output,
                             seed=params.seed)
    return [output]


def _count_progress(context: JobContext, stage: str) -> Callable[[int, int], None]:
    def progress(done: int, total: int) -> None:
        context.progress(done / max(total, 1), f"{stage} {done}/{total}")

    return progress


def _run_resample(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.data.prepare import DEFAULT_SAMPLE_RATE, ResampleSettings, resample_dataset

    params = prepared.params
    rate = params.sample_rate
    config = context.models_root / params.model / "config.json"
    if rate is None and config.is_file():
        from sovits.config import load_svc_config

        rate = load_svc_config(config).data.sampling_rate
    settings = ResampleSettings(
        sample_rate=rate or DEFAULT_SAMPLE_RATE, loudness_normalization=not params.skip_loudnorm,
        target_lufs=params.target_lufs, true_peak_ceiling=params.true_peak,
    )
    context.progress(0.0, f"resampling to {settings.sample_rate} Hz")
    report = resample_dataset(
        params.dataset, params.output, settings,
        num_processes=params.num_processes or None, overwrite=params.overwrite,
        progress=_count_progress(context, "resampling"),
    )
    for problem in (*report.notes, *report.failed):
        context.log(str(problem))
    context.log(f"{params.output.name}: {report.summary()}")
    if not report.ok:
        raise InputError(f"{len(report.failed)} recording(s) could not be resampled",
                         where=params.dataset, hint="see the job log")
    return [params.output]


def _run_prepare(context: JobContext, prepared: PreparedJob) -> list[Path]:
    from sovits.data.filelists import preprocess_config

    params = prepared.params
    folder = context.models_root / params.model
    context.progress(0.0, "writing filelists and config")
    report = preprocess_config(
        params.dataset, train_list=folder / "filelists" / "train.txt",
        val_list=folder / "filelists" / "val.txt", config_path=folder / "config.json",
        speech_encoder=params.speech_encoder, vol_aug=params.vol_aug, tiny=params.tiny,
        seed=params.seed, val_per_speaker=params.val_per_speaker,
    )
    for note in report.split.notes:
        context.log(str(note))
    for problem in report.split.skipped:
        context.log(f"left out: {problem}")
    context.log(report.summary())
    return [report.config_path, report.diffusion_config_path, report.train_list,
            report.val_list]


def _run_child(context: JobContext, prepared: PreparedJob, kind: str) -> list[Path]:
    """Run preprocessing / training in a child process (`python -m sovits.api._child`)."""
    params = dataclasses.asdict(prepared.params)
    spec = {"kind": kind, "params": _shown(params),
            "models_root": str(context.models_root), "work_dir": str(context.work_dir)}
    context.progress(0.0, f"starting {kind}")
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    child = subprocess.Popen(
        [sys.executable, "-m", "sovits.api._child", json.dumps(spec)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=context.work_dir, env=environment, text=True, encoding="utf-8", errors="replace",
    )

    def kill() -> None:
        if child.poll() is None:
            child.kill()

    def stop() -> None:
        if child.poll() is None:
            child.terminate()  # the child stops training at the next step and saves
            killer = threading.Timer(20.0, kill)
            killer.daemon = True
            killer.start()

    context.on_cancel(stop)
    error: dict[str, Any] | None = None
    results: list[Path] = []
    assert child.stdout is not None
    for line in child.stdout:
        line = line.rstrip("\n")
        if line.startswith(CHILD_PROGRESS_PREFIX):
            message = json.loads(line[len(CHILD_PROGRESS_PREFIX):])
            if "error" in message:
                error = message["error"]
            elif "results" in message:
                results = [Path(path) for path in message["results"]]
            elif not context.cancel_requested:
                context.progress(message.get("progress", 0.0), message.get("stage"))
        elif line:
            context.log(line)
    code = child.wait()
    context.on_cancel(None)
    context.check_cancelled()
    if error is not None:
        raise ReportedError(str(error.get("code", "internal")), str(error.get("message", "failed")),
                            hint=error.get("hint"))
    if code != 0:
        raise SovitsError(f"the {kind} process ended with exit status {code}",
                          hint="see the job log")
    return results


_RUNNERS: dict[str, Callable[[JobContext, Any], list[Path]]] = {
    "convert": _run_convert,
    "f0": _run_f0,
    "evaluate": _run_evaluate,
    "inspect": _run_inspect,
    "merge": _run_merge,
    "compress": _run_compress,
    "export-onnx": _run_export_onnx,
    "train-cluster": _run_train_cluster,
    "train-index": _run_train_index,
    "resample": _run_resample,
    "prepare": _run_prepare,
    "preprocess": lambda context, prepared: _run_child(context, prepared, "preprocess"),
    "train": lambda context, prepared: _run_child(context, prepared, "train"),
}
