"""Storage formats through S3: objects stored in format 1 (as the first release stored them)
read back after the gateway writes format 2; a 100-byte range of a format-2 object costs the
gateway one segment of node traffic."""

from __future__ import annotations

import json
import os
import sqlite3
import time

from tests.gateway.cluster import MiniCluster

MiB = 1 << 20


def _request_logs(cluster: MiniCluster, request_id: str) -> list[dict]:
    """The gateway's s3.request line of one request (written just after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in (cluster.root / "gateway.log").read_text().splitlines()
                 if request_id in line and '"s3.request"' in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def _formats(cluster: MiniCluster) -> dict[int, int]:
    db = sqlite3.connect(cluster.root / "meta.db")
    try:
        return dict(db.execute("SELECT format, count(*) FROM chunks GROUP BY format").fetchall())
    finally:
        db.close()


def test_format_1_objects_read_back_after_the_switch(cluster: MiniCluster, bucket: str) -> None:
    big = os.urandom(3 * MiB + 12345)          # 4 chunks of the cluster's 1 MiB
    small = os.urandom(2000)                   # inline in the metadata
    before = _formats(cluster)
    cluster.restart_gateway(storage_format=1)
    try:
        s3 = cluster.boto3_client()
        s3.put_object(Bucket=bucket, Key="old-big", Body=big)
        s3.put_object(Bucket=bucket, Key="old-small", Body=small)
    finally:
        cluster.restart_gateway()
    after_v1 = _formats(cluster)
    assert after_v1.get(1, 0) - before.get(1, 0) == 5
    s3 = cluster.boto3_client()
    assert s3.get_object(Bucket=bucket, Key="old-big")["Body"].read() == big
    assert s3.get_object(Bucket=bucket, Key="old-small")["Body"].read() == small
    for first, last in [(0, 99), (MiB - 10, MiB + 10), (3 * MiB, len(big) - 1)]:
        got = s3.get_object(Bucket=bucket, Key="old-big", Range=f"bytes={first}-{last}")
        assert got["Body"].read() == big[first : last + 1]
    assert s3.get_object(Bucket=bucket, Key="old-small", Range="bytes=5-9")["Body"].read() == small[5:10]
    # new data is format 2; the same bytes again are deduplicated onto the format-1 chunks
    s3.put_object(Bucket=bucket, Key="new-big", Body=big[::-1])
    s3.put_object(Bucket=bucket, Key="same-big", Body=big)
    after = _formats(cluster)
    assert after.get(2, 0) - after_v1.get(2, 0) == 4 and after.get(1, 0) == after_v1[1]
    assert s3.get_object(Bucket=bucket, Key="same-big")["Body"].read() == big
    # a 100-byte range: the whole 1 MiB chunk from the nodes in format 1, one segment in format 2
    old = s3.get_object(Bucket=bucket, Key="old-big", Range="bytes=2000000-2000099")
    new = s3.get_object(Bucket=bucket, Key="new-big", Range="bytes=2000000-2000099")
    assert old["Body"].read() == big[2_000_000:2_000_100]
    assert new["Body"].read() == big[::-1][2_000_000:2_000_100]
    (old_log,) = _request_logs(cluster, old["ResponseMetadata"]["RequestId"])
    (new_log,) = _request_logs(cluster, new["ResponseMetadata"]["RequestId"])
    assert old_log["node_bytes_in"] >= MiB and old_log["ranged_chunks"] == 0
    assert new_log["node_bytes_in"] == 65_552 and new_log["ranged_chunks"] == 1
