"""The metadata queries, called directly on a fresh database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import time

import pytest

from coordinator.records import CoordinatorError, ObjectId
from coordinator.schema import audit, chunk_shards, chunks, outbox, repair_queue, tenants, upload_sessions
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


async def refcount(meta, chunk_key: str) -> int:
    (row,) = await rows(meta, chunks, chunks.c.chunk_key == chunk_key)
    return row.refcount


async def tenant_row(meta, tenant_id: str):
    (row,) = await rows(meta, tenants, tenants.c.tenant_id == tenant_id)
    return row


async def test_heartbeat_registers_and_marks_down(database_url):
    async with open_meta(database_url, node_down_after_s=30) as meta:
        await register_nodes(meta, 3, host="h1", rack="r1")
        nodes = await meta.list_nodes()
        assert [n.node_id for n in nodes] == ["node-00", "node-01", "node-02"]
        assert all(n.state == "up" and n.host == "h1" and n.rack == "r1" for n in nodes)
        assert nodes[0].address == "http://127.0.0.1:20000"
        meta.now = lambda: time.time() + 31  # the registry ages without new heartbeats
        assert {n.state for n in await meta.list_nodes()} == {"down"}
        assert (await meta.health())["nodes_down"] == 3


async def test_place_chunks_new_then_existing(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 16)
        key = await setup_tenant(meta)
        data = b"x" * 100
        (plan1,) = await meta.place_chunks(key.tenant_id, [(sha(data), 100)])
        (plan2,) = await meta.place_chunks(key.tenant_id, [(sha(data), 100)])
        assert not plan1.exists and len({s.node_id for s in plan1.shards}) == 14
        assert [s.index for s in plan1.shards] == list(range(14))
        assert [s.node_id for s in plan1.shards] == [s.node_id for s in plan2.shards]  # deterministic
        await put_object(meta, key, "bkt", "k", [data])
        (plan3,) = await meta.place_chunks(key.tenant_id, [(sha(data), 100)])
        assert plan3.exists and [s.node_id for s in plan3.shards] == [s.node_id for s in plan1.shards]
        assert all(s.checksum for s in plan3.shards)


async def test_place_chunks_on_fewer_up_nodes_leaves_the_last_indexes_unplaced(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta, 13)
        (plan,) = await meta.place_chunks("t", [(sha(b"a"), 1)])
        assert not plan.exists and [s.index for s in plan.shards] == list(range(13))
        assert len({s.node_id for s in plan.shards}) == 13
        await expect("InvalidArgument", meta.place_chunks("t", [("nothex", 1)]))


async def test_put_get_list_delete(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        pieces = [b"a" * 1000, b"b" * 500]
        info = await put_object(
            meta, key, "bkt", "dir/file.txt", pieces, content_type="text/plain", metadata={"color": "blue"}
        )
        assert info.size == 1500 and info.etag == f'"{md5(b"".join(pieces))}"' and info.status == "ready"
        got = await meta.get_object(key.tenant_id, "bkt", "dir/file.txt", with_chunks=True)
        assert got.version_id == info.version_id and got.metadata == {"color": "blue"}
        assert got.content_type == "text/plain"
        assert [c.offset for c in got.chunks] == [0, 1000] and [c.size for c in got.chunks] == [1000, 500]
        assert all(len(c.shards) == 14 and c.shards[0].address.startswith("http://") for c in got.chunks)
        plain = await meta.get_object(key.tenant_id, "bkt", "dir/file.txt")
        assert plain.chunks == []
        listing = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 1000)
        assert [e.key for e in listing.contents] == ["dir/file.txt"] and listing.contents[0].size == 1500
        assert (await tenant_row(meta, key.tenant_id)).used_bytes == 1500
        await meta.delete_object(key.tenant_id, "bkt", "dir/file.txt")
        await meta.delete_object(key.tenant_id, "bkt", "dir/file.txt")  # idempotent
        await expect("NoSuchKey", meta.get_object(key.tenant_id, "bkt", "dir/file.txt"))
        await expect("NoSuchBucket", meta.get_object(key.tenant_id, "nope", "dir/file.txt"))
        await expect("NoSuchBucket", meta.delete_object(key.tenant_id, "nope", "x"))
        t = await tenant_row(meta, key.tenant_id)
        assert (t.used_bytes, t.reserved_bytes) == (0, 0)
        for c in got.chunks:
            (row,) = await rows(meta, chunks, chunks.c.chunk_key == c.chunk_key)
            assert row.refcount == 0 and row.zero_since is not None
        events = [r.event_type for r in await rows(meta, outbox)]
        assert events.count("object.finalized") == 1 and events.count("object.deleted") == 1
        assert "chunk.unreferenced" not in events  # GC finds them by zero_since, not by events
        actions = [r.action for r in await rows(meta, audit)]
        assert "object.put" in actions and "object.delete" in actions


async def test_overwrite_replaces_version_and_moves_refs(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        first = await put_object(meta, key, "bkt", "k", [b"old" * 10, b"shared"])
        second = await put_object(meta, key, "bkt", "k", [b"new" * 20, b"shared"])
        assert second.version_id != first.version_id
        got = await meta.get_object(key.tenant_id, "bkt", "k", with_chunks=True)
        assert got.version_id == second.version_id and got.size == 66
        await expect("NoSuchVersion", meta.get_object(key.tenant_id, "bkt", "k", version_id=first.version_id))
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(b"old" * 10))) == 0
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(b"shared"))) == 1
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(b"new" * 20))) == 1
        assert (await tenant_row(meta, key.tenant_id)).used_bytes == 66


async def test_dedup_same_bytes_twice_and_scopes(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        alice = await setup_tenant(meta)
        bob = await setup_tenant(meta, user="bob", tenant="other", bucket="bob-bkt")
        data = b"same bytes"
        await put_object(meta, alice, "bkt", "a", [data])
        await put_object(meta, alice, "bkt", "b", [data, data])
        await put_object(meta, bob, "bob-bkt", "a", [data])
        ka, kb = meta.chunk_key(alice.tenant_id, sha(data)), meta.chunk_key(bob.tenant_id, sha(data))
        assert ka != kb  # per-tenant dedup scope
        assert await refcount(meta, ka) == 3 and await refcount(meta, kb) == 1
        assert len(await rows(meta, chunk_shards, chunk_shards.c.chunk_key == ka)) == 14
    # global scope: same chunk key for both tenants
    async with open_meta(database_url, dedup_scope="global") as meta:
        assert meta.chunk_key(alice.tenant_id, sha(data)) == meta.chunk_key(bob.tenant_id, sha(data))


async def test_concurrent_finalizes_of_one_chunk(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        data = b"popular chunk"
        await asyncio.gather(*(put_object(meta, key, "bkt", f"k{i}", [data]) for i in range(50)))
        ck = meta.chunk_key(key.tenant_id, sha(data))
        assert await refcount(meta, ck) == 50
        assert len(await rows(meta, chunk_shards, chunk_shards.c.chunk_key == ck)) == 14
        assert (await tenant_row(meta, key.tenant_id)).used_bytes == 50 * len(data)


async def test_concurrent_overwrites_of_one_key(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        await asyncio.gather(*(put_object(meta, key, "bkt", "same", [f"v{i}".encode()]) for i in range(20)))
        listing = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 100)
        assert [e.key for e in listing.contents] == ["same"]
        total = 0
        for i in range(20):
            total += await refcount(meta, meta.chunk_key(key.tenant_id, sha(f"v{i}".encode())))
        assert total == 1  # only the surviving version holds a reference
        assert (await tenant_row(meta, key.tenant_id)).used_bytes == listing.contents[0].size


async def test_quota(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta, quota_bytes=1000)
        u1 = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "a", "put", 600, None, {}, {}, "STANDARD", None
        )
        err = await expect(
            "QuotaExceeded",
            meta.begin_upload(
                key.tenant_id, key.user_id, "bkt", "b", "put", 500, None, {}, {}, "STANDARD", None
            ),
        )
        assert err.status == 403
        assert (await tenant_row(meta, key.tenant_id)).reserved_bytes == 600
        await meta.abort_upload(key.tenant_id, "bkt", u1.upload_id)  # releases the reservation
        await expect("NoSuchUpload", meta.abort_upload(key.tenant_id, "bkt", u1.upload_id))
        assert (await tenant_row(meta, key.tenant_id)).reserved_bytes == 0
        await put_object(meta, key, "bkt", "a", [b"x" * 900])
        await expect("QuotaExceeded", put_object(meta, key, "bkt", "b", [b"y" * 101]))
        await put_object(meta, key, "bkt", "a", [b"z" * 100])  # replacing frees the old size
        t = await tenant_row(meta, key.tenant_id)
        assert (t.used_bytes, t.reserved_bytes) == (100, 0)
        assert await rows(meta, upload_sessions) == []  # failed begin left nothing behind


async def test_finalize_size_over_reservation_checks_quota(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta, quota_bytes=100)
        up = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "a", "put", 0, None, {}, {}, "STANDARD", None
        )
        refs = await chunk_refs(meta, key.tenant_id, [b"q" * 150])
        await expect("QuotaExceeded", meta.finalize_put(up.upload_id, 150, md5(b"q" * 150), refs, {}))
        refs = await chunk_refs(meta, key.tenant_id, [b"q" * 50])
        info = await meta.finalize_put(up.upload_id, 50, md5(b"q" * 50), refs, {})
        assert info.size == 50 and (await tenant_row(meta, key.tenant_id)).used_bytes == 50


async def test_finalize_validation_leaves_no_state(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        up = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "a", "put", 10, None, {}, {}, "STANDARD", None
        )
        refs = await chunk_refs(meta, key.tenant_id, [b"0123456789"])
        await expect("InvalidArgument", meta.finalize_put(up.upload_id, 11, "e", refs, {}))  # size mismatch
        refs[0].chunk_key = "f" * 64
        await expect("InvalidArgument", meta.finalize_put(up.upload_id, 10, "e", refs, {}))  # wrong key
        await expect("NoSuchUpload", meta.finalize_put("nope", 10, "e", refs, {}))
        assert await rows(meta, chunks) == []
        await expect(
            "InvalidArgument",
            meta.begin_upload(
                key.tenant_id, key.user_id, "bkt", "", "put", 1, None, {}, {}, "STANDARD", None
            ),
        )
        await expect(
            "InvalidArgument",
            meta.begin_upload(
                key.tenant_id, key.user_id, "bkt", "k", "bogus", 1, None, {}, {}, "STANDARD", None
            ),
        )
        await expect(
            "NoSuchBucket",
            meta.begin_upload(
                key.tenant_id, key.user_id, "zzz", "k", "put", 1, None, {}, {}, "STANDARD", None
            ),
        )


async def test_write_shortfall_and_read_failures_queue_repairs(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        up = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "a", "put", 4, None, {}, {}, "STANDARD", None
        )
        refs = await chunk_refs(meta, key.tenant_id, [b"abcd"])
        refs[0].missing = [2, 13]
        await meta.finalize_put(up.upload_id, 4, md5(b"abcd"), refs, {})
        await meta.report_shard_failure(refs[0].chunk_key, 5, refs[0].shards[5].node_id, "checksum mismatch")
        await meta.report_shard_failure(refs[0].chunk_key, 5, refs[0].shards[5].node_id, "again")
        queued = sorted((r.idx, r.reason, r.node_id) for r in await rows(meta, repair_queue))
        assert queued == [
            (2, "write_shortfall", refs[0].shards[2].node_id),
            (5, "checksum mismatch", refs[0].shards[5].node_id),
            (13, "write_shortfall", refs[0].shards[13].node_id),
        ]
        await expect("InvalidArgument", meta.report_shard_failure(refs[0].chunk_key, 14, "n", "x"))


async def test_buckets(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        alice = await setup_tenant(meta, bucket=None)
        bob = await setup_tenant(meta, user="bob", tenant="other", bucket=None)
        b = await meta.create_bucket(alice.tenant_id, alice.user_id, "photos", "eu-west-1")
        assert b.region == "eu-west-1" and b.owner_id == alice.user_id
        err = await expect(
            "BucketAlreadyOwnedByYou",
            meta.create_bucket(alice.tenant_id, alice.user_id, "photos", "us-east-1"),
        )
        assert err.status == 409
        await expect(
            "BucketAlreadyExists", meta.create_bucket(bob.tenant_id, bob.user_id, "photos", "us-east-1")
        )
        for bad in (
            "ab",
            "Photos",
            "-abc",
            "abc-",
            "a" * 64,
            "a..b",
            "192.168.1.1",
            "has_underscore",
            "xn--abc",
        ):
            await expect("InvalidBucketName", meta.create_bucket(alice.tenant_id, alice.user_id, bad, "x"))
        await meta.create_bucket(alice.tenant_id, alice.user_id, "a.b-c", "us-east-1")
        assert [x.name for x in await meta.list_buckets(alice.tenant_id)] == ["a.b-c", "photos"]
        assert await meta.list_buckets(bob.tenant_id) == []
        await expect("NoSuchBucket", meta.get_bucket(bob.tenant_id, "photos"))
        await expect("NoSuchBucket", meta.get_bucket(bob.tenant_id, "nothing-here"))
        await put_object(meta, alice, "photos", "cat.jpg", [b"meow"])
        await expect("BucketNotEmpty", meta.delete_bucket(alice.tenant_id, "photos"))
        await meta.delete_object(alice.tenant_id, "photos", "cat.jpg")
        mp = await meta.begin_upload(
            alice.tenant_id, alice.user_id, "photos", "big", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        await expect("BucketNotEmpty", meta.delete_bucket(alice.tenant_id, "photos"))
        await meta.abort_upload(alice.tenant_id, "photos", mp.upload_id)
        await meta.begin_upload(
            alice.tenant_id, alice.user_id, "photos", "p", "put", 7, None, {}, {}, "STANDARD", None
        )
        await meta.delete_bucket(alice.tenant_id, "photos")  # a pending single PUT does not block
        assert (await tenant_row(meta, alice.tenant_id)).reserved_bytes == 0
        await expect("NoSuchBucket", meta.delete_bucket(alice.tenant_id, "photos"))
        await meta.create_bucket(bob.tenant_id, bob.user_id, "photos", "us-east-1")  # the name is free again


async def test_copy_object(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        await meta.create_bucket(key.tenant_id, key.user_id, "dst", "us-east-1")
        src = await put_object(
            meta, key, "bkt", "src", [b"one", b"two"], content_type="text/plain", metadata={"a": "1"}
        )
        copy = await meta.copy_object(
            key.tenant_id, key.user_id, "bkt", "src", "dst", "copy", False, None, {}, {}
        )
        assert copy.etag == src.etag and copy.size == 6 and copy.metadata == {"a": "1"}
        assert copy.content_type == "text/plain" and copy.version_id != src.version_id
        repl = await meta.copy_object(
            key.tenant_id,
            key.user_id,
            "bkt",
            "src",
            "dst",
            "repl",
            True,
            "image/png",
            {"b": "2"},
            {"cache-control": "no-cache"},
        )
        assert repl.metadata == {"b": "2"} and repl.content_type == "image/png"
        assert repl.headers == {"cache-control": "no-cache"}
        for piece in (b"one", b"two"):
            assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(piece))) == 3
        got = await meta.get_object(key.tenant_id, "dst", "copy", with_chunks=True)
        assert [c.size for c in got.chunks] == [3, 3]
        await expect(
            "NoSuchKey",
            meta.copy_object(key.tenant_id, key.user_id, "bkt", "missing", "dst", "x", False, None, {}, {}),
        )
        await expect(
            "NoSuchBucket",
            meta.copy_object(key.tenant_id, key.user_id, "bkt", "src", "nobucket", "x", False, None, {}, {}),
        )
        await expect(
            "InvalidRequest",
            meta.copy_object(key.tenant_id, key.user_id, "bkt", "src", "bkt", "src", False, None, {}, {}),
        )
        # copying onto itself with new metadata replaces the version, references stay balanced
        await meta.copy_object(
            key.tenant_id, key.user_id, "bkt", "src", "bkt", "src", True, None, {"c": "3"}, {}
        )
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(b"one"))) == 3
        assert (await tenant_row(meta, key.tenant_id)).used_bytes == 18


async def test_delete_objects(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        for name in ("a", "b", "c"):
            await put_object(meta, key, "bkt", name, [name.encode()])
        objs = [ObjectId("a"), ObjectId("c"), ObjectId("missing")]
        results = await meta.delete_objects(key.tenant_id, "bkt", objs)
        assert [(r.key, r.deleted) for r in results] == [("a", True), ("c", True), ("missing", True)]
        listing = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 10)
        assert [e.key for e in listing.contents] == ["b"]
        await expect("InvalidRequest", meta.delete_objects(key.tenant_id, "bkt", [ObjectId("k")] * 1001))
        await expect("NoSuchBucket", meta.delete_objects(key.tenant_id, "nobucket", [ObjectId("a")]))


async def test_identity_and_admin(database_url):
    async with open_meta(database_url) as meta:
        first = await meta.ensure_admin()
        again = await meta.ensure_admin()
        assert first == again and first.is_admin and first.user_name == "admin"
        assert len(first.access_key) == 20 and first.access_key.isupper() and first.access_key.isalnum()
        assert len(first.secret_key) == 40
        assert await meta.get_key(first.access_key) == first
        err = await expect("InvalidAccessKeyId", meta.get_key("AKIANOTAREALKEY00000"))
        assert err.status == 403
        t = await meta.create_tenant("small", 1234)
        assert t["quota_bytes"] == 1234 and t["used_bytes"] == 0
        await expect("AlreadyExists", meta.create_tenant("small"))
        u = await meta.create_user("brand-new", "carol")  # creates the tenant
        assert u["tenant_name"] == "brand-new"
        await expect("AlreadyExists", meta.create_user("small", "carol"))
        await expect("NoSuchUser", meta.create_key("nobody"))
        k = await meta.create_key("carol")
        assert not k.is_admin and k.tenant_id == u["tenant_id"]
        users = {x["name"]: x for x in await meta.list_users()}
        assert set(users) == {"admin", "carol"} and users["carol"]["access_keys"] == [k.access_key]
        assert users["admin"]["is_admin"] and users["admin"]["tenant_name"] == "default"
        assert (await meta.set_quota("small", 99))["quota_bytes"] == 99
        actions = {r.action for r in await rows(meta, audit)}
        assert {"tenant.create", "user.create", "key.create", "tenant.quota"} <= actions


async def test_touch_records_last_access(database_url):
    from coordinator.schema import object_versions

    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        obj = await put_object(meta, key, "bkt", "k", [b"data"])
        other = await put_object(meta, key, "bkt", "k2", [b"more"])
        # Duplicates and a gone version in one batch are fine.
        await meta.touch_objects([obj.version_id, "0" * 32, obj.version_id])
        (row,) = await rows(meta, object_versions, object_versions.c.version_id == obj.version_id)
        assert row.last_access is not None and abs(row.last_access - time.time()) < 60
        (untouched,) = await rows(meta, object_versions, object_versions.c.version_id == other.version_id)
        assert untouched.last_access is None
        first = row.last_access
        await meta.touch_objects([obj.version_id, other.version_id])  # within the granularity: unchanged
        (row,) = await rows(meta, object_versions, object_versions.c.version_id == obj.version_id)
        assert row.last_access == first
        (row,) = await rows(meta, object_versions, object_versions.c.version_id == other.version_id)
        assert row.last_access is not None
        await meta.touch_objects([])
        # More versions than one UPDATE binds (the statement is split), none of them present.
        await meta.touch_objects([f"{i:032x}" for i in range(1200)])
        with pytest.raises(CoordinatorError, match="at most"):
            await meta.touch_objects(["0" * 32] * 10_001)


async def test_reads_see_one_snapshot_while_a_key_is_overwritten(database_url):
    """A version row and its manifest always agree, even mid-overwrite."""
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        await put_object(meta, key, "bkt", "k", [b"start"])
        done = asyncio.Event()

        async def writer():
            for i in range(40):
                pieces = [bytes([65 + i % 26]) * (10 + i)] * (1 + i % 3)
                await put_object(meta, key, "bkt", "k", pieces)
            done.set()

        async def reader():
            reads = 0
            while not done.is_set() or reads == 0:
                obj = await meta.get_object(key.tenant_id, "bkt", "k", with_chunks=True)
                assert sum(c.size for c in obj.chunks) == obj.size, obj
                assert [c.offset for c in obj.chunks] == [
                    sum(c.size for c in obj.chunks[:i]) for i in range(len(obj.chunks))
                ]
                reads += 1
            return reads

        _, *reads = await asyncio.gather(writer(), reader(), reader())
        assert all(n > 0 for n in reads)
