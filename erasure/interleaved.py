"""The column-interleaved layout of storage format v1, kept so v1 chunks stay readable.

Shard i holds byte i of every 10-byte column of the data (zero-padded to a multiple of
10); shards 10..13 hold reedsolo's four parity bytes of each column. Every encode and
every read of the data shards runs a strided byte transpose (erasure/layout.py), fast only
with AVX-512 VBMI; that is why format v2 (erasure/stripe.py) codes contiguous shards.
New chunks are never written this way; encoding stays for the tests and the benchmark
that compare the two, and for tools that rewrite v1 chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

from erasure import layout
from erasure.buffers import FreshBytes
from erasure.matrix import DATA, TOTAL
from erasure.stripe import Codec, ShardInput, as_u8, check_shards, check_size, scratch, shard_size

ENCODE_BLOCK = 32768  # columns per transpose + parity step: 320 KiB of data, 128 KiB of parity


def encode(codec: Codec, data: bytes | bytearray | memoryview) -> list[bytes]:
    """14 shards of shard_size(len(data)) bytes: 10 data (column-interleaved) + 4 parity."""
    src = as_u8(data)
    size = src.size
    n = shard_size(size)
    full = size // DATA
    shards = [FreshBytes(n) for _ in range(TOTAL)]
    rows = [s.view for s in shards]
    data_rows, parity_rows = rows[:DATA], rows[DATA:]
    columns = src[: full * DATA].reshape(full, DATA)
    kernel, tables = codec.kernel, codec.encode_tables
    c_function = getattr(kernel, "c_function", None)
    if c_function and layout.can_fuse():
        # Transpose and parity block by block in one C call, so the kernel reads the
        # rows the transpose has just written from L2.
        layout.split_and_apply(columns, rows, c_function, kernel.c_tables(tables), ENCODE_BLOCK)
    else:
        layout.split(columns, data_rows)
        kernel.apply(tables, [r[:full] for r in data_rows], [p[:full] for p in parity_rows])
    if n > full:  # the last column is partial (or the input is empty): zero-pad it
        tail = src[full * DATA :]
        for i in range(DATA):
            data_rows[i][full] = tail[i] if i < tail.size else 0
        kernel.apply(tables, [r[full:] for r in data_rows], [p[full:] for p in parity_rows])
    return [s.value for s in shards]


def decode(codec: Codec, shards: Sequence[ShardInput | None], size: int) -> bytes:
    """The original `size` bytes from any 10 of the 14 shards (None for missing ones).

    With all ten data shards present this is a pure interleave: no matrix work.
    """
    rows, n = check_shards(shards)
    check_size(size, n)
    if size == 0:
        return b""
    data_rows = rows[:DATA]
    lost = [i for i in range(DATA) if rows[i] is None]
    if lost:
        recovered = scratch.get("recovered", len(lost) * n).reshape(len(lost), n)
        codec.recover(rows, lost, list(recovered))
        for k, i in enumerate(lost):
            data_rows[i] = recovered[k]
    out = FreshBytes(size)
    full = size // DATA
    layout.join(data_rows, out.view[: full * DATA].reshape(full, DATA))  # type: ignore[arg-type]
    for i in range(size - full * DATA):  # partial last column
        out.view[full * DATA + i] = data_rows[i][full]  # type: ignore[index]
    return out.value


