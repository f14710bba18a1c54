"""Bit rot, scrub, compaction under concurrent reads, and a full node."""

from __future__ import annotations

import os
import threading
import time

from tests.node.nodeproc import NodeClient, NodeProcess


def _flip_byte_of(node: NodeProcess, data: bytes, at: int = 100) -> None:
    """Flip one byte of a shard inside its volume file (located by its content)."""
    for path in node.volume_files():
        raw = path.read_bytes()
        pos = raw.find(data[:64])
        if pos >= 0:
            with open(path, "r+b") as f:
                f.seek(pos + at)
                f.write(bytes([raw[pos + at] ^ 0x40]))
            return
    raise AssertionError("shard bytes not found in any volume")


def test_flipped_byte_is_refused_and_reported_by_scrub(node):
    c = node.client
    blobs = {f"c{i}.3": os.urandom(50_000) for i in range(8)}
    for sid, data in blobs.items():
        assert c.put(sid, data).status == 201
    _flip_byte_of(node, blobs["c5.3"])

    r = c.get("c5.3")
    assert r.status == 500 and r.code == "ShardCorrupt"
    assert blobs["c5.3"][:1000] not in r.body
    assert c.head("c5.3").status == 500
    for sid, data in blobs.items():
        if sid != "c5.3":
            assert c.get(sid).body == data

    # a second rotten shard that nobody has read yet is found by scrub
    _flip_byte_of(node, blobs["c2.3"], at=49_999)
    r = c.post("/scrub")
    assert r.status == 200
    report = r.json()
    assert report["checked"] == len(blobs)
    assert sorted(report["corrupt"]) == ["c2.3", "c5.3"]
    assert report["finished"] >= report["started"]
    h = c.health()
    assert h["corrupt"] == ["c2.3", "c5.3"] and h["last_scrub"]["checked"] == len(blobs)

    # the corrupt list survives a restart
    assert node.stop() == 0
    node.start()
    assert c.health()["corrupt"] == ["c2.3", "c5.3"]

    # repair: the same (good) bytes written again replace the rotten record
    assert c.put("c5.3", blobs["c5.3"]).status == 201
    assert c.get("c5.3").body == blobs["c5.3"]
    assert c.health()["corrupt"] == ["c2.3"]
    assert c.delete("c2.3").status == 204
    assert c.health()["corrupt"] == []
    assert c.post("/scrub").json()["corrupt"] == []


def test_compaction_reclaims_space_while_readers_run(make_node):
    node = make_node(volume_size=1 << 20, compact_threshold=0.3)
    c = node.client
    blobs = {f"p{i:03d}.{i % 14}": os.urandom(60_000) for i in range(90)}
    for sid, data in blobs.items():
        assert c.put(sid, data).status == 201
    doomed = [sid for n, sid in enumerate(sorted(blobs)) if n % 4 != 0]
    assert sorted(c.delete_many(doomed).json()["deleted"]) == sorted(doomed)
    live = {sid: blobs[sid] for sid in blobs if sid not in doomed}
    before_bytes = node.volume_bytes()
    before_files = len(node.volume_files())
    assert c.health()["garbage_bytes"] > before_bytes // 2

    stop = threading.Event()
    errors: list[str] = []
    reads = [0]

    def reader(seed: int) -> None:
        rc = NodeClient(node.port)
        ids = sorted(live)
        i = seed
        while not stop.is_set():
            sid = ids[i % len(ids)]
            r = rc.get(sid)
            if r.status != 200 or r.body != live[sid]:
                errors.append(f"{sid}: {r.status} {r.body[:100]!r}")
            reads[0] += 1
            i += 1

    def writer() -> None:
        wc = NodeClient(node.port)
        n = 0
        while not stop.is_set():
            data = os.urandom(20_000)
            sid = f"new{n}.0"
            if wc.put(sid, data).status != 201:
                errors.append(f"put {sid} failed")
            live[sid] = data
            n += 1

    threads = [threading.Thread(target=reader, args=(k * 7,)) for k in range(3)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    try:
        result = c.post("/compact").json()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:5]
    assert reads[0] > 0
    assert result["compacted"] and result["reclaimed_bytes"] > before_bytes // 2
    assert len(node.volume_files()) < before_files
    after_bytes = node.volume_bytes()
    assert after_bytes < before_bytes * 0.6
    for sid, data in live.items():
        assert c.get(sid).body == data, sid
    for sid in doomed:
        assert c.get(sid).status == 404

    # a restart and a rebuild from the compacted volumes agree, deletes stay deleted
    listing = c.list_all()
    assert node.stop() == 0
    stats = node.rebuild_index()
    assert stats["shards"] == len(live)
    node.start()
    assert c.list_all() == listing
    for sid in doomed:
        assert c.get(sid).status == 404
    assert c.post("/compact").json()["compacted"] == []


def test_full_node_answers_507_and_stays_consistent(make_node):
    node = make_node(capacity_bytes=1 << 20)
    c = node.client
    stored = {}
    status = 201
    i = 0
    while status == 201:
        sid, data = f"f{i}.0", os.urandom(64 * 1024)
        r = c.put(sid, data)
        status = r.status
        if status == 201:
            stored[sid] = data
        i += 1
        assert i < 100
    assert status == 507 and r.code == "InsufficientStorage"
    assert "capacity" in r.json()["error"]["message"]
    assert len(stored) >= 14
    assert c.get(sid).status == 404
    for k, data in stored.items():
        assert c.get(k).body == data
    h = c.health()
    assert h["capacity_bytes"] == 1 << 20 and h["used_bytes"] <= 1 << 20
    assert h["free_bytes"] < 64 * 1024 and h["shard_count"] == len(stored)
    # a small shard still fits, deletes still work on a full node
    assert c.put("small.0", b"tiny").status == 201
    assert c.delete("f0.0").status == 204
    assert node.stop() == 0
    node.start()
    assert c.get("small.0").body == b"tiny"
    assert len(c.list_all()) == len(stored)
    assert c.put(sid, data).status == 507


def test_reserve_bytes_keeps_free_space(make_node, tmp_path):
    st = os.statvfs(tmp_path)
    node = make_node(reserve_bytes=st.f_bavail * st.f_frsize + (1 << 30))
    r = node.client.put("r.0", b"x" * 1000)
    assert r.status == 507 and "reserve_bytes" in r.json()["error"]["message"]
    assert node.client.get("r.0").status == 404
    assert node.client.health()["free_bytes"] == 0


def test_periodic_scrub_runs_by_itself(make_node):
    node = make_node(scrub_interval_s=0.3)
    assert node.client.put("ps.0", os.urandom(1000)).status == 201
    deadline = time.monotonic() + 15
    last = None
    while time.monotonic() < deadline:
        last = node.client.health()["last_scrub"]
        if last and last["checked"] == 1:
            break
        time.sleep(0.1)
    assert last is not None and last["checked"] == 1 and last["corrupt"] == 0
