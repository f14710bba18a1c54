"""Lifecycle rules and restores on the queries, with the clock the pass is given."""

from __future__ import annotations

import os

from coordinator.records import LifecycleRule, LifecycleTransition, ShardMove
from coordinator.schema import chunk_shards, chunks, repair_queue
from tests.coordinator.helpers import (
    expect,
    health_doc,
    open_meta,
    put_object,
    register_nodes,
    rows,
    setup_tenant,
)

DAY = 86400.0


async def cluster_with_cold_pool(meta) -> None:
    await register_nodes(meta, 14)
    for i in range(14, 28):
        doc = health_doc(i, pool="cold")
        doc.pop("volumes"), doc.pop("garbage_bytes"), doc.pop("last_scrub")
        await meta.heartbeat(**doc, storage_class="COLD")


async def work_off_moves(meta) -> set[str]:
    """What a repair worker does for pure moves: copy each shard to its target (here: record it)."""
    nodes = set()
    while tasks := await meta.claim_repairs("w", limit=64):
        for task in tasks:
            where = {s.index: s.node_id for s in task.shards}
            moves = [ShardMove(t.index, where[t.index], t.node_id, "c") for t in task.targets]
            nodes |= {t.node_id for t in task.targets}
            await meta.complete_repair(task.chunk_key, "w", moves, [], [])
    return nodes


async def test_transition_restore_and_restore_expiry_follow_the_clock(database_url):
    async with open_meta(database_url) as meta:
        await cluster_with_cold_pool(meta)
        key = await setup_tenant(meta)
        t0 = meta.now()
        big = await put_object(meta, key, "bkt", "big", [os.urandom(200 << 10)])
        await put_object(meta, key, "bkt", "small", [os.urandom(64 << 10)])  # under tier_min_bytes
        await meta.put_bucket_lifecycle(
            key.tenant_id,
            "bkt",
            [LifecycleRule(id="archive", transitions=[LifecycleTransition(30, "GLACIER")])],
        )
        rules = await meta.get_bucket_lifecycle(key.tenant_id, "bkt")
        assert rules[0].id == "archive" and rules[0].transitions == [LifecycleTransition(30, "GLACIER")]

        assert (await meta.lifecycle_step(t0 + 29 * DAY)).transitioned == 0
        report = await meta.lifecycle_step(t0 + 31 * DAY)
        assert report.transitioned == 1
        info = await meta.get_object(key.tenant_id, "bkt", "big")
        assert (info.storage_class, info.restore) == ("GLACIER", None)
        assert (await meta.get_object(key.tenant_id, "bkt", "small")).storage_class == "STANDARD"
        assert {r.tier for r in await rows(meta, chunks) if r.size == 200 << 10} == {"COLD"}
        assert len(await rows(meta, repair_queue)) == 14
        moved_to = await work_off_moves(meta)
        assert {int(n.split("-")[1]) >= 14 for n in moved_to} == {True}  # the COLD pool
        big_key = (await meta.get_object(key.tenant_id, "bkt", "big", with_chunks=True)).chunks[0].chunk_key
        placed = {r.node_id for r in await rows(meta, chunk_shards) if r.chunk_key == big_key}
        assert len(placed) == 14 and all(int(n.split("-")[1]) >= 14 for n in placed)

        await expect("InvalidObjectState", meta.restore_object(key.tenant_id, "bkt", "small", 1))
        assert await meta.restore_object(key.tenant_id, "bkt", "big", 2) == "started"
        await expect("RestoreAlreadyInProgress", meta.restore_object(key.tenant_id, "bkt", "big", 2))
        assert (await meta.get_object(key.tenant_id, "bkt", "big")).restore == "ongoing"
        t1 = t0 + 32 * DAY
        assert (await meta.lifecycle_step(t1)).restores_done == 0  # still moving
        moved_back = await work_off_moves(meta)
        assert {int(n.split("-")[1]) < 14 for n in moved_back} == {True}  # STANDARD again
        assert (await meta.lifecycle_step(t1)).restores_done == 1
        info = await meta.get_object(key.tenant_id, "bkt", "big")
        assert (info.restore, info.restore_expires_at) == ("done", t1 + 2 * DAY)
        assert await meta.restore_object(key.tenant_id, "bkt", "big", 1) == "done"  # keeps the later expiry

        assert (await meta.lifecycle_step(t1 + 2 * DAY - 1)).restores_expired == 0
        assert (await meta.lifecycle_step(t1 + 2 * DAY)).restores_expired == 1
        info = await meta.get_object(key.tenant_id, "bkt", "big")
        assert (info.storage_class, info.restore) == ("GLACIER", None)
        assert {int(n.split("-")[1]) >= 14 for n in await work_off_moves(meta)} == {True}
        assert big.version_id == info.version_id


