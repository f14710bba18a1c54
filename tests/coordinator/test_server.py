"""A real coordinator process on 127.0.0.1, driven through CoordinatorClient."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import aiohttp
import pytest
import sqlalchemy as sa

from config.cluster_auth import COORDINATOR, body_hash, sign_headers
from coordinator import client as client_mod
from coordinator.client import CoordinatorClient
from coordinator.db import Database
from coordinator.records import CoordinatorError, ObjectId
from coordinator.schema import audit, chunks
from tests.coordinator.conftest import SECRET
from tests.coordinator.helpers import chunk_refs, health_doc, md5, put_object, sha
from tests.coordinator.listing import many_keys, seed, walk

MIB = 1 << 20


async def expect(code: str, status: int, coro) -> None:
    with pytest.raises(CoordinatorError) as info:
        await coro
    assert (info.value.code, info.value.status) == (code, status), info.value


async def nodes_up(api: CoordinatorClient, count: int = 14, **kw) -> None:
    await asyncio.gather(*(api.heartbeat(health_doc(i, **kw)) for i in range(count)))


async def new_user(
    api: CoordinatorClient, user: str, tenant: str, bucket: str | None = "bkt", quota: int | None = None
):
    if quota is not None:
        await api.create_tenant(tenant, quota)
    await api.create_user(tenant, user)
    key = await api.create_key(user)
    if bucket:
        await api.create_bucket(key.tenant_id, key.user_id, bucket, "us-east-1")
    return key


async def raw_post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(url + path, data=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


def signed(path: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The cluster credential of a POST of `body` to the coordinator."""
    return sign_headers(secret, "POST", path, body_hash(body), target=COORDINATOR)


async def test_cluster_credential_and_bad_input(coordinator):
    url, path = coordinator.url, "/internal/v1/list_nodes"
    status, doc = await raw_post(url, path, b"{}", {})
    assert status == 401 and doc["error"]["code"] == "Unauthorized"
    status, doc = await raw_post(
        url, path, b"{}", signed(path, b"{}", "wrong-secret-wrong-secret")
    )
    assert status == 403
    node_signed = sign_headers(SECRET, "POST", path, body_hash(b"{}"), target="node-01")
    status, doc = await raw_post(url, path, b"{}", node_signed)
    assert status == 403 and doc["error"]["code"] == "AccessDenied"
    status, doc = await raw_post(url, path, b"{}", signed(path, b"{ }"))
    assert status == 400 and doc["error"]["code"] == "BadDigest"
    for body in (b"not json", b"[1, 2]"):
        status, doc = await raw_post(url, path, body, signed(path, body))
        assert status == 400 and doc["error"]["code"] == "InvalidRequest", doc
    bad = json.dumps({"tenant_id": 5, "name": "x"}).encode()
    p = "/internal/v1/get_bucket"
    status, doc = await raw_post(url, p, bad, signed(p, bad))
    assert (
        status == 400 and doc["error"]["code"] == "InvalidRequest" and "tenant_id" in doc["error"]["message"]
    )
    extra = json.dumps({"tenant_id": "t", "name": "x", "surprise": 1}).encode()
    status, doc = await raw_post(url, p, extra, signed(p, extra))
    assert status == 400 and "surprise" in doc["error"]["message"]
    p = "/internal/v1/no_such_call"
    status, doc = await raw_post(url, p, b"{}", signed(p, b"{}"))
    assert status == 404 and "error" in doc
    async with CoordinatorClient(coordinator.url, "wrong-secret-wrong-secret") as bad_client:
        await expect("AccessDenied", 403, bad_client.list_nodes())
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await expect("InvalidRequest", 400, api.finalize_put("x", 1, "e", [{"sha256": 1}], {}))
        # values no database can store are refused up front, never a 500
        await api.create_user("t", "u")
        key = await api.create_key("u")
        await api.create_bucket(key.tenant_id, key.user_id, "b-1", "r" * 500)  # long text is fine
        for content_type, size in (("text/\x00plain", 1), ("text/\ud800", 1), ("x" * 5000, 1 << 70)):
            with pytest.raises(CoordinatorError) as info:
                await api.begin_upload(
                    key.tenant_id,
                    key.user_id,
                    "b-1",
                    "k",
                    "put",
                    size,
                    content_type,
                    {},
                    {},
                    "STANDARD",
                    None,
                )
            assert info.value.status == 400, info.value
        await expect("InvalidArgument", 400, api.report_shard_failure("c" * 64, -1, "n", "x"))


