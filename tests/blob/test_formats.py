"""Storage format 2 against 14 real nodes: ranged reads that fetch only their segments, their
checks and fallbacks, and chunks of format 1 (the first release) read back after the switch."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import erasure
from blob import ChunkStore, ReadStats, WriteResult
from blob.crypto import SEALED_SEGMENT, SEGMENT_SIZE
from blob.node_client import shard_checksum, shard_id
from coordinator.records import ChunkRef, ObjectInfo
from tests.blob.cluster import MASTER_KEY, SECRET, NodeCluster, PlacementCoordinator
from tests.blob.test_store import TENANT, as_object, pieces, run

CHUNK = 256 << 10          # 4 segments; a data shard (26,221 bytes) is less than one segment
BIG_CHUNK = 2 << 20        # a data shard (209,766 bytes) holds three segments and a bit


def make_store(coord: PlacementCoordinator, chunk_size: int = CHUNK, **kw) -> ChunkStore:
    kw.setdefault("shard_timeout_s", 5.0)
    kw.setdefault("inline_max", 0)
    return ChunkStore(coord, MASTER_KEY, SECRET, chunk_size=chunk_size, min_acks=12, **kw)


def coordinator_for(cluster: NodeCluster) -> PlacementCoordinator:
    return PlacementCoordinator([(n.node_id, n.address) for n in cluster.nodes])


def write(coord: PlacementCoordinator, data: bytes, chunk_size: int = CHUNK, **kw) -> ObjectInfo:
    async def main() -> WriteResult:
        store = make_store(coord, chunk_size, **kw)
        try:
            return await store.write(TENANT, pieces(data), set())
        finally:
            await store.close()

    return as_object(len(data), run(main()))


def read(coord: PlacementCoordinator, obj: ObjectInfo, start: int, end: int, **kw) -> tuple[bytes, ReadStats]:
    async def main() -> tuple[bytes, ReadStats]:
        store = make_store(coord, **kw)
        stats = ReadStats()
        out = bytearray()
        try:
            async for piece in store.read(obj, start, end, stats=stats):
                out += piece
        finally:
            await store.close()   # waits for the fire-and-forget failure reports too
        return bytes(out), stats

    return run(main())


def sealed_bytes_of(size: int, lo: int, hi: int) -> tuple[int, bool]:
    """(bytes fetched from nodes, whether it is the whole stripe) for plaintext lo..hi of a chunk."""
    count = -(-size // SEGMENT_SIZE)
    first, last = lo // SEGMENT_SIZE, hi // SEGMENT_SIZE
    if (first, last) == (0, count - 1):
        return erasure.stripe_size(size + 16 * count), True
    return min(size + 16 * count, (last + 1) * SEALED_SEGMENT) - first * SEALED_SEGMENT, False


@pytest.fixture(scope="module")
def stored(cluster: NodeCluster) -> Iterator[tuple[bytes, PlacementCoordinator, ObjectInfo]]:
    """An object of three and a half chunks, written once for the range tests of this module."""
    cluster.start()
    data = os.urandom(CHUNK * 7 // 2)
    coord = coordinator_for(cluster)
    yield data, coord, write(coord, data)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(start=st.integers(0, CHUNK * 7 // 2 - 1), length=st.integers(1, CHUNK + 2 * SEGMENT_SIZE))
def test_any_range_reads_exactly_the_plaintext(stored, start: int, length: int) -> None:
    """Ranges across segment, shard and chunk boundaries; a part of a chunk is read from its
    segments only: the nodes send exactly those segments' sealed bytes."""
    data, coord, obj = stored
    end = min(len(data), start + length) - 1
    back, stats = read(coord, obj, start, end)
    assert back == data[start : end + 1]
    expected_bytes, ranged = 0, 0
    for c in range(start // CHUNK, end // CHUNK + 1):
        lo, hi = max(start, c * CHUNK) - c * CHUNK, min(end, c * CHUNK + CHUNK - 1) - c * CHUNK
        fetched, whole = sealed_bytes_of(min(CHUNK, len(data) - c * CHUNK), lo, hi)
        expected_bytes += fetched
        ranged += not whole
    assert (stats.node_bytes_in, stats.ranged_chunks, stats.fallbacks) == (expected_bytes, ranged, 0)


def test_a_hundred_bytes_cost_one_segment(stored) -> None:
    data, coord, obj = stored
    start = CHUNK + 3 * SEGMENT_SIZE + 1000           # inside chunk 1's last segment
    back, stats = read(coord, obj, start, start + 99)
    assert back == data[start : start + 100]
    assert (stats.ranged_chunks, stats.fallbacks) == (1, 0)
    assert stats.node_bytes_in == SEALED_SEGMENT       # 65,552 bytes, not the chunk's 262,210
    assert 1 <= stats.shard_gets <= 4                  # the data shards holding that segment


def _shard(coord: PlacementCoordinator, ref: ChunkRef, index: int) -> tuple[str, bytes]:
    """(node id, bytes) of one shard of a chunk, fetched and checked against the manifest."""
    async def main() -> bytes:
        store = make_store(coord)
        try:
            p = next(s for s in ref.shards if s.index == index)
            return bytes(await store.nodes.get_shard(p.address, shard_id(ref.chunk_key, index), p.checksum,
                                                     node_id=p.node_id, timeout_s=5))
        finally:
            await store.close()

    return next(s.node_id for s in ref.shards if s.index == index), run(main())


def _replace_shard(coord: PlacementCoordinator, ref: ChunkRef, index: int, data: bytes) -> None:
    """Store other (self-consistent) bytes under a shard's id: the node's own checksums and
    block sums agree with them, only the manifest and the segment tags can tell."""
    async def main() -> None:
        store = make_store(coord)
        try:
            p = next(s for s in ref.shards if s.index == index)
            await store.nodes.put_shard(p.address, shard_id(ref.chunk_key, index), data, shard_checksum(data),
                                        node_id=p.node_id, timeout_s=5)
        finally:
            await store.close()

    run(main())


def test_a_flipped_byte_is_never_served_and_the_read_succeeds_from_parity(healthy: NodeCluster) -> None:
    data = os.urandom(CHUNK * 2)
    coord = coordinator_for(healthy)
    obj = write(coord, data)
    ref = obj.chunks[1]
    node_id, shard = _shard(coord, ref, 6)
    healthy.corrupt(int(node_id[1:]), shard)        # flips shard byte len // 2 in the volume file
    n = len(shard)
    segment = (6 * n + n // 2) // SEALED_SEGMENT    # the segment holding the flipped byte
    start = CHUNK + segment * SEGMENT_SIZE + 7
    back, stats = read(coord, obj, start, start + 199)
    assert back == data[start : start + 200]
    assert (stats.ranged_chunks, stats.fallbacks) == (0, 1)
    reasons = [(r.index, r.node_id, r.reason) for r in coord.reports if r.chunk_key == ref.chunk_key]
    assert (6, node_id, "ranged read: corrupt on node (500 ShardCorrupt)") in reasons
    # segment 0 (sealed bytes [0, 65552): data shards 0-2) does not touch shard 6: still read alone
    assert segment == 2 and 6 * n > SEALED_SEGMENT
    back, stats = read(coord, obj, CHUNK + 10, CHUNK + 109)
    assert back == data[CHUNK + 10 : CHUNK + 110]
    assert (stats.ranged_chunks, stats.fallbacks) == (1, 0)


def test_segments_reordered_on_disk_are_refused(healthy: NodeCluster) -> None:
    """Shard 0 rewritten with its first two segments swapped (consistent on the node): the
    segment tags refuse them, the stripe read finds shard 0 wrong and decodes it from parity."""
    data = os.urandom(BIG_CHUNK)
    coord = coordinator_for(healthy)
    obj = write(coord, data, BIG_CHUNK)
    ref = obj.chunks[0]
    _, shard = _shard(coord, ref, 0)
    one, two = shard[:SEALED_SEGMENT], shard[SEALED_SEGMENT : 2 * SEALED_SEGMENT]
    swapped = two + one + shard[2 * SEALED_SEGMENT :]
    _replace_shard(coord, ref, 0, swapped)
    back, stats = read(coord, obj, 10, 109, chunk_size=BIG_CHUNK)
    assert back == data[10:110]
    assert (stats.ranged_chunks, stats.fallbacks) == (0, 1)
    assert [(r.index, r.reason) for r in coord.reports] == [(0, "checksum mismatch")]
    whole, _ = read(coord, obj, 0, BIG_CHUNK - 1, chunk_size=BIG_CHUNK)
    assert whole == data


def test_a_truncated_shard_is_refused(healthy: NodeCluster) -> None:
    """The shard holding the chunk's final segment, cut short: its range is not there (416),
    and the stripe read decodes it from parity."""
    data = os.urandom(BIG_CHUNK - 5000)
    coord = coordinator_for(healthy)
    obj = write(coord, data, BIG_CHUNK)
    ref = obj.chunks[0]
    _, shard = _shard(coord, ref, 9)
    _replace_shard(coord, ref, 9, shard[: len(shard) // 2])
    back, stats = read(coord, obj, len(data) - 100, len(data) - 1, chunk_size=BIG_CHUNK)
    assert back == data[-100:]
    assert (stats.ranged_chunks, stats.fallbacks) == (0, 1)
    assert {r.index for r in coord.reports} == {9}


def test_a_hung_node_turns_a_ranged_read_into_a_stripe_read(healthy: NodeCluster) -> None:
    data = os.urandom(CHUNK)
    coord = coordinator_for(healthy)
    obj = write(coord, data)
    holder = next(p.node_id for p in obj.chunks[0].shards if p.index == 0)
    healthy.pause([int(holder[1:])])
    try:
        back, stats = read(coord, obj, 5, 104, shard_timeout_s=60.0, hedge_s=0.3)
    finally:
        healthy.resume([int(holder[1:])])
    assert back == data[5:105]
    assert (stats.ranged_chunks, stats.fallbacks) == (0, 1)


def test_chunks_of_format_1_read_back_after_the_switch(healthy: NodeCluster) -> None:
    """Objects stored by the format-1 write path (the first release's) read back bit-exact,
    whole and in ranges, by a store that writes format 2; storing the same bytes again keeps
    the stored chunks and their format (dedup)."""
    data = os.urandom(CHUNK * 5 // 2)
    small = os.urandom(3000)
    coord = coordinator_for(healthy)
    old = write(coord, data, write_format=1)
    old_small = write(coord, small, inline_max=32 << 10, write_format=1)
    assert [c.format for c in old.chunks] == [1, 1, 1] and old_small.chunks[0].inline is not None
    assert [c.enc_size for c in old.chunks] == [c.size + 16 for c in old.chunks]
    back, stats = read(coord, obj=old, start=0, end=len(data) - 1)
    assert back == data and stats.ranged_chunks == 0
    for a, b in [(0, 99), (CHUNK - 50, CHUNK + 50), (2 * CHUNK + 3, len(data) - 1)]:
        back, stats = read(coord, old, a, b)
        assert back == data[a : b + 1]
        assert stats.ranged_chunks == 0                 # a v1 chunk is read whole
    assert read(coord, old_small, 0, len(small) - 1)[0] == small
    assert read(coord, old_small, 100, 199)[0] == small[100:200]
    coord.commit(old.chunks)
    again = write(coord, data)
    assert [c.format for c in again.chunks] == [1, 1, 1]
    assert [c.enc_size for c in again.chunks] == [c.enc_size for c in old.chunks]
    assert read(coord, again, 0, len(data) - 1)[0] == data
    fresh = write(coord, data[::-1])
    assert [c.format for c in fresh.chunks] == [2, 2, 2]
