"""Writes and reads while storage nodes are dead, on a real 14-node mini cluster whose
coordinator declares a node down DOWN_AFTER_S after its last heartbeat.

A chunk is durable at 12 acknowledged shards (the gateway's min_acks): with 12 or 13 nodes
up a write succeeds, the shard slots it could not fill are queued for repair; with 11 it is
refused with a clear 503. A GET whose chunks are not all readable from nodes believed up
answers 503 before its status line, never a 200 cut short.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from tests.gateway.cluster import MiniCluster

DOWN_AFTER_S = 3.0
MiB = 1 << 20
OBJECT = 2 * MiB + 12345          # three 1 MiB chunks (the mini cluster's chunk size)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    mc = MiniCluster(tmp_path_factory.mktemp("degraded"),
                     coordinator_settings={"node_down_after_s": DOWN_AFTER_S})
    try:
        mc.start()
        yield mc
    finally:
        mc.stop()


@pytest.fixture
def bucket(cluster: MiniCluster) -> str:
    name = f"degraded-{uuid.uuid4().hex[:8]}"
    cluster.boto3_client().create_bucket(Bucket=name)
    return name


def _node(i: int) -> str:
    return f"n{i:02d}"


def _all_up(cluster: MiniCluster) -> None:
    """Every node process running and seen up (a test may have killed some)."""
    for i in range(cluster.node_count):
        if cluster.procs[f"node{i:02d}"].poll() is not None:
            cluster.restart_node(i)
    cluster.wait_node_states({_node(i): "up" for i in range(cluster.node_count)})


def _kill_until_down(cluster: MiniCluster, *indexes: int) -> None:
    """kill -9 the nodes and wait past the down timeout, until the coordinator says so."""
    for i in indexes:
        cluster.kill_node(i)
    cluster.wait_node_states({_node(i): "down" for i in indexes})


def _manifest(cluster: MiniCluster, bucket: str, key: str) -> list:
    info = cluster.admin_call(lambda c: c.get_object(cluster.admin.tenant_id, bucket, key, with_chunks=True))
    return info.chunks


def _repairs(cluster: MiniCluster, chunk_keys: set[str]) -> dict[str, list[tuple[int, str, str | None]]]:
    """The coordinator's repair queue for these chunks: chunk key -> [(index, reason, node)]."""
    with sqlite3.connect(cluster.root / "meta.db") as db:
        rows = db.execute("SELECT chunk_key, idx, reason, node_id FROM repair_queue ORDER BY chunk_key, idx")
        out: dict[str, list[tuple[int, str, str | None]]] = {}
        for chunk_key, idx, reason, node_id in rows:
            if chunk_key in chunk_keys:
                out.setdefault(chunk_key, []).append((idx, reason, node_id))
    return out


def _same(got: bytes, want: bytes) -> bool:
    return hashlib.sha256(got).digest() == hashlib.sha256(want).digest()


def test_writes_with_one_and_two_dead_nodes_succeed_and_three_are_refused(cluster: MiniCluster,
                                                                           bucket: str) -> None:
    _all_up(cluster)
    s3 = cluster.boto3_client()
    bodies = {"all-up": os.urandom(OBJECT)}
    s3.put_object(Bucket=bucket, Key="all-up", Body=bodies["all-up"])

    for dead, key in (((13,), "one-dead"), ((13, 12), "two-dead")):
        _kill_until_down(cluster, dead[-1])
        bodies[key] = os.urandom(OBJECT)
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[key])
        assert _same(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), bodies[key])
        chunks = _manifest(cluster, bucket, key)
        assert len(chunks) == 3
        placed = 14 - len(dead)
        unplaced = list(range(placed, 14))
        for ref in chunks:
            assert sorted(s.index for s in ref.shards) == list(range(placed))
            assert not {s.node_id for s in ref.shards} & {_node(i) for i in dead}
        # the slots it could not fill are repair work
        queued = _repairs(cluster, {ref.chunk_key for ref in chunks})
        assert queued == {ref.chunk_key: [(i, "write_shortfall", None) for i in unplaced] for ref in chunks}

    _kill_until_down(cluster, 11)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="three-dead", Body=os.urandom(OBJECT))
    err = info.value.response
    assert (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]) == (503, "ServiceUnavailable")
    assert "only 11 storage nodes are up; 12 are needed" in err["Error"]["Message"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["all-up", "one-dead", "two-dead"]
    # a small object lives in the metadata database: no node needed
    s3.put_object(Bucket=bucket, Key="small", Body=b"kept in the metadata")
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"kept in the metadata"
    # everything written before still reads back exactly with 3 nodes dead
    for key, body in bodies.items():
        assert _same(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), body), key


def test_a_node_hanging_mid_write_costs_a_shard_not_the_write(cluster: MiniCluster, bucket: str) -> None:
    _all_up(cluster)
    s3 = cluster.boto3_client()
    hung = cluster.procs["node05"]
    hung.send_signal(signal.SIGSTOP)      # accepts connections, answers nothing
    try:
        body = os.urandom(OBJECT)
        started = time.monotonic()
        s3.put_object(Bucket=bucket, Key="hung", Body=body)
        took = time.monotonic() - started
    finally:
        hung.send_signal(signal.SIGCONT)
    assert took < 30, took
    chunks = _manifest(cluster, bucket, "hung")
    queued = _repairs(cluster, {ref.chunk_key for ref in chunks})
    for ref in chunks:
        on_hung = [s.index for s in ref.shards if s.node_id == _node(5)]
        unplaced = sorted(set(range(14)) - {s.index for s in ref.shards})
        assert sorted(i for i, _, _ in queued[ref.chunk_key]) == sorted(on_hung + unplaced)
        assert len(queued[ref.chunk_key]) == 1
    assert _same(s3.get_object(Bucket=bucket, Key="hung")["Body"].read(), body)


def test_a_get_that_cannot_be_served_whole_is_503_before_any_byte(cluster: MiniCluster, bucket: str) -> None:
    """The first part's chunks stay readable, the last part's chunk does not: the answer is a
    503 with nothing sent, not a 200 whose body stops after the first part."""
    _all_up(cluster)
    s3 = cluster.boto3_client()
    first, last = os.urandom(5 * MiB), os.urandom(200_000)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mixed")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mixed", UploadId=upload, PartNumber=1, Body=first)["ETag"]
    _kill_until_down(cluster, 0, 1)                  # part 2 lands on the other 12 nodes
    e2 = s3.upload_part(Bucket=bucket, Key="mixed", UploadId=upload, PartNumber=2, Body=last)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mixed", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    _all_up(cluster)                                 # nodes 0 and 1 are back ...
    _kill_until_down(cluster, 2, 3, 4)               # ... 3 others die: part 2 keeps 9 of 12 shards
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="mixed")
    err = info.value.response
    assert (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]) == (503, "ServiceUnavailable")
    # what is readable is served: the first part, by range or by part number
    got = s3.get_object(Bucket=bucket, Key="mixed", Range=f"bytes=0-{5 * MiB - 1}")["Body"].read()
    assert _same(got, first)
    assert _same(s3.get_object(Bucket=bucket, Key="mixed", PartNumber=1)["Body"].read(), first)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="mixed", PartNumber=2)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    _all_up(cluster)     # heartbeats again after failing this gateway: trusted again
    assert _same(s3.get_object(Bucket=bucket, Key="mixed")["Body"].read(), first + last)
