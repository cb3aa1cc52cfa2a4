"""`sovits compress`: keep only what inference needs (so-vits-svc's compress_model.py).

A training checkpoint holds the posterior encoder (`enc_q.*`, used only in training)
and the optimizer state, about two thirds of the file. The release keeps every other
weight, optionally in float16, in the original layout
`{'model', 'iteration': 0, 'optimizer': fresh AdamW state, 'learning_rate': 1e-4}`
that so-vits-svc and `sovits.checkpoints.load_synthesizer` read; the fresh optimizer
entry lists one parameter index per parameter of the full model and carries the
config's learning rate, betas and eps, as the original writes it. With `release` the
output is instead sovits's safetensors release, which stores the config inside.

Before writing, the weights are checked against the config (the original does not
check), so a release never pairs with the wrong config.json.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sovits.checkpoints import (
    POSTERIOR_ENCODER_PREFIX,
    read_checkpoint,
    write_original_release,
    write_release,
)
from sovits.config import SvcConfig, load_svc_config, parse_svc_config
from sovits.errors import CheckpointError, InputError
from sovits.tools.inspect import compare_state, model_outline

__all__ = ["CompressResult", "compress_model", "default_output_path"]

_SAFETENSORS_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class CompressResult:
    """What `compress_model` wrote.

    output: the written file; kept_keys / dropped_keys: state-dict entries kept and
    left out (enc_q); dtype: "float16" or "float32" (the stored weights); release:
    whether it is a sovits safetensors release.
    """

    output: Path
    kept_keys: int
    dropped_keys: int
    dtype: str
    release: bool


def default_output_path(input_path: str | os.PathLike[str], *, half: bool = False,
                        release: bool = False) -> Path:
    """compress_model.py's default name: `<stem>_release[_half]<suffix>` beside the input
    (suffix .safetensors for a sovits release)."""
    path = Path(input_path)
    suffix = _SAFETENSORS_SUFFIX if release else path.suffix
    return path.with_name(f"{path.stem}_release{'_half' if half else ''}{suffix}")


def compress_model(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    config: SvcConfig | str | os.PathLike[str] | None = None,
    half: bool = False,
    release: bool = False,
) -> CompressResult:
    """Write the inference-only form of a model file.

    input_path: a training checkpoint G_*.pth (or any form `read_checkpoint` reads).
    output_path: where to write; default `default_output_path(input_path, ...)`.
    config: the model's config.json (path or SvcConfig); may be omitted for a sovits
        release input, which stores its config. half: store floating-point weights as
        float16 (the original's -hf). release: write sovits's safetensors release
        instead of the original's .pth layout.

    Raises CheckpointError when the weights do not fit the config, InputError when
    the output would overwrite the input.
    """
    source = Path(input_path)
    output = Path(output_path) if output_path is not None else default_output_path(
        source, half=half, release=release
    )
    if output.resolve() == source.resolve():
        raise InputError("the output would overwrite the input model", where=output,
                         hint="choose another output path")
    checkpoint = read_checkpoint(source)
    if isinstance(config, SvcConfig):
        svc_config = config
    elif config is not None:
        svc_config = load_svc_config(config)
    elif checkpoint.config is not None:
        svc_config = parse_svc_config(checkpoint.config, source=f"{source} (stored config)")
    else:
        raise CheckpointError(
            "compressing needs the model's config", where=source,
            hint="pass the config.json it was trained with (-c)",
        )
    outline = model_outline(svc_config)
    differences = compare_state(checkpoint.model_state, svc_config, outline=outline)
    if not differences.fits:
        raise CheckpointError(
            "the model does not fit the config: " + "; ".join(differences.lines()),
            where=source,
            hint="pass the config.json it was trained with",
        )
    state = checkpoint.model_state
    dropped = sum(1 for key in state if key.startswith(POSTERIOR_ENCODER_PREFIX))
    if release:
        write_release(output, model_state=state, config=svc_config, half=half)
    else:
        train = svc_config.train
        write_original_release(
            output,
            state,
            half,
            parameter_count=outline.parameter_count,
            learning_rate=train.learning_rate,
            betas=train.betas,
            eps=train.eps,
        )
    floating = checkpoint.dtype
    dtype = "float16" if half else (str(floating).removeprefix("torch.") if floating else "none")
    return CompressResult(output, len(state) - dropped, dropped, dtype, release)
