"""Keep the gateway's resident memory bounded under a stream of multi-MiB buffers.

glibc raises its mmap threshold dynamically each time a large mmapped block is freed
(up to 32 MiB), after which chunk-sized buffers come from per-thread heap arenas that
keep freed memory instead of returning it. With worker threads allocating shards and
the event loop freeing them, a long upload then holds tens of MiB more than it uses.
A fixed threshold (1 MiB: above a shard of an 8 MiB chunk, below the chunk buffers)
turns the dynamic adjustment off: shard-sized blocks are reused from the heap, chunk
sized ones go back to the kernel when freed.

Measured: a 512 MiB upload through the S3 gateway with boto3 (16 MiB parts, 4 at once)
peaks at ~235 MB RSS with the fixed threshold and ~285 MB without (276 MB still held
after it, vs 162 MB); a single 4 GiB stream (bench/datapath.py) peaks ~180 MB either way.
The price is page faults on fresh chunk-sized mappings: up to ~15% more gateway CPU on
reads. `ChunkStore(..., tune_malloc=False)` keeps glibc's default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("gateway.datapath")

M_MMAP_THRESHOLD = -3
_done = False


def fix_mmap_threshold(threshold: int = 1 << 20) -> bool:
    """Set glibc's M_MMAP_THRESHOLD once per process; False where it does not apply."""
    global _done
    if _done:
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
    _done = mallopt(M_MMAP_THRESHOLD, threshold) == 1
    if not _done:
        log.warning("malloc.tune_failed", extra={"fields": {"threshold": threshold}})
    return _done
