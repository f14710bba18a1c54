"""Garbage collection end to end on `shardbox up`: the nodes' disk usage drops back after
deletes and the grace period; chunks another object still references survive, and so does a
chunk referenced again during the grace period; the orphan shards of a killed upload are
found by reconciliation and collected. The coordinator's clock is moved, never waited for."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.client
import os
import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.integration import ops
from tests.integration.cluster import Cluster, start_cluster
from tests.integration.conftest import _database_url
from tests.integration.nodes import all_shards, cluster_secret, node_json
from tests.util import ControlledClock

MIB = 1 << 20
GRACE_S = 86400.0  # the default grace period
RECONCILE_S = 6 * 3600.0  # the default reconciliation interval


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple[Cluster, ControlledClock]]:
    root = tmp_path_factory.mktemp("gc")
    clock = ControlledClock(root / "clock")
    data = root / "data"
    data.mkdir()
    cluster = start_cluster(
        data, database_url=_database_url(request), args=("--scanner", "none"), env=clock.env()
    )
    try:
        yield cluster, clock
    finally:
        cluster.stop()


# tests/integration/ops.py's wait, with this module's patience (scans and GC rounds are slow).
wait_for = functools.partial(ops.wait_for, timeout=180.0, every=0.25)


def status(cluster: Cluster):
    async def go():
        async with cluster.coordinator() as api:
            return await api.pipeline_status()

    return asyncio.run(go())




def used_bytes(cluster: Cluster) -> int:
    secret = cluster_secret(cluster.data_dir)
    return sum(node_json(secret, n, "GET", "/health")["used_bytes"] for n in cluster.info["nodes"])


def shard_ids(cluster: Cluster) -> set[tuple[str, str]]:
    secret = cluster_secret(cluster.data_dir)
    return {(n["id"], s["id"]) for n in cluster.info["nodes"] for s in all_shards(secret, n)}


def placed_shards(cluster: Cluster, bucket: str, key: str) -> set[tuple[str, str]]:
    """(node id, shard id) of every shard the metadata places for the object's chunks."""

    async def go():
        async with cluster.coordinator() as api:
            tenant = (await api.get_tenant("default"))["tenant_id"]
            return await api.get_object(tenant, bucket, key, with_chunks=True)

    return {(s.node_id, f"{c.chunk_key}.{s.index}") for c in asyncio.run(go()).chunks for s in c.shards}


def sha256(s3, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    for piece in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB):
        digest.update(piece)
    return digest.hexdigest()


def test_disk_usage_drops_back_after_deletes_and_the_grace_period(env):
    cluster, clock = env
    s3 = cluster.s3()
    s3.create_bucket(Bucket="space")
    before = used_bytes(cluster)
    for i in range(3):
        s3.put_object(Bucket="space", Key=f"big-{i}", Body=os.urandom(40 * MIB))
    grown = used_bytes(cluster)
    assert grown - before > 3 * 40 * MIB * 1.3  # 10+4 shards: 1.4x the bytes
    for i in range(3):
        s3.delete_object(Bucket="space", Key=f"big-{i}")
    assert status(cluster).gc_chunks == 15
    cluster.advance_clock(clock, GRACE_S / 2)
    assert status(cluster).gc_due_chunks == 0  # within the grace nothing may go
    cluster.advance_clock(clock, GRACE_S / 2 + 1)
    wait_for("the chunks to be collected", lambda: status(cluster).gc_chunks == 0)
    wait_for("the space to come back", lambda: used_bytes(cluster) <= before + 2 * MIB)


def test_shared_and_re_referenced_chunks_survive_the_collection(env):
    cluster, clock = env
    s3 = cluster.s3()
    s3.create_bucket(Bucket="keep")
    shared, revived, gone = os.urandom(20 * MIB), os.urandom(12 * MIB), os.urandom(9 * MIB)
    s3.put_object(Bucket="keep", Key="original", Body=shared)
    s3.copy_object(Bucket="keep", Key="copy", CopySource={"Bucket": "keep", "Key": "original"})
    s3.put_object(Bucket="keep", Key="same-bytes", Body=shared)  # dedup: the same chunks again
    s3.put_object(Bucket="keep", Key="revived", Body=revived)
    s3.put_object(Bucket="keep", Key="gone", Body=gone)
    for key in ("original", "revived", "gone"):
        s3.delete_object(Bucket="keep", Key=key)
    cluster.advance_clock(clock, GRACE_S / 2)
    s3.put_object(Bucket="keep", Key="revived-again", Body=revived)  # referenced again within the grace
    cluster.advance_clock(clock, GRACE_S / 2 + 1)
    wait_for("the unreferenced chunks to be collected", lambda: status(cluster).gc_chunks == 0)
    for key, body in (("copy", shared), ("same-bytes", shared), ("revived-again", revived)):
        assert sha256(s3, "keep", key) == hashlib.sha256(body).hexdigest()
    s3.put_object(Bucket="keep", Key="gone-again", Body=gone)  # collected bytes are simply new again
    assert sha256(s3, "keep", "gone-again") == hashlib.sha256(gone).hexdigest()


