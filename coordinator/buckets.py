"""Buckets: globally unique names, owned by one tenant."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import quota
from coordinator.base import QueryBase
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.names import check_bucket_name
from coordinator.records import BucketInfo
from coordinator.schema import buckets, object_versions, upload_parts, upload_sessions

_b = buckets.c


def _info(row: Any) -> BucketInfo:
    return BucketInfo(
        name=row.name,
        tenant_id=row.tenant_id,
        owner_id=row.owner_id,
        created_at=row.created_at,
        region=row.region,
    )


class BucketQueries(QueryBase):
    async def create_bucket(self, tenant_id: str, owner_id: str, name: str, region: str) -> BucketInfo:
        check_bucket_name(name)

        async def tx(conn: AsyncConnection) -> BucketInfo:
            now = self.now()
            stmt = self.db.insert(buckets).values(
                name=name,
                tenant_id=tenant_id,
                owner_id=owner_id,
                region=region or "us-east-1",
                created_at=now,
            )
            try:
                result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=[_b.name]))
            except sa.exc.IntegrityError:
                raise error("InvalidArgument", f"unknown tenant {tenant_id!r}") from None
            if result.rowcount == 0:  # the name is taken (possibly by a racing create just now)
                existing = (await conn.execute(sa.select(buckets).where(_b.name == name))).first()
                raise _taken(name, tenant_id, existing)
            await record_audit(conn, owner_id, "bucket.create", name, {"tenant_id": tenant_id}, at=now)
            return BucketInfo(
                name=name,
                tenant_id=tenant_id,
                owner_id=owner_id,
                created_at=now,
                region=region or "us-east-1",
            )

        return await self.db.write(tx)

    async def get_bucket(self, tenant_id: str, name: str) -> BucketInfo:
        return _info(await self.db.read(lambda conn: self.bucket_row(conn, tenant_id, name)))

    async def list_buckets(self, tenant_id: str) -> list[BucketInfo]:
        async def q(conn: AsyncConnection) -> list[Any]:
            return list(
                (
                    await conn.execute(sa.select(buckets).where(_b.tenant_id == tenant_id).order_by(_b.name))
                ).all()
            )

        return [_info(r) for r in await self.db.read(q)]

    async def delete_bucket(self, tenant_id: str, name: str) -> None:
        """Only an empty bucket (no live object, no multipart upload in progress) can go."""

        async def tx(conn: AsyncConnection) -> None:
            await self.bucket_row(conn, tenant_id, name)
            ov, us = object_versions.c, upload_sessions.c
            if (
                await conn.execute(sa.select(ov.version_id).where(ov.bucket == name, ov.is_latest).limit(1))
            ).first():
                raise error("BucketNotEmpty", f"the bucket {name!r} is not empty")
            if (
                await conn.execute(
                    sa.select(us.upload_id).where(us.bucket == name, us.kind == "multipart").limit(1)
                )
            ).first():
                raise error("BucketNotEmpty", f"the bucket {name!r} has multipart uploads in progress")
            # Single-PUT sessions still streaming into this bucket lose their reservation and fail.
            puts = (
                await conn.execute(
                    sa.select(us.upload_id, us.tenant_id, us.reserved_bytes).where(us.bucket == name)
                )
            ).all()
            for p in puts:
                await conn.execute(sa.delete(upload_parts).where(upload_parts.c.upload_id == p.upload_id))
                await conn.execute(sa.delete(upload_sessions).where(us.upload_id == p.upload_id))
                await quota.adjust(conn, p.tenant_id, reserved_delta=-p.reserved_bytes)
            try:
                await conn.execute(sa.delete(buckets).where(_b.name == name))
            except sa.exc.IntegrityError:
                raise error("BucketNotEmpty", f"the bucket {name!r} is not empty") from None
            await record_audit(conn, tenant_id, "bucket.delete", name, {"tenant_id": tenant_id})

        await self.db.write(tx)


def _taken(name: str, tenant_id: str, existing: Any) -> Exception:
    if existing is not None and existing.tenant_id == tenant_id:
        return error("BucketAlreadyOwnedByYou", f"you already own the bucket {name!r}")
    return error("BucketAlreadyExists", f"the bucket name {name!r} is not available")
