"""Reed-Solomon 10+4 stripes: layout, encode, decode, reconstruct.

A Codec pairs the shard layout (erasure.layout) with a GF(2^8) kernel
(erasure.kernels). Encoding multiplies the ten data rows by reedsolo's parity matrix;
decoding derives, once per erasure pattern, the matrix that maps the ten first
surviving shards to the missing ones (inverse of those ten rows of the generator) and
applies it with the same kernel. Matrices and kernel tables are cached per pattern in
bounded LRUs, so steady-state decode does no matrix work at all.

Results are written straight into fresh bytes objects (erasure.buffers), so the data
is transposed exactly once and never copied again; intermediate buffers (recovered
data rows, kernel and layout block scratch) are per-thread and reused between calls,
because page-faulting fresh multi-MiB buffers costs as much as the coding itself. Everything
here is safe to call from several threads at once: caches are lru_cache (thread-safe),
tables are immutable, scratch is thread-local and the kernels release the GIL.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from erasure import layout
from erasure.buffers import FreshBytes
from erasure.gf256 import mat_inv, mat_mul
from erasure.kernels import Kernel
from erasure.matrix import DATA, PARITY, TOTAL, generator_matrix, parity_matrix

# Per-thread scratch larger than this is not kept after the call (a huge input would
# otherwise pin its size per gateway worker thread forever). 8 MiB chunks fit well below.
SCRATCH_RETAIN_BYTES = 32 << 20
RECOVERY_CACHE_SIZE = 1024
ENCODE_BLOCK = 32768  # columns per transpose + parity step: 320 KiB of data, 128 KiB of parity

ShardInput = bytes | bytearray | memoryview | np.ndarray


class TooManyErasures(ValueError):
    """More shards are missing than parity can recover (5+ of 14)."""


def shard_size(size: int) -> int:
    """Bytes per shard for `size` bytes of data: ceil(size / 10), at least 1."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, not {type(size).__name__}")
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    return max(1, -(-size // DATA))


@functools.lru_cache(maxsize=RECOVERY_CACHE_SIZE)
def recovery_matrix(survivors: tuple[int, ...], wanted: tuple[int, ...]) -> np.ndarray:
    """(len(wanted) x 10) matrix giving shards `wanted` from the ten shards `survivors`.

    shard_w = G[w] . data and data = inv(G[survivors]) . survivors, so the matrix is
    G[wanted] . inv(G[survivors]); any 10 rows of an MDS generator are invertible.
    """
    if len(survivors) != DATA or len(set(survivors)) != DATA:
        raise ValueError(f"need {DATA} distinct surviving shards, got {survivors}")
    g = generator_matrix()
    m = mat_mul(g[list(wanted)], mat_inv(g[list(survivors)]))
    m.flags.writeable = False
    return m


class _Scratch(threading.local):
    """Named, growable per-thread byte buffers."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, nbytes: int) -> np.ndarray:
        buf = self.buffers.get(name)
        if buf is not None and buf.size >= nbytes:
            return buf[:nbytes]
        buf = np.empty(nbytes, dtype=np.uint8)
        if nbytes <= SCRATCH_RETAIN_BYTES:
            self.buffers[name] = buf
        else:
            self.buffers.pop(name, None)
        return buf


_scratch = _Scratch()


def as_u8(data: Any, what: str = "data") -> np.ndarray:
    """Zero-copy uint8 view of a contiguous bytes-like object."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1 or not data.flags.c_contiguous:
            raise ValueError(f"{what} must be a contiguous 1-D uint8 array")
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"{what} must be bytes-like, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise ValueError(f"{what} must be a contiguous buffer")
    if view.nbytes == 0:
        return np.empty(0, dtype=np.uint8)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return np.frombuffer(view, dtype=np.uint8)


def _as_bytes(row: np.ndarray) -> bytes:
    """The shard as bytes: the caller's own bytes object when it was one (no copy)."""
    base = row.base
    if isinstance(base, memoryview) and type(base.obj) is bytes and base.nbytes == len(base.obj):
        return base.obj
    return row.tobytes()


def _missing_message(missing: list[int]) -> str:
    return (
        f"{len(missing)} of {TOTAL} shards are missing (indices {missing}); "
        f"Reed-Solomon {DATA}+{PARITY} can recover at most {PARITY}"
    )


def _check_shards(shards: Sequence[ShardInput | None]) -> tuple[list[np.ndarray | None], int]:
    """uint8 views of the shards (None where missing) and the common shard length."""
    if isinstance(shards, bytes | bytearray | memoryview | str | np.ndarray):
        raise TypeError(f"shards must be a sequence of {TOTAL} shards, not one {type(shards).__name__}")
    shards = list(shards)
    if len(shards) != TOTAL:
        raise ValueError(f"expected {TOTAL} shards (None for missing ones), got {len(shards)}")
    rows: list[np.ndarray | None] = []
    length = first = None
    for i, shard in enumerate(shards):
        if shard is None:
            rows.append(None)
            continue
        row = as_u8(shard, f"shard {i}")
        if row.size == 0:
            raise ValueError(f"shard {i} is empty; shards are at least 1 byte long")
        if length is None:
            length, first = row.size, i
        elif row.size != length:
            raise ValueError(
                f"shard {i} is {row.size} bytes but shard {first} is {length}; "
                "all shards of a stripe must have the same length"
            )
        rows.append(row)
    missing = [i for i, r in enumerate(rows) if r is None]
    if len(missing) > PARITY or length is None:
        raise TooManyErasures(_missing_message(missing))
    return rows, length


class Codec:
    """RS(10,4) encode/decode with one kernel. Get instances from erasure.codec()."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._encode_tables = kernel.prepare(parity_matrix())
        self._tables = functools.lru_cache(maxsize=kernel.table_cache_size)(self._prepare)

    @property
    def kernel_name(self) -> str:
        return self.kernel.name

    def _prepare(self, survivors: tuple[int, ...], wanted: tuple[int, ...]) -> Any:
        return self.kernel.prepare(recovery_matrix(survivors, wanted))

    def encode(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """14 shards of shard_size(len(data)) bytes: 10 data (column-interleaved) + 4 parity."""
        src = as_u8(data)
        size = src.size
        n = shard_size(size)
        full = size // DATA
        shards = [FreshBytes(n) for _ in range(TOTAL)]
        rows = [s.view for s in shards]
        data_rows, parity_rows = rows[:DATA], rows[DATA:]
        columns = src[: full * DATA].reshape(full, DATA)
        tables = self._encode_tables
        c_function = getattr(self.kernel, "c_function", None)
        if c_function and layout.can_fuse():
            # Transpose and parity block by block in one C call, so the kernel reads the
            # rows the transpose has just written from L2.
            layout.split_and_apply(columns, rows, c_function, self.kernel.c_tables(tables), ENCODE_BLOCK)
        else:
            layout.split(columns, data_rows)
            self.kernel.apply(tables, [r[:full] for r in data_rows], [p[:full] for p in parity_rows])
        if n > full:  # the last column is partial (or the input is empty): zero-pad it
            tail = src[full * DATA :]
            for i in range(DATA):
                data_rows[i][full] = tail[i] if i < tail.size else 0
            self.kernel.apply(tables, [r[full:] for r in data_rows], [p[full:] for p in parity_rows])
        return [s.value for s in shards]

    def decode(self, shards: Sequence[ShardInput | None], size: int) -> bytes:
        """The original `size` bytes from any 10 of the 14 shards (None for missing ones).

        With all ten data shards present this is a pure interleave: no matrix work.
        """
        rows, n = _check_shards(shards)
        if shard_size(size) != n:
            raise ValueError(
                f"size {size} needs shards of {shard_size(size)} bytes, but the shards are {n} bytes"
            )
        if size == 0:
            return b""
        data_rows = rows[:DATA]
        lost = tuple(i for i in range(DATA) if rows[i] is None)
        if lost:
            survivors = tuple(i for i in range(TOTAL) if rows[i] is not None)[:DATA]
            recovered = _scratch.get("recovered", len(lost) * n).reshape(len(lost), n)
            self.kernel.apply(self._tables(survivors, lost), [rows[i] for i in survivors], list(recovered))
            for k, i in enumerate(lost):
                data_rows[i] = recovered[k]
        out = FreshBytes(size)
        full = size // DATA
        layout.join(data_rows, out.view[: full * DATA].reshape(full, DATA))
        for i in range(size - full * DATA):  # partial last column
            out.view[full * DATA + i] = data_rows[i][full]
        return out.value

    def reconstruct(self, shards: Sequence[ShardInput | None]) -> list[bytes]:
        """All 14 shards, rebuilding missing data and parity shards from any 10."""
        rows, n = _check_shards(shards)
        # Present shards are handed back as bytes (no copy if they already are).
        result: list[bytes | None] = [None if r is None else _as_bytes(r) for r in rows]
        missing = tuple(i for i in range(TOTAL) if rows[i] is None)
        if missing:
            survivors = tuple(i for i in range(TOTAL) if rows[i] is not None)[:DATA]
            rebuilt = [FreshBytes(n) for _ in missing]
            self.kernel.apply(
                self._tables(survivors, missing), [rows[i] for i in survivors], [b.view for b in rebuilt]
            )
            for i, b in zip(missing, rebuilt, strict=True):
                result[i] = b.value
        return result  # type: ignore[return-value]
