"""The shard data path: bodies written as received pieces, sent back without extra copies.

PUT bodies are written with one pwritev of the HTTP parser's buffers (no join), a
body that fits in one buffer is written and verified on the commit thread, and large
GETs go out as the very buffer that was read and verified. These tests pin what that
must not change: byte order, framing on a kept-alive connection, and that a refused
write gives back its region (or compaction of that volume would wait forever).
"""

from __future__ import annotations

import http.client
import os

from config.cluster_auth import EMPTY_HASH, sign_headers
from node.volumes import IOV_BATCH, Volume
from tests.node.nodeproc import NODE_ID, SECRET, xxh
from tests.node.rawhttp import raw_put


def test_pwritev_keeps_piece_order_across_iov_batches(tmp_path):
    vol = Volume(1, tmp_path / "00000001.vol", create=True)
    pieces = [os.urandom(n) for n in (0, 1, 7, 4096, 0, 65_536, 3)]
    pieces += [os.urandom(1 + i % 13) for i in range(IOV_BATCH * 2 + 5)]   # more than one pwritev call
    vol.pwritev(100, pieces)
    expected = b"".join(pieces)
    assert vol.file_size() == 100 + len(expected)
    assert vol.pread(100, len(expected)) == expected
    assert vol.pread(0, 100) == bytes(100)
    vol.pwritev(50, [])               # nothing to write is a no-op
    assert vol.file_size() == 100 + len(expected)


def test_body_arriving_in_many_small_pieces_is_stored_exactly(node):
    data = os.urandom(300_000)
    status, body = raw_put(node.port, "/shards/slow.3", data, xxh(data), content_length=len(data),
                           piece=4_000, pause_s=0.001)
    assert status == 201, body
    r = node.client.get("slow.3")
    assert r.status == 200 and r.body == data
    assert r.headers["x-shardbox-checksum"] == xxh(data)


def _signed(method: str, path: str, body: bytes = b"") -> dict[str, str]:
    return sign_headers(SECRET, method, path, xxh(body) if body else EMPTY_HASH, target=NODE_ID)


def test_large_and_small_gets_keep_connection_framing(node):
    """A chunk-sized shard goes out as headers + the read buffer; the next request on the
    same connection must still parse (Content-Length exact, nothing left over)."""
    big = os.urandom(838_862)          # one shard of an 8 MiB chunk
    small = os.urandom(1_000)
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        for sid, data in (("big.0", big), ("small.0", small)):
            conn.request("PUT", f"/shards/{sid}", body=data, headers=_signed("PUT", f"/shards/{sid}", data))
            resp = conn.getresponse()
            assert resp.status == 201, resp.read()
            resp.read()
        for sid, data in (("big.0", big), ("small.0", small), ("big.0", big)):
            conn.request("GET", f"/shards/{sid}", headers=_signed("GET", f"/shards/{sid}"))
            resp = conn.getresponse()
            got = resp.read()
            assert resp.status == 200 and got == data
            assert resp.getheader("Content-Length") == str(len(data))
            assert resp.getheader("Content-Type") == "application/octet-stream"
            assert resp.getheader("X-Shardbox-Checksum") == xxh(data)
    finally:
        conn.close()


def test_refused_single_buffer_put_gives_its_region_back(make_node):
    node = make_node(volume_size=1 << 20, compact_threshold=0.3)
    c = node.client
    blobs = {f"v1-{i}.0": os.urandom(150_000) for i in range(5)}
    for sid, data in blobs.items():
        assert c.put(sid, data).status == 201
    bad = os.urandom(150_000)
    r = c.request("PUT", "/shards/bad.0", bad, content_hash=xxh(bad[:-1]))
    assert r.status == 400 and r.code == "BadDigest"
    later = {f"v2-{i}.0": os.urandom(150_000) for i in range(2)}   # no longer fits: volume 2
    for sid, data in later.items():
        assert c.put(sid, data).status == 201
    assert len(node.volume_files()) == 2
    assert sorted(c.delete_many(sorted(blobs)).json()["deleted"]) == sorted(blobs)

    # volume 1 now holds only garbage; compaction waits for its writers, so a region
    # the refused PUT kept would make it give up on the volume
    result = c.post("/compact").json()
    assert result["compacted"] and result["reclaimed_bytes"] >= 900_000
    for sid, data in later.items():
        assert c.get(sid).body == data
    assert c.get("bad.0").status == 404
    assert c.health()["shard_count"] == 2
