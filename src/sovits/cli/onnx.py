"""`sovits export-onnx`: a so-vits-svc model as an ONNX graph for MoeVoiceStudio.

The command wraps `sovits.tools.onnx_export.export_onnx`; `sovits infer` can run the
result with onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sovits.cli._jobs import CommandJob
from sovits.cli._options import JsonOption


def export_onnx(
    model: Annotated[Path, typer.Argument(help="Model file (G_*.pth, a release, ...).")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The .onnx file to write (MoeVS looks for <Name>_SoVits.onnx)."
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="The model's config.json (optional for sovits releases)."
        ),
    ] = None,
    speaker_mix: Annotated[
        bool,
        typer.Option(
            "--speaker-mix",
            help="sid becomes per-frame speaker weights [T, speakers] (MoeVS CharaMix).",
        ),
    ] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 16,
    no_moevs_config: Annotated[
        bool,
        typer.Option("--no-moevs-config", help="Do not write the MoeVS JSON beside the graph."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Export MODEL to ONNX (MoeVoiceStudio's inputs), with its MoeVS JSON beside it."""
    from sovits.tools.onnx_export import export_onnx as export

    params = {"model": model, "config": config, "output": output, "speaker_mix": speaker_mix,
              "opset": opset}
    with CommandJob("export-onnx", params, as_json=as_json) as job:
        path = export(
            model,
            config,
            output,
            speaker_mix=speaker_mix,
            opset=opset,
            write_moevs_config=not no_moevs_config,
        )
        written = [path] if no_moevs_config else [path, path.with_suffix(".json")]
        for item in written:
            job.say(f"wrote {job.result(item)}")

def register(app: typer.Typer) -> None:
    """Add `export-onnx` to `app`."""
    app.command("export-onnx")(export_onnx)
