"""Round trips, listing, batch delete, credential checks and refused PUTs, on a real node process."""

from __future__ import annotations

import os
import time

from tests.node.nodeproc import NodeClient, xxh
from tests.node.rawhttp import raw_put


def test_put_get_head_delete_round_trip(node):
    c = node.client
    data = os.urandom(100_000)
    r = c.put("chunk1.0", data)
    assert r.status == 201
    assert r.json() == {"id": "chunk1.0", "length": len(data), "checksum": xxh(data)}

    r = c.get("chunk1.0")
    assert r.status == 200 and r.body == data
    assert r.headers["x-shardbox-checksum"] == xxh(data)
    assert int(r.headers["content-length"]) == len(data)

    r = c.head("chunk1.0")
    assert r.status == 200 and r.body == b""
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["x-shardbox-checksum"] == xxh(data)

    # identical PUT: accepted without a second record
    used = c.health()["used_bytes"]
    assert c.put("chunk1.0", data).status == 201
    assert c.health()["used_bytes"] == used

    # different bytes under the same id overwrite
    data2 = os.urandom(5000)
    assert c.put("chunk1.0", data2).status == 201
    assert c.get("chunk1.0").body == data2
    assert c.health()["shard_count"] == 1

    assert c.delete("chunk1.0").status == 204
    r = c.get("chunk1.0")
    assert r.status == 404 and r.code == "NoSuchShard"
    assert c.head("chunk1.0").status == 404
    r = c.delete("chunk1.0")
    assert r.status == 404 and r.code == "NoSuchShard"
    assert c.health()["shard_count"] == 0


def test_empty_shard_and_request_id_logged(node):
    c = node.client
    assert c.request("PUT", "/shards/empty.0", b"", {"X-Request-Id": "req-123"}).status == 201
    r = c.get("empty.0")
    assert r.status == 200 and r.body == b""
    assert r.headers["x-shardbox-checksum"] == xxh(b"")
    node.stop()
    lines = [e for e in node.log_lines() if e.get("event") == "request" and e.get("request_id") == "req-123"]
    assert len(lines) == 1 and lines[0]["status"] == 201 and lines[0]["method"] == "PUT"


def test_listing_with_cursor_and_batch_delete(node):
    c = node.client
    ids = [f"k{i:03d}.{i % 14}" for i in range(25)]
    blobs = {i: os.urandom(100 + n) for n, i in enumerate(ids)}
    for i, b in blobs.items():
        assert c.put(i, b).status == 201

    page = c.list(limit=10).json()
    assert [s["id"] for s in page["shards"]] == sorted(ids)[:10]
    assert page["next"] == sorted(ids)[9]
    assert page["shards"][0] == {"id": sorted(ids)[0], "length": len(blobs[sorted(ids)[0]]),
                                 "checksum": xxh(blobs[sorted(ids)[0]])}
    page2 = c.list(after=page["next"], limit=10).json()
    assert [s["id"] for s in page2["shards"]] == sorted(ids)[10:20]
    last = c.list(after=page2["next"], limit=10).json()
    assert [s["id"] for s in last["shards"]] == sorted(ids)[20:] and last["next"] is None
    assert set(c.list_all(page=7)) == set(ids)

    r = c.delete_many([ids[0], ids[1], "nope.1", ids[0]])
    assert r.status == 200
    assert sorted(r.json()["deleted"]) == sorted([ids[0], ids[1]])
    assert r.json()["missing"] == ["nope.1"]
    assert set(c.list_all()) == set(ids[2:])
    assert c.get(ids[0]).status == 404 and c.get(ids[2]).body == blobs[ids[2]]

    assert c.list(limit=0).status == 400
    assert c.list(limit=10001).status == 400
    assert c.list(after="x" * 600).status == 400
    assert c.delete_many(["bad id!"]).status == 400


