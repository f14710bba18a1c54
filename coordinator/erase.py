"""GDPR erasure of a user (`shardbox admin user erase`): everything of theirs goes, but shared
bytes only lose a reference.

Removed: every object version the user wrote (current and noncurrent; their chunks are
unreferenced, so deduplicated bytes another object still names stay, and GC collects the
rest after its grace period), their upload sessions (reservations released), the buckets
they own that are empty afterwards (their drive among them), their access keys, web
sessions and API tokens, their login counters, and the user row (with its password hash).
The user's drive goes whole: every version in it (whoever wrote it), its files and folders
(names are personal data too), the share links of those files or made by the user (with
their download records), and grants on them or to the user. The audit keeps its
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
from coordinator.records import DRIVE_BUCKET_PREFIX
from coordinator.schema import (
    access_keys,
    audit,
    auth_tokens,
    buckets,
    files,
    grants,
    login_attempts,
    object_versions,
    share_link_downloads,
    share_links,
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
        drive = DRIVE_BUCKET_PREFIX + uid
        counts = {
            "versions": 0,
            "bytes": 0,
            "uploads": 0,
            "buckets": 0,
            "files": 0,
            "share_links": 0,
            "grants": 0,
            "keys": 0,
            "tokens": 0,
            "audit_rows": 0,
        }
        targets: set[str] = set()

        # Object versions, in batches (a user may own millions).
        while True:

            async def batch(conn: AsyncConnection) -> int:
                rows = (
                    await conn.execute(
                        sa.select(object_versions)
                        .where(sa.or_(_ov.owner_id == uid, _ov.bucket == drive))
                        .limit(BATCH)
                    )
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
                    sa.or_(upload_sessions.c.owner_id == uid, upload_sessions.c.bucket == drive)
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
            targets.update(await self._erase_drive(conn, uid, counts))
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


    async def _erase_drive(self, conn: AsyncConnection, uid: str, counts: dict[str, Any]) -> list[str]:
        """The product's rows of the user: their files and folders, the links on them or made
        by the user (downloads first), grants on them or to the user. Returns the link ids (audit
        targets of their downloads)."""
        mine = sa.select(files.c.file_id).where(files.c.owner_id == uid).scalar_subquery()
        _l = share_links.c
        theirs = sa.or_(_l.owner_id == uid, _l.file_id.in_(mine))
        link_ids = [r.link_id for r in await conn.execute(sa.select(_l.link_id).where(theirs))]
        _d = share_link_downloads.c
        for i in range(0, len(link_ids), BATCH):
            await conn.execute(sa.delete(share_link_downloads).where(_d.link_id.in_(link_ids[i : i + BATCH])))
        counts["share_links"] = (await conn.execute(sa.delete(share_links).where(theirs))).rowcount or 0
        result = await conn.execute(
            sa.delete(grants).where(sa.or_(grants.c.grantee_id == uid, grants.c.file_id.in_(mine)))
        )
        counts["grants"] = result.rowcount or 0
        counts["files"] = (await conn.execute(sa.delete(files).where(files.c.owner_id == uid))).rowcount or 0
        return link_ids


async def _first(conn: AsyncConnection, stmt: sa.Select) -> Any:
    return (await conn.execute(stmt)).first()


async def _all(conn: AsyncConnection, stmt: sa.Select) -> list[Any]:
    return list((await conn.execute(stmt)).all())
