"""The `sovits f0` command: export (and later edit) a pitch curve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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


def register(app: typer.Typer) -> None:
    """Add `f0` to `app`."""
    app.command("f0")(f0)
