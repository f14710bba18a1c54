"""Reed-Solomon 10+4 stripes in the contiguous layout (storage format v2).

A chunk's coded bytes (n, zero-padded to 10 L where L = shard_size(n)) are cut into ten
data shards: shard i is bytes [iL, (i+1)L). Parity shards 10..13 are, for every byte
position j, reedsolo's four parity bytes of the column (shard0[j], ..., shard9[j]). This is
how ISA-L, klauspost/reedsolomon, liberasurecode and Ceph lay stripes out: encoding hands
the kernel ten contiguous rows that already exist, so the data shards are views of the
input (no copy) and only the four parity rows are written; a reader that has all ten data
shards received them straight into one buffer at their offsets and runs nothing at all;
a reader missing some computes only those (`decode_into`).

The column-interleaved layout of format v1 lives in erasure/interleaved.py; the code is
the same per byte position in both, so `reconstruct` (any 10 shards -> all 14, what
repair needs) serves both formats.

A Codec pairs this with a GF(2^8) kernel (erasure.kernels). Decoding derives, once per
erasure pattern, the matrix that maps the ten first surviving shards to the missing ones
(inverse of those ten rows of the generator) and applies it with the same kernel.
Matrices and kernel tables are cached per pattern in bounded LRUs, so steady-state decode
does no matrix work at all. Everything here is safe to call from several threads at once:
caches are lru_cache (thread-safe), tables are immutable, scratch is thread-local and the
kernels release the GIL.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from erasure.buffers import FreshBytes
from erasure.gf256 import mat_inv, mat_mul
from erasure.kernels import Kernel
from erasure.matrix import DATA, PARITY, TOTAL, generator_matrix, parity_matrix

# Per-thread scratch larger than this is not kept after the call (a huge input would
# otherwise pin its size per gateway worker thread forever). 8 MiB chunks fit well below.
SCRATCH_RETAIN_BYTES = 32 << 20
RECOVERY_CACHE_SIZE = 1024

ShardInput = bytes | bytearray | memoryview | np.ndarray
Shard = bytes | memoryview


class TooManyErasures(ValueError):
    """More shards are missing than parity can recover (5+ of 14)."""


def shard_size(size: int) -> int:
    """Bytes per shard for `size` bytes of data: ceil(size / 10), at least 1."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"size must be an int, not {type(size).__name__}")
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    return max(1, -(-size // DATA))


def stripe_size(size: int) -> int:
    """Bytes of the ten data shards together: `size` rounded up to 10 x shard_size(size)."""
    return DATA * shard_size(size)


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


scratch = _Scratch()


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


def _missing_message(missing: Sequence[int]) -> str:
    return (
        f"{len(missing)} of {TOTAL} shards are missing (indices {list(missing)}); "
        f"Reed-Solomon {DATA}+{PARITY} can recover at most {PARITY}"
    )


def check_shards(shards: Sequence[ShardInput | None]) -> tuple[list[np.ndarray | None], int]:
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


def check_size(size: int, n: int) -> None:
    if shard_size(size) != n:
        raise ValueError(f"size {size} needs shards of {shard_size(size)} bytes, "
                         f"but the shards are {n} bytes")


class Codec:
    """RS(10,4) encode/decode with one kernel. Get instances from erasure.codec()."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.encode_tables = kernel.prepare(parity_matrix())
        self._tables = functools.lru_cache(maxsize=kernel.table_cache_size)(self._prepare)

    @property
    def kernel_name(self) -> str:
        return self.kernel.name

    def _prepare(self, survivors: tuple[int, ...], wanted: tuple[int, ...]) -> Any:
        return self.kernel.prepare(recovery_matrix(survivors, wanted))

    def recover(self, rows: Sequence[np.ndarray | None], wanted: Sequence[int],
                outputs: Sequence[np.ndarray]) -> None:
        """outputs[k] = shard wanted[k], computed from the first ten rows that are present."""
        survivors = tuple(i for i in range(TOTAL) if rows[i] is not None)[:DATA]
        if len(survivors) < DATA:
            raise TooManyErasures(_missing_message([i for i in range(TOTAL) if rows[i] is None]))
        self.kernel.apply(self._tables(survivors, tuple(wanted)), [rows[i] for i in survivors], list(outputs))

    def encode(self, data: bytes | bytearray | memoryview) -> list[Shard]:
        """14 shards of shard_size(len(data)) bytes: ten contiguous slices of `data`, four parity.

        The data shards that lie wholly inside `data` are memoryviews of it, not copies:
        keep `data` alive and unchanged for as long as the shards are used. Pass a buffer
        of stripe_size(n) bytes (zeros after the n that count) and every data shard is a
        view; otherwise the shard holding the end is copied with its zero padding.
        """
        src = as_u8(data)
        size = src.size
        n = shard_size(size)
        view = memoryview(src)
        data_shards: list[Shard] = []
        rows: list[np.ndarray] = []
        for i in range(DATA):
            lo = i * n
            if lo + n <= size:
                data_shards.append(view[lo : lo + n])
                rows.append(src[lo : lo + n])
                continue
            padded = FreshBytes(n)
            tail = src[lo:size] if lo < size else src[:0]
            padded.view[: tail.size] = tail
            padded.view[tail.size :] = 0
            data_shards.append(padded.value)
            rows.append(padded.view)
        parity = [FreshBytes(n) for _ in range(PARITY)]
        self.kernel.apply(self.encode_tables, rows, [p.view for p in parity])
        return [*data_shards, *(p.value for p in parity)]

    def decode_into(self, stripe: bytearray | memoryview | np.ndarray, lost: Sequence[int],
                    parity: Mapping[int, ShardInput]) -> None:
        """Fill in the lost data shards of `stripe` (the ten data shards back to back, 10 L
        bytes, writable) from its other data shards and the `parity` shards given (index
        10..13 -> L bytes). Only the lost shards are computed; nothing else is written.
        """
        buf = as_u8(stripe, "stripe")
        if not buf.flags.writeable:
            raise ValueError("stripe must be writable")
        if buf.size == 0 or buf.size % DATA:
            raise ValueError(f"stripe of {buf.size} bytes is not ten equal shards")
        n = buf.size // DATA
        lost = sorted(set(lost))
        if any(not 0 <= i < DATA for i in lost):
            raise ValueError(f"lost shards must be data shard indexes 0..{DATA - 1}, got {lost}")
        if not lost:
            return
        rows: list[np.ndarray | None] = [None if i in lost else buf[i * n : (i + 1) * n] for i in range(DATA)]
        for i in range(DATA, TOTAL):
            shard = parity.get(i)
            row = None if shard is None else as_u8(shard, f"shard {i}")
            if row is not None and row.size != n:
                raise ValueError(f"parity shard {i} is {row.size} bytes, the stripe's shards are {n}")
            rows.append(row)
        self.recover(rows, lost, [buf[i * n : (i + 1) * n] for i in lost])

    def decode(self, shards: Sequence[ShardInput | None], size: int) -> bytes:
        """The original `size` bytes from any 10 of the 14 shards (None for missing ones).

        With all ten data shards present this is only the copy into the result.
        """
        rows, n = check_shards(shards)
        check_size(size, n)
        if size == 0:
            return b""
        lost = [i for i in range(DATA) if rows[i] is None]
        if lost:
            recovered = scratch.get("recovered", len(lost) * n).reshape(len(lost), n)
            self.recover(rows, lost, list(recovered))
            for k, i in enumerate(lost):
                rows[i] = recovered[k]
        out = FreshBytes(size)
        for i in range(DATA):
            lo = i * n
            if lo >= size:
                break
            hi = min(size, lo + n)
            out.view[lo:hi] = rows[i][: hi - lo]  # type: ignore[index]
        return out.value

    def reconstruct(self, shards: Sequence[ShardInput | None]) -> list[bytes]:
        """All 14 shards, rebuilding missing data and parity shards from any 10.

        The code is the same per byte position in both layouts, so this serves v1 and v2.
        """
        rows, n = check_shards(shards)
        # Present shards are handed back as bytes (no copy if they already are).
        result: list[bytes | None] = [None if r is None else _as_bytes(r) for r in rows]
        missing = tuple(i for i in range(TOTAL) if rows[i] is None)
        if missing:
            rebuilt = [FreshBytes(n) for _ in missing]
            self.recover(rows, missing, [b.view for b in rebuilt])
            for i, b in zip(missing, rebuilt, strict=True):
                result[i] = b.value
        return result  # type: ignore[return-value]
