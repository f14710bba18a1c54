"""Which chunks a byte range needs, and which bytes of each (pure function, no nodes)."""

from __future__ import annotations

from blob.reader import chunks_for_range
from coordinator.records import ChunkRef


def refs(*sizes: int) -> list[ChunkRef]:
    return [ChunkRef(sha256=str(i), chunk_key=f"k{i}", size=s, enc_size=s + 16, key_id="m1")
            for i, s in enumerate(sizes)]


def picked(chunks, start, end):
    return [(ref.chunk_key, lo, hi) for ref, lo, hi in chunks_for_range(chunks, start, end)]


def test_ranges_at_chunk_boundaries():
    chunks = refs(10, 10, 10, 5)
    assert picked(chunks, 0, 34) == [("k0", 0, 9), ("k1", 0, 9), ("k2", 0, 9), ("k3", 0, 4)]
    assert picked(chunks, 9, 10) == [("k0", 9, 9), ("k1", 0, 0)]
    assert picked(chunks, 10, 19) == [("k1", 0, 9)]
    assert picked(chunks, 20, 20) == [("k2", 0, 0)]
    assert picked(chunks, 29, 29) == [("k2", 9, 9)]
    assert picked(chunks, 34, 34) == [("k3", 4, 4)]
    assert picked(chunks, 12, 31) == [("k1", 2, 9), ("k2", 0, 9), ("k3", 0, 1)]


def test_stored_offsets_are_not_trusted_over_sizes():
    chunks = refs(4, 4)
    chunks[1].offset = 999   # a wrong offset must not shift the bytes returned
    assert picked(chunks, 3, 4) == [("k0", 3, 3), ("k1", 0, 0)]
