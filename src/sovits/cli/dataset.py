"""Dataset commands: resample, slice, qc, preprocess-config, preprocess.

Each writes into `--output`/`-o` (the folder it fills; the original's `--out_dir2` and
the earlier `--out-dir` / `--out` still work) and takes `--json`: one JSON object on
stdout in the shape of the HTTP API's job object (kind: the command's name; preprocess
is the API's "preprocess" job), with the counts under "report". The F0 method is
`--f0-method` (`-f0p`, `--f0_predictor`) as in every command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption, f0_method_option, legacy_aliases


def resample(
    in_dir: Annotated[
        Path, typer.Option("--in-dir", "--in_dir", help="Folder of <speaker>/ audio folders.")
    ] = Path("dataset_raw"),
    out_dir: Annotated[
        Path,
        typer.Option("--output", "-o", "--out-dir", "--out_dir2", help="Where <speaker>/*.wav go."),
    ] = Path("dataset/44k"),
    sample_rate: Annotated[
        int | None,
        typer.Option("--sample-rate", "--sr2", help="Output rate, Hz (default: config's, 44100)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="config.json to take the rate from.")
    ] = None,
    skip_loudnorm: Annotated[
        bool, typer.Option("--skip-loudnorm", "--skip_loudnorm", help="Keep the clips' loudness.")
    ] = False,
    target_lufs: Annotated[
        float, typer.Option("--target-lufs", help="Loudness target, LUFS.")
    ] = -23.0,
    true_peak: Annotated[
        float, typer.Option("--true-peak", help="True-peak ceiling, dBTP.")
    ] = -1.0,
    num_processes: Annotated[
        int | None, typer.Option("--num-processes", "-j", help="Worker processes.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo outputs that already exist.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Resample dataset_raw/<speaker>/* to mono 16-bit wav, trimmed and loudness-normalised."""
    from sovits.data.prepare import ResampleSettings, resample_dataset

    if sample_rate is None and config is not None:
        from sovits.config import load_svc_config

        sample_rate = load_svc_config(config).data.sampling_rate
    settings = ResampleSettings(
        sample_rate=sample_rate or 44100,
        loudness_normalization=not skip_loudnorm,
        target_lufs=target_lufs,
        true_peak_ceiling=true_peak,
    )
    params = {"in_dir": in_dir, "output": out_dir, "sample_rate": settings.sample_rate,
              "loudness_normalization": not skip_loudnorm, "target_lufs": target_lufs,
              "true_peak": true_peak, "overwrite": overwrite}
    with CommandJob("resample", params, as_json=as_json) as job, _CountBar(
        "resample", shown=not as_json
    ) as bar:
        report = resample_dataset(
            in_dir, out_dir, settings, num_processes=num_processes, overwrite=overwrite,
            progress=bar,
        )
        _report_lines(job, notes=report.notes, failed=report.failed)
        job.say(f"{job.result(out_dir)}: {report.summary()}")
        job.extra["report"] = {"written": len(report.written), "skipped": len(report.skipped),
                               "failed": len(report.failed), "ok": report.ok}
    if not report.ok:
        raise typer.Exit(1)


def slice_audio(
    source: Annotated[Path, typer.Argument(help="Audio file, or folder of audio files.")],
    out_dir: Annotated[
        Path,
        typer.Option("--output", "-o", "--out-dir", "--out",
                     help="Folder for the <name>_<i>.wav clips."),
    ],
    threshold: Annotated[
        float, typer.Option("--threshold", "--db_thresh", help="Silence below this RMS, dB.")
    ] = -40.0,
    min_length: Annotated[
        int, typer.Option("--min-length", "--min_length", help="Shortest clip, ms.")
    ] = 5000,
    min_interval: Annotated[
        int, typer.Option("--min-interval", "--min_interval", help="Shortest silence to cut, ms.")
    ] = 300,
    hop_size: Annotated[
        int, typer.Option("--hop-size", "--hop_size", help="RMS frame hop, ms.")
    ] = 10,
    max_sil_kept: Annotated[
        int, typer.Option("--max-sil-kept", "--max_sil_kept", help="Most silence kept, ms.")
    ] = 500,
    as_json: JsonOption = False,
) -> None:
    """Cut audio at silences into clips (the audio-slicer algorithm)."""
    from sovits.audio.slicer import SlicerSettings
    from sovits.data.prepare import slice_audio as slice_paths

    settings = SlicerSettings(
        threshold_db=threshold,
        min_length_ms=min_length,
        min_interval_ms=min_interval,
        hop_size_ms=hop_size,
        max_silence_kept_ms=max_sil_kept,
    )
    params = {"source": source, "output": out_dir, **dataclasses.asdict(settings)}
    with CommandJob("slice", params, as_json=as_json) as job, _CountBar(
        "slice", shown=not as_json
    ) as bar:
        report = slice_paths(source, out_dir, settings, progress=bar)
        for path in report.empty:
            job.say(f"no sound above {threshold} dB: {path}", err=True)
        _report_lines(job, failed=report.failed)
        job.say(f"{job.result(out_dir)}: {report.summary()}")
        job.extra["report"] = {"sources": report.sources, "clips": len(report.written),
                               "empty": len(report.empty), "failed": len(report.failed),
                               "ok": report.ok}
    if not report.ok:
        raise typer.Exit(1)


