"""Seeding many objects straight into the database, for listing tests (no chunks needed)."""

from __future__ import annotations

import time

from coordinator.db import Database
from coordinator.schema import object_versions


def version_row(bucket: str, key: str, tenant_id: str, i: int) -> dict:
    now = time.time()
    return {
        "version_id": f"{i:032x}",
        "bucket": bucket,
        "key": key,
        "tenant_id": tenant_id,
        "owner_id": "o",
        "size": len(key),
        "etag": f'"{i:032x}"',
        "content_type": None,
        "metadata": {},
        "headers": {},
        "storage_class": "STANDARD",
        "status": "ready",
        "checksums": {},
        "part_count": 0,
        "created_at": now,
        "last_modified": now,
        "last_access": None,
        "is_latest": True,
    }


async def seed(db: Database, bucket: str, tenant_id: str, keys: list[str]) -> None:
    async def tx(conn):
        await conn.execute(
            object_versions.insert(), [version_row(bucket, k, tenant_id, i) for i, k in enumerate(keys)]
        )

    await db.write(tx)


def many_keys() -> list[str]:
    """2,500 keys: 2,000 under 20 "directories" plus 500 at the top level."""
    keys = [f"dir{d:02d}/file{f:03d}" for d in range(20) for f in range(100)]
    keys += [f"top{t:03d}.txt" for t in range(500)]
    return keys


async def walk(api, tenant_id: str, bucket: str, prefix: str, delimiter: str | None, page: int):
    """List everything page by page; returns (keys, prefixes, pages)."""
    keys, prefixes, marker, pages = [], [], None, 0
    while True:
        res = await api.list_objects(tenant_id, bucket, prefix, delimiter, marker, page)
        pages += 1
        keys += [e.key for e in res.contents]
        prefixes += res.common_prefixes
        assert len(res.contents) + len(res.common_prefixes) <= page
        if not res.is_truncated:
            return keys, prefixes, pages
        assert res.next_marker
        marker = res.next_marker
        assert pages < 1000
