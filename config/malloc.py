"""glibc malloc settings for the gateway and node processes, which move buffers of
hundreds of KB to a few MiB all day (shards, chunks, their ciphertext).

With glibc's defaults those blocks come from fresh mmap()s, from heap tops that are
trimmed right after they are freed, or from per-thread arenas whose heaps are unmapped
whole once empty: each time the kernel maps and zeroes the pages again. Measured with
`perf` under `shardbox up` (1 GiB GET through boto3): page faults and page clearing were
~30% of the gateway's CPU, and under 840 KB shard PUTs ~12% of a node's.

Three settings keep those blocks in one heap where freed memory is reused warm:

- one arena (M_ARENA_MAX=1): worker threads allocate from the main heap too, instead of
  each growing (and unmapping) arenas of their own; the allocations are few and large,
  so the arena lock is not contended, and the Python objects are allocated under the
  GIL anyway;
- mmap threshold 32 MiB (glibc's maximum on 64-bit): everything up to a chunk buffer
  comes from that heap;
- trim threshold 64 MiB: the heap top is returned to the kernel only past that much
  free memory.

What stays mapped is about the peak of concurrent buffers (freed blocks are reused by
the next request) plus at most the trim threshold. Measured on the same 1 GiB
GET: gateway CPU 1.6 -> 1.0 s, peak RSS 270 -> 263 MiB. Call it before the process starts
worker threads: a thread keeps the arena it got at its first allocation.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("config.malloc")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20

_tuned = False


def tune_malloc() -> bool:
    """Apply the settings above once per process; False where glibc's mallopt is absent."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _tuned = all(mallopt(option, value) == 1 for option, value in settings)
    if not _tuned:
        log.warning("malloc.tune_failed")
    return _tuned
