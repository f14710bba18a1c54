"""Garbage collection in the metadata: the grace period, the claim that no write may cross,
placement pinning what it hands out, orphan candidates and expired upload sessions. The
clock is moved by the test, never waited for."""

from __future__ import annotations

import pytest

from coordinator.schema import audit, chunks, gc_orphans, tenants
from tests.coordinator.helpers import (
    chunk_refs,
    expect,
    md5,
    open_meta,
    put_object,
    register_nodes,
    rows,
    setup_tenant,
    sha,
)
from tests.util import ControlledClock

GRACE = 86400.0


@pytest.fixture
def clock(tmp_path, monkeypatch) -> ControlledClock:
    return ControlledClock(tmp_path / "clock").install(monkeypatch)


async def test_unreferenced_chunks_wait_out_the_grace_then_no_write_may_take_them(database_url, clock):
    async with open_meta(database_url, gc_grace_s=GRACE) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        data = [b"chunk-a" * 500, b"chunk-b" * 500]
        await put_object(meta, key, "bkt", "k", data)
        await meta.delete_object(key.tenant_id, "bkt", "k")
        assert await meta.gc_claim_chunks("gc-1") == []  # within the grace period
        clock.advance(GRACE + 1)
        await register_nodes(meta)  # nodes heartbeat on the new clock
        claimed = await meta.gc_claim_chunks("gc-1", limit=10, lease_s=60)
        assert len(claimed) == 2 and all(len(c.shards) == 14 and c.shards[0].address for c in claimed)
        assert await meta.gc_claim_chunks("gc-2") == []  # held by gc-1
        # While GC deletes the shards, the same bytes can neither be placed nor committed.
        await expect("ServiceUnavailable", meta.place_chunks(key.tenant_id, [(sha(data[0]), len(data[0]))]))
        # a commit racing GC (placed before the claim) is refused rather than pointing at deleted shards
        upload = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "again", "put", 3500, None, {}, {}, "STANDARD", None
        )
        ref = (await chunk_refs(meta, key.tenant_id, [b"fresh" * 700]))[0]
        ref.sha256 = sha(data[0])
        ref.chunk_key = meta.chunk_key(key.tenant_id, sha(data[0]))
        assert ref.chunk_key in {c.chunk_key for c in claimed}
        ref.size, ref.enc_size = len(data[0]), len(data[0]) + 16
        await expect(
            "ServiceUnavailable", meta.finalize_put(upload.upload_id, len(data[0]), md5(data[0]), [ref], {})
        )
        # a worker that died mid-way: its claim runs out and another takes the chunks again
        clock.advance(61)
        again = await meta.gc_claim_chunks("gc-2", limit=10, lease_s=60)
        assert sorted(c.chunk_key for c in again) == sorted(c.chunk_key for c in claimed)
        assert await meta.gc_finish_chunks("gc-1", [c.chunk_key for c in claimed]) == 0  # no longer gc-1's
        assert await meta.gc_finish_chunks("gc-2", [c.chunk_key for c in claimed]) == 2
        assert await rows(meta, chunks) == []
        # collected: the same bytes are simply new now
        await register_nodes(meta)
        (plan,) = await meta.place_chunks(key.tenant_id, [(sha(data[0]), len(data[0]))])
        assert plan.exists is False and len(plan.shards) == 14
        assert (await put_object(meta, key, "bkt", "again", [data[0]])).size == len(data[0])


async def test_referenced_again_or_placed_again_during_the_grace_survives(database_url, clock):
    async with open_meta(database_url, gc_grace_s=GRACE) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        shared, alone, placed = b"shared" * 800, b"alone" * 800, b"placed" * 800
        await put_object(meta, key, "bkt", "a", [shared, alone])
        await put_object(meta, key, "bkt", "b", [shared])  # another object references it
        await put_object(meta, key, "bkt", "c", [placed])
        for k in ("a", "c"):
            await meta.delete_object(key.tenant_id, "bkt", k)
        clock.advance(GRACE / 2)
        await register_nodes(meta)
        await put_object(meta, key, "bkt", "a2", [alone])  # referenced again during the grace
        await meta.place_chunks(key.tenant_id, [(sha(placed), len(placed))])  # a write under way
        clock.advance(GRACE / 2 + 1)
        await register_nodes(meta)
        assert await meta.gc_claim_chunks("gc", limit=100) == []  # the placed one's grace restarted
        clock.advance(GRACE / 2)
        (only,) = await meta.gc_claim_chunks("gc", limit=100)  # its own grace over, it goes after all
        assert only.chunk_key == meta.chunk_key(key.tenant_id, sha(placed))
        survivors = {r.sha256: r.refcount for r in await rows(meta, chunks) if r.chunk_key != only.chunk_key}
        assert survivors == {sha(shared): 1, sha(alone): 1}


