"""The `sovits infer` command: so-vits-svc's inference_main.py flags over `Converter`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

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


def register(app: typer.Typer) -> None:
    """Add `infer` to `app`."""
    app.command("infer", cls=_InferCommand)(infer)
