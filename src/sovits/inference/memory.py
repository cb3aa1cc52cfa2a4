"""Keeping a conversion's memory at the synthesizer's own, however many slices it has.

Where the memory of a long conversion went (measured with `benchmarks/convert.py`, a
default-dims 4.1 model, slices of 3-12 s), two causes, both outside Python:

* oneDNN's primitive cache. Every slice has its own length, so every convolution of
  the synthesizer sees a new input shape, and oneDNN (torch's CPU convolution library)
  builds a new "primitive" for each shape and keeps it in its cache, which holds up to
  1024 of them by default. A synthesizer call builds 86; those of a 10 s slice
  hold about 250 MB, so each new slice length left about that much behind: a 1-minute
  song peaked at 3.0 GB against 1.9 GB for the synthesizer alone rendering its longest
  slice. `bound_onednn_primitive_cache` bounds the cache to a little more than one
  call's primitives: slices of one length (live blocks, repeated conversions) still
  reuse theirs, while a new length evicts the old ones. oneDNN reads the bound once,
  when it builds its first primitive in the process, from ONEDNN_PRIMITIVE_CACHE_CAPACITY;
  a value the user has set is kept.
* glibc's heap (`fix_mmap_threshold`): activations under 32 MiB came from the heap,
  where freed ones stay and fragment within a call, so a slice just short enough for
  that peaked 650 MB higher than a longer one.

Freed tensors otherwise go back to the system (the converter calls glibc's malloc_trim
after every clip), and numpy buffers (input, output, the clip being joined) are a few
MB per minute of audio.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = [
    "MMAP_THRESHOLD_BYTES",
    "ONEDNN_CACHE_CAPACITY",
    "bound_onednn_primitive_cache",
    "fix_mmap_threshold",
]

logger = logging.getLogger(__name__)

ONEDNN_CACHE_CAPACITY = 100
"""oneDNN primitives kept: a synthesizer call at the default 4.1 dims builds 86
(convolutions and the reorders between layouts). 128 left more of the previous slice's
behind (a 3-minute song: 1.25x the synthesizer's own peak, against 1.15x with 100); a
call that needs more than the bound rebuilds some primitives every time (about 0.2 ms
each), so a much bigger config may want ONEDNN_PRIMITIVE_CACHE_CAPACITY raised."""

_CAPACITY_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def bound_onednn_primitive_cache(capacity: int = ONEDNN_CACHE_CAPACITY) -> bool:
    """Bound oneDNN's primitive cache to `capacity` unless the environment already does.

    Takes effect only if no oneDNN primitive has been built in this process yet (the
    library reads the bound once); call it before the first convolution. Returns
    whether the bound was set by this call.
    """
    if any(name in os.environ for name in _CAPACITY_VARIABLES):
        return False
    os.environ[_CAPACITY_VARIABLES[0]] = str(capacity)
    logger.debug("oneDNN primitive cache bounded to %d primitives", capacity)
    return True


MMAP_THRESHOLD_BYTES = 4 * 2**20
"""Blocks of this size or more get their own memory mapping (see `fix_mmap_threshold`)."""

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Have glibc map every block of `threshold` bytes or more on its own (glibc only).

    glibc starts by mapping blocks of 128 KiB and more, but raises that threshold to
    the size of each mapped block freed, up to 32 MiB. A synthesizer call's activations
    are tens of MB each, so for slices whose activations stay under 32 MiB (under about
    10.7 s at the default 4.1 dims) they come from the heap, where freed ones are kept
    and fragment within the call: the synthesizer alone rendering 11.1 s peaked at
    1890 MiB, 12.9 s at 1240 MiB. A fixed threshold keeps every large tensor mapped
    and returned when freed (11.1 s: 1212 MiB). Skipped when the user set
    MALLOC_MMAP_THRESHOLD_; returns whether this call set it.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
