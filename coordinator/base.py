"""Shared state and lookups for the query mixins that make up `coordinator.service.Metadata`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import clock
from coordinator.db import Database, fast_read
from coordinator.errors import error
from coordinator.names import chunk_key
from coordinator.schema import buckets, object_versions

MIN_PART_SIZE = 5 << 20
MAX_PART_NUMBER = 10000

_ov = object_versions.c
# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
BUCKET_ROW = fast_read(sa.select(buckets).where(buckets.c.name == sa.bindparam("bucket")))
_LATEST = sa.select(object_versions).where(
    _ov.bucket == sa.bindparam("bucket"), _ov.key == sa.bindparam("key"), _ov.is_latest
)
LATEST_LIVE = fast_read(_LATEST.where(_ov.status != "deleted"))
# The row occupying the key, whatever its status, locked: it is about to be replaced.
LATEST_LOCKED = {"sqlite": _LATEST, "postgresql": _LATEST.with_for_update()}


def no_such_bucket(name: str) -> Exception:
    """The one answer for a bucket that does not exist or belongs to another tenant."""
    return error("NoSuchBucket", f"the bucket {name!r} does not exist")


class QueryBase:
    """Holds the database handle and coordinator settings the queries need."""

    def __init__(
        self,
        db: Database,
        *,
        node_down_after_s: float = 30.0,
        upload_expiry_s: float = 7 * 86400.0,
        dedup_scope: str = "tenant",
        default_quota_bytes: int = 1 << 50,
        gc_grace_s: float = 86400.0,
        scan_new_objects: bool = False,
        node_repair_after_s: float = 600.0,
        tier_min_bytes: int = 128 << 10,
    ) -> None:
        self.db = db
        self.gc_grace_s = gc_grace_s
        self.scan_new_objects = scan_new_objects
        self.node_down_after_s = node_down_after_s
        self.upload_expiry_s = upload_expiry_s
        self.dedup_scope = dedup_scope
        self.default_quota_bytes = default_quota_bytes
        self.node_repair_after_s = node_repair_after_s
        self.tier_min_bytes = tier_min_bytes

    now = staticmethod(clock.now)

    def initial_status(self) -> str:
        """The status a new version starts in: `scanning` until a worker's scan decides, when
        new objects are scanned; else `ready` (coordinator/scans.py has the whole rule)."""
        return "scanning" if self.scan_new_objects else "ready"

    def scope(self, tenant_id: str) -> str:
        return "global" if self.dedup_scope == "global" else tenant_id

    def chunk_key(self, tenant_id: str, sha256: str) -> str:
        return chunk_key(self.scope(tenant_id), sha256)

    async def bucket_row(self, conn: AsyncConnection, tenant_id: str, name: str) -> Any:
        """The bucket if it exists and belongs to tenant_id; NoSuchBucket otherwise.

        Another tenant's bucket answers exactly as a missing one (same error, same query),
        so bucket names cannot be enumerated across tenants; only CreateBucket tells that
        a (global) name is taken."""
        row = (await conn.execute(BUCKET_ROW, {"bucket": name})).first()
        if row is None or row.tenant_id != tenant_id:
            raise no_such_bucket(name)
        return row

    async def latest_row(self, conn: AsyncConnection, bucket: str, key: str, *, lock: bool = False) -> Any:
        stmt = LATEST_LOCKED[self.db.dialect] if lock else LATEST_LIVE
        return (await conn.execute(stmt, {"bucket": bucket, "key": key})).first()
