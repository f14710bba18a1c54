"""Bucket lifecycle rules, RestoreObject, and the lifecycle pass a worker runs periodically.

A pass (`lifecycle_step(now)`) is metadata only; bytes move through the repair queue
(coordinator/tiers.py, workers/repair.py). It runs at `now` as given (tests and drills pass
the time they want) or by the coordinator's clock (coordinator/clock.py).

- Transition: a current version untouched (neither written nor read) for `days` moves to
  the rule's storage class: its class changes at once, its chunks follow. Days count from
  the last access, not only from creation as on AWS: a file people still download stays
  warm. Versions smaller than `tier_min_bytes` (128 KiB) are never tiered.
- Expiration (days since creation, or a date): the current version is deleted.
- AbortIncompleteMultipartUpload: multipart uploads initiated `days` ago are aborted (their
  parts' chunks unreferenced, the reservation released).
- RestoreObject on a COLD version: `ongoing` while its chunks move back to STANDARD nodes,
  `done` once none is left to move (then readable until now + days), and when that time
  has passed the chunks go back to COLD and GET answers InvalidObjectState again.

Filters: prefix, tags (all must match) and size bounds (exclusive), ANDed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from config.tiers import COLD, STANDARD, STORAGE_CLASSES, TIERS, storage_tier
from coordinator import tiers
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.objects import SKIP
from coordinator.records import LifecycleReport, LifecycleRule, LifecycleTransition
from coordinator.schema import bucket_lifecycle, buckets, object_restores, object_versions, upload_sessions
from coordinator.uploads import UploadQueries

log = logging.getLogger(__name__)

_ov = object_versions.c
_or = object_restores.c
_us = upload_sessions.c
_bl = bucket_lifecycle.c
DAY = 86400.0
MAX_RULES = 1000
MAX_RESTORE_DAYS = 36500
_RESTORE = sa.select(object_restores).where(_or.version_id == sa.bindparam("v"))


def check_rules(rules: list[LifecycleRule]) -> None:
    """S3's constraints on a lifecycle configuration; InvalidArgument naming the rule otherwise."""
    if not rules:
        raise error("InvalidArgument", "a lifecycle configuration needs at least one rule")
    if len(rules) > MAX_RULES:
        raise error("InvalidArgument", f"at most {MAX_RULES} lifecycle rules")
    ids = [r.id for r in rules if r.id]
    if len(ids) != len(set(ids)):
        raise error("InvalidArgument", "lifecycle rule IDs must be unique")
    for r in rules:
        name = f"rule {r.id or '(no ID)'}"
        if len(r.id) > 255:
            raise error("InvalidArgument", f"{name}: the ID is longer than 255 characters")
        if not (
            r.transitions
            or r.expiration_days is not None
            or r.expiration_date is not None
            or r.expired_object_delete_marker
            or r.noncurrent_days is not None
            or r.abort_multipart_days is not None
        ):
            raise error("InvalidArgument", f"{name}: at least one action needs to be specified in a rule")
        if r.expiration_days is not None and r.expiration_date is not None:
            raise error("InvalidArgument", f"{name}: Expiration takes Days or Date, not both")
        for what, days, low in (
            ("Expiration Days", r.expiration_days, 1),
            ("NoncurrentDays", r.noncurrent_days, 1),
            ("DaysAfterInitiation", r.abort_multipart_days, 1),
            ("NewerNoncurrentVersions", r.newer_noncurrent_versions, 1),
        ):
            if days is not None and not low <= days <= 100 * 365:
                raise error("InvalidArgument", f"{name}: {what} must be a positive integer")
        if r.size_greater_than is not None and r.size_greater_than < 0:
            raise error("InvalidArgument", f"{name}: ObjectSizeGreaterThan must not be negative")
        if r.size_less_than is not None and r.size_less_than <= 0:
            raise error("InvalidArgument", f"{name}: ObjectSizeLessThan must be positive")
        if (
            r.size_greater_than is not None
            and r.size_less_than is not None
            and r.size_less_than <= r.size_greater_than
        ):
            raise error("InvalidArgument", f"{name}: ObjectSizeLessThan must be above ObjectSizeGreaterThan")
        seen: set[str] = set()
        for t in r.transitions:
            if t.storage_class not in STORAGE_CLASSES or storage_tier(t.storage_class) == STANDARD:
                raise error(
                    "InvalidArgument", f"{name}: cannot transition to storage class {t.storage_class!r}"
                )
            if not 0 <= t.days <= 100 * 365:
                raise error("InvalidArgument", f"{name}: Transition Days must not be negative")
            if t.storage_class in seen:
                raise error("InvalidArgument", f"{name}: two transitions to {t.storage_class}")
            seen.add(t.storage_class)
        if r.expiration_days is not None and any(t.days >= r.expiration_days for t in r.transitions):
            raise error(
                "InvalidArgument", f"{name}: Days in Expiration must be greater than in every Transition"
            )