async def test_heartbeat_list_nodes_health_and_request_id(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        assert (await api.health())["nodes_up"] == 0
        doc = health_doc(3, host="hostA", rack="r1", free=5 << 30)
        node = await api.heartbeat(doc)
        assert node.node_id == "node-03" and node.state == "up"
        (listed,) = await api.list_nodes()
        assert (listed.node_id, listed.address, listed.host, listed.rack) == (
            "node-03",
            "http://127.0.0.1:20003",
            "hostA",
            "r1",
        )
        assert listed.free_bytes == 5 << 30 and time.time() - listed.last_seen < 60
        health = await api.health()
        assert health["db"] == "ok" and health["nodes_up"] == 1 and health["nodes_down"] == 0
        token = client_mod.request_id.set("req-123")
        try:
            path = "/internal/v1/list_nodes"
            async with (
                aiohttp.ClientSession() as s,
                s.post(
                    coordinator.url + path,
                    data=b"{}",
                    headers={
                        **signed(path, b"{}"),
                        "X-Request-Id": "req-123",
                    },
                ) as r,
            ):
                assert r.headers["X-Request-Id"] == "req-123"
            await api.list_nodes()
        finally:
            client_mod.request_id.reset(token)
    assert "req-123" in coordinator.log.read_text()


async def test_node_goes_down_without_heartbeats(start_coordinator):
    proc = start_coordinator(node_down_after_s=1.0)
    async with CoordinatorClient(proc.url, SECRET) as api:
        await nodes_up(api, 14)
        key = await new_user(api, "u", "t")
        await api.place_chunks(key.tenant_id, [(sha(b"x"), 1)])
        await asyncio.sleep(1.6)
        assert {n.state for n in await api.list_nodes()} == {"down"}
        (plan,) = await api.place_chunks(key.tenant_id, [(sha(b"x"), 1)])
        assert plan.shards == []             # nowhere to put it: the writer refuses (503)
        await nodes_up(api, 14)  # heartbeats again: up again
        assert {n.state for n in await api.list_nodes()} == {"up"}


async def test_placement_through_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        # 28 nodes on 14 hosts in 2 racks
        await asyncio.gather(
            *(api.heartbeat(health_doc(i, host=f"h{i // 2}", rack=f"r{i % 2}")) for i in range(28))
        )
        key = await new_user(api, "u", "t")
        hosts = {n.node_id: n.host for n in await api.list_nodes()}
        racks = {n.node_id: n.rack for n in await api.list_nodes()}
        pieces = [f"chunk {i}".encode() for i in range(50)]
        plans = await api.place_chunks(key.tenant_id, [(sha(p), len(p)) for p in pieces])
        again = await api.place_chunks(key.tenant_id, [(sha(p), len(p)) for p in pieces])
        assert [[s.node_id for s in p.shards] for p in plans] == [
            [s.node_id for s in p.shards] for p in again
        ]
        for plan, piece in zip(plans, pieces, strict=True):
            assert plan.sha256 == sha(piece) and not plan.exists
            nodes = [s.node_id for s in plan.shards]
            assert len(set(nodes)) == 14 and [s.index for s in plan.shards] == list(range(14))
            assert len({hosts[n] for n in nodes}) == 14  # one shard per host
            assert Counter(racks[n] for n in nodes) == {"r0": 7, "r1": 7}
            assert all(s.address == f"http://127.0.0.1:{20000 + int(s.node_id[-2:])}" for s in plan.shards)


async def test_object_lifecycle(coordinator, database_url):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "alice", "acme")
        assert await api.get_key(key.access_key) == key
        data = [b"hello " * 1000, b"world"]
        up = await api.begin_upload(
            key.tenant_id,
            key.user_id,
            "bkt",
            "docs/a.txt",
            "put",
            6005,
            "text/plain",
            {"owner": "me"},
            {"cache-control": "max-age=60"},
            "STANDARD",
            "crc32",
        )
        assert up.kind == "put" and up.checksum_algorithm == "crc32"
        fetched = await api.get_upload(key.tenant_id, "bkt", "docs/a.txt", up.upload_id)
        assert fetched.upload_id == up.upload_id
        refs = await chunk_refs(api, key.tenant_id, data)
        token = client_mod.client_addr.set("203.0.113.9")
        try:
            obj = await api.finalize_put(up.upload_id, 6005, md5(b"".join(data)), refs, {"crc32": "abcd=="})
        finally:
            client_mod.client_addr.reset(token)
        assert obj.etag == f'"{md5(b"".join(data))}"' and obj.checksums == {"crc32": "abcd=="}
        got = await api.get_object(key.tenant_id, "bkt", "docs/a.txt", with_chunks=True)
        assert got.headers == {"cache-control": "max-age=60"} and got.metadata == {"owner": "me"}
        assert [(c.offset, c.size, len(c.shards)) for c in got.chunks] == [(0, 6000, 14), (6000, 5, 14)]
        assert got.chunks[0].shards[0].checksum == refs[0].shards[0].checksum
        await api.touch_objects([got.version_id])
        res = await api.list_objects(key.tenant_id, "bkt", "", "/", None, 10)
        assert res.common_prefixes == ["docs/"] and res.contents == []
        res = await api.list_objects(key.tenant_id, "bkt", "docs/", "/", None, 10)
        assert [(e.key, e.size, e.etag) for e in res.contents] == [("docs/a.txt", 6005, obj.etag)]
        copy = await api.copy_object(
            key.tenant_id, key.user_id, "bkt", "docs/a.txt", "bkt", "docs/b.txt", False, None, {}, {}
        )
        assert copy.size == 6005
        gone = [ObjectId("docs/a.txt"), ObjectId("nothing")]
        results = await api.delete_objects(key.tenant_id, "bkt", gone)
        assert [r.deleted for r in results] == [True, True]
        await api.delete_object(key.tenant_id, "bkt", "docs/b.txt")
        await api.delete_object(key.tenant_id, "bkt", "docs/b.txt")
        await expect("NoSuchKey", 404, api.get_object(key.tenant_id, "bkt", "docs/a.txt"))
        await expect("NoSuchBucket", 404, api.get_object(key.tenant_id, "zzz", "docs/a.txt"))
        await expect("InvalidAccessKeyId", 403, api.get_key("AKIAIOSFODNN7EXAMPLE"))
        # abort of a PUT session releases its reservation
        up = await api.begin_upload(
            key.tenant_id, key.user_id, "bkt", "x", "put", 100, None, {}, {}, "STANDARD", None
        )
        await api.abort_upload(key.tenant_id, "bkt", up.upload_id)
        tenant = await api.get_tenant("acme")
        assert (tenant["used_bytes"], tenant["reserved_bytes"]) == (0, 0)
    db = Database(database_url)
    try:

        async def q(conn):
            return (await conn.execute(sa.select(audit.c.action, audit.c.client_addr))).all()

        trail = await db.read(q)
    finally:
        await db.close()
    assert ("object.put", "203.0.113.9") in trail and ("object.delete", None) in trail


