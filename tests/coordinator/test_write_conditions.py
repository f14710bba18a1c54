"""Conditional writes (If-None-Match: * / If-Match) judged inside the commit, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from coordinator.client import CoordinatorClient
from coordinator.records import CoordinatorError, WriteCondition
from coordinator.schema import object_versions
from tests.coordinator.conftest import SECRET
from tests.coordinator.helpers import chunk_refs, md5, open_meta, register_nodes, setup_tenant
from tests.coordinator.test_multipart import begin, big, upload_part
from tests.coordinator.test_put_object import expect, inline_ref, rows, used

CREATE_ONLY = WriteCondition(if_none_match=True)


async def put(api, key, name: str, data: bytes, condition: WriteCondition | None = None):
    return await api.put_object(key.tenant_id, key.user_id, "bkt", name, len(data), md5(data), None, {}, {},
                                "STANDARD", [inline_ref(key.tenant_id, data)], {}, condition)


async def test_racing_create_only_puts_have_one_winner(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        bodies = [f"writer {i}".encode() * 10 for i in range(8)]
        results = await asyncio.gather(*(put(meta, key, "lock", b, CREATE_ONLY) for b in bodies),
                                       return_exceptions=True)
        winners = [(b, r) for b, r in zip(bodies, results, strict=True) if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1, results
        assert all(isinstance(e, CoordinatorError) and (e.code, e.status) == ("PreconditionFailed", 412)
                   for e in losers), losers
        body, info = winners[0]
        assert (await meta.get_object(key.tenant_id, "bkt", "lock")).version_id == info.version_id
        # the refused writes left nothing: one version, the quota of one object
        assert len(await rows(meta, object_versions, object_versions.c.key == "lock")) == 1
        assert await used(meta, key.tenant_id) == (len(body), 0)
        # a plain PUT still replaces it; create-only still refuses
        await put(meta, key, "lock", b"replaced")
        await expect("PreconditionFailed", put(meta, key, "lock", b"again", CREATE_ONLY))
        # a deleted key can be created again
        await meta.delete_object(key.tenant_id, "bkt", "lock")
        await put(meta, key, "lock", b"new life", CREATE_ONLY)


async def test_if_match_replaces_only_the_version_it_names(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        first = await put(meta, key, "doc", b"v1")
        await expect("PreconditionFailed", put(meta, key, "doc", b"v2", WriteCondition(if_match='"0123"')))
        second = await put(meta, key, "doc", b"v2", WriteCondition(if_match=first.etag))
        # unquoted and upper case name the same ETag; "*" is any current version
        await expect("PreconditionFailed", put(meta, key, "doc", b"v3", WriteCondition(if_match=first.etag)))
        third = await put(meta, key, "doc", b"v3", WriteCondition(if_match=second.etag.strip('"').upper()))
        await put(meta, key, "doc", b"v4", WriteCondition(if_match="*"))
        await expect("NoSuchKey", put(meta, key, "absent", b"x", WriteCondition(if_match="*")))
        assert third.etag == f'"{md5(b"v3")}"'
        assert (await meta.get_object(key.tenant_id, "bkt", "doc")).etag == f'"{md5(b"v4")}"'


async def test_refused_finalize_and_complete_keep_their_sessions(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        await put(meta, key, "taken", b"occupied")
        # a one-go PUT through a session
        data = b"z" * 5000
        up = await meta.begin_upload(key.tenant_id, key.user_id, "bkt", "taken", "put", len(data), None,
                                     {}, {}, "STANDARD", None)
        refs = await chunk_refs(meta, key.tenant_id, [data])
        await expect("PreconditionFailed", meta.finalize_put(up.upload_id, len(data), md5(data), refs, {},
                                                             CREATE_ONLY))
        assert (await meta.get_object(key.tenant_id, "bkt", "taken")).etag == f'"{md5(b"occupied")}"'
        await meta.abort_upload(key.tenant_id, "bkt", up.upload_id)
        assert await used(meta, key.tenant_id) == (len(b"occupied"), 0)
        # a multipart upload: refused at complete, then completed without the condition
        mp = await begin(meta, key, name="taken")
        part = await upload_part(meta, key, mp.upload_id, 1, [big(b"p")], name="taken")
        await expect("PreconditionFailed", meta.complete_upload(key.tenant_id, "bkt", "taken", mp.upload_id,
                                                                [(1, part.etag)], CREATE_ONLY))
        obj = await meta.complete_upload(key.tenant_id, "bkt", "taken", mp.upload_id, [(1, part.etag)],
                                         WriteCondition(if_match=f'"{md5(b"occupied")}"'))
        assert obj.etag.endswith('-1"') and obj.size == len(big(b"p"))


async def test_conditions_travel_over_the_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        key = await setup_tenant(api, "u1", "t1", quota_bytes=10_000)
        info = await put(api, key, "k", b"one", CREATE_ONLY)
        err = await expect("PreconditionFailed", put(api, key, "k", b"two", CREATE_ONLY))
        assert err.status == 412
        await expect("PreconditionFailed", put(api, key, "k", b"two", WriteCondition(if_match='"beef"')))
        await put(api, key, "k", b"two", WriteCondition(if_match=info.etag))