def _filtered(stmt: sa.Select, rule: LifecycleRule) -> sa.Select:
    if rule.prefix:
        stmt = stmt.where(_ov.key >= rule.prefix, _ov.key < rule.prefix + SKIP)
    if rule.size_greater_than is not None:
        stmt = stmt.where(_ov.size > rule.size_greater_than)
    if rule.size_less_than is not None:
        stmt = stmt.where(_ov.size < rule.size_less_than)
    return stmt


def _tags_match(row: Any, rule: LifecycleRule) -> bool:
    if not rule.tags:
        return True
    have = dict(getattr(row, "tags", None) or {})
    return all(have.get(k) == v for k, v in rule.tags.items())


class LifecycleQueries(UploadQueries):
    # ---- configuration ------------------------------------------------------------------------

    async def put_bucket_lifecycle(self, tenant_id: str, bucket: str, rules: list[LifecycleRule]) -> None:
        check_rules(rules)

        async def tx(conn: AsyncConnection) -> None:
            await self.bucket_row(conn, tenant_id, bucket)
            doc = [_rule_json(r) for r in rules]
            values = {"bucket": bucket, "rules": doc, "updated_at": self.now()}
            ins = self.db.insert(bucket_lifecycle).values(**values)
            await conn.execute(ins.on_conflict_do_update(index_elements=[_bl.bucket], set_=values))
            await record_audit(conn, tenant_id, "bucket.lifecycle", bucket, {"rules": len(rules)})

        await self.db.write(tx)

    async def get_bucket_lifecycle(self, tenant_id: str, bucket: str) -> list[LifecycleRule]:
        async def q(conn: AsyncConnection) -> Any:
            await self.bucket_row(conn, tenant_id, bucket)
            return (await conn.execute(sa.select(_bl.rules).where(_bl.bucket == bucket))).first()

        row = await self.db.read(q)
        if row is None:
            raise error("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")
        return [_rule_from_json(r) for r in row.rules]

    async def delete_bucket_lifecycle(self, tenant_id: str, bucket: str) -> None:
        async def tx(conn: AsyncConnection) -> None:
            await self.bucket_row(conn, tenant_id, bucket)
            await conn.execute(sa.delete(bucket_lifecycle).where(_bl.bucket == bucket))

        await self.db.write(tx)

    # ---- restore --------------------------------------------------------------------------------

    async def restore_object(
        self, tenant_id: str, bucket: str, key: str, days: int, version_id: str | None = None
    ) -> str:
        if not 1 <= days <= MAX_RESTORE_DAYS:
            raise error("InvalidArgument", f"Days must be 1..{MAX_RESTORE_DAYS}")

        async def tx(conn: AsyncConnection) -> str:
            await self.bucket_row(conn, tenant_id, bucket)
            if version_id is None:
                row = await self.latest_row(conn, bucket, key)
            else:
                row = await self.version_row(conn, bucket, key, version_id)
            if row is None or row.status == "deleted" or row.delete_marker:
                raise error("NoSuchKey", f"the key {key!r} does not exist")
            if storage_tier(row.storage_class) != COLD:
                raise error(
                    "InvalidObjectState", "Restore is not allowed for the object's current storage class"
                )
            now = self.now()
            current = (await conn.execute(_RESTORE, {"v": row.version_id})).first()
            if current is not None and current.state == "ongoing":
                raise error("RestoreAlreadyInProgress", "Object restore is already in progress")
            if current is not None:  # restored: a new request sets a new expiry from now
                await conn.execute(
                    sa.update(object_restores)
                    .where(_or.version_id == row.version_id)
                    .values(
                        days=days,
                        expires_at=current.expires_at
                        if current.expires_at and current.expires_at > now + days * DAY
                        else now + days * DAY,
                    )
                )
                return "done"
            await conn.execute(
                object_restores.insert().values(
                    version_id=row.version_id, days=days, requested_at=now, state="ongoing", expires_at=None
                )
            )
            await tiers.retier_version(self.db.dialect, conn, row.version_id, STANDARD, now)
            await record_audit(
                conn,
                tenant_id,
                "object.restore",
                f"{bucket}/{key}",
                {"version_id": row.version_id, "days": days},
                at=now,
            )
            return "started"

        return await self.db.write(tx)

    # ---- the pass -------------------------------------------------------------------------------

    async def lifecycle_step(self, now: float | None = None, limit: int = 1000) -> LifecycleReport:
        if not 1 <= limit <= 100_000:
            raise error("InvalidArgument", "limit must be 1..100000")
        now = self.now() if now is None else now
        report = LifecycleReport()
        configs = await self.db.read(lambda conn: _configs(conn))
        budget = limit
        for bucket, tenant_id, rules in configs:
            for rule in rules:
                if not rule.enabled or budget <= 0:
                    continue
                budget -= await self._expire(tenant_id, bucket, rule, now, budget, report)
                budget -= await self._expire_noncurrent(tenant_id, bucket, rule, now, budget, report)
                budget -= await self._transition(bucket, rule, now, budget, report)
                budget -= await self._abort_uploads(tenant_id, bucket, rule, now, budget, report)
        await self._restores(now, report)
        if any(vars(report).values()):
            log.info("lifecycle.pass", extra={"fields": vars(report)})
        return report

    async def _transition(
        self, bucket: str, rule: LifecycleRule, now: float, budget: int, report: LifecycleReport
    ) -> int:
        done = 0
        # The coldest due transition wins (a version 400 days old goes straight to COLD).
        for t in sorted(
            rule.transitions, key=lambda t: TIERS.index(storage_tier(t.storage_class)), reverse=True
        ):
            target = storage_tier(t.storage_class)
            warmer = [c for c in STORAGE_CLASSES if TIERS.index(storage_tier(c)) < TIERS.index(target)]
            stmt = (
                _filtered(
                    sa.select(object_versions).where(
                        _ov.bucket == bucket,
                        _ov.is_latest,
                        _ov.status == "ready",
                        _ov.size >= self.tier_min_bytes,
                        _ov.storage_class.in_(warmer),
                        sa.func.coalesce(_ov.last_access, _ov.created_at) <= now - t.days * DAY,
                        _ov.created_at <= now - t.days * DAY,
                    ),
                    rule,
                )
                .order_by(_ov.key)
                .limit(budget - done)
            )

            async def tx(
                conn: AsyncConnection, stmt: sa.Select = stmt, t: Any = t, target: str = target
            ) -> int:
                n = 0
                for row in (await conn.execute(stmt)).all():
                    if not _tags_match(row, rule):
                        continue
                    await conn.execute(
                        sa.update(object_versions)
                        .where(_ov.version_id == row.version_id)
                        .values(storage_class=t.storage_class)
                    )
                    await conn.execute(sa.delete(object_restores).where(_or.version_id == row.version_id))
                    await tiers.retier_version(self.db.dialect, conn, row.version_id, target, now)
                    await record_audit(
                        conn,
                        "lifecycle",
                        "object.transition",
                        f"{bucket}/{row.key}",
                        {"version_id": row.version_id, "storage_class": t.storage_class, "rule": rule.id},
                        at=now,
                    )
                    n += 1
                return n

            if done < budget:
                n = await self.db.write(tx)
                done += n
                report.transitioned += n
        return done

    async def _expire(
        self,
        tenant_id: str,
        bucket: str,
        rule: LifecycleRule,
        now: float,
        budget: int,
        report: LifecycleReport,
    ) -> int:
        if rule.expiration_days is None and (rule.expiration_date is None or rule.expiration_date > now):
            return 0
        stmt = _filtered(
            sa.select(object_versions).where(
                _ov.bucket == bucket, _ov.is_latest, _ov.status != "deleted", ~_ov.delete_marker
            ),
            rule,
        )
        if rule.expiration_days is not None:
            stmt = stmt.where(_ov.created_at <= now - rule.expiration_days * DAY)
        rows = (await self.db.read(lambda conn: conn.execute(stmt.order_by(_ov.key).limit(budget)))).all()
        n = 0
        for row in rows:
            if not _tags_match(row, rule):
                continue

            async def tx(conn: AsyncConnection, key: str = row.key) -> bool:
                # As a DELETE of the key: removed, or a delete marker on a versioned bucket.
                bucket_row = await self.bucket_row(conn, tenant_id, bucket)
                return (await self.delete_key(conn, bucket_row, "lifecycle", key)).deleted

            n += bool(await self.db.write(tx))
        report.expired += n
        return n

    async def _expire_noncurrent(
        self,
        tenant_id: str,
        bucket: str,
        rule: LifecycleRule,
        now: float,
        budget: int,
        report: LifecycleReport,
    ) -> int:
        """NoncurrentVersionExpiration: versions noncurrent (a newer one exists) for NoncurrentDays,
        counted from when their successor was written, beyond the NewerNoncurrentVersions newest;
        ExpiredObjectDeleteMarker: a delete marker that is all that is left of its key."""
        n = 0
        if rule.noncurrent_days is not None:
            newer = object_versions.alias("newer")
            successor = (
                sa.select(sa.func.min(newer.c.created_at))
                .where(newer.c.bucket == _ov.bucket, newer.c.key == _ov.key, newer.c.seq > _ov.seq)
                .scalar_subquery()
            )
            stmt = _filtered(
                sa.select(object_versions, successor.label("noncurrent_since")).where(
                    _ov.bucket == bucket, ~_ov.is_latest, successor <= now - rule.noncurrent_days * DAY
                ),
                rule,
            ).order_by(_ov.key, _ov.seq.desc())
            rows = (await self.db.read(lambda conn: conn.execute(stmt.limit(budget * 4)))).all()
            keep = rule.newer_noncurrent_versions or 0
            kept: dict[str, int] = {}
            for row in rows:
                if n >= budget or not _tags_match(row, rule):
                    continue
                if keep:  # the newest `keep` noncurrent versions of each key stay
                    newer_count = await self.db.read(lambda conn, row=row: _newer_noncurrent(conn, row))
                    if newer_count < keep:
                        kept[row.key] = kept.get(row.key, 0) + 1
                        continue

                async def drop(conn: AsyncConnection, row: Any = row) -> bool:
                    vid = "null" if row.null_version else row.version_id
                    return (await self.delete_version(conn, bucket, "lifecycle", row.key, vid)).deleted

                n += bool(await self.db.write(drop))
            report.noncurrent_expired += n
        if rule.expired_object_delete_marker:
            other = object_versions.alias("other")
            alone = ~sa.exists().where(
                other.c.bucket == _ov.bucket, other.c.key == _ov.key, other.c.version_id != _ov.version_id
            )
            stmt = _filtered(
                sa.select(object_versions).where(
                    _ov.bucket == bucket, _ov.is_latest, _ov.delete_marker, alone
                ),
                rule,
            ).limit(max(0, budget - n))
            for row in (await self.db.read(lambda conn: conn.execute(stmt))).all():

                async def drop_marker(conn: AsyncConnection, row: Any = row) -> bool:
                    vid = "null" if row.null_version else row.version_id
                    return (await self.delete_version(conn, bucket, "lifecycle", row.key, vid)).deleted

                if await self.db.write(drop_marker):
                    n += 1
                    report.noncurrent_expired += 1
        return n

    async def _abort_uploads(
        self,
        tenant_id: str,
        bucket: str,
        rule: LifecycleRule,
        now: float,
        budget: int,
        report: LifecycleReport,
    ) -> int:
        if rule.abort_multipart_days is None or rule.tags or rule.size_greater_than or rule.size_less_than:
            return 0  # S3: this action cannot be combined with tag or size filters
        stmt = sa.select(_us.upload_id).where(
            _us.bucket == bucket,
            _us.kind == "multipart",
            _us.initiated <= now - rule.abort_multipart_days * DAY,
        )
        if rule.prefix:
            stmt = stmt.where(_us.key >= rule.prefix, _us.key < rule.prefix + SKIP)
        ids = [r.upload_id for r in await self.db.read(lambda conn: conn.execute(stmt.limit(budget)))]
        n = 0
        for upload_id in ids:
            try:
                await self.abort_upload(tenant_id, bucket, upload_id)
                n += 1
            except Exception as exc:  # completed or aborted meanwhile
                log.debug(
                    "lifecycle.abort_skipped", extra={"fields": {"upload_id": upload_id, "error": str(exc)}}
                )
        report.aborted_uploads += n
        return n

    async def _restores(self, now: float, report: LifecycleReport) -> None:
        async def tx(conn: AsyncConnection) -> None:
            rows = (
                await conn.execute(
                    sa.select(object_restores, _ov.storage_class).select_from(
                        object_restores.join(object_versions, _ov.version_id == _or.version_id)
                    )
                )
            ).all()
            for r in rows:
                if r.state == "ongoing" and not await tiers.moves_pending(conn, r.version_id):
                    await conn.execute(
                        sa.update(object_restores)
                        .where(_or.version_id == r.version_id)
                        .values(state="done", expires_at=now + r.days * DAY)
                    )
                    report.restores_done += 1
                elif r.state == "done" and r.expires_at is not None and r.expires_at <= now:
                    await conn.execute(sa.delete(object_restores).where(_or.version_id == r.version_id))
                    await tiers.retier_version(
                        self.db.dialect, conn, r.version_id, storage_tier(r.storage_class), now
                    )
                    report.restores_expired += 1

        await self.db.write(tx)