async def test_dedup_under_50_concurrent_finalizes(coordinator, database_url):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "alice", "acme")
        data = b"the same chunk for everybody"
        objs = await asyncio.gather(*(put_object(api, key, "bkt", f"copy-{i}", [data]) for i in range(50)))
        assert len({o.version_id for o in objs}) == 50
        (plan,) = await api.place_chunks(key.tenant_id, [(sha(data), len(data))])
        assert plan.exists
    db = Database(database_url)
    try:

        async def q(conn):
            return (await conn.execute(sa.select(chunks.c.refcount))).scalars().all()

        assert await db.read(q) == [50]
    finally:
        await db.close()


async def test_multipart_through_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "alice", "acme")
        up = await api.begin_upload(
            key.tenant_id, key.user_id, "bkt", "movie", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        parts = {1: [b"a" * (5 * MIB)], 2: [b"tiny"], 3: [b"end"]}
        infos = {}
        for n, pieces in parts.items():
            refs = await chunk_refs(api, key.tenant_id, pieces)
            size = sum(map(len, pieces))
            infos[n] = await api.put_part(
                key.tenant_id, "bkt", "movie", up.upload_id, n, size, md5(b"".join(pieces)), refs, {}
            )
        uid = up.upload_id
        await expect(
            "InvalidPartOrder",
            400,
            api.complete_upload(key.tenant_id, "bkt", "movie", uid, [(3, infos[3].etag), (1, infos[1].etag)]),
        )
        await expect(
            "InvalidPart", 400, api.complete_upload(key.tenant_id, "bkt", "movie", uid, [(1, infos[2].etag)])
        )
        await expect(
            "InvalidPart",
            400,
            api.complete_upload(key.tenant_id, "bkt", "movie", uid, [(1, infos[1].etag), (9, infos[3].etag)]),
        )
        await expect(
            "EntityTooSmall",
            400,
            api.complete_upload(
                key.tenant_id,
                "bkt",
                "movie",
                uid,
                [(1, infos[1].etag), (2, infos[2].etag), (3, infos[3].etag)],
            ),
        )
        await expect(
            "NoSuchUpload",
            404,
            api.complete_upload(key.tenant_id, "bkt", "movie", "f" * 32, [(1, infos[1].etag)]),
        )
        await expect("InvalidRequest", 400, api.complete_upload(key.tenant_id, "bkt", "movie", uid, []))
        listed = await api.list_uploads(key.tenant_id, "bkt", "", None, None, None, 10)
        assert [u.upload_id for u in listed.uploads] == [uid]
        plist = await api.list_parts(key.tenant_id, "bkt", "movie", uid, 2, 0)
        assert [p.part_number for p in plist.parts] == [1, 2] and plist.next_part_number_marker == 2
        await expect("BucketNotEmpty", 409, api.delete_bucket(key.tenant_id, "bkt"))
        obj = await api.complete_upload(
            key.tenant_id, "bkt", "movie", uid, [(1, infos[1].etag), (3, infos[3].etag)]
        )
        assert obj.size == 5 * MIB + 3 and obj.etag.endswith('-2"')
        assert [(p.part_number, p.offset) for p in obj.parts] == [(1, 0), (3, 5 * MIB)]
        got = await api.get_object(key.tenant_id, "bkt", "movie", with_chunks=True)
        assert [c.offset for c in got.chunks] == [0, 5 * MIB] and len(got.parts) == 2
        assert (await api.list_uploads(key.tenant_id, "bkt", "", None, None, None, 10)).uploads == []
        up2 = await api.begin_upload(
            key.tenant_id, key.user_id, "bkt", "other", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        await api.abort_upload(key.tenant_id, "bkt", up2.upload_id)
        await expect("NoSuchUpload", 404, api.abort_upload(key.tenant_id, "bkt", up2.upload_id))


async def test_quota_through_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "bob", "tiny", quota=1000)
        await put_object(api, key, "bkt", "a", [b"x" * 800])
        await expect(
            "QuotaExceeded",
            403,
            api.begin_upload(
                key.tenant_id, key.user_id, "bkt", "b", "put", 201, None, {}, {}, "STANDARD", None
            ),
        )
        up = await api.begin_upload(
            key.tenant_id, key.user_id, "bkt", "m", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        refs = await chunk_refs(api, key.tenant_id, [b"y" * 300])
        await expect(
            "QuotaExceeded",
            403,
            api.put_part(key.tenant_id, "bkt", "m", up.upload_id, 1, 300, md5(b"y" * 300), refs, {}),
        )
        tenant = await api.set_quota("tiny", 2000)
        assert tenant["used_bytes"] == 800
        await api.put_part(key.tenant_id, "bkt", "m", up.upload_id, 1, 300, md5(b"y" * 300), refs, {})
        assert (await api.get_tenant("tiny"))["reserved_bytes"] == 300


async def test_listing_2500_keys_through_api(coordinator, database_url):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        key = await new_user(api, "lister", "t")
        db = Database(database_url)
        try:
            await seed(db, "bkt", key.tenant_id, many_keys())
        finally:
            await db.close()
        got, prefixes, pages = await walk(api, key.tenant_id, "bkt", "", None, 1000)
        assert got == sorted(many_keys()) and pages == 3
        got, prefixes, pages = await walk(api, key.tenant_id, "bkt", "", "/", 50)
        assert prefixes == [f"dir{d:02d}/" for d in range(20)] and len(got) == 500 and pages == 11
        got, prefixes, _ = await walk(api, key.tenant_id, "bkt", "dir13/", "/", 40)
        assert got == [f"dir13/file{f:03d}" for f in range(100)]
        res = await api.list_objects(key.tenant_id, "bkt", "", "/", None, 0)
        assert res.contents == [] and not res.is_truncated


async def test_bucket_errors_through_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        alice = await new_user(api, "alice", "a", bucket=None)
        bob = await new_user(api, "bob", "b", bucket=None)
        await api.create_bucket(alice.tenant_id, alice.user_id, "shared-name", "us-east-1")
        await expect(
            "BucketAlreadyOwnedByYou",
            409,
            api.create_bucket(alice.tenant_id, alice.user_id, "shared-name", "us-east-1"),
        )
        await expect(
            "BucketAlreadyExists",
            409,
            api.create_bucket(bob.tenant_id, bob.user_id, "shared-name", "us-east-1"),
        )
        await expect(
            "InvalidBucketName", 400, api.create_bucket(alice.tenant_id, alice.user_id, "No_Good", "x")
        )
        await expect("NoSuchBucket", 404, api.get_bucket(alice.tenant_id, "absent"))
        assert (await api.get_bucket(alice.tenant_id, "shared-name")).owner_id == alice.user_id
        assert [b.name for b in await api.list_buckets(alice.tenant_id)] == ["shared-name"]
        await api.delete_bucket(alice.tenant_id, "shared-name")
        await expect("NoSuchBucket", 404, api.delete_bucket(alice.tenant_id, "shared-name"))


async def test_admin_ensure_admin_survives_restart(start_coordinator):
    first = start_coordinator()
    async with CoordinatorClient(first.url, SECRET) as api:
        admin = await api.ensure_admin()
        assert admin.is_admin and admin.user_name == "admin"
        assert await api.ensure_admin() == admin
        await api.create_user("team", "carol")
        key = await api.create_key("carol")
        users = {u["name"]: u for u in await api.list_users()}
        assert users["carol"]["access_keys"] == [key.access_key] and users["carol"]["tenant_name"] == "team"
        await expect("NoSuchUser", 404, api.create_key("nobody"))
        await expect("AlreadyExists", 409, api.create_user("team", "carol"))
    assert first.stop() == 0  # SIGTERM stops cleanly
    second = start_coordinator()  # same database: schema creation is idempotent
    async with CoordinatorClient(second.url, SECRET) as api:
        assert await api.ensure_admin() == admin
        assert (await api.get_key(key.access_key)).user_name == "carol"


async def test_unreachable_coordinator_is_503():
    from tests.util import free_port

    async with CoordinatorClient(f"http://127.0.0.1:{free_port()}", SECRET) as api:
        await expect("ServiceUnavailable", 503, api.list_nodes())


async def test_request_log_keeps_writes_and_errors_and_quiets_successful_lookups(coordinator):
    """The gateway logs each S3 request itself; the coordinator's line for a successful
    lookup made on its behalf would double the log volume of every GET."""
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "logger", "logtenant")
        obj = await put_object(api, key, "bkt", "k", [b"x" * 40])
        for rid, call in (
            ("rid-lookup", api.get_object(key.tenant_id, "bkt", "k")),
            ("rid-missing", api.get_object(key.tenant_id, "bkt", "nope")),
            ("rid-write", api.touch_objects([obj.version_id])),
        ):
            token = client_mod.request_id.set(rid)
            try:
                await call
            except CoordinatorError:
                pass
            finally:
                client_mod.request_id.reset(token)
    lines = [json.loads(line) for line in coordinator.log.read_text().splitlines() if line.startswith("{")]
    logged = {line.get("request_id") for line in lines if line.get("event") == "request"}
    assert "rid-write" in logged and "rid-missing" in logged
    assert "rid-lookup" not in logged
