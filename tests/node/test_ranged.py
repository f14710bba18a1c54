"""Ranged shard GETs and per-block checksums: what a reader of a few segments relies on."""

from __future__ import annotations

import os

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from node.blocksums import BLOCK_SIZE, BlockHasher, block_sums, first_bad_block
from node.index import Index, MoveItem
from node.records import IndexEntry
from tests.node.nodeproc import NodeProcess, xxh

SHARD = 839_066          # the data shard of an 8 MiB chunk in format v2: 13 blocks, the last short


def _ranged(node: NodeProcess, sid: str, spec: str):
    return node.client.request("GET", f"/shards/{sid}", headers={"Range": spec})


def _flip(node: NodeProcess, data: bytes, at: int) -> None:
    """Flip one byte of a shard inside its volume file (located by its content)."""
    for path in node.volume_files():
        raw = path.read_bytes()
        pos = raw.find(data[:64])
        if pos >= 0:
            with open(path, "r+b") as f:
                f.seek(pos + at)
                f.write(bytes([raw[pos + at] ^ 0x01]))
            return
    raise AssertionError("shard bytes not found in any volume")


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=3 * BLOCK_SIZE + 100),
       cuts=st.lists(st.integers(0, 3 * BLOCK_SIZE), max_size=8))
def test_block_sums_do_not_depend_on_how_the_body_arrives(data: bytes, cuts: list[int]) -> None:
    hasher = BlockHasher()
    pos = 0
    for cut in sorted(c for c in cuts if c <= len(data)):
        hasher.update(memoryview(data)[pos:cut])
        pos = cut
    hasher.update(data[pos:])
    expected = b"".join(xxhash.xxh3_64_digest(data[i : i + BLOCK_SIZE])
                        for i in range(0, len(data), BLOCK_SIZE))
    assert hasher.digest() == block_sums(data) == expected


def test_first_bad_block_names_the_damaged_block() -> None:
    data = bytearray(os.urandom(5 * BLOCK_SIZE + 7))
    sums = block_sums(data)
    assert first_bad_block(data[2 * BLOCK_SIZE :], 2, sums) is None
    data[3 * BLOCK_SIZE + 9] ^= 1
    assert first_bad_block(data[2 * BLOCK_SIZE : 4 * BLOCK_SIZE], 2, sums) == 3
    assert first_bad_block(data[4 * BLOCK_SIZE :], 4, sums) is None
    assert first_bad_block(data[4 * BLOCK_SIZE :], 4, sums[:-1]) == 5   # a sum missing is a failure


def test_index_entries_with_and_without_block_sums_round_trip() -> None:
    sums = block_sums(os.urandom(SHARD))
    new = IndexEntry(3, 4096, SHARD, os.urandom(16), 0, 77, 66, sums)
    assert IndexEntry.unpack(new.pack(), 66) == new
    old = IndexEntry(3, 4096, SHARD, os.urandom(16), 0, 77, 66)   # written before block sums existed
    assert len(old.pack()) == 45
    assert IndexEntry.unpack(old.pack(), 66) == old and old.block_sums is None


def test_ranged_get_returns_exactly_the_bytes_asked(node: NodeProcess) -> None:
    data = os.urandom(SHARD)
    assert node.client.put("r1.2", data).status == 201
    for first, last in [(0, 0), (0, 99), (65_530, 65_545), (BLOCK_SIZE, 2 * BLOCK_SIZE - 1),
                        (100_000, 300_000), (SHARD - 10, SHARD - 1), (0, SHARD - 1), (5, SHARD + 1000)]:
        r = _ranged(node, "r1.2", f"bytes={first}-{last}")
        end = min(last, SHARD - 1)
        assert r.status == 206, (first, last, r.body[:200])
        assert r.body == data[first : end + 1]
        assert r.headers["content-range"] == f"bytes {first}-{end}/{SHARD}"
        assert r.headers["x-shardbox-range-checksum"] == xxh(data[first : end + 1])
        assert r.headers["x-shardbox-checksum"] == xxh(data)
    r = _ranged(node, "r1.2", "bytes=800000-")
    assert r.status == 206 and r.body == data[800_000:]


