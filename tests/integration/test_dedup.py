"""Content dedup: the same bytes are stored once, however many objects name them."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from tests.integration.metadata import chunk_refcounts
from tests.integration.nodes import cluster_secret, node_json

MiB = 1 << 20


def total_shards(cluster) -> int:
    secret = cluster_secret(cluster.data_dir)
    nodes = cluster.info["nodes"]
    return sum(node_json(secret, n, "GET", "/health")["shard_count"] for n in nodes)


def test_fifty_concurrent_puts_of_one_body_store_one_copy(cluster, s3, bucket):
    body = os.urandom(20 * MiB)  # 8 + 8 + 4 MiB: three chunks
    before = total_shards(cluster)

    def put(i: int) -> str:
        return s3.put_object(Bucket=bucket, Key=f"same/{i:02d}", Body=body)["ETag"]

    with ThreadPoolExecutor(50) as pool:
        etags = set(pool.map(put, range(50)))
    assert len(etags) == 1
    assert total_shards(cluster) - before == 3 * 14, "the 3 chunks must be stored exactly once"
    counts = chunk_refcounts(cluster)
    assert sorted(counts.values()) == [50, 50, 50]

    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"same/{i:02d}"} for i in range(49)]})
    assert sorted(chunk_refcounts(cluster).values()) == [1, 1, 1]
    assert s3.get_object(Bucket=bucket, Key="same/49")["Body"].read() == body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["same/49"]


def test_small_objects_live_in_metadata_larger_ones_on_nodes(cluster, s3, bucket):
    before = total_shards(cluster)
    small = os.urandom(4096)
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    assert total_shards(cluster) == before, "a 4 KiB object must not be erasure coded onto nodes"
    s3.copy_object(Bucket=bucket, Key="small-copy", CopySource={"Bucket": bucket, "Key": "small"})
    s3.delete_object(Bucket=bucket, Key="small")
    assert s3.get_object(Bucket=bucket, Key="small-copy")["Body"].read() == small
    assert s3.get_object(Bucket=bucket, Key="small-copy", Range="bytes=10-19")["Body"].read() == small[10:20]

    bigger = os.urandom(40 << 10)
    s3.put_object(Bucket=bucket, Key="bigger", Body=bigger)
    assert total_shards(cluster) == before + 14
    assert s3.get_object(Bucket=bucket, Key="bigger")["Body"].read() == bigger
