"""Losing nodes for good on `shardbox up --nodes 18`: health says so, the worker's repair
brings every chunk back to 14 healthy shards on the 14 survivors, and a byte flipped on disk
is found by scrub and repaired."""

from __future__ import annotations

import hashlib
import os
import signal
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.cluster import Cluster, start_cluster
from tests.integration.conftest import _database_url
from tests.integration.nodes import flip_byte_on_disk
from tests.integration.ops import admin, admin_json, node_call, shard_bytes, shards_on, wait_for

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture(scope="module")
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data = tmp_path_factory.mktemp("up18") / "data"
    data.mkdir()
    c = start_cluster(data, database_url=_database_url(request), nodes=18)
    try:
        yield c
    finally:
        for pid in _frozen:  # let them take stop's SIGTERM like the others
            os.kill(pid, signal.SIGCONT)
        c.stop()


# Nodes "lost for good": frozen with SIGSTOP, because `shardbox up` restarts a node that
# exits (a frozen one answers nothing, which is what a dead machine does to its peers).
_frozen: list[int] = []


def _health(c: Cluster) -> tuple[int, dict]:
    return admin_json(c.data_dir, "health")


def _node_state(c: Cluster, node_id: str) -> str:
    return next(n["state"] for n in _health(c)[1]["nodes"] if n["node_id"] == node_id)


def test_four_nodes_lost_for_good_are_rebuilt_on_the_survivors(big: Cluster) -> None:
    s3 = big.s3()
    s3.create_bucket(Bucket="keep")
    bodies = {f"obj-{i}": os.urandom(3 * MiB + i) for i in range(5)}
    bodies["multi-chunk"] = os.urandom(17 * MiB)         # three chunks
    for key, body in bodies.items():
        s3.put_object(Bucket="keep", Key=key, Body=body)
    code, doc = _health(big)
    assert code == 0, doc
    assert doc["status"] == "healthy" and doc["chunks_by_surviving_shards"]["14"] == 8
    nodes = {n["id"]: n for n in big.info["nodes"]}
    assert len(nodes) == 18

    # Five nodes that all hold a shard of one chunk: four die for good, the fifth only for a while.
    placements: dict[str, set[str]] = {}
    for node_id, n in nodes.items():
        for sid in shards_on(big.data_dir, n):
            placements.setdefault(sid.rsplit(".", 1)[0], set()).add(node_id)
    assert {len(v) for v in placements.values()} == {14} and len(placements) == 8
    _, holders = sorted(placements.items())[0]
    victims = sorted(holders)[:4]
    fifth = sorted(holders)[4]
    for v in victims:
        os.kill(nodes[v]["pid"], signal.SIGSTOP)
        _frozen.append(nodes[v]["pid"])
    wait_for("the killed nodes to count as down", lambda: all(_node_state(big, v) == "down" for v in victims))
    code, doc = _health(big)
    assert (code, doc["status"]) == (1, "degraded")
    assert doc["chunks_by_surviving_shards"]["10"] >= 1          # `chunk` is down to ten
    human = admin(big.data_dir, "health")
    assert human.returncode == 1 and "status: degraded" in human.stdout and "node-" in human.stdout

    os.kill(nodes[fifth]["pid"], signal.SIGSTOP)                   # a fifth: `chunk` is unreadable
    try:
        wait_for("the fifth node to count as down", lambda: _node_state(big, fifth) == "down")
        code, doc = _health(big)
        assert (code, doc["status"]) == (2, "at_risk")
        assert doc["chunks_by_surviving_shards"]["under_10"] >= 1
    finally:
        os.kill(nodes[fifth]["pid"], signal.SIGCONT)
    wait_for("the fifth node to be back", lambda: _node_state(big, fifth) == "up")
    assert _health(big)[0] == 1

    # The four are gone for good: removing them starts their repair at once.
    for v in victims:
        done = admin(big.data_dir, "nodes", "remove", v)
        assert done.returncode == 0, done.stderr
        assert "queued for rebuild" in done.stdout
    # `shardbox up`'s worker rebuilds them.
    wait_for("repair to empty its queue", lambda: admin_json(big.data_dir, "repair", "status")[1]
             ["backlog_shards"] == 0, timeout=240, every=1)

    survivors = sorted(set(nodes) - set(victims))
    held: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    for node_id in survivors:
        for sid in shards_on(big.data_dir, nodes[node_id]):
            key = sid.rsplit(".", 1)[0]
            held[key] += 1
            where.setdefault(key, set()).add(node_id)
    assert set(held) == set(placements)
    assert set(held.values()) == {14}                               # 14 shards of every chunk ...
    assert all(len(w) == 14 for w in where.values())               # ... on 14 different survivors
    code, doc = _health(big)
    assert (code, doc["status"]) == (0, "healthy"), doc
    lost = sum(len(set(victims) & held_by) for held_by in placements.values())
    assert doc["chunks_by_surviving_shards"]["14"] == 8 and doc["repair"]["repaired_shards"] == lost
    for key, body in bodies.items():                               # and every byte reads back
        got = s3.get_object(Bucket="keep", Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()


def test_a_byte_flipped_on_disk_is_found_by_scrub_and_repaired(big: Cluster) -> None:
    s3 = big.s3()
    s3.create_bucket(Bucket="rot")
    body = os.urandom(2 * MiB)
    s3.put_object(Bucket="rot", Key="victim", Body=body)
    up = [n for n in big.info["nodes"] if _node_state(big, n["id"]) == "up"]
    # a node that holds a shard (of 18, four hold none of a chunk; alone, this test stores one)
    node, held = next((n, held) for n in up if (held := shards_on(big.data_dir, n)))
    sid, checksum = next(iter(held.items()))
    shard = shard_bytes(big.data_dir, node, sid)
    flip_byte_on_disk(node, shard)

    result = node_call(big.data_dir, node, "POST", "/scrub")
    assert sid in result["corrupt"]
    # The node reports it in its next heartbeat; the worker rewrites it on that node.
    wait_for("the node to hold a good copy again",
             lambda: node_call(big.data_dir, node, "GET", "/health")["corrupt_count"] == 0,
             timeout=120, every=1)
    assert shard_bytes(big.data_dir, node, sid) == shard         # rewritten, checksum verified
    assert shards_on(big.data_dir, node)[sid] == checksum
    assert node_call(big.data_dir, node, "GET", "/health")["corrupt_count"] == 0
    assert s3.get_object(Bucket="rot", Key="victim")["Body"].read() == body

