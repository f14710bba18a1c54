"""list_objects on the queries directly: byte order, prefixes, delimiters, markers, pagination."""

from __future__ import annotations

from tests.coordinator.helpers import expect, open_meta, setup_tenant
from tests.coordinator.listing import many_keys, seed, walk

ODD_KEYS = ["a", "B", "a/b", "a-", "a0", "é", "\u00ff", "\U0001f600", "Z", "a/b/c", "zz", "~", "\u4e2d"]


async def test_binary_order(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await seed(meta.db, "bkt", key.tenant_id, ODD_KEYS)
        res = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 1000)
        assert [e.key for e in res.contents] == sorted(ODD_KEYS, key=lambda k: k.encode())
        assert not res.is_truncated and res.next_marker is None


async def test_many_keys_paginate(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        keys = many_keys()
        await seed(meta.db, "bkt", key.tenant_id, keys)
        got, prefixes, pages = await walk(meta, key.tenant_id, "bkt", "", None, 1000)
        assert got == sorted(keys) and prefixes == [] and pages == 3
        got, prefixes, pages = await walk(meta, key.tenant_id, "bkt", "", None, 333)
        assert got == sorted(keys) and pages == 8
        got, prefixes, pages = await walk(meta, key.tenant_id, "bkt", "", "/", 7)
        assert prefixes == [f"dir{d:02d}/" for d in range(20)]
        assert got == [f"top{t:03d}.txt" for t in range(500)]
        got, prefixes, _ = await walk(meta, key.tenant_id, "bkt", "dir07/", "/", 30)
        assert got == [f"dir07/file{f:03d}" for f in range(100)] and prefixes == []
        got, prefixes, _ = await walk(meta, key.tenant_id, "bkt", "dir0", "/", 1000)
        assert got == [] and prefixes == [f"dir{d:02d}/" for d in range(10)]
        # a delimiter other than "/": group by the first "e" after the prefix
        res = await meta.list_objects(key.tenant_id, "bkt", "dir05/", "e", None, 1000)
        assert res.common_prefixes == ["dir05/file"] and res.contents == []


async def test_markers_and_limits(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await seed(meta.db, "bkt", key.tenant_id, ["a/1", "a/2", "b", "c/1", "d"])
        res = await meta.list_objects(key.tenant_id, "bkt", "", "/", None, 2)
        assert res.common_prefixes == ["a/"] and [e.key for e in res.contents] == ["b"]
        assert res.is_truncated and res.next_marker == "b"
        res = await meta.list_objects(key.tenant_id, "bkt", "", "/", "b", 1)
        assert res.common_prefixes == ["c/"] and res.is_truncated and res.next_marker == "c/"
        res = await meta.list_objects(key.tenant_id, "bkt", "", "/", "c/", 5)  # the prefix is not repeated
        assert res.common_prefixes == [] and [e.key for e in res.contents] == ["d"] and not res.is_truncated
        res = await meta.list_objects(key.tenant_id, "bkt", "", None, "a/1", 1000)  # strictly after
        assert [e.key for e in res.contents] == ["a/2", "b", "c/1", "d"]
        res = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 0)
        assert res.contents == [] and res.common_prefixes == [] and not res.is_truncated
        res = await meta.list_objects(key.tenant_id, "bkt", "", None, None, 5)  # exactly max_keys left
        assert len(res.contents) == 5 and not res.is_truncated
        res = await meta.list_objects(key.tenant_id, "bkt", "x", None, None, 5)
        assert res.contents == [] and not res.is_truncated
        res = await meta.list_objects(key.tenant_id, "bkt", "c", None, "a", 5)  # marker before the prefix
        assert [e.key for e in res.contents] == ["c/1"]
        await expect("InvalidArgument", meta.list_objects(key.tenant_id, "bkt", "", None, None, -1))
        await expect("NoSuchBucket", meta.list_objects(key.tenant_id, "nobkt", "", None, None, 5))


async def test_delimiter_skips_whole_prefixes(database_url):
    """A common prefix costs one query, not one row per key beneath it."""
    import sqlalchemy as sa

    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        keys = [f"d{d:02d}/{f:04d}" for d in range(10) for f in range(1500)]
        await seed(meta.db, "bkt", key.tenant_id, keys)
        fetched = []

        def count(conn, cursor, statement, params, context, executemany):
            if statement.lstrip().startswith("SELECT") and "object_versions" in statement:
                fetched.append(statement)

        for engine in meta.db.sync_engines:
            sa.event.listen(engine, "before_cursor_execute", count)
        res = await meta.list_objects(key.tenant_id, "bkt", "", "/", None, 1000)
        for engine in meta.db.sync_engines:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert res.common_prefixes == [f"d{d:02d}/" for d in range(10)] and not res.is_truncated
        assert 0 < len(fetched) <= 12  # one per prefix plus the final empty probe