def _killed_upload(cluster: Cluster, size: int, sent: int) -> None:
    """A PUT that stops after `sent` of its `size` bytes: the client dies mid-body."""
    s3 = cluster.s3()
    url = urllib.parse.urlsplit(
        s3.generate_presigned_url(
            "put_object", Params={"Bucket": "orphans", "Key": "killed.bin"}, ExpiresIn=600
        )
    )
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("PUT", f"{url.path}?{url.query}")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for _ in range(sent // MIB):
        conn.send(os.urandom(MIB))
    conn.sock.close()


def test_orphan_shards_of_a_killed_upload_are_collected(env):
    cluster, clock = env
    cluster.advance_clock(clock, 0)
    s3 = cluster.s3()
    s3.create_bucket(Bucket="orphans")
    body = os.urandom(17 * MIB)
    kept_digest = hashlib.sha256(body).hexdigest()
    s3.put_object(Bucket="orphans", Key="kept.bin", Body=body)
    kept = placed_shards(cluster, "orphans", "kept.bin")
    assert len({sid.rsplit(".", 1)[0] for _, sid in kept}) == 3
    # On the nodes: at once, or after a write shortfall under load (a node past the straggler
    # wait) once the repair worker has filled it in.
    wait_for("kept.bin's shards on their nodes", lambda: kept <= shard_ids(cluster))
    # Everything on the nodes now, kept.bin's shards and any the earlier tests' collection left
    # on a node that did not answer (reconciliation may collect those too, rightly).
    before = shard_ids(cluster)
    _killed_upload(cluster, 64 * MIB, 40 * MIB)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="orphans", Key="killed.bin")

    def settled() -> set | None:  # the gateway finishes the shard writes it had started
        first = shard_ids(cluster)
        time.sleep(0.5)
        return first if shard_ids(cluster) == first else None

    orphans = wait_for("the killed upload's writes to settle", settled) - before
    assert len(orphans) >= 14 * 2  # at least two chunks of 8 MiB had gone out whole
    cluster.advance_clock(clock, RECONCILE_S + 1)  # reconciliation is due: the orphans become candidates
    wait_for("reconciliation to note the orphans", lambda: status(cluster).gc_orphans >= len(orphans))
    assert orphans <= shard_ids(cluster)  # noted, not deleted: unreferenced for a grace period first
    cluster.advance_clock(clock, GRACE_S + 1)
    wait_for("the orphans to be deleted", lambda: not (orphans & shard_ids(cluster)), timeout=240)
    wait_for("the candidates to be forgotten", lambda: status(cluster).gc_orphans == 0)
    # the object that was written whole keeps every shard where the metadata places it
    assert placed_shards(cluster, "orphans", "kept.bin") <= shard_ids(cluster)
    assert sha256(s3, "orphans", "kept.bin") == kept_digest


def test_an_abandoned_multipart_upload_expires_and_releases_its_reservation(env):
    cluster, clock = env
    cluster.advance_clock(clock, 0)
    s3 = cluster.s3()
    s3.create_bucket(Bucket="abandoned")
    upload = s3.create_multipart_upload(Bucket="abandoned", Key="half.iso")["UploadId"]
    s3.upload_part(
        Bucket="abandoned", Key="half.iso", UploadId=upload, PartNumber=1, Body=os.urandom(6 * MIB)
    )

    async def tenant():
        async with cluster.coordinator() as api:
            return await api.get_tenant("default")

    assert asyncio.run(tenant())["reserved_bytes"] >= 6 * MIB
    cluster.advance_clock(clock, 7 * 86400 + 1)  # the default upload expiry: a week
    wait_for("the upload to expire", lambda: not s3.list_multipart_uploads(Bucket="abandoned").get("Uploads"))
    assert asyncio.run(tenant())["reserved_bytes"] == 0
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket="abandoned", Key="half.iso", UploadId=upload)
    # its part's chunk is unreferenced now: collected after the grace period like any other
    cluster.advance_clock(clock, GRACE_S + 1)
    wait_for("its chunk to be collected", lambda: status(cluster).gc_chunks == 0)
