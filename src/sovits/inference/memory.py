"""Keeping a conversion's memory at the synthesizer's own, however many slices it has.

Where the memory of a long conversion went (measured with `benchmarks/convert.py`, a
default-dims 4.1 model, slices of 3-10 s): every slice has its own length, so every
convolution of the synthesizer sees a new input shape, and oneDNN (torch's CPU
convolution library) builds a new "primitive" for each shape and keeps it in its
primitive cache, which holds up to 1024 of them by default. A synthesizer call
builds about 90; the ones of a 10 s slice hold about 250 MB between them, so each
new slice length left about that much behind until the cache filled: a 1-minute song
peaked at 3.0 GB against 1.9 GB for the synthesizer alone rendering its longest
slice. Freed tensors themselves go back to the system (the converter calls glibc's
malloc_trim after every clip), and numpy buffers (input, output, the clip being
joined) are a few MB per minute of audio.

The fix bounds the cache (`bound_onednn_primitive_cache`) to a little more than one
call's primitives: slices of one length (live conversion's blocks, repeated
conversions) still reuse theirs, while a new length evicts the old ones. oneDNN reads
the bound once, when it builds its first primitive in the process, from the
environment variable ONEDNN_PRIMITIVE_CACHE_CAPACITY; a value the user has set is
kept.
"""

from __future__ import annotations

import logging
import os

__all__ = [
    "ONEDNN_CACHE_CAPACITY",
    "bound_onednn_primitive_cache",
]

logger = logging.getLogger(__name__)

ONEDNN_CACHE_CAPACITY = 128
"""oneDNN primitives kept: a synthesizer call at the default 4.1 dims builds about 90
(convolutions and the reorders between layouts), bigger configs a few more."""

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