def test_credentials_are_required(node):
    data = b"x" * 1000
    r = node.client.request("PUT", "/shards/a.1", data, sign=False)
    assert r.status == 401 and r.code == "MissingCredential"
    wrong = NodeClient(node.port, secret="some-other-secret-abcdefgh")
    r = wrong.put("a.1", data)
    assert r.status == 403 and r.code == "AccessDenied"
    for method, path in [("GET", "/shards/a.1"), ("GET", "/shards"), ("GET", "/health"),
                         ("GET", "/metrics"), ("POST", "/scrub"), ("POST", "/compact"),
                         ("DELETE", "/shards/a.1")]:
        assert node.client.request(method, path, sign=False).status == 401, path
        assert wrong.request(method, path).status == 403, path
    # a signature over another path, or for another node, does not carry over
    from config.cluster_auth import COORDINATOR, sign_headers
    from tests.node.nodeproc import NODE_ID, SECRET
    hdrs = sign_headers(SECRET, "GET", "/shards/other.1", target=NODE_ID)
    assert node.client.request("GET", "/shards/a.1", headers=hdrs, sign=False).status == 403
    for other in ("n2", COORDINATOR):
        hdrs = sign_headers(SECRET, "GET", "/shards/a.1", target=other)
        r = node.client.request("GET", "/shards/a.1", headers=hdrs, sign=False)
        assert r.status == 403 and r.code == "AccessDenied"
    assert node.client.health()["shard_count"] == 0


def _assert_refused_incomplete(node, status: int, body: bytes) -> None:
    """The client half-closed, so the connection may be gone before the answer: check the log too."""
    assert status in (0, 400)
    if status:
        assert b"IncompleteBody" in body
    for _ in range(100):
        puts = [e for e in node.log_lines() if e.get("event") == "request" and e.get("method") == "PUT"]
        if puts and puts[-1].get("error") == "IncompleteBody":
            break
        time.sleep(0.05)
    assert puts[-1]["status"] == 400 and puts[-1]["error"] == "IncompleteBody"


def _assert_nothing_stored(node, shard_id: str) -> None:
    c = node.client
    assert c.get(shard_id).status == 404
    assert c.head(shard_id).status == 404
    assert shard_id not in c.list_all()
    assert c.health()["shard_count"] == 0


def test_malformed_puts_are_refused_and_leave_nothing(make_node):
    node = make_node(max_shard_size=256 * 1024)
    c = node.client
    data = os.urandom(200_000)

    r = c.put("bad!id", data)
    assert r.status == 400 and r.code == "InvalidShardId"
    r = c.put("x" * 201, b"abc")
    assert r.status == 400 and r.code == "InvalidShardId"

    r = c.request("PUT", "/shards/s.1", data, content_hash=xxh(data[:-1]))
    assert r.status == 400 and r.code == "BadDigest"
    _assert_nothing_stored(node, "s.1")

    status, body = raw_put(node.port, "/shards/s.1", data[:50_000], xxh(data), content_length=len(data))
    _assert_refused_incomplete(node, status, body)
    _assert_nothing_stored(node, "s.1")

    big = os.urandom(2_000_000)    # over 1 MiB buffer: region already reserved when the body stops
    node2 = make_node("node2", max_shard_size=4 << 20)
    status, body = raw_put(node2.port, "/shards/s.2", big[:1_500_000], xxh(big), content_length=len(big))
    _assert_refused_incomplete(node2, status, body)
    _assert_nothing_stored(node2, "s.2")
    assert node2.client.put("s.3", big).status == 201
    assert node2.client.get("s.3").body == big

    status, body = raw_put(node.port, "/shards/s.1", b"", xxh(data), content_length=300_000)
    assert status == 413 and b"EntityTooLarge" in body
    _assert_nothing_stored(node, "s.1")

    status, body = raw_put(node.port, "/shards/s.1", data, xxh(data), content_length=None, chunked=True)
    assert status == 411
    _assert_nothing_stored(node, "s.1")

    r = c.request("PUT", "/shards/s.1", data, content_hash="not-a-hash")
    assert r.status == 400 and r.code == "InvalidDigest"
    _assert_nothing_stored(node, "s.1")

    # after all that, the node still works and restarts cleanly with nothing visible
    assert c.put("s.1", data).status == 201
    assert node.stop() == 0
    node.start()
    assert node.client.get("s.1").body == data
    assert node.client.health()["shard_count"] == 1


def test_health_and_metrics(node):
    c = node.client
    for i in range(20):
        assert c.put(f"m{i}.0", os.urandom(4096)).status == 201
    h = c.health()
    for key in ("node_id", "pool", "host", "rack", "capacity_bytes", "used_bytes", "free_bytes",
                "shard_count", "volumes", "garbage_bytes", "last_scrub"):
        assert key in h
    assert h["node_id"] == "n1" and h["shard_count"] == 20 and h["used_bytes"] >= 20 * 4096
    assert 0 < h["fsyncs"] <= 20
    text = c.request("GET", "/metrics").body.decode()
    assert "shardbox_node_puts_total 20" in text
    assert "shardbox_node_fsyncs_total" in text
    assert 'shardbox_node_http_responses_total{method="PUT",status="201"} 20' in text
