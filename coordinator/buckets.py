"""Buckets: globally unique names, owned by one tenant."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import quota
from coordinator.base import BUCKET_ROW, QueryBase
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.names import check_acl, check_bucket_name
from coordinator.records import DRIVE_BUCKET_PREFIX, BucketInfo
from coordinator.schema import buckets, object_versions, upload_parts, upload_sessions

_b = buckets.c


def _info(row: Any) -> BucketInfo:
    return BucketInfo(
        name=row.name,
        tenant_id=row.tenant_id,
        owner_id=row.owner_id,
        created_at=row.created_at,
        region=row.region,
        versioning=row.versioning,
        acl=row.acl,
        cors=row.cors,
        scan_gate=bool(row.scan_gate),
    )


VERSIONING_STATES = ("Enabled", "Suspended")


class BucketQueries(QueryBase):
    async def create_bucket(
        self, tenant_id: str, owner_id: str, name: str, region: str, acl: str | None = None
    ) -> BucketInfo:
        check_bucket_name(name)
        acl = check_acl(acl)

        async def tx(conn: AsyncConnection) -> BucketInfo:
            now = self.now()
            stmt = self.db.insert(buckets).values(
                name=name,
                tenant_id=tenant_id,
                owner_id=owner_id,
                region=region or "us-east-1",
                created_at=now,
                acl=acl,
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
                acl=acl,
            )

        return await self.db.write(tx)

    async def get_bucket(self, tenant_id: str, name: str) -> BucketInfo:
        return _info(await self.db.read(lambda conn: self.bucket_row(conn, tenant_id, name)))

    async def list_buckets(self, tenant_id: str) -> list[BucketInfo]:
        async def q(conn: AsyncConnection) -> list[Any]:
            return list(
                (
                    await conn.execute(sa.select(buckets).where(
                        _b.tenant_id == tenant_id,
                        sa.not_(_b.name.startswith(DRIVE_BUCKET_PREFIX, autoescape=True)),
                    ).order_by(_b.name))
                ).all()
            )

        return [_info(r) for r in await self.db.read(q)]

    async def delete_bucket(self, tenant_id: str, name: str) -> None:
        """Only an empty bucket (no version, no delete marker, no multipart upload in progress) can go."""

        async def tx(conn: AsyncConnection) -> None:
            await self.bucket_row(conn, tenant_id, name)
            ov, us = object_versions.c, upload_sessions.c
            if (
                await conn.execute(sa.select(ov.version_id).where(ov.bucket == name).limit(1))
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

    async def set_bucket_versioning(self, tenant_id: str, name: str, status: str) -> BucketInfo:
        """Enabled or Suspended (a bucket never returns to never-versioned); writes already under
        way keep the state they started with."""
        if status not in VERSIONING_STATES:
            raise error("InvalidArgument", f"versioning status must be one of {VERSIONING_STATES}")
        return await self._set(tenant_id, name, "bucket.versioning", versioning=status)

    async def set_bucket_acl(self, tenant_id: str, name: str, acl: str) -> BucketInfo:
        """A canned ACL: private, or public-read (anyone may list the bucket without signing)."""
        return await self._set(tenant_id, name, "bucket.acl", acl=check_acl(acl))

    async def set_bucket_cors(
        self, tenant_id: str, name: str, rules: list[dict[str, Any]] | None
    ) -> BucketInfo:
        """The bucket's CORS rules as the gateway parsed them (gateway/s3/cors.py); None: none."""
        if rules is not None and not rules:
            raise error("InvalidArgument", "a CORS configuration needs at least one rule")
        return await self._set(tenant_id, name, "bucket.cors", cors=rules)

    async def _set(self, tenant_id: str, name: str, action: str, **values: Any) -> BucketInfo:
        async def tx(conn: AsyncConnection) -> BucketInfo:
            await self.bucket_row(conn, tenant_id, name)
            await conn.execute(sa.update(buckets).where(_b.name == name).values(**values))
            detail = {k: v for k, v in values.items() if k != "cors"}
            await record_audit(conn, tenant_id, action, name, detail)
            return _info(await self.bucket_row(conn, tenant_id, name))

        return await self.db.write(tx)

    async def find_bucket(self, name: str) -> BucketInfo:
        """The bucket whoever owns it, for requests without credentials (public-read ACLs, CORS
        preflights, browser POST uploads): the gateway answers them only as the bucket's ACL
        and CORS rules allow, never revealing anything else about it. NoSuchBucket."""

        async def q(conn: AsyncConnection) -> Any:
            return (await conn.execute(BUCKET_ROW, {"bucket": name})).first()

        row = await self.db.read(q)
        if row is None:
            raise error("NoSuchBucket", f"the bucket {name!r} does not exist")
        return _info(row)


def _taken(name: str, tenant_id: str, existing: Any) -> Exception:
    if existing is not None and existing.tenant_id == tenant_id:
        return error("BucketAlreadyOwnedByYou", f"you already own the bucket {name!r}")
    return error("BucketAlreadyExists", f"the bucket name {name!r} is not available")
