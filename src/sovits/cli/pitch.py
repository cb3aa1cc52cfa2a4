"""The `sovits f0` command: export (and later edit) a pitch curve.

The F0 method is `--f0-method` (`-f0p`, `--f0_predictor`), as in every command; the
spellings `-m` / `--method` that this command used first still work (hidden).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption, f0_method_option, legacy_aliases

_LEGACY = {"-m": "--f0-method", "--method": "--f0-method"}
"""Old spellings of this command's options (README examples used `-m harvest`)."""


def f0(
    audio: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, ...).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the curve: .csv or .npy.")
    ],
    method: Annotated[str, f0_method_option("F0 extraction method.")],
    hop: Annotated[int, typer.Option("--hop", help="Samples between frames.")] = 512,
    transpose: Annotated[
        float, typer.Option("--transpose", "-t", help="Shift the f0 by this many semitones.")
    ] = 0.0,
    sample_rate: Annotated[
        int, typer.Option("--sample-rate", "-sr", help="Rate to analyse the audio at, Hz.")
    ] = 44100,
    dspitch_folder: Annotated[
        Path | None,
        typer.Option(help="DiffSinger pitch bank for dspitch (default: pretrain/ds_enhance)."),
    ] = None,
    dspitch_steps: Annotated[
        int, typer.Option(help="Sampling steps of the DiffSinger pitch model (1-1000).")
    ] = 10,
    dspitch_expressiveness: Annotated[
        float, typer.Option(help="DiffSinger expressiveness, 0 (flat notes) to 1.")
    ] = 1.0,
    dspitch_speaker: Annotated[
        str | None, typer.Option(help="Speaker of a multi-speaker DiffSinger bank.")
    ] = None,
    dspitch_vowel: Annotated[str, typer.Option(help="Phoneme sung on every note.")] = "a",
    dspitch_language: Annotated[
        str | None, typer.Option(help="Language of the vowel (multi-language banks).")
    ] = None,
    dspitch_blend: Annotated[
        str, typer.Option(help="Combine with the source f0: off, confident or mix.")
    ] = "off",
    dspitch_blend_ratio: Annotated[
        float, typer.Option(help="Share of the source f0 in the mix blend, 0-1.")
    ] = 0.5,
    dspitch_blend_source: Annotated[
        str, typer.Option(help="f0 method whose curve a blend keeps.")
    ] = "rmvpe",
    as_json: JsonOption = False,
) -> None:
    """Extract the f0 curve of an audio file and write it as CSV (time_s,f0_hz,voiced) or .npy."""
    from sovits.features.pitch.export import extract_f0_from_file, f0_curve_format, save_f0_curve

    params = {"input": audio, "method": method, "hop": hop, "transpose": transpose,
              "sample_rate": sample_rate, "format": output.suffix.lstrip(".").lower(),
              "output": output}
    with CommandJob("f0", params, as_json=as_json) as job:
        f0_curve_format(output)  # a bad suffix fails before the extraction, not after
        options = {}
        if method == "dspitch":
            options = {
                "folder": dspitch_folder, "steps": dspitch_steps,
                "expressiveness": dspitch_expressiveness, "speaker": dspitch_speaker,
                "vowel": dspitch_vowel, "language": dspitch_language, "blend": dspitch_blend,
                "blend_ratio": dspitch_blend_ratio, "blend_source": dspitch_blend_source,
            }
        track = extract_f0_from_file(
            audio, method, sample_rate=sample_rate, hop_length=hop, transpose=transpose,
            **options,
        )
        job.result(save_f0_curve(track, output))
        voiced = int(track.voiced.sum())
        job.say(f"{output}: {len(track)} frames, {voiced} voiced ({method}, hop {hop})")


def register(app: typer.Typer) -> None:
    """Add `f0` to `app`."""
    app.command("f0", cls=legacy_aliases(_LEGACY))(f0)
