"""Column interleaving between a byte string and its ten data shards.

Data byte j lives in shard j % 10 at position j // 10, i.e. the data viewed as an
(n, 10) matrix is transposed into ten rows. This byte transpose is the one unavoidable
copy of the data path. It runs in C (erasure/_interleave.c, built at install and called
through ctypes like ISA-L, so the GIL is released) at ~12 GB/s on CPUs with AVX-512 VBMI.
When the extension was not built (no compiler at install time) a numpy version runs
instead at ~3 GB/s: blocks that stay in L2, pairs of shards moved as uint16 and split
with vectorised casts. Both give identical bytes; the tests hold them to each other.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from erasure.matrix import DATA

log = logging.getLogger("shardbox.erasure")

BLOCK = 65536  # columns per numpy block: 640 KiB of data
# Explicit little-endian pairs: the value's low byte is always the even shard (native,
# hence free, on x86-64 and arm64).
PAIR = np.dtype("<u2")


def _load_native() -> ctypes.CDLL | None:
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_interleave{suffix}"
        if path.exists():
            lib = ctypes.CDLL(str(path))
            lib.sbx_split10.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
            lib.sbx_split10.restype = None
            lib.sbx_join10.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
            lib.sbx_join10.restype = None
            lib.sbx_split10_encode.argtypes = (
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.c_void_p,
            )
            lib.sbx_split10_encode.restype = None
            lib.sbx_interleave_impl.argtypes = ()
            lib.sbx_interleave_impl.restype = ctypes.c_char_p
            return lib
    log.warning(
        "erasure.layout_fallback",
        extra={"fields": {"layout": "numpy", "reason": "erasure/_interleave extension not built"}},
    )
    return None


_native = _load_native()


def implementation() -> str:
    """Which transpose runs: "avx512vbmi" or "scalar" (C), or "numpy" (no extension)."""
    return _native.sbx_interleave_impl().decode() if _native is not None else "numpy"


def _check(columns: np.ndarray, rows: Sequence[np.ndarray], *, writable_rows: bool) -> int:
    m = columns.shape[0]
    if columns.ndim != 2 or columns.shape[1] != DATA or not columns.flags.c_contiguous:
        raise ValueError("layout needs a contiguous (m, 10) uint8 column matrix")
    if columns.dtype != np.uint8 or len(rows) != DATA:
        raise ValueError("layout needs a uint8 column matrix and ten rows")
    _check_rows(rows, m, writable_rows, "layout rows")
    return m


def _check_rows(rows: Sequence[np.ndarray], m: int, writable: bool, what: str) -> None:
    for row in rows:
        if row.dtype != np.uint8 or row.ndim != 1 or row.size < m or not row.flags.c_contiguous:
            raise ValueError(f"{what} must be contiguous uint8 arrays of at least m bytes")
        if writable and not row.flags.writeable:
            raise ValueError("layout output rows must be writable")


def _addresses(rows: Sequence[np.ndarray]) -> ctypes.Array:
    return (ctypes.c_void_p * len(rows))(*(r.__array_interface__["data"][0] for r in rows))


def split(columns: np.ndarray, rows: Sequence[np.ndarray]) -> None:
    """rows[i][k] = columns[k, i] for an (m, 10) uint8 source and ten uint8 rows of >= m bytes."""
    m = _check(columns, rows, writable_rows=True)
    if m == 0:
        return
    if _native is not None:
        _native.sbx_split10(columns.__array_interface__["data"][0], m, _addresses(rows))
    else:
        split_numpy(columns, rows)


def can_fuse() -> bool:
    """Whether split_and_apply is available (the C extension is built)."""
    return _native is not None


def split_and_apply(
    columns: np.ndarray, rows: Sequence[np.ndarray], kernel_fn: int, tables: int, block: int
) -> None:
    """split into rows[:10], then a C kernel computes rows[10:] from them, `block` columns at a time.

    kernel_fn is the address of a function with ISA-L's ec_encode_data signature and
    tables the address of its prepared tables for a (len(rows) - 10) x 10 matrix.
    """
    m = _check(columns, rows[:DATA], writable_rows=True)
    parity = rows[DATA:]
    if _native is None:
        raise RuntimeError("split_and_apply needs the erasure/_interleave extension")
    if not 0 <= len(parity) <= 4 or not 0 < block < 1 << 30:
        raise ValueError("split_and_apply takes up to 4 parity rows and 0 < block < 2**30")
    _check_rows(parity, m, True, "parity rows")
    if m == 0:
        return
    _native.sbx_split10_encode(
        columns.__array_interface__["data"][0], m, _addresses(rows), block, kernel_fn, len(parity), tables
    )


def join(rows: Sequence[np.ndarray], columns: np.ndarray) -> None:
    """columns[k, i] = rows[i][k]: the inverse of split, into an (m, 10) uint8 destination."""
    m = _check(columns, rows, writable_rows=False)
    if m == 0:
        return
    if not columns.flags.writeable:
        raise ValueError("layout destination must be writable")
    if _native is not None:
        _native.sbx_join10(columns.__array_interface__["data"][0], m, _addresses(rows))
    else:
        join_numpy(rows, columns)


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.pairs = np.empty((DATA // 2, BLOCK), dtype=PAIR)
        self.word = np.empty(BLOCK, dtype=PAIR)


_scratch = _Scratch()


def split_numpy(columns: np.ndarray, rows: Sequence[np.ndarray]) -> None:
    """split without the extension (arguments already checked)."""
    m = columns.shape[0]
    words = columns.reshape(-1).view(PAIR).reshape(m, DATA // 2)
    s = _scratch
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        count = stop - start
        pairs = s.pairs[:, :count]
        word = s.word[:count]
        pairs[...] = words[start:stop].T
        for j in range(DATA // 2):
            # The low byte of pair j is shard 2j, the high byte shard 2j+1.
            np.copyto(rows[2 * j][start:stop], pairs[j], casting="unsafe")
            np.right_shift(pairs[j], 8, out=word)
            np.copyto(rows[2 * j + 1][start:stop], word, casting="unsafe")


def join_numpy(rows: Sequence[np.ndarray], columns: np.ndarray) -> None:
    """join without the extension: one byte-strided copy per shard per block."""
    m = columns.shape[0]
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        for i in range(DATA):
            columns[start:stop, i] = rows[i][start:stop]