def qc(
    dataset: Annotated[
        Path, typer.Argument(help="Folder of <speaker>/*.wav clips.")
    ] = Path("dataset/44k"),
    out_dir: Annotated[
        Path | None,
        typer.Option("--output", "-o", "--out-dir",
                     help="Folder for report.txt/.png (default: <dataset>_qc)."),
    ] = None,
    f0_method: Annotated[
        str, f0_method_option("F0 method of the f0 ranges (none: skip them).", extra=("none",))
    ] = "dio",
    min_seconds: Annotated[
        float, typer.Option("--min-seconds", help="Shorter clips are listed.")
    ] = 2.0,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", help="Longer clips are listed.")
    ] = 20.0,
    as_json: JsonOption = False,
) -> None:
    """Check a prepared dataset: clip lengths, clipping, silence, f0 range per speaker."""
    from sovits.data.qc import QcSettings, analyse_dataset, write_qc_report

    method = None if f0_method == "none" else f0_method
    settings = QcSettings(min_seconds=min_seconds, max_seconds=max_seconds, f0_method=method)
    params = {"dataset": dataset, "output": out_dir, "f0_method": f0_method,
              "min_seconds": min_seconds, "max_seconds": max_seconds}
    with CommandJob("qc", params, as_json=as_json) as job, _CountBar(
        "qc", shown=not as_json
    ) as bar:
        report = analyse_dataset(dataset, settings, progress=bar)
        text_path, image_path = write_qc_report(report, out_dir)
        counts = {"clips": len(report.clips), "too_short": len(report.too_short),
                  "too_long": len(report.too_long), "clipped": len(report.clipped),
                  "mostly_silent": len(report.mostly_silent), "unreadable": len(report.failed)}
        job.extra["report"] = counts
        job.say(
            f"{dataset}: {counts['clips']} clips, {counts['too_short']} too short, "
            f"{counts['too_long']} too long, {counts['clipped']} clipped, "
            f"{counts['mostly_silent']} mostly silent, {counts['unreadable']} unreadable"
        )
        job.say(f"report: {job.result(text_path)}, {job.result(image_path)}")


def preprocess_config(
    source_dir: Annotated[
        Path, typer.Option("--source-dir", "--source_dir", help="Folder of <speaker>/*.wav.")
    ] = Path("dataset/44k"),
    train_list: Annotated[
        Path, typer.Option("--train-list", "--train_list", help="Training filelist to write.")
    ] = Path("filelists/train.txt"),
    val_list: Annotated[
        Path, typer.Option("--val-list", "--val_list", help="Validation filelist to write.")
    ] = Path("filelists/val.txt"),
    speech_encoder: Annotated[
        str,
        typer.Option("--speech-encoder", "--speech_encoder", help="Content encoder name."),
    ] = "vec768l12",
    vol_aug: Annotated[
        bool, typer.Option("--vol-aug", "--vol_aug", help="Volume embedding + augmentation.")
    ] = False,
    tiny: Annotated[bool, typer.Option("--tiny", help="The 4.1 tiny model template.")] = False,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="config.json to write.")
    ] = Path("configs/config.json"),
    diffusion_config: Annotated[
        Path | None,
        typer.Option("--diffusion-config", help="diffusion.yaml to write (default: beside -c)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/val shuffle.")] = 1234,
    as_json: JsonOption = False,
) -> None:
    """Split the dataset into filelists and write config.json and diffusion.yaml."""
    from sovits.data.filelists import preprocess_config as write_configs

    params = {"source_dir": source_dir, "train_list": train_list, "val_list": val_list,
              "config": config, "diffusion_config": diffusion_config,
              "speech_encoder": speech_encoder, "vol_aug": vol_aug, "tiny": tiny, "seed": seed}
    with CommandJob("preprocess-config", params, as_json=as_json) as job:
        report = write_configs(
            source_dir, train_list=train_list, val_list=val_list, config_path=config,
            diffusion_config_path=diffusion_config, speech_encoder=speech_encoder,
            vol_aug=vol_aug, tiny=tiny, seed=seed,
        )
        _report_lines(job, notes=report.split.notes)
        for problem in report.split.skipped:
            job.say(f"left out: {problem}", err=True)
        written = [report.train_list, report.val_list, report.config_path,
                   report.diffusion_config_path]
        job.say(report.summary())
        job.say("wrote " + ", ".join(str(job.result(path)) for path in written))