async def test_orphan_candidates_are_noted_forgotten_and_collected_after_the_grace(database_url, clock):
    async with open_meta(database_url, gc_grace_s=GRACE) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        obj = await put_object(meta, key, "bkt", "kept", [b"kept" * 300])
        got = await meta.get_object(key.tenant_id, "bkt", "kept", with_chunks=True)
        shard = got.chunks[0].shards[3]
        referenced = f"{got.chunks[0].chunk_key}.3"
        killed = [f"{'ab' * 32}.{i}" for i in range(3)]  # an upload killed before its commit
        other_node = f"{got.chunks[0].chunk_key}.3"  # the right shard on the wrong node
        assert obj.size > 0
        assert await meta.gc_note_shards(shard.node_id, [referenced, *killed, "not-ours"], "pass-1") == 3
        wrong = "node-13" if shard.node_id != "node-13" else "node-12"
        assert await meta.gc_note_shards(wrong, [other_node], "pass-1") == 1
        assert len(await rows(meta, gc_orphans)) == 4
        assert await meta.gc_claim_orphans("gc") == []  # not unreferenced for long enough yet
        # the next pass no longer sees one of them: forgotten
        assert await meta.gc_note_shards(shard.node_id, killed[:2], "pass-2") == 2
        assert await meta.gc_forget_orphans(shard.node_id, "pass-2") == 1
        # a write of the killed upload's chunk under way: placement forgets its candidates
        clock.advance(GRACE + 1)
        await register_nodes(meta)
        claimed = await meta.gc_claim_orphans("gc", limit=10)
        assert sorted(o.shard_id for o in claimed) == sorted([*killed[:2], other_node])
        assert all(o.address.startswith("http://") for o in claimed)
        assert await meta.gc_finish_orphans("gc", [o.id for o in claimed]) == 3
        assert await rows(meta, gc_orphans) == []


async def test_placement_forgets_candidates_and_refuses_while_they_are_deleted(database_url, clock):
    async with open_meta(database_url, gc_grace_s=GRACE) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        data = b"re-uploaded after a crash" * 100
        (plan,) = await meta.place_chunks(key.tenant_id, [(sha(data), len(data))])
        ids = [f"{plan.chunk_key}.{i}" for i in range(14)]
        await meta.gc_note_shards("node-00", ids[:2], "p1")
        await meta.place_chunks(key.tenant_id, [(sha(data), len(data))])  # the client tries again
        assert await rows(meta, gc_orphans) == []  # so nothing of it is collected
        await meta.gc_note_shards("node-00", ids[:2], "p2")
        clock.advance(GRACE + 1)
        await register_nodes(meta)
        assert len(await meta.gc_claim_orphans("gc")) == 2
        await expect("ServiceUnavailable", meta.place_chunks(key.tenant_id, [(sha(data), len(data))]))


async def test_expired_upload_sessions_release_references_and_reservations(database_url, clock):
    async with open_meta(database_url, gc_grace_s=GRACE, upload_expiry_s=7 * 86400.0) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        upload = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "big", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        part = b"p" * (5 << 20)
        refs = await chunk_refs(meta, key.tenant_id, [part])
        await meta.put_part(key.tenant_id, "bkt", "big", upload.upload_id, 1, len(part), md5(part), refs, {})
        (tenant,) = await rows(meta, tenants, tenants.c.tenant_id == key.tenant_id)
        assert tenant.reserved_bytes == len(part)
        assert await meta.expire_uploads() == 0
        clock.advance(7 * 86400 + 1)
        await register_nodes(meta)
        assert await meta.expire_uploads() == 1
        (tenant,) = await rows(meta, tenants, tenants.c.tenant_id == key.tenant_id)
        assert (tenant.reserved_bytes, tenant.used_bytes) == (0, 0)
        (chunk,) = await rows(meta, chunks)
        assert chunk.refcount == 0 and chunk.zero_since is not None
        await expect("NoSuchUpload", meta.list_parts(key.tenant_id, "bkt", "big", upload.upload_id, 10, 0))
        (row,) = await rows(meta, audit, audit.c.action == "upload.expire")
        assert (row.actor, row.detail["upload_id"]) == ("expiry", upload.upload_id)
        assert await meta.expire_uploads() == 0
