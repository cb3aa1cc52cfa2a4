"""The `sovits` command: sub-commands that parse, call one library function, and print.

Heavy libraries (torch, gradio, lightning) are imported inside commands so that
`sovits --help` answers instantly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from sovits import __version__
from sovits.cli._training import (
    DevicesOption,
    NumNodesOption,
    StrategyOption,
    parse_devices,
    run_training_command,
)
from sovits.errors import SovitsError

if TYPE_CHECKING:
    from sovits.training.trainer import TrainProgress

app = typer.Typer(
    name="sovits",
    help="Singing voice conversion compatible with so-vits-svc 4.0/4.1 model files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sovits {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Singing voice conversion compatible with so-vits-svc 4.0/4.1 model files."""


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="so-vits-svc config.json to validate.")],
) -> None:
    """Validate a so-vits-svc config.json: unknown, missing or ill-typed keys are reported."""
    from sovits.config import load_svc_config

    cfg = load_svc_config(config)
    speakers = ", ".join(sorted(cfg.spk, key=cfg.spk.__getitem__))
    typer.echo(
        f"{config}: ok: {cfg.data.sampling_rate} Hz, hop {cfg.data.hop_length}, "
        f"encoder {cfg.model.speech_encoder}, speakers: {speakers}"
    )


@app.command("f0")
def f0(
    audio: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, ...).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the curve: .csv or .npy.")
    ],
    method: Annotated[
        str,
        typer.Option(
            "--method", "-m", "-f0p", help="f0 method: pm, dio, harvest, crepe, rmvpe or fcpe."
        ),
    ],
    hop: Annotated[int, typer.Option("--hop", help="Samples between frames.")] = 512,
    transpose: Annotated[
        float, typer.Option("--transpose", "-t", help="Shift the f0 by this many semitones.")
    ] = 0.0,
    sample_rate: Annotated[
        int, typer.Option("--sample-rate", "-sr", help="Rate to analyse the audio at, Hz.")
    ] = 44100,
) -> None:
    """Extract the f0 curve of an audio file and write it as CSV (time_s,f0_hz,voiced) or .npy."""
    from sovits.features.pitch.export import extract_f0_from_file, f0_curve_format, save_f0_curve

    f0_curve_format(output)  # a bad suffix fails before the extraction, not after
    track = extract_f0_from_file(
        audio, method, sample_rate=sample_rate, hop_length=hop, transpose=transpose
    )
    save_f0_curve(track, output)
    voiced = int(track.voiced.sum())
    typer.echo(f"{output}: {len(track)} frames, {voiced} voiced ({method}, hop {hop})")


@app.command("evaluate")
def evaluate(
    source: Annotated[Path, typer.Argument(help="The audio that was converted.")],
    converted: Annotated[Path, typer.Argument(help="The conversion of SOURCE.")],
    target_ref: Annotated[
        list[Path] | None,
        typer.Option("--target-ref", help="A clip of the target singer (repeat for more)."),
    ] = None,
    transpose: Annotated[
        float, typer.Option("--transpose", "-t", help="Semitones SOURCE was transposed by.")
    ] = 0.0,
    method: Annotated[
        str, typer.Option("--method", "-m", "-f0p", help="f0 method the tracks are taken with.")
    ] = "harvest",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics as JSON here.")
    ] = None,
) -> None:
    """Measure a conversion: f0 error (cents), voicing agreement, timbre distances (dB)."""
    from sovits.evaluation import EvaluationSettings, evaluate_conversion

    result = evaluate_conversion(
        source,
        converted,
        target_references=target_ref or (),
        transpose=transpose,
        settings=EvaluationSettings(f0_method=method),
    )
    typer.echo(result.to_text(), nl=False)
    if json_path is not None:
        result.write_json(json_path)
        typer.echo(f"metrics written to {json_path}")


pretrained_app = typer.Typer(
    help="List and download the pretrained files sovits reads (encoders, f0, vocoder).",
    no_args_is_help=True,
)
app.add_typer(pretrained_app, name="pretrained")


