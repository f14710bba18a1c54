"""Column interleaving between a byte string and its ten data shards.

Data byte j lives in shard j % 10 at position j // 10, i.e. the data viewed as an
(n, 10) matrix is transposed into ten rows. A byte-granular transpose is the one
unavoidable copy of the data path; it runs block by block so source and destination
stay in L2. Pairs of shards are moved as uint16 (two bytes per element, twice the
throughput of a byte-wise strided copy) and split with vectorised casts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from erasure.matrix import DATA

BLOCK = 65536  # columns per block: 640 KiB of data
# Explicit little-endian pairs: the value's low byte is always the even shard (native,
# hence free, on x86-64 and arm64).
PAIR = np.dtype("<u2")


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.pairs = np.empty((DATA // 2, BLOCK), dtype=PAIR)
        self.word = np.empty(BLOCK, dtype=PAIR)


_scratch = _Scratch()


def split(
    columns: np.ndarray,
    rows: Sequence[np.ndarray],
    on_block: Callable[[np.ndarray, int, int], None] | None = None,
) -> None:
    """rows[i][k] = columns[k, i] for an (m, 10) uint8 source and ten uint8 rows of >= m bytes.

    on_block(pairs, start, stop), if given, is called after each block with the block's
    shards paired as uint16 (pairs[j] = row 2j | row 2j+1 << 8, shape (5, stop-start)),
    while they are still in cache; the array is scratch, valid only during the call.
    """
    m = columns.shape[0]
    if m == 0:
        return
    if columns.strides[1] != 1 or columns.strides[0] != DATA:
        raise ValueError("split needs a contiguous (m, 10) column matrix")
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
        if on_block is not None:
            on_block(pairs, start, stop)


def join(rows: Sequence[np.ndarray], columns: np.ndarray) -> None:
    """columns[k, i] = rows[i][k]: the inverse of split, into an (m, 10) uint8 destination.

    Plain byte-strided writes, one long copy per shard per block: measured as fast as
    merging pairs into uint16 first, and simpler.
    """
    m = columns.shape[0]
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        for i in range(DATA):
            columns[start:stop, i] = rows[i][start:stop]
