"""Keeping a conversion's memory at the synthesizer's own, however many slices it has.

Where the memory of a long conversion went (measured with `benchmarks/convert.py`, a
default-dims 4.1 model, slices of 3-12 s), two causes, both outside Python:

* oneDNN's primitive cache. Every convolution shape gets its own oneDNN "primitive"
  (torch's CPU convolution library), kept in a cache of up to 1024 by default, and a
  primitive holds working memory in proportion to its input: a synthesizer call builds
  86, and those of a 10 s slice hold about 400 MB. Every slice of a song has its own
  length, so the cache kept the previous slices' primitives while the next one built
  its own: a 1-minute song peaked at 3.0 GB against 1.9 GB for the synthesizer alone
  rendering its longest slice. Bounding the cache to one call's primitives (100) still
  left the previous slice's beside the current one's (a 10-minute song: 1.29x); with
  no cache at all each primitive's memory goes as soon as its convolution has run, and
  the synthesizer alone needs less too (a 12 s slice: 984 instead of 1265-1459 MB).
  Rebuilding costs about 1 ms per primitive, nothing to see next to a song slice's
  seconds of compute but a third of a live block's 0.2 s, where every block has the
  same length and reuses its primitives. A bfloat16 primitive costs far more to build
  (about 8 ms on an AVX-512 BF16 CPU), and half the working memory: without a cache a
  bf16 conversion took 0.62x the fp32 time, with one call's primitives kept 0.57x.
  So `bound_onednn_primitive_cache` takes the bound per workload:
  OFFLINE_CACHE_CAPACITY (0) for offline fp32 conversion, REUSE_CACHE_CAPACITY (100)
  for live conversion, the server and lower precisions (`offline_cache_capacity`).
  oneDNN reads the bound once, when it builds its first primitive in the process, so
  the first workload of a process decides; a value the user has set is kept.
* glibc's heap (`fix_mmap_threshold`): activations under 32 MiB came from the heap,
  where freed ones stay and fragment within a call, so a slice just short enough for
  that peaked 650 MB higher than a longer one.

Freed tensors otherwise go back to the system (the converter calls glibc's malloc_trim
after every clip); `convert_file` reads the song slice by slice from a temporary file
(`sovits.audio.song`) and writes its result segment by segment, so no numpy buffer
grows with the song either.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = [
    "MMAP_THRESHOLD_BYTES",
    "OFFLINE_CACHE_CAPACITY",
    "REUSE_CACHE_CAPACITY",
    "bound_onednn_primitive_cache",
    "fix_mmap_threshold",
    "offline_cache_capacity",
]

logger = logging.getLogger(__name__)

OFFLINE_CACHE_CAPACITY = 0
"""oneDNN primitives kept while converting files in fp32: none. A primitive's working memory
goes as soon as its convolution has run; slices of a song have different lengths, so
a kept primitive would rarely be used again (measured with the default 4.1 dims on 2
threads: 800-frame slices take the same time with a cache of 0 or 100)."""

REUSE_CACHE_CAPACITY = 100
"""oneDNN primitives kept where they pay for themselves: a synthesizer call at the
default 4.1 dims builds 86. Live blocks all have one length, so each block reuses the
previous block's (without them a 40-frame block took 0.32 s instead of 0.20 s); the
server runs live sessions; and bf16 primitives are dear to build, so a bf16 call
reuses those of its repeated shapes. A much bigger config may want
ONEDNN_PRIMITIVE_CACHE_CAPACITY raised."""


def offline_cache_capacity(precision: str) -> int:
    """The primitive-cache bound of an offline conversion in `precision`: none for
    fp32 (memory stays at the synthesizer's own), one call's for bf16 / fp16 (speed)."""
    return OFFLINE_CACHE_CAPACITY if precision == "fp32" else REUSE_CACHE_CAPACITY

_CAPACITY_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def bound_onednn_primitive_cache(capacity: int) -> bool:
    """Bound oneDNN's primitive cache to `capacity` unless the environment already does
    (the user's value, or an earlier call's: the first workload of a process decides).

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
