"""Per-block checksums of shard data: xxh3-64 of every 64 KiB block.

A ranged shard GET (a reader that wants a few segments of a chunk) cannot check the
shard's whole xxh3-128 without reading all of it, so every shard also has one checksum per
BLOCK_SIZE block (the last block may be shorter), as MinIO keeps per shard block: a ranged
read reads the blocks it touches, verifies each, and only then sends any byte. The sums are
derived from data whose whole checksum matched (at PUT, recovery, rebuild-index and
compaction) and live in the shard's index entry (node/records.py), so the volume format
does not change and an index rebuilt from the volumes gets them back.
"""

from __future__ import annotations

import xxhash

BLOCK_SHIFT = 16
BLOCK_SIZE = 1 << BLOCK_SHIFT    # 64 KiB
SUM_SIZE = 8                     # xxh3-64 digest

Buffer = bytes | bytearray | memoryview


def block_count(length: int) -> int:
    return -(-length // BLOCK_SIZE)


class BlockHasher:
    """The block sums of data fed in pieces of any size, in order."""

    def __init__(self) -> None:
        self._sums = bytearray()
        self._partial = xxhash.xxh3_64()
        self._filled = 0          # bytes of the current block already in _partial

    def update(self, piece: Buffer) -> None:
        view = memoryview(piece).cast("B") if not isinstance(piece, bytes) else memoryview(piece)
        while view:
            if self._filled == 0 and len(view) >= BLOCK_SIZE:
                # Whole blocks straight from the piece: one call each, no streaming state.
                self._sums += xxhash.xxh3_64_digest(view[:BLOCK_SIZE])
                view = view[BLOCK_SIZE:]
                continue
            take = min(len(view), BLOCK_SIZE - self._filled)
            self._partial.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == BLOCK_SIZE:
                self._sums += self._partial.digest()
                self._partial.reset()
                self._filled = 0

    def digest(self) -> bytes:
        """The sums of everything fed so far, the last (short) block included."""
        if self._filled:
            return bytes(self._sums) + self._partial.digest()
        return bytes(self._sums)


def block_sums(data: Buffer) -> bytes:
    hasher = BlockHasher()
    hasher.update(data)
    return hasher.digest()


def first_bad_block(data: Buffer, first_block: int, sums: bytes) -> int | None:
    """Check `data`, which starts at block `first_block` of its shard and ends on a block
    boundary or at the shard's end, against the shard's sums; the index of the first block
    that does not match (or is missing from `sums`), or None when all do."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    block = first_block
    for pos in range(0, len(view), BLOCK_SIZE):
        want = sums[block * SUM_SIZE : (block + 1) * SUM_SIZE]
        if len(want) != SUM_SIZE or xxhash.xxh3_64_digest(view[pos : pos + BLOCK_SIZE]) != want:
            return block
        block += 1
    return None
