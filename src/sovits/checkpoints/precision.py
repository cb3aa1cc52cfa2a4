"""Inference precision: which float type the synthesizer runs in, and where it may.

Three precisions are offered for conversion:

* "fp32": float32 everywhere, the parity path (audio within 1e-5 of so-vits-svc's) and
  the default;
* "bf16": bfloat16 weights and activations. On a CPU only where the hardware does
  bfloat16 arithmetic natively (x86 AVX-512 BF16 or AMX): there oneDNN's bf16
  convolutions do about twice the work per cycle of fp32 ones; elsewhere bf16 is
  emulated and slower than fp32, so it is refused. On CUDA where the GPU supports it
  (Ampere and later).
* "fp16": float16, on CUDA only (a CPU has no fast float16 convolution).

Only the so-vits synthesizer changes precision: the model is cast once when it is
loaded (weight norm folded in float32 first), and its calls run under
`torch.autocast` of the same type, so inputs made in float32 (units, volume, speaker
weights) meet the weights in the right type and the ops on autocast's float32 list
stay in float32. f0 always stays float32 (bf16 holds
only 8 significant bits: 220 Hz would be off by up to 8 cents), and so does the
harmonic source built from it. Content encoders, f0 extractors, the enhancer and the
diffusion model run in float32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

import torch

from sovits.errors import InputError

__all__ = [
    "PRECISIONS",
    "Precision",
    "bf16_cpu_support",
    "check_precision",
    "precision_autocast",
    "precision_dtype",
]

Precision = Literal["fp32", "bf16", "fp16"]
"""Name of an inference precision."""

PRECISIONS: tuple[str, ...] = get_args(Precision)
"""Every precision name, the default ("fp32") first."""

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_dtype(name: str) -> torch.dtype:
    """The torch dtype of a precision name; InputError for an unknown name."""
    try:
        return _DTYPES[name]
    except KeyError:
        raise InputError(
            f"unknown precision {name!r}", hint=f"use one of {', '.join(PRECISIONS)}"
        ) from None


@functools.cache
def bf16_cpu_support() -> str | None:
    """The CPU feature that makes bfloat16 native here ("AMX", "AVX-512 BF16"), or None.

    Asks torch first (it knows the x86 CPUID bits it dispatches on), then, where that
    is unavailable, the Linux CPU flags.
    """
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if amx is not None and avx512_bf16 is not None:
        if amx():
            return "AMX"
        return "AVX-512 BF16" if avx512_bf16() else None
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX-512 BF16" if "avx512_bf16" in flags else None


def check_precision(name: str, device: torch.device | str) -> torch.dtype:
    """The dtype of precision `name` on `device`, or one clear InputError why not.

    fp32 runs everywhere; bf16 on CUDA GPUs that support it and on CPUs with native
    bfloat16 arithmetic (`bf16_cpu_support`); fp16 on CUDA only.
    """
    dtype = precision_dtype(name)
    device = torch.device(device)
    if dtype == torch.float32:
        return dtype
    if device.type == "cuda":
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise InputError(
                f"precision bf16 needs a GPU with bfloat16 support; "
                f"{torch.cuda.get_device_name(device)} has none",
                hint="use --precision fp16 on this GPU",
            )
        return dtype
    if device.type != "cpu":
        raise InputError(
            f"precision {name} is offered on CUDA and (bf16) on CPUs, not on {device.type}",
            hint="use --precision fp32",
        )
    if dtype == torch.float16:
        raise InputError(
            "precision fp16 needs a CUDA GPU: CPUs have no fast float16 convolutions",
            hint="on a CPU use --precision bf16 (where the CPU has it) or fp32",
        )
    if bf16_cpu_support() is None:
        raise InputError(
            "precision bf16 needs a CPU with native bfloat16 arithmetic (AVX-512 BF16 or "
            "AMX); this one would emulate it, slower than fp32",
            hint="use --precision fp32 on this machine",
        )
    return dtype


@contextlib.contextmanager
def precision_autocast(dtype: torch.dtype, device: torch.device | str) -> Iterator[None]:
    """Run the enclosed synthesizer calls in `dtype`: autocast for bf16 / fp16, nothing
    for float32 (so the fp32 path stays exactly as it was)."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=dtype):
        yield
