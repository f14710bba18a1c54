"""glibc malloc tuning for a process that moves ~1 MB buffers all day.

Every shard a node receives or serves passes through bytes objects of hundreds of
KB (the event loop's receive buffers, the HTTP parser's body pieces, the pread of a
GET). With glibc's defaults, such blocks come from fresh mmap()s (or from heap tops
that get trimmed right after), so every one of them is page-faulted and zeroed by the
kernel again: page faults were ~12% of a node's CPU samples (perf) under 840 KB shard
PUTs, and GETs took ~120,000 minor faults per GiB served. Raising the mmap and trim
thresholds keeps those blocks in the heap, where they are reused warm. What stays
mapped is about the peak of concurrent requests times their buffer size (freed blocks
are reused by the next request); the thresholds only stop that memory going back to
the kernel between requests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("node.alloc")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20      # glibc's maximum on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 128 << 20


def tune_malloc() -> bool:
    """Keep buffers up to 32 MiB in the heap and trim it only past 128 MiB free; False if not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not ok:
        log.warning("malloc.tune_failed")
    return ok