@pretrained_app.command("list")
def pretrained_list() -> None:
    """Show each known pretrained file: present or missing, its path, where it comes from."""
    from sovits.features.download import default_destination, installed_path
    from sovits.features.pretrained import KNOWN_FILES

    width = max(len(name) for name in KNOWN_FILES)
    for entry in KNOWN_FILES.values():
        found = installed_path(entry)
        status = "present" if found else "missing"
        typer.echo(f"{entry.name:<{width}}  {status}  {found or default_destination(entry)}")
        if entry.downloads:
            checked = "sha256 known" if entry.downloads[0].sha256 else "no known sha256"
            typer.echo(f"    {entry.downloads[0].url} ({checked})")
        else:
            typer.echo(f"    by hand: {' or '.join(entry.urls)}")


@pretrained_app.command("fetch")
def pretrained_fetch(
    name: Annotated[str, typer.Argument(help="A name from `sovits pretrained list`.")],
    url: Annotated[str | None, typer.Option(help="Mirror URL to download from instead.")] = None,
    dest: Annotated[
        Path | None, typer.Option(help="File or folder to write (default: the user cache).")
    ] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 (hex).")] = None,
    force: Annotated[bool, typer.Option(help="Download again even if present.")] = False,
) -> None:
    """Download a pretrained file: resumable, checked against its known SHA-256."""
    from sovits.features.download import fetch
    from sovits.features.pretrained import KNOWN_FILES

    if name not in KNOWN_FILES:
        raise typer.BadParameter(f"unknown name; known: {', '.join(KNOWN_FILES)}")
    with _TransferBar(name) as bar:
        result = fetch(name, destination=dest, url=url, sha256=sha256, force=force, progress=bar)
    done = "saved" if result.downloaded else "already present at"
    checked = "verified" if result.verified else "not verified: no known checksum"
    typer.echo(f"{name}: {done} {result.path}\nsha256 {result.sha256} ({checked})")


class _TransferBar:
    """A rich progress bar on stderr, shown once bytes start to arrive."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskID,
            TransferSpeedColumn,
        )

        columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
        self.progress = Progress(*columns, console=Console(stderr=True))
        self.label = label
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __enter__(self) -> _TransferBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()


@app.command("resample")
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


@app.command("slice")
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


@app.command("qc")
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


@app.command("preprocess-config")
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


@app.command("preprocess")
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


@app.command("train")
def train(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="config.json of the model to train.")
    ] = Path("configs/config.json"),
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m",
            help="Model folder: a name under logs/ (-m 44k -> logs/44k) or a path (./runs/a).",
        ),
    ] = "44k",
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", help="Stop after this many global steps (with a checkpoint)."),
    ] = None,
    accelerator: Annotated[
        str, typer.Option("--accelerator", help="auto, cpu, cuda, mps, ...")
    ] = "auto",
    devices: DevicesOption = "auto",
    num_nodes: NumNodesOption = 1,
    strategy: StrategyOption = "auto",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision", help="32, 16-mixed or bf16-mixed (default: the config's fp16_run)."
        ),
    ] = None,
    num_workers: Annotated[
        int | None, typer.Option("--num-workers", help="Data loader processes.")
    ] = None,
    partial_warm_start: Annotated[
        bool,
        typer.Option(
            "--partial-warm-start", help="Load only the fitting parts of G_0/D_0 base models."
        ),
    ] = False,
) -> None:
    """Train (or resume) a model: GAN training of so-vits-svc 4.1 on Lightning Fabric."""
    from sovits.config import load_svc_config
    from sovits.training.checkpointing import model_dir_for
    from sovits.training.trainer import TrainOptions
    from sovits.training.trainer import train as run_training

    cfg = load_svc_config(config)
    model_dir = model_dir_for(model)
    options = TrainOptions(
        accelerator=accelerator,
        devices=parse_devices(devices),
        num_nodes=num_nodes,
        strategy=strategy,
        precision=precision,
        max_steps=max_steps,
        partial_warm_start=partial_warm_start,
    )
    run_training_command(
        lambda progress, hook: run_training(
            cfg, model_dir, options, num_workers=num_workers, progress=progress,
            trainer_hook=hook,
        ),
        out_dir=model_dir, log_file_name="train.log", label="train", max_steps=max_steps,
        describe=_describe_train_step,
    )


def _describe_train_step(update: TrainProgress) -> str:
    """The progress bar's text for a GAN step: epoch and the main losses."""
    losses = update.losses
    return (f"epoch {update.epoch}  d {losses['loss/d/total']:.3f}  "
            f"g {losses['loss/g/total']:.3f}  mel {losses['loss/g/mel']:.3f}")


