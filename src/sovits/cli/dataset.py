"""Dataset commands: resample, slice, qc, preprocess-config, preprocess."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def resample(
    in_dir: Annotated[
        Path, typer.Option("--in-dir", "--in_dir", help="Folder of <speaker>/ audio folders.")
    ] = Path("dataset_raw"),
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "--out_dir2", help="Where <speaker>/*.wav go.")
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
    with _CountBar("resample") as bar:
        report = resample_dataset(
            in_dir, out_dir, settings, num_processes=num_processes, overwrite=overwrite,
            progress=bar,
        )
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    for problem in report.failed:
        typer.echo(f"failed: {problem}", err=True)
    typer.echo(f"{out_dir}: {report.summary()}")
    if not report.ok:
        raise typer.Exit(1)


def slice_audio(
    source: Annotated[Path, typer.Argument(help="Audio file, or folder of audio files.")],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "-o", "--out", help="Folder for the <name>_<i>.wav clips.")
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
    with _CountBar("slice") as bar:
        report = slice_paths(source, out_dir, settings, progress=bar)
    for path in report.empty:
        typer.echo(f"no sound above {threshold} dB: {path}", err=True)
    for problem in report.failed:
        typer.echo(f"failed: {problem}", err=True)
    typer.echo(f"{out_dir}: {report.summary()}")
    if not report.ok:
        raise typer.Exit(1)


def qc(
    dataset: Annotated[
        Path, typer.Argument(help="Folder of <speaker>/*.wav clips.")
    ] = Path("dataset/44k"),
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", "-o", help="Folder for report.txt/.png (default: <dataset>_qc)."),
    ] = None,
    f0_method: Annotated[
        str, typer.Option("--f0-method", "-f0p", help="f0 method for the f0 ranges, or none.")
    ] = "dio",
    min_seconds: Annotated[
        float, typer.Option("--min-seconds", help="Shorter clips are listed.")
    ] = 2.0,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", help="Longer clips are listed.")
    ] = 20.0,
) -> None:
    """Check a prepared dataset: clip lengths, clipping, silence, f0 range per speaker."""
    from sovits.data.qc import QcSettings, analyse_dataset, write_qc_report

    method = None if f0_method.lower() == "none" else f0_method
    settings = QcSettings(min_seconds=min_seconds, max_seconds=max_seconds, f0_method=method)
    with _CountBar("qc") as bar:
        report = analyse_dataset(dataset, settings, progress=bar)
    text_path, image_path = write_qc_report(report, out_dir)
    typer.echo(
        f"{dataset}: {len(report.clips)} clips, {len(report.too_short)} too short, "
        f"{len(report.too_long)} too long, {len(report.clipped)} clipped, "
        f"{len(report.mostly_silent)} mostly silent, {len(report.failed)} unreadable\n"
        f"report: {text_path}, {image_path}"
    )


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
) -> None:
    """Split the dataset into filelists and write config.json and diffusion.yaml."""
    from sovits.data.filelists import preprocess_config as write_configs

    report = write_configs(
        source_dir, train_list=train_list, val_list=val_list, config_path=config,
        diffusion_config_path=diffusion_config, speech_encoder=speech_encoder, vol_aug=vol_aug,
        tiny=tiny, seed=seed,
    )
    for note in report.split.notes:
        typer.echo(f"note: {note}", err=True)
    for problem in report.split.skipped:
        typer.echo(f"left out: {problem}", err=True)
    typer.echo(f"{report.summary()}\nwrote {report.train_list}, {report.val_list}, "
               f"{report.config_path}, {report.diffusion_config_path}")


def preprocess(
    in_dir: Annotated[
        Path, typer.Option("--in-dir", "--in_dir", help="Folder of <speaker>/*.wav.")
    ] = Path("dataset/44k"),
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The model's config.json.")
    ] = Path("configs/config.json"),
    f0_predictor: Annotated[
        str,
        typer.Option("--f0-predictor", "--f0_predictor", help="pm, dio, harvest, crepe, rmvpe, "
                     "fcpe."),
    ] = "rmvpe",
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
) -> None:
    """Compute content units, f0, spectrograms (and volume / diffusion mels) of the dataset."""
    from sovits.config import load_svc_config

    model_config = load_svc_config(config)  # a bad config fails before torch is imported
    from sovits.data.preprocess import PreprocessSettings, preprocess_dataset

    settings = PreprocessSettings(
        f0_method=f0_predictor, use_diff=use_diff, num_processes=num_processes, device=device,
        verify=verify, force=force,
    )
    with _CountBar("preprocess") as bar:
        report = preprocess_dataset(in_dir, model_config, settings, progress=bar)
    for problem in report.recomputed:
        typer.echo(f"recomputed: {problem}", err=True)
    for problem in report.failed:
        typer.echo(f"failed: {problem}", err=True)
    typer.echo(f"{in_dir}: {report.summary()}")
    if not report.ok:
        raise typer.Exit(1)


class _CountBar:
    """A rich progress bar on stderr counting files, shown from the first finished one."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID

        columns = ("{task.description}", BarColumn(), MofNCompleteColumn())
        self.progress = Progress(*columns, console=Console(stderr=True), transient=True)
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
    app.command("preprocess")(preprocess)