async def _newer_noncurrent(conn: AsyncConnection, row: Any) -> int:
    """How many noncurrent versions of the row's key are newer than it."""
    return (
        await conn.execute(
            sa.select(sa.func.count())
            .select_from(object_versions)
            .where(
                _ov.bucket == row.bucket,
                _ov.key == row.key,
                ~_ov.is_latest,
                ~_ov.delete_marker,
                _ov.seq > row.seq,
            )
        )
    ).scalar() or 0


async def _configs(conn: AsyncConnection) -> list[tuple[str, str, list[LifecycleRule]]]:
    rows = await conn.execute(
        sa.select(_bl.bucket, buckets.c.tenant_id, _bl.rules)
        .select_from(bucket_lifecycle.join(buckets, buckets.c.name == _bl.bucket))
        .order_by(_bl.bucket)
    )
    return [(r.bucket, r.tenant_id, [_rule_from_json(x) for x in r.rules]) for r in rows]


def _rule_json(rule: LifecycleRule) -> dict[str, Any]:
    return asdict(rule)


def _rule_from_json(doc: dict[str, Any]) -> LifecycleRule:
    fields = dict(doc)
    fields["transitions"] = [LifecycleTransition(**t) for t in fields.get("transitions") or []]
    return LifecycleRule(**fields)