_INFER_LIST_FLAGS = frozenset(
    {"-n", "--input", "--clean_names", "-t", "--transpose", "--trans", "-s", "--speaker",
     "--spk_list"}
)


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
        spread: list[str] = []
        flag: str | None = None
        for index, token in enumerate(args):
            if token == "--":
                spread.extend(args[index:])
                break
            if token in _INFER_LIST_FLAGS:
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
    raise InputError("audio file not found", where=path)


_DEFAULT_CLUSTER_MODELS = (
    Path("logs/44k/kmeans_10000.safetensors"),
    Path("logs/44k/kmeans_10000.pt"),
)
"""Where -cm is looked for when -cr is set without it (sovits's, then the original's)."""
_DEFAULT_INDEXES = (Path("logs/44k/feature_index"), Path("logs/44k/feature_and_index.pkl"))
"""The same with -fr."""
_DEFAULT_MIX_TRACKS = (Path("spkmix.json"), Path("spkmix.yaml"), Path("spkmix.py"))
"""Where the -usm track is looked for without --speaker-mix-track."""


def _first_existing(paths: tuple[Path, ...]) -> Path | None:
    return next((path for path in paths if path.exists()), None)


@app.command("infer", cls=_InferCommand)
def infer(
    inputs: Annotated[
        list[Path],
        typer.Option(
            "--input", "-n", "--clean_names",
            help="Audio files to convert (several after one -n).",
        ),
    ],
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", "-m", "--model_path",
            help="Model file (G_*.pth, release, or .onnx from export-onnx); not with -od.",
        ),
    ] = None,
    speakers: Annotated[
        list[str] | None,
        typer.Option(
            "--speaker", "-s", "--spk_list",
            help="Target speakers; each input is converted for each (not with -usm).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", "--config_path",
            help="The model's config.json.",
        ),
    ] = None,
    transposes: Annotated[
        list[float] | None,
        typer.Option(
            "--transpose", "-t", "--trans",
            help="Semitones per input; the first fills the missing.",
        ),
    ] = None,
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir", "-o",
            help="Folder for the results.",
        ),
    ] = Path("results"),
    clip: Annotated[
        float,
        typer.Option(
            "--clip", "-cl",
            help="Force clips of this many seconds; 0 off.",
        ),
    ] = 0.0,
    crossfade: Annotated[
        float,
        typer.Option(
            "--crossfade", "-lg", "--linear_gradient",
            help="Crossfade of forced clips, seconds.",
        ),
    ] = 0.0,
    crossfade_retain: Annotated[
        float,
        typer.Option(
            "--crossfade-retain", "-lgr", "--linear_gradient_retain",
            help="Share of the overlap cross-faded, (0, 1].",
        ),
    ] = 0.75,
    f0_method: Annotated[
        str,
        typer.Option(
            "--f0-method", "-f0p", "--f0_predictor",
            help="pm, dio, harvest, crepe, rmvpe or fcpe.",
        ),
    ] = "pm",
    f0_file: Annotated[
        Path | None,
        typer.Option(
            "--f0-file",
            help="f0 curve from `sovits f0` (CSV/.npy) to use instead of extracting.",
        ),
    ] = None,
    auto_predict_f0: Annotated[
        bool,
        typer.Option(
            "--auto-predict-f0", "-a", "--auto_predict_f0",
            help="Predict f0 with the model (speech only).",
        ),
    ] = False,
    noise_scale: Annotated[
        float,
        typer.Option(
            "--noise-scale", "-ns", "--noice_scale",
            help="Prior noise scale.",
        ),
    ] = 0.4,
    slice_db: Annotated[
        float,
        typer.Option(
            "--slice-db", "-sd", "--slice_db",
            help="Slicer silence threshold, dB.",
        ),
    ] = -40.0,
    pad_seconds: Annotated[
        float,
        typer.Option(
            "--pad-seconds", "-p", "--pad_seconds",
            help="Silence padded around each slice, seconds.",
        ),
    ] = 0.5,
    loudness_envelope_adjustment: Annotated[
        float,
        typer.Option(
            "--loudness-envelope-adjustment", "-lea", "--loudness_envelope_adjustment",
            help="1 keeps the output loudness, 0 follows the input's.",
        ),
    ] = 1.0,
    f0_filter_threshold: Annotated[
        float,
        typer.Option(
            "--f0-filter-threshold", "-ft", "--f0_filter_threshold",
            help="Voicing threshold of crepe/rmvpe/fcpe.",
        ),
    ] = 0.05,
    audio_format: Annotated[
        str,
        typer.Option(
            "--audio-format", "-wf", "--wav_format",
            help="flac, wav or ogg.",
        ),
    ] = "flac",
    device: Annotated[
        str | None,
        typer.Option(
            "--device", "-d",
            help="torch device; default cuda when available.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the conversion noise.")] = 52468,
    cluster_model: Annotated[
        Path | None,
        typer.Option(
            "--cluster-model", "-cm", "--cluster_model_path",
            help="k-means model or (with -fr) feature index; default logs/44k/....",
        ),
    ] = None,
    cluster_ratio: Annotated[
        float,
        typer.Option(
            "--cluster-ratio", "-cr", "--cluster_infer_ratio",
            help="Share of cluster / retrieved units, [0, 1].",
        ),
    ] = 0.0,
    feature_retrieval: Annotated[
        bool,
        typer.Option(
            "--feature-retrieval", "-fr", "--feature_retrieval",
            help="Use feature retrieval (-cm is an index).",
        ),
    ] = False,
    use_speaker_mix: Annotated[
        bool,
        typer.Option(
            "--use-speaker-mix", "-usm", "--use_spk_mix",
            help="Mix speakers over time (--speaker-mix-track).",
        ),
    ] = False,
    enhance: Annotated[
        bool,
        typer.Option(
            "--enhance", "-eh",
            help="Re-render with the NSF-HiFiGAN enhancer.",
        ),
    ] = False,
    enhancer_adaptive_key: Annotated[
        int,
        typer.Option(
            "--enhancer-adaptive-key", "-eak", "--enhancer_adaptive_key",
            help="Enhancer range shift, semitones.",
        ),
    ] = 0,
    shallow_diffusion: Annotated[
        bool,
        typer.Option(
            "--shallow-diffusion", "-shd", "--shallow_diffusion",
            help="Refine with shallow diffusion.",
        ),
    ] = False,
    only_diffusion: Annotated[
        bool,
        typer.Option(
            "--only-diffusion", "-od", "--only_diffusion",
            help="Render with the diffusion model alone.",
        ),
    ] = False,
    second_encoding: Annotated[
        bool,
        typer.Option(
            "--second-encoding", "-se", "--second_encoding",
            help="Re-encode the output before -shd.",
        ),
    ] = False,
    diffusion_model: Annotated[
        Path | None,
        typer.Option(
            "--diffusion-model", "-dm", "--diffusion_model_path",
            help="Diffusion model (default logs/44k/diffusion/model_0.pt).",
        ),
    ] = None,
    diffusion_config: Annotated[
        Path | None,
        typer.Option(
            "--diffusion-config", "-dc", "--diffusion_config_path",
            help="Diffusion config (default config.yaml beside -dm).",
        ),
    ] = None,
    k_step: Annotated[
        int | None,
        typer.Option(
            "--k-step", "-ks", "--k_step",
            help="Shallow diffusion steps (default 100).",
        ),
    ] = None,
    diffusion_method: Annotated[
        str | None,
        typer.Option(
            "--diffusion-method",
            help="Sampler: ddim, pndm, dpm-solver, dpm-solver++, unipc (default: config).",
        ),
    ] = None,
    diffusion_speedup: Annotated[
        int | None,
        typer.Option("--diffusion-speedup", help="Sampler speedup; 1 = DDPM (default: config)."),
    ] = None,
    speaker_mix_track: Annotated[
        Path | None,
        typer.Option(
            "--speaker-mix-track",
            help="Track for -usm: JSON/YAML, or the original's spkmix.py (read, never run).",
        ),
    ] = None,
) -> None:
    """Convert audio files to a model's voice (so-vits-svc's inference_main.py)."""
    from sovits.errors import InputError
    from sovits.inference.converter import Converter
    from sovits.inference.options import ConvertOptions

    if use_speaker_mix:
        if speaker_mix_track is None:
            speaker_mix_track = _first_existing(_DEFAULT_MIX_TRACKS)
            if speaker_mix_track is None:
                raise InputError(
                    "speaker mixing (-usm) needs a track file",
                    hint="pass --speaker-mix-track, or put spkmix.json / spkmix.yaml / "
                    "spkmix.py in the working folder",
                )
        speakers = ["spk_mix"]
    if not speakers:
        raise InputError("name a target speaker with -s (or mix speakers with -usm)")
    if cluster_ratio != 0 and cluster_model is None:
        defaults = _DEFAULT_INDEXES if feature_retrieval else _DEFAULT_CLUSTER_MODELS
        cluster_model = _first_existing(defaults)
        if cluster_model is None:
            raise InputError(
                "a cluster ratio (-cr) needs a cluster model or feature index (-cm); none "
                f"of the defaults exists ({', '.join(map(str, defaults))})",
                hint="train one with `sovits train-cluster` or `sovits train-index`",
            )
    if model is None and not only_diffusion:
        raise InputError("a model file is needed (-m), unless only diffusion (-od) is used")
    shifts = list(transposes or [0.0])
    if len(shifts) > len(inputs):
        raise InputError(f"{len(shifts)} transposes (-t) for {len(inputs)} inputs (-n)")
    shifts += [shifts[0]] * (len(inputs) - len(shifts))
    jobs = [
        (path, ConvertOptions(
            speaker=speaker, transpose=shift, f0_method=f0_method, f0_file=f0_file,
            auto_predict_f0=auto_predict_f0, noise_scale=noise_scale, seed=seed,
            slice_db=slice_db, pad_seconds=pad_seconds, clip_seconds=clip,
            crossfade_seconds=crossfade, crossfade_retain=crossfade_retain,
            loudness_envelope_adjustment=loudness_envelope_adjustment,
            f0_filter_threshold=f0_filter_threshold, audio_format=audio_format,
            cluster_model_path=cluster_model, cluster_ratio=cluster_ratio,
            feature_retrieval=feature_retrieval, use_speaker_mix=use_speaker_mix,
            enhance=enhance, enhancer_adaptive_key=enhancer_adaptive_key,
            shallow_diffusion=shallow_diffusion, only_diffusion=only_diffusion,
            second_encoding=second_encoding, diffusion_model_path=diffusion_model,
            diffusion_config_path=diffusion_config, k_step=k_step,
            diffusion_method=diffusion_method, diffusion_speedup=diffusion_speedup,
            speaker_mix_path=speaker_mix_track,
        ))
        for path, shift in zip(inputs, shifts, strict=True)
        for speaker in speakers
    ]
    for path, _ in jobs:  # a missing input fails before any model is loaded
        _infer_input(path)
    if only_diffusion:
        converter = Converter.diffusion_only(diffusion_model, diffusion_config, device=device)
    else:
        converter = Converter(model, config, device=device)
    for path, options in jobs:
        written = converter.convert_file(_infer_input(path), output_dir, options)
        typer.echo(f"{path} -> {written}")


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the results go.")] = Path("demo/out"),
    work: Annotated[
        Path | None, typer.Option("--work", help="Intermediate files (default: OUT/../work).")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training steps.")] = 300,
    minutes: Annotated[
        float | None,
        typer.Option("--minutes", help="Stop training earlier after this many minutes."),
    ] = None,
    accelerator: Annotated[str, typer.Option(help="cpu, gpu or auto.")] = "cpu",
) -> None:
    """Two synthetic singers end to end: dataset, training, conversion, metrics.

    Exits 1 when a conversion misses the demo's targets (see metrics.json "checks").
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from sovits.demo.pipeline import run_demo

    console = Console(stderr=True)
    bar = Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task("training", total=None, visible=False)

        def on_step(step: int, max_steps: int | None) -> None:
            bar.update(task, completed=step, total=max_steps, visible=True)

        result = run_demo(
            out,
            work_dir=work,
            train_steps=steps,
            minutes=minutes,
            accelerator=accelerator,
            progress=lambda message: console.log(message),
            train_progress=on_step,
        )
    for path in (result.source, *result.converted.values(), result.report_path):
        typer.echo(f"wrote {path}")
    typer.echo(f"{result.metrics_path}:")
    typer.echo(result.metrics_path.read_text(encoding="utf-8").rstrip())
    missed = result.missed_checks()
    for line in missed:
        typer.echo(f"target missed: {line}", err=True)
    if missed:
        raise typer.Exit(1)
    typer.echo("every demo target met")


def _register_command_groups() -> None:
    """Add the commands that live in their own modules (each imports its library lazily)."""
    from sovits.cli import diffusion, onnx, retrieval, tools

    for group in (diffusion, retrieval, tools, onnx):
        group.register(app)


_register_command_groups()


def main() -> None:
    """Console entry point: run the app and turn SovitsError into one clear line."""
    try:
        app()
    except SovitsError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