def test_bad_and_unsatisfiable_ranges_are_refused(node: NodeProcess) -> None:
    data = os.urandom(1000)
    assert node.client.put("r2.0", data).status == 201
    r = _ranged(node, "r2.0", f"bytes={len(data)}-")
    assert r.status == 416 and r.code == "InvalidRange" and r.headers["content-range"] == "bytes */1000"
    for spec in ("bytes=5-1", "bytes=-10", "bytes=0-1,5-6", "items=0-1", "bytes=a-b"):
        r = _ranged(node, "r2.0", spec)
        assert (r.status, r.code) == (400, "InvalidRange"), spec
    r = _ranged(node, "nothing-here.3", "bytes=0-9")
    assert (r.status, r.code) == (404, "NoSuchShard")


def test_a_flipped_byte_is_refused_by_every_range_touching_its_block(node: NodeProcess) -> None:
    data = os.urandom(SHARD)
    assert node.client.put("r3.4", data).status == 201
    bad_at = 5 * BLOCK_SIZE + 123
    _flip(node, data, bad_at)
    r = _ranged(node, "r3.4", f"bytes={bad_at + 1}-{bad_at + 10}")   # the bad byte is not sent...
    assert (r.status, r.code) == (500, "ShardCorrupt")                # ...but its block was read
    assert data[bad_at + 1 : bad_at + 11] not in r.body
    r = _ranged(node, "r3.4", f"bytes={4 * BLOCK_SIZE}-{5 * BLOCK_SIZE + 1}")
    assert (r.status, r.code) == (500, "ShardCorrupt")
    # blocks that are intact still serve ranges; the whole shard never does
    r = _ranged(node, "r3.4", f"bytes=0-{5 * BLOCK_SIZE - 1}")
    assert r.status == 206 and r.body == data[: 5 * BLOCK_SIZE]
    assert node.client.get("r3.4").status == 500
    assert node.client.health()["corrupt"] == ["r3.4"]
    assert node.client.post("/scrub").json()["corrupt"] == ["r3.4"]


def test_shards_stored_before_block_sums_are_still_served(make_node) -> None:
    """An index entry without block sums (a node upgraded in place): ranges are checked
    against the whole checksum; compaction gives the shard its block sums."""
    node = make_node(compact_threshold=0.2)
    data = os.urandom(SHARD)
    keep = os.urandom(SHARD)
    assert node.client.put("old.1", data).status == 201
    assert node.client.put("keep.1", keep).status == 201
    assert node.stop() == 0
    index = Index(node.data_dir / "index")
    entry = index.get("old.1")
    assert entry is not None and entry.block_sums is not None
    stripped = IndexEntry(entry.volume, entry.offset, entry.length, entry.checksum, entry.flags, entry.seq,
                          entry.id_len)
    index.apply([MoveItem("old.1", entry.volume, entry.offset, stripped)])
    assert index.get("old.1").block_sums is None
    index.close()
    node.start()

    r = _ranged(node, "old.1", "bytes=70000-70099")
    assert r.status == 206 and r.body == data[70_000:70_100]
    assert node.client.get("old.1").body == data
    # compaction moves it (the other shard is garbage now) and computes its block sums
    assert node.client.delete("keep.1").status == 204
    assert node.client.post("/compact").json()["compacted"] == [1]
    assert node.stop() == 0
    index = Index(node.data_dir / "index")
    assert index.get("old.1").block_sums == block_sums(data)
    index.close()
    node.start()
    assert _ranged(node, "old.1", "bytes=70000-70099").body == data[70_000:70_100]


def test_old_entry_with_a_flipped_byte_refuses_any_range(node: NodeProcess) -> None:
    data = os.urandom(300_000)
    assert node.client.put("old.2", data).status == 201
    assert node.stop() == 0
    index = Index(node.data_dir / "index")
    entry = index.get("old.2")
    index.apply([MoveItem("old.2", entry.volume, entry.offset, IndexEntry(
        entry.volume, entry.offset, entry.length, entry.checksum, entry.flags, entry.seq, entry.id_len))])
    index.close()
    _flip(node, data, 250_000)
    node.start()
    r = _ranged(node, "old.2", "bytes=0-99")     # far from the flipped byte: the whole is checked
    assert (r.status, r.code) == (500, "ShardCorrupt")


def test_block_sums_come_back_from_rebuild_index(node: NodeProcess) -> None:
    data = os.urandom(SHARD)
    assert node.client.put("rb.0", data).status == 201
    assert node.stop() == 0
    node.rebuild_index()
    index = Index(node.data_dir / "index")
    assert index.get("rb.0").block_sums == block_sums(data)
    index.close()