async def test_expiration_prefix_size_filters_and_multipart_abort(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 14)
        key = await setup_tenant(meta)
        t0 = meta.now()
        for name in ("tmp/a", "tmp/b", "keep/a"):
            await put_object(meta, key, "bkt", name, [b"x" * 100])
        await put_object(meta, key, "bkt", "tmp/large", [b"y" * 5000])
        up = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "tmp/mp", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        await meta.put_bucket_lifecycle(
            key.tenant_id,
            "bkt",
            [
                LifecycleRule(id="tmp", prefix="tmp/", size_less_than=1000, expiration_days=7),
                LifecycleRule(id="mpu", abort_multipart_days=3),
            ],
        )
        report = await meta.lifecycle_step(t0 + 8 * DAY)
        assert (report.expired, report.aborted_uploads) == (2, 1)
        listing = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 100)
        assert [e.key for e in listing.contents] == ["keep/a", "tmp/large"]
        await expect("NoSuchUpload", meta.get_upload(key.tenant_id, "bkt", "tmp/mp", up.upload_id))


async def test_lifecycle_configuration_is_checked(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 14)
        key = await setup_tenant(meta)
        await expect("NoSuchLifecycleConfiguration", meta.get_bucket_lifecycle(key.tenant_id, "bkt"))
        for bad in (
            [LifecycleRule(id="nothing")],
            [LifecycleRule(id="a", expiration_days=0)],
            [LifecycleRule(id="a", transitions=[LifecycleTransition(5, "STANDARD")])],
            [LifecycleRule(id="a", transitions=[LifecycleTransition(5, "NOPE")])],
            [LifecycleRule(id="a", expiration_days=5, transitions=[LifecycleTransition(10, "GLACIER")])],
            [LifecycleRule(id="dup", expiration_days=1), LifecycleRule(id="dup", expiration_days=2)],
        ):
            await expect("InvalidArgument", meta.put_bucket_lifecycle(key.tenant_id, "bkt", bad))
        await expect(
            "NoSuchBucket",
            meta.put_bucket_lifecycle(key.tenant_id, "nope", [LifecycleRule(expiration_days=1)]),
        )
        await meta.put_bucket_lifecycle(key.tenant_id, "bkt", [LifecycleRule(expiration_days=1)])
        await meta.delete_bucket_lifecycle(key.tenant_id, "bkt")
        await expect("NoSuchLifecycleConfiguration", meta.get_bucket_lifecycle(key.tenant_id, "bkt"))


async def test_writing_to_a_cold_class_sends_the_bytes_to_the_cold_pool(database_url):
    async with open_meta(database_url) as meta:
        await cluster_with_cold_pool(meta)
        key = await setup_tenant(meta)
        size = 300 << 10
        up = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "cold", "put", size, None, {}, {}, "DEEP_ARCHIVE", None
        )
        from tests.coordinator.helpers import chunk_refs, md5

        data = os.urandom(size)
        refs = await chunk_refs(meta, key.tenant_id, [data])
        info = await meta.finalize_put(up.upload_id, size, md5(data), refs, {})
        assert info.storage_class == "DEEP_ARCHIVE"
        assert {r.tier for r in await rows(meta, chunks)} == {"COLD"}
        assert all(int(n.split("-")[1]) >= 14 for n in await work_off_moves(meta))


async def test_noncurrent_versions_and_lone_delete_markers_expire(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 14)
        key = await setup_tenant(meta)
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        t0 = meta.now()
        for body in (b"v1", b"v2", b"v3"):
            await put_object(meta, key, "bkt", "doc", [body])
        await put_object(meta, key, "bkt", "gone", [b"x"])
        await meta.delete_object(key.tenant_id, "bkt", "gone")           # a delete marker on top
        await meta.put_bucket_lifecycle(key.tenant_id, "bkt", [
            LifecycleRule(id="old", noncurrent_days=10, newer_noncurrent_versions=1),
            LifecycleRule(id="markers", prefix="gone", noncurrent_days=10,
                          expired_object_delete_marker=True)])

        async def versions() -> list[tuple[str, bool, bool]]:
            got = await meta.list_object_versions(key.tenant_id, "bkt", "", None, None, None, 100)
            return [(v.key, v.is_latest, v.delete_marker) for v in got.versions]

        assert (await meta.lifecycle_step(t0 + 5 * DAY)).noncurrent_expired == 0
        report = await meta.lifecycle_step(t0 + 11 * DAY)
        # doc: v1 goes (v2 stays: the one newest noncurrent version "old" keeps); gone: its
        # version ("markers" keeps none), then the delete marker, left alone
        assert report.noncurrent_expired == 3
        assert await versions() == [("doc", True, False), ("doc", False, False)]
        assert (await meta.lifecycle_step(t0 + 11 * DAY)).noncurrent_expired == 0
        body = await meta.get_object(key.tenant_id, "bkt", "doc")
        assert body.size == 2