def preprocess(
    in_dir: Annotated[
        Path, typer.Option("--in-dir", "--in_dir", help="Folder of <speaker>/*.wav.")
    ] = Path("dataset/44k"),
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The model's config.json.")
    ] = Path("configs/config.json"),
    f0_method: Annotated[str, f0_method_option("F0 method of the training f0.")] = "rmvpe",
    use_diff: Annotated[
        bool, typer.Option("--use-diff", "--use_diff", help="Also the diffusion features.")
    ] = False,
    num_processes: Annotated[
        int, typer.Option("--num-processes", "--num_processes", help="Workers (0: one per CPU).")
    ] = 1,
    device: Annotated[
        str | None, typer.Option("--device", "-d", help="torch device (default: GPUs round-robin).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Hash every cached feature to find corruption.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Recompute every feature.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Compute content units, f0, spectrograms (and volume / diffusion mels) of the dataset."""
    from sovits.config import load_svc_config

    model_config = load_svc_config(config)  # a bad config fails before torch is imported
    from sovits.data.preprocess import PreprocessSettings, preprocess_dataset

    settings = PreprocessSettings(
        f0_method=f0_method, use_diff=use_diff, num_processes=num_processes, device=device,
        verify=verify, force=force,
    )
    params = {"config": config, "dataset": in_dir, "f0_method": f0_method, "use_diff": use_diff,
              "num_processes": num_processes, "verify": verify, "force": force}
    with CommandJob("preprocess", params, as_json=as_json) as job, _CountBar(
        "preprocess", shown=not as_json
    ) as bar:
        report = preprocess_dataset(in_dir, model_config, settings, progress=bar)
        for problem in report.recomputed:
            job.say(f"recomputed: {problem}", err=True)
        _report_lines(job, failed=report.failed)
        job.say(f"{job.result(in_dir)}: {report.summary()}")
        job.extra["report"] = {"ok": report.ok, "failed": len(report.failed),
                               "recomputed": len(report.recomputed)}
    if not report.ok:
        raise typer.Exit(1)


def _report_lines(
    job: CommandJob, *, notes: Iterable[object] = (), failed: Iterable[object] = ()
) -> None:
    """A report's notes and failures, one `note:` / `failed:` line each, on stderr."""
    for note in notes:
        job.say(f"note: {note}", err=True)
    for problem in failed:
        job.say(f"failed: {problem}", err=True)


class _CountBar:
    """A rich progress bar on stderr counting files, shown from the first finished one."""

    def __init__(self, label: str, *, shown: bool = True) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID

        columns = ("{task.description}", BarColumn(), MofNCompleteColumn())
        self.progress = Progress(*columns, console=Console(stderr=True), transient=True,
                                 disable=not shown)
        self.label = label
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __enter__(self) -> _CountBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()


def register(app: typer.Typer) -> None:
    """Add `resample`, `slice`, `qc`, `preprocess-config`, `preprocess` to `app`."""
    app.command("resample")(resample)
    app.command("slice")(slice_audio)
    app.command("qc")(qc)
    app.command("preprocess-config")(preprocess_config)
    app.command("preprocess", cls=legacy_aliases({"--f0-predictor": "--f0-method"}))(preprocess)
