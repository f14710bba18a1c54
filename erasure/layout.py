"""Column interleaving between a byte string and its ten data shards.

Data byte j lives in shard j % 10 at position j // 10, i.e. the data viewed as an
(n, 10) matrix is transposed into ten rows. A byte-granular transpose is the one
unavoidable copy of the data path; it runs block by block so source and destination
stay in L2. Pairs of shards are moved as uint16 (two bytes per element, twice the
throughput of a byte-wise strided copy) and split with vectorised casts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from erasure.matrix import DATA

BLOCK = 65536  # columns per block: 640 KiB of data


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.pairs = np.empty((DATA // 2, BLOCK), dtype=np.uint16)
        self.word = np.empty(BLOCK, dtype=np.uint16)


_scratch = _Scratch()


def split(columns: np.ndarray, rows: np.ndarray) -> None:
    """rows[i, k] = columns[k, i] for an (m, 10) uint8 source and a (10, >= m) destination."""
    m = columns.shape[0]
    if m == 0:
        return
    if columns.strides[1] != 1 or columns.strides[0] != DATA:
        raise ValueError("split needs a contiguous (m, 10) column matrix")
    words = columns.reshape(-1).view(np.uint16).reshape(m, DATA // 2)
    s = _scratch
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        count = stop - start
        pairs = s.pairs[:, :count]
        word = s.word[:count]
        pairs[...] = words[start:stop].T
        for j in range(DATA // 2):
            # Little-endian: the low byte of pair j is shard 2j, the high byte shard 2j+1.
            np.copyto(rows[2 * j, start:stop], pairs[j], casting="unsafe")
            np.right_shift(pairs[j], 8, out=word)
            np.copyto(rows[2 * j + 1, start:stop], word, casting="unsafe")


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
