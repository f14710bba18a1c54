"""The on-disk record format and the volume scanner, in process (no server needed)."""

from __future__ import annotations

import os

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from node.blocksums import block_sums
from node.records import FLAG_TOMBSTONE, HEADER_SIZE, decode_header, encode_header
from node.scan import ScanStats, scan_volume
from node.volumes import VolumeSet

ids = st.from_regex(r"[A-Za-z0-9_.-]{1,200}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(shard_id=ids, seq=st.integers(0, 2**64 - 1), length=st.integers(0, 2**40),
       flags=st.sampled_from([0, 1]))
def test_header_round_trip(shard_id, seq, length, flags):
    checksum = os.urandom(16)
    raw = encode_header(shard_id, seq, length, checksum, flags)
    assert len(raw) == HEADER_SIZE + len(shard_id)
    h = decode_header(raw + b"\0" * 10)
    assert h is not None
    assert (h.shard_id, h.seq, h.length, h.checksum, h.tombstone) == (shard_id, seq, length, checksum,
                                                                      flags == FLAG_TOMBSTONE)


@settings(max_examples=200, deadline=None)
@given(shard_id=ids, pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_header_bit_is_detected(shard_id, pos, bit):
    raw = bytearray(encode_header(shard_id, 7, 100, os.urandom(16)))
    pos %= len(raw)
    raw[pos] ^= 1 << bit
    assert decode_header(bytes(raw)) is None


def _put(vs: VolumeSet, shard_id: str, data: bytes) -> int:
    res = vs.reserve(shard_id, len(data), xxhash.xxh3_128_digest(data))
    res.volume.pwrite(res.data_offset, data)
    vs.release(res)
    return res.offset


def test_scan_skips_garbage_resyncs_over_damage_and_finds_torn_tail(tmp_path):
    vs = VolumeSet(tmp_path, 1 << 30)
    blobs = {f"s{i}.0": os.urandom(5000 + i) for i in range(6)}
    offsets = {sid: _put(vs, sid, data) for sid, data in blobs.items()}
    vol = vs.get(1)
    # s1: data no longer matches its checksum -> garbage; s3: header damaged -> resync past it
    vol.pwrite(offsets["s1.0"] + HEADER_SIZE + 4 + 10, b"\xff\xfe")
    vol.pwrite(offsets["s3.0"] + 8, b"\0\0\0\0")
    # a torn record at the end: header promises more than the file holds
    res = vs.reserve("torn.0", 100_000, os.urandom(16))
    res.volume.pwrite(res.data_offset, b"x" * 10)
    stats = ScanStats()
    scanned = list(scan_volume(vol, 0, stats))
    found = {h.shard_id: off for off, h, _ in scanned}
    assert found == {sid: offsets[sid] for sid in ("s0.0", "s2.0", "s4.0", "s5.0")}
    # every valid record comes with the block sums of its (verified) data
    assert all(sums == block_sums(blobs[h.shard_id]) for _, h, sums in scanned)
    assert stats.garbage == 1 and stats.skipped_bytes == offsets["s4.0"] - offsets["s3.0"]
    assert stats.torn_at == res.offset
    # scanning from the middle sees only what follows
    stats2 = ScanStats()
    assert [h.shard_id for _, h, _ in scan_volume(vol, offsets["s4.0"], stats2)] == ["s4.0", "s5.0"]


def test_volumes_roll_over_and_keep_unique_sequences(tmp_path):
    persisted = []
    vs = VolumeSet(tmp_path, 1 << 20, persist_ceiling=persisted.append)
    seqs = []
    for i in range(40):
        res = vs.reserve(f"v{i}.0", 100_000, os.urandom(16))
        seqs.append(res.seq)
        vs.release(res)
    assert len(vs.numbers()) >= 4
    assert all(v.end <= 1 << 20 for v in vs.volumes.values())
    assert seqs == sorted(set(seqs))
    assert persisted and persisted[-1] > seqs[-1]
    big = vs.reserve("big.0", 3 << 20, os.urandom(16))    # larger than a volume: gets one of its own
    assert big.offset == 0
