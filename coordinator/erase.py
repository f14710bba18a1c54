"""GDPR erasure of a user (`shardbox admin user erase`): everything of theirs goes, but shared
bytes only lose a reference.

Removed: every object version the user wrote (current and noncurrent; their chunks are
unreferenced, so deduplicated bytes another object still names stay, and GC collects the
rest after its grace period), their upload sessions (reservations released), the buckets
they own that are empty afterwards (their drive among them), their access keys, web
sessions and API tokens, their login counters, and the user row (with its password hash).
A product file is an object version in the user's drive bucket, so files and their versions
go with the versions above; share links and grants (product tables still to come) must be
deleted here too when they exist. The audit keeps its
rows but loses what identifies the person: rows by or about the user get actor `erased`,
target `erased` and no detail or client address; one tombstone row `user.erased` records
that an erasure happened and how much it removed, under the user's opaque id only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.lifecycle import LifecycleQueries
from coordinator.schema import (
    access_keys,
    audit,
    auth_tokens,
    buckets,
    login_attempts,
    object_versions,
    upload_sessions,
    users,
)

_ov = object_versions.c
BATCH = 200


class EraseQueries(LifecycleQueries):
    async def erase_user(self, user_name: str) -> dict[str, Any]:
        user = await self.db.read(
            lambda conn: _first(conn, sa.select(users).where(users.c.name == user_name))
        )
        if user is None:
            raise error("NoSuchUser", f"user {user_name!r} does not exist")
        uid, tenant_id = user.user_id, user.tenant_id
        counts = {
            "versions": 0,
            "bytes": 0,
            "uploads": 0,
            "buckets": 0,
            "keys": 0,
            "tokens": 0,
            "audit_rows": 0,
        }
        targets: set[str] = set()

        # Object versions, in batches (a user may own millions).
        while True:

            async def batch(conn: AsyncConnection) -> int:
                rows = (
                    await conn.execute(sa.select(object_versions).where(_ov.owner_id == uid).limit(BATCH))
                ).all()
                for row in rows:
                    # As DELETE ?versionId: references, quota, and the key's latest version follow.
                    await self.delete_version(
                        conn, row.bucket, "admin", row.key, "null" if row.null_version else row.version_id
                    )
                    counts["bytes"] += row.size if not row.delete_marker else 0
                    targets.add(f"{row.bucket}/{row.key}")
                return len(rows)

            n = await self.db.write(batch)
            counts["versions"] += n
            if n < BATCH:
                break

        sessions = await self.db.read(
            lambda conn: _all(
                conn,
                sa.select(upload_sessions.c.upload_id, upload_sessions.c.bucket, upload_sessions.c.key).where(
                    upload_sessions.c.owner_id == uid
                ),
            )
        )
        for s in sessions:
            try:
                await self.abort_upload(tenant_id, s.bucket, s.upload_id)
                counts["uploads"] += 1
                targets.add(f"{s.bucket}/{s.key}")
            except Exception:  # completed or aborted meanwhile
                pass

        async def rest(conn: AsyncConnection) -> None:
            owned = (await conn.execute(sa.select(buckets.c.name).where(buckets.c.owner_id == uid))).all()
            for b in owned:
                left = (
                    await conn.execute(sa.select(_ov.version_id).where(_ov.bucket == b.name).limit(1))
                ).first()
                busy = (
                    await conn.execute(
                        sa.select(upload_sessions.c.upload_id)
                        .where(upload_sessions.c.bucket == b.name)
                        .limit(1)
                    )
                ).first()
                if left is None and busy is None:
                    await conn.execute(sa.delete(buckets).where(buckets.c.name == b.name))
                    counts["buckets"] += 1
            result = await conn.execute(sa.delete(access_keys).where(access_keys.c.user_id == uid))
            counts["keys"] = result.rowcount or 0
            result = await conn.execute(sa.delete(auth_tokens).where(auth_tokens.c.user_id == uid))
            counts["tokens"] = result.rowcount or 0
            # Login counters name the user and their addresses.
            await conn.execute(
                sa.delete(login_attempts).where(
                    login_attempts.c.key.startswith(f"p:{user_name}|", autoescape=True)
                )
            )
            await conn.execute(sa.delete(users).where(users.c.user_id == uid))
            a = audit.c
            about = sa.or_(
                a.actor.in_([uid, user_name]),
                a.target == user_name,
                a.target.in_(sorted(targets)) if targets else sa.false(),
            )
            result = await conn.execute(
                sa.update(audit)
                .where(about)
                .values(actor="erased", target="erased", detail={}, client_addr=None)
            )
            counts["audit_rows"] = result.rowcount or 0
            await record_audit(conn, "admin", "user.erased", uid, dict(counts))

        await self.db.write(rest)
        return {"user_id": uid, **counts}


async def _first(conn: AsyncConnection, stmt: sa.Select) -> Any:
    return (await conn.execute(stmt)).first()


async def _all(conn: AsyncConnection, stmt: sa.Select) -> list[Any]:
    return list((await conn.execute(stmt)).all())
