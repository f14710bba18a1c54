"""Fresh `bytes` objects that numpy can fill in place.

The codec returns shards and decoded data as `bytes`. Filling a numpy scratch buffer
and then calling `.tobytes()` costs a second full pass over the data (and the pages of
both buffers). CPython's C API allows writing into a bytes object created with
`PyBytes_FromStringAndSize(NULL, size)` until it is shared ("the data must not be
modified in any way, unless the object was just created using
PyBytes_FromStringAndSize(NULL, size)" - docs for PyBytes_AsString). We do exactly
that through ctypes: the caller gets a new, immutable-from-then-on bytes object and
a writable uint8 view used only to fill it before it is returned.

On interpreters without the CPython C API the fallback allocates a numpy buffer and
copies once.

Fresh multi-MiB buffers are page-faulted one 4 KiB page at a time as the transpose
writes them, and on a VM each fault is a trap costing about a microsecond: for an
8 MiB chunk that is as slow as the coding. On Linux >= 5.14 `madvise(MADV_POPULATE_WRITE)`
maps the whole range in one system call instead, in 2 MiB pages where the buffer spans
them and transparent huge pages are enabled on request (`madvise` mode); where either is
unsupported we simply let the pages fault in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import sys
from collections.abc import Callable

import numpy as np


def _c_api() -> tuple[Callable, Callable] | None:
    try:
        api = ctypes.pythonapi
        new = api.PyBytes_FromStringAndSize
        as_string = api.PyBytes_AsString
    except (AttributeError, OSError):
        return None
    new.restype = ctypes.py_object
    new.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    as_string.restype = ctypes.c_void_p
    as_string.argtypes = (ctypes.py_object,)
    return new, as_string


_API = _c_api()

MADV_HUGEPAGE = 14
MADV_POPULATE_WRITE = 23
_HUGE = 2 << 20
POPULATE_MIN_BYTES = 256 * 1024
_PAGE = 4096


def _load_madvise() -> Callable | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise


_madvise = _load_madvise()


def prefault(address: int, size: int) -> None:
    """Map the whole pages inside [address, address + size) for writing, in one syscall.

    A pure optimisation: any failure just leaves the pages to fault in on first write.
    """
    global _madvise
    if _madvise is None or size < POPULATE_MIN_BYTES:
        return
    start = (address + _PAGE - 1) & ~(_PAGE - 1)
    end = (address + size) & ~(_PAGE - 1)
    huge_start = (address + _HUGE - 1) & ~(_HUGE - 1)
    huge_end = (address + size) & ~(_HUGE - 1)
    if huge_end > huge_start:
        # Transparent huge pages where the kernel allows them on request: one fault per
        # 2 MiB instead of 512 (ignored where THP is off; the populate below still works).
        _madvise(huge_start, huge_end - huge_start, MADV_HUGEPAGE)
    failed = end > start and _madvise(start, end - start, MADV_POPULATE_WRITE) != 0
    if failed and ctypes.get_errno() == errno.EINVAL:  # kernel without MADV_POPULATE_WRITE
        _madvise = None


class FreshBytes:
    """A bytes object of `size` bytes under construction; fill `.view`, then take `.value`.

    Keep the FreshBytes (or `.value`) alive while writing through `.view`: the view does
    not own the memory.
    """

    __slots__ = ("_value", "view")

    def __init__(self, size: int) -> None:
        self.view: np.ndarray
        if _API is not None and size > 0:
            new, as_string = _API
            self._value: bytes | None = new(None, size)
            address = as_string(self._value)
            prefault(address, size)
            self.view = np.frombuffer((ctypes.c_ubyte * size).from_address(address), dtype=np.uint8)
        else:
            self._value = None
            self.view = np.empty(size, dtype=np.uint8)

    @property
    def value(self) -> bytes:
        return self._value if self._value is not None else self.view.tobytes()
