"""Scan state in the metadata: the status rule, recording a scan once, quarantine naming the
earlier downloaders, rescans, the per-bucket gate and the pipeline's backlog figures."""

from __future__ import annotations

import pytest

from coordinator.records import CoordinatorError, Download
from coordinator.schema import outbox
from tests.coordinator.helpers import open_meta, put_object, register_nodes, setup_tenant


async def test_new_objects_wait_for_their_scan_only_when_scanning_is_on(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        assert (await put_object(meta, key, "bkt", "plain", [b"x" * 100])).status == "ready"
    async with open_meta(database_url, scan_new_objects=True) as meta:
        obj = await put_object(meta, key, "bkt", "scanned", [b"y" * 100])
        assert obj.status == "scanning"
        got = await meta.get_object(key.tenant_id, "bkt", "scanned")
        assert (got.status, got.scan_result, got.owner_id) == ("scanning", None, key.user_id)
        copy = await meta.copy_object(
            key.tenant_id, key.user_id, "bkt", "scanned", "bkt", "copy", False, None, {}, {}
        )
        assert copy.status == "scanning"  # same bytes, same wait


async def test_a_scan_is_recorded_once_and_only_from_the_status_it_leaves(database_url):
    async with open_meta(database_url, scan_new_objects=True) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        obj = await put_object(meta, key, "bkt", "k", [b"z" * 100])
        assert await meta.record_scan(obj.version_id, "ready", "clean", "builtin", ["scanning"]) is True
        # the same event handled again (its worker died before acknowledging it): no change
        assert (
            await meta.record_scan(obj.version_id, "quarantined", "infected: X", "builtin", ["scanning"])
            is False
        )
        got = await meta.get_object(key.tenant_id, "bkt", "k")
        assert (got.status, got.scan_result) == ("ready", "clean")
        assert await meta.record_scan("no-such-version", "ready", "clean", "builtin", ["scanning"]) is False
        with pytest.raises(CoordinatorError) as info:
            await meta.record_scan(obj.version_id, "deleted", "?", "builtin", ["ready"])
        assert info.value.code == "InvalidArgument"
        scans = [e for e in await meta.object_audit("bkt", "k") if e.action == "object.scan"]
        assert [(e.detail["result"], e.detail["previous"]) for e in scans] == [("clean", "scanning")]


async def test_quarantine_names_who_downloaded_the_version_before(database_url):
    async with open_meta(database_url, scan_new_objects=True) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        bob = await setup_tenant(meta, user="bob", bucket=None)
        obj = await put_object(meta, key, "bkt", "setup.exe", [b"payload" * 100])
        other = await put_object(meta, key, "bkt", "other", [b"other" * 100])
        await meta.record_downloads(
            [
                Download(obj.version_id, "bkt", "setup.exe", key.user_id, "192.0.2.10", at=1000.0),
                Download(obj.version_id, "bkt", "setup.exe", bob.user_id, "198.51.100.7", at=1001.0),
                Download(
                    obj.version_id, "bkt", "setup.exe", "link:L1", "203.0.113.9", at=1002.0, via="share"
                ),
                Download(other.version_id, "bkt", "other", bob.user_id, "198.51.100.7", at=1003.0),
            ]
        )
        assert await meta.record_scan(
            obj.version_id,
            "quarantined",
            "infected: Eicar-Test-Signature",
            "clamd ClamAV 1.4.6",
            ["scanning"],
        )
        got = await meta.get_object(key.tenant_id, "bkt", "setup.exe")
        assert (got.status, got.scan_result) == ("quarantined", "infected: Eicar-Test-Signature")
        (q,) = [e for e in await meta.object_audit("bkt", "setup.exe") if e.action == "object.quarantine"]
        assert q.detail["downloads"] == 3 and q.detail["owner_id"] == key.user_id
        assert [(d["actor"], d["client_addr"], d["at"], d["via"]) for d in q.detail["downloaders"]] == [
            (key.user_id, "192.0.2.10", 1000.0, "download"),
            (bob.user_id, "198.51.100.7", 1001.0, "download"),
            ("link:L1", "203.0.113.9", 1002.0, "share link"),
        ]

        async def events(conn):
            return [
                (r.event_type, r.payload) for r in await conn.execute(outbox.select().order_by(outbox.c.id))
            ]

        quarantined = [p for t, p in await meta.db.read(events) if t == "object.quarantined"]
        assert [(p["key"], p["owner_id"], p["downloads"]) for p in quarantined] == [
            ("setup.exe", key.user_id, 3)
        ]
        with pytest.raises(CoordinatorError) as info:
            await meta.record_downloads([Download(obj.version_id, "bkt", "k", "a", via="carrier pigeon")])
        assert info.value.code == "InvalidArgument"


async def test_rescan_goes_over_ready_versions_since_a_date_and_late_positives_quarantine(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        objs = [await put_object(meta, key, "bkt", f"k{i}", [f"data {i}".encode() * 50]) for i in range(5)]
        assert await meta.next_rescan_items() is None
        job = await meta.request_rescan(since=None, actor="ops")
        batch = await meta.next_rescan_items(limit=3)
        assert batch.rescan.id == job.id and len(batch.items) == 3
        ordered = sorted(o.version_id for o in objs)
        assert [i.version_id for i in batch.items] == ordered[:3]
        late = next(o for o in objs if o.version_id == ordered[1])
        assert await meta.record_scan(late.version_id, "quarantined", "infected: Late", "builtin", ["ready"])
        await meta.advance_rescan(job.id, batch.items[-1].version_id, scanned=3, found=1)
        rest = await meta.next_rescan_items(limit=10)
        assert [i.version_id for i in rest.items] == ordered[3:]
        await meta.advance_rescan(job.id, rest.items[-1].version_id, scanned=2, found=0)
        done = await meta.next_rescan_items(limit=10)
        assert done.items == []
        await meta.advance_rescan(job.id, done.rescan.cursor, 0, 0, finished=True)
        assert await meta.next_rescan_items() is None
        (info,) = await meta.list_rescans()
        assert (info.scanned, info.found, info.requested_by) == (5, 1, "ops") and info.finished_at is not None
        future = await meta.request_rescan(since=objs[-1].last_modified + 3600)
        assert (await meta.next_rescan_items()).items == [] and future.since > 0


async def test_bucket_gate_and_backlog_figures(database_url):
    async with open_meta(database_url, scan_new_objects=True, gc_grace_s=100.0) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        assert (await meta.get_bucket(key.tenant_id, "bkt")).scan_gate is False
        assert (await meta.set_bucket_scan_gate("bkt", True)).scan_gate is True
        assert (await meta.get_bucket(key.tenant_id, "bkt")).scan_gate is True
        with pytest.raises(CoordinatorError) as info:
            await meta.set_bucket_scan_gate("nope", True)
        assert info.value.code == "NoSuchBucket"
        await put_object(meta, key, "bkt", "a", [b"a" * 100])
        await put_object(meta, key, "bkt", "b", [b"b" * 100])
        await meta.delete_object(key.tenant_id, "bkt", "b")
        status = await meta.pipeline_status()
        assert (status.scanning, status.gc_chunks, status.gc_due_chunks, status.parked_events) == (1, 1, 0, 0)
        assert status.outbox_pending == 3  # two finalized, one deleted
