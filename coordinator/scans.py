"""Malware scan state: the status rule, scan results, quarantine, downloads, rescans.

The status rule (one place, `QueryBase.initial_status`): a new version is `scanning` when
the coordinator is configured to scan new objects (`[coordinator] scan_new_objects`, which
`shardbox up` sets whenever its worker runs a scanner), else `ready` at once. A worker's
scan moves it from `scanning` to `ready` (clean, or too large for the scanner under the
`ready` policy) or `quarantined` (`record_scan`, conditional on the status it leaves, so a
scan done twice changes nothing the second time). A rescan may move a `ready` version to
`quarantined` (a late positive).

Quarantine keeps the bytes (only admins may read them; gateways apply that rule), records
in the audit who downloaded the version before (the `object.download` / `share.download`
rows kept by version id: time, user or link, address), and emits `object.quarantined` so
the owner and operators are told. Share links of the quarantined version are revoked in
the same transaction (`revoke_links` below: the product's share links hook in there).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.base import QueryBase
from coordinator.errors import error
from coordinator.events import emit, record_audit
from coordinator.records import (
    AuditEntry,
    BucketInfo,
    Download,
    PipelineStatus,
    RescanBatch,
    RescanInfo,
    RescanItem,
)
from coordinator.schema import (
    audit,
    buckets,
    chunks,
    gc_orphans,
    object_versions,
    outbox,
    rescans,
    upload_sessions,
)

_ov = object_versions.c
_a = audit.c
_r = rescans.c
DOWNLOAD_ACTIONS = {"s3": "object.download", "share": "share.download", "api": "object.download"}
SCAN_STATUSES = ("ready", "quarantined")
MAX_RESULT_CHARS = 500
MAX_DOWNLOADS_BATCH = 10_000
MAX_DOWNLOADERS_LISTED = 1000
MAX_RESCAN_BATCH = 1000


def _rescan(row: Any) -> RescanInfo:
    return RescanInfo(
        id=row.id,
        since=row.since,
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        cursor=row.cursor,
        scanned=row.scanned,
        found=row.found,
        finished_at=row.finished_at,
    )


class ScanQueries(QueryBase):
    async def record_scan(
        self, version_id: str, status: str, result: str, scanner: str, expect_status: list[str]
    ) -> bool:
        if status not in SCAN_STATUSES:
            raise error("InvalidArgument", f"status must be one of {SCAN_STATUSES}, got {status!r}")

        async def tx(conn: AsyncConnection) -> bool:
            row = (
                await conn.execute(
                    self.db.for_update(sa.select(object_versions).where(_ov.version_id == version_id))
                )
            ).first()
            if row is None or row.status not in expect_status:
                return False  # deleted meanwhile, or already decided (the event ran twice)
            now = self.now()
            await conn.execute(
                sa.update(object_versions)
                .where(_ov.version_id == version_id)
                .values(
                    status=status,
                    scan_result=result[:MAX_RESULT_CHARS],
                    scanned_at=now,
                    scanner=scanner[:200],
                )
            )
            target = f"{row.bucket}/{row.key}"
            detail = {
                "result": result[:MAX_RESULT_CHARS],
                "scanner": scanner[:200],
                "status": status,
                "previous": row.status,
            }
            await record_audit(conn, "scanner", "object.scan", target, detail, at=now, version_id=version_id)
            if status == "quarantined" and row.status != "quarantined":
                await self._quarantine(conn, row, result, now)
            return True

        return await self.db.write(tx)

    async def _quarantine(self, conn: AsyncConnection, row: Any, result: str, now: float) -> None:
        downloads = (
            await conn.execute(
                sa.select(_a.at, _a.actor, _a.client_addr, _a.action)
                .where(_a.version_id == row.version_id, _a.action.in_(sorted(set(DOWNLOAD_ACTIONS.values()))))
                .order_by(_a.at, _a.id)
            )
        ).all()
        downloaders = [
            {
                "at": d.at,
                "actor": d.actor,
                "client_addr": d.client_addr,
                "via": "share link" if d.action == "share.download" else "download",
            }
            for d in downloads[:MAX_DOWNLOADERS_LISTED]
        ]
        revoked = await self.revoke_links(conn, row, now)
        target = f"{row.bucket}/{row.key}"
        detail = {
            "result": result[:MAX_RESULT_CHARS],
            "owner_id": row.owner_id,
            "tenant_id": row.tenant_id,
            "downloads": len(downloads),
            "downloaders": downloaders,
            "links_revoked": revoked,
        }
        await record_audit(
            conn, "scanner", "object.quarantine", target, detail, at=now, version_id=row.version_id
        )
        await emit(
            conn,
            "object.quarantined",
            {
                "version_id": row.version_id,
                "bucket": row.bucket,
                "key": row.key,
                "tenant_id": row.tenant_id,
                "owner_id": row.owner_id,
                "result": result[:MAX_RESULT_CHARS],
                "downloads": len(downloads),
                "links_revoked": revoked,
            },
            at=now,
        )

    async def revoke_links(self, conn: AsyncConnection, row: Any, now: float) -> int:
        """Revoke every share link of a quarantined version's file, in the quarantine's own
        transaction; how many (coordinator/sharing.py, part of Metadata)."""
        return await self.revoke_links_tx(conn, row.bucket, row.key, now)  # type: ignore[attr-defined]

    async def record_downloads(self, downloads: list[Download]) -> None:
        if len(downloads) > MAX_DOWNLOADS_BATCH:
            raise error("InvalidArgument", f"at most {MAX_DOWNLOADS_BATCH} downloads per call")
        if not downloads:
            return
        now = self.now()
        rows = []
        for d in downloads:
            action = DOWNLOAD_ACTIONS.get(d.via)
            if action is None:
                raise error(
                    "InvalidArgument", f"via must be one of {sorted(DOWNLOAD_ACTIONS)}, got {d.via!r}"
                )
            rows.append(
                {
                    "at": d.at if 0 < d.at <= now + 60 else now,
                    "actor": (d.actor or "anonymous")[:200],
                    "action": action,
                    "target": f"{d.bucket}/{d.key}"[:1200],
                    "detail": {"via": d.via},
                    "client_addr": (d.client_addr or None) and d.client_addr[:100],
                    "version_id": d.version_id[:64],
                }
            )

        async def tx(conn: AsyncConnection) -> None:
            await conn.execute(audit.insert(), rows)

        await self.db.write(tx)

    # ---- rescans ---------------------------------------------------------------------------

    async def request_rescan(self, since: float | None = None, actor: str = "admin") -> RescanInfo:
        async def tx(conn: AsyncConnection) -> RescanInfo:
            now = self.now()
            values = {
                "since": since or 0.0,
                "requested_at": now,
                "requested_by": actor[:200] or "admin",
                "cursor": "",
                "scanned": 0,
                "found": 0,
                "finished_at": None,
            }
            new_id = (await conn.execute(rescans.insert().values(**values).returning(_r.id))).scalar_one()
            await record_audit(
                conn, actor, "scan.rescan", "objects", {"since": values["since"], "rescan": new_id}, at=now
            )
            return RescanInfo(id=new_id, **values)

        return await self.db.write(tx)

    async def list_rescans(self, limit: int = 20) -> list[RescanInfo]:
        async def q(conn: AsyncConnection) -> list[RescanInfo]:
            rows = await conn.execute(
                sa.select(rescans).order_by(_r.id.desc()).limit(max(1, min(limit, 1000)))
            )
            return [_rescan(r) for r in rows]

        return await self.db.read(q)

    async def next_rescan_items(self, limit: int = 100) -> RescanBatch | None:
        if not 1 <= limit <= MAX_RESCAN_BATCH:
            raise error("InvalidArgument", f"limit must be 1-{MAX_RESCAN_BATCH}")

        async def q(conn: AsyncConnection) -> RescanBatch | None:
            job = (
                await conn.execute(
                    sa.select(rescans).where(_r.finished_at.is_(None)).order_by(_r.id).limit(1)
                )
            ).first()
            if job is None:
                return None
            rows = await conn.execute(
                sa.select(_ov.version_id, _ov.tenant_id, _ov.bucket, _ov.key, _ov.size)
                .where(
                    _ov.version_id > job.cursor,
                    _ov.created_at >= job.since,
                    _ov.status == "ready",
                    _ov.size > 0,
                )
                .order_by(_ov.version_id)
                .limit(limit)
            )
            items = [
                RescanItem(
                    version_id=r.version_id, tenant_id=r.tenant_id, bucket=r.bucket, key=r.key, size=r.size
                )
                for r in rows
            ]
            return RescanBatch(rescan=_rescan(job), items=items)

        return await self.db.read(q)

    async def advance_rescan(
        self, rescan_id: int, cursor: str, scanned: int, found: int, finished: bool = False
    ) -> None:
        async def tx(conn: AsyncConnection) -> None:
            values: dict[str, Any] = {
                "cursor": cursor[:64],
                "scanned": _r.scanned + scanned,
                "found": _r.found + found,
            }
            if finished:
                values["finished_at"] = self.now()
            await conn.execute(
                sa.update(rescans).where(_r.id == rescan_id, _r.finished_at.is_(None)).values(**values)
            )

        await self.db.write(tx)

    async def object_audit(
        self, bucket: str, key: str, version_id: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        limit = max(1, min(limit, 10_000))

        async def q(conn: AsyncConnection) -> list[AuditEntry]:
            if (
                await conn.execute(sa.select(buckets.c.name).where(buckets.c.name == bucket))
            ).first() is None:
                raise error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
            if version_id is not None:
                versions = [version_id]
            else:  # the key's versions (a deleted one's rows: ask by its version id)
                versions = [
                    r.version_id
                    for r in await conn.execute(
                        sa.select(_ov.version_id).where(_ov.bucket == bucket, _ov.key == key)
                    )
                ]
            rows = await conn.execute(
                sa.select(audit).where(_a.version_id.in_(versions)).order_by(_a.at, _a.id).limit(limit)
            )
            return [
                AuditEntry(
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    detail=dict(r.detail or {}),
                    client_addr=r.client_addr,
                    version_id=r.version_id,
                )
                for r in rows
            ]

        return await self.db.read(q)

    # ---- settings and status ---------------------------------------------------------------

    async def set_bucket_scan_gate(self, bucket: str, gate: bool, actor: str = "admin") -> BucketInfo:
        async def tx(conn: AsyncConnection) -> BucketInfo:
            row = (
                await conn.execute(
                    sa.update(buckets)
                    .where(buckets.c.name == bucket)
                    .values(scan_gate=gate)
                    .returning(*buckets.c)
                )
            ).first()
            if row is None:
                raise error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
            await record_audit(conn, actor, "bucket.scan_gate", bucket, {"gate": gate})
            return BucketInfo(
                name=row.name,
                tenant_id=row.tenant_id,
                owner_id=row.owner_id,
                created_at=row.created_at,
                region=row.region,
                scan_gate=bool(row.scan_gate),
            )

        return await self.db.write(tx)

    async def pipeline_status(self) -> PipelineStatus:
        now = self.now()
        _o, _c, _us = outbox.c, chunks.c, upload_sessions.c

        async def q(conn: AsyncConnection) -> PipelineStatus:
            pending, oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(_o.created_at)).where(_o.parked_at.is_(None))
                )
            ).one()
            parked = (
                await conn.execute(sa.select(sa.func.count()).where(_o.parked_at.is_not(None)))
            ).scalar_one()
            claimed = (
                await conn.execute(
                    sa.select(sa.func.count()).where(_o.parked_at.is_(None), _o.lease_until > now)
                )
            ).scalar_one()
            scanning, scan_oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(_ov.created_at)).where(_ov.status == "scanning")
                )
            ).one()
            zero = (
                await conn.execute(sa.select(sa.func.count()).where(_c.zero_since.is_not(None)))
            ).scalar_one()
            due = (
                await conn.execute(sa.select(sa.func.count()).where(_c.zero_since < now - self.gc_grace_s))
            ).scalar_one()
            expired = (
                await conn.execute(sa.select(sa.func.count()).where(_us.expires_at < now))
            ).scalar_one()
            orphans = (await conn.execute(sa.select(sa.func.count()).select_from(gc_orphans))).scalar_one()
            active = (
                await conn.execute(sa.select(sa.func.count()).where(_r.finished_at.is_(None)))
            ).scalar_one()
            return PipelineStatus(
                outbox_pending=pending,
                outbox_oldest_s=max(0.0, now - oldest) if oldest is not None else 0.0,
                outbox_claimed=claimed,
                parked_events=parked,
                scanning=scanning,
                scanning_oldest_s=max(0.0, now - scan_oldest) if scan_oldest is not None else 0.0,
                gc_chunks=zero,
                gc_due_chunks=due,
                gc_orphans=orphans,
                expired_uploads=expired,
                rescans_active=active,
            )

        return await self.db.read(q)
