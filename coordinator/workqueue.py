"""Background work handed to workers: outbox events claimed with a lease, and named leases.

Every queue row a worker takes is *claimed*: `claimed_by` names the worker and `lease_until`
says until when the claim holds, in one statement that skips rows another worker holds
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite writers are serialised, so the select
and the update of one statement cannot interleave with another claim). A worker that dies
loses its claims when their leases run out, and another worker takes the rows again:
nothing is lost, and handlers are idempotent because a row can thus be handled twice.
`claim_rows` is the one implementation; the outbox uses it here, other queues (the repair
queue) call it on their own tables, which need the same three columns (`claimed_by`,
`lease_until`, `attempts`).

Outbox events: handled -> deleted (`finish_event`); failed -> back in the queue after a
backoff the worker chooses (`retry_event`), or parked after too many attempts, where
`shardbox admin events parked` shows them and `... replay` puts them back. `attempts`
counts claims, so an event that kills its worker every time is parked too.

Named leases (`worker_leases`): a periodic job (a GC sweep, reconciliation, a rescan) runs
on one worker at a time; `not_before` spaces its runs cluster-wide and `state` keeps its
cursor across workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.base import QueryBase
from coordinator.db import Database
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.records import OutboxEvent, WorkerLease
from coordinator.schema import outbox, worker_leases

_o = outbox.c
_wl = worker_leases.c
MAX_CLAIM = 1000
MAX_LEASE_S = 3600.0
MAX_ERROR_CHARS = 2000
_WORKER_ID_MAX = 200


def _check_worker(worker_id: str, lease_s: float | None = None) -> None:
    if not worker_id or len(worker_id) > _WORKER_ID_MAX:
        raise error("InvalidArgument", f"worker_id must be 1-{_WORKER_ID_MAX} characters")
    if lease_s is not None and not 0 < lease_s <= MAX_LEASE_S:
        raise error("InvalidArgument", f"lease_s must be in (0, {MAX_LEASE_S:.0f}]")


async def claim_rows(
    db: Database,
    conn: AsyncConnection,
    table: sa.Table,
    *,
    where: Sequence[sa.ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int,
    worker_id: str,
    lease_s: float,
    now: float,
    holder: str = "claimed_by",
    lease: str = "lease_until",
    attempts: str | None = "attempts",
    returning: Sequence[Any] | None = None,
) -> list[Any]:
    """Claim up to `limit` rows of `table` matching `where` that nobody holds (no lease, or
    an expired one), in `order_by` order: set the holder, the lease end and attempts + 1.
    The table needs a single-column primary key and those columns (named as given);
    `returning` picks the columns of the claimed rows to return (default: all)."""
    (pk,) = table.primary_key.columns
    c = table.c
    free = sa.or_(c[lease].is_(None), c[lease] < now)
    pick = sa.select(pk).where(*where, free).order_by(*order_by).limit(limit)
    if db.dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    values: dict[str, Any] = {holder: worker_id, lease: now + lease_s}
    if attempts is not None:
        values[attempts] = c[attempts] + 1
    stmt = sa.update(table).where(pk.in_(pick)).values(**values).returning(*(returning or table.c))
    return list((await conn.execute(stmt)).all())


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=row.id,
        event_type=row.event_type,
        payload=dict(row.payload or {}),
        created_at=row.created_at,
        attempts=row.attempts,
        lease_until=row.lease_until,
        last_error=row.last_error,
        parked_at=row.parked_at,
    )


class WorkQueueQueries(QueryBase):
    # ---- outbox events ----------------------------------------------------------------------

    async def claim_events(
        self, worker_id: str, event_types: list[str], limit: int = 16, lease_s: float = 60.0
    ) -> list[OutboxEvent]:
        """Claim up to `limit` due events of these types, oldest first, for lease_s seconds."""
        _check_worker(worker_id, lease_s)
        if not 1 <= limit <= MAX_CLAIM:
            raise error("InvalidArgument", f"limit must be 1-{MAX_CLAIM}")
        types = sorted(set(event_types))
        if not types:
            return []

        def due(now: float) -> list[sa.ColumnElement[bool]]:
            return [
                _o.event_type.in_(types),
                _o.parked_at.is_(None),
                sa.or_(_o.available_at.is_(None), _o.available_at <= now),
            ]

        # Idle workers poll: find out with a read whether anything is there to claim, and
        # only then write (on SQLite a write waits for the group commit).
        async def any_due(conn: AsyncConnection) -> bool:
            now = self.now()
            free = sa.or_(_o.lease_until.is_(None), _o.lease_until < now)
            return (await conn.execute(sa.select(_o.id).where(*due(now), free).limit(1))).first() is not None

        if not await self.db.read(any_due):
            return []

        async def tx(conn: AsyncConnection) -> list[OutboxEvent]:
            now = self.now()
            rows = await claim_rows(
                self.db,
                conn,
                outbox,
                where=due(now),
                order_by=[_o.id],
                limit=limit,
                worker_id=worker_id,
                lease_s=lease_s,
                now=now,
            )
            return sorted((_event(r) for r in rows), key=lambda e: e.id)

        return await self.db.write(tx)

    async def finish_event(self, event_id: int, worker_id: str) -> bool:
        """The event is handled: it leaves the outbox. False if this worker no longer held it
        (its lease ran out and another worker took it; handlers are idempotent)."""
        _check_worker(worker_id)

        async def tx(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                sa.delete(outbox).where(_o.id == event_id, _o.claimed_by == worker_id)
            )
            return result.rowcount > 0

        return await self.db.write(tx)

    async def retry_event(
        self, event_id: int, worker_id: str, error_message: str, retry_in_s: float, park: bool = False
    ) -> bool:
        """Handling failed: the event is due again in retry_in_s, or parked. False if this
        worker no longer held it."""
        _check_worker(worker_id)
        if not 0 <= retry_in_s <= 86400 * 7:
            raise error("InvalidArgument", "retry_in_s must be between 0 and a week")

        async def tx(conn: AsyncConnection) -> bool:
            now = self.now()
            result = await conn.execute(
                sa.update(outbox)
                .where(_o.id == event_id, _o.claimed_by == worker_id)
                .values(
                    claimed_by=None,
                    lease_until=None,
                    available_at=now + retry_in_s,
                    last_error=(error_message or "")[:MAX_ERROR_CHARS],
                    parked_at=now if park else None,
                )
            )
            return result.rowcount > 0

        return await self.db.write(tx)

    async def extend_event_leases(self, worker_id: str, event_ids: list[int], lease_s: float) -> list[int]:
        """Keep working on long events: their leases run lease_s from now. Returns the ids
        this worker still holds."""
        _check_worker(worker_id, lease_s)
        ids = sorted(set(event_ids))
        if not ids:
            return []
        if len(ids) > MAX_CLAIM:
            raise error("InvalidArgument", f"at most {MAX_CLAIM} event ids")

        async def tx(conn: AsyncConnection) -> list[int]:
            result = await conn.execute(
                sa.update(outbox)
                .where(_o.id.in_(ids), _o.claimed_by == worker_id)
                .values(lease_until=self.now() + lease_s)
                .returning(_o.id)
            )
            return sorted(r.id for r in result)

        return await self.db.write(tx)

    async def list_parked_events(self, limit: int = 100, after_id: int = 0) -> list[OutboxEvent]:
        """Parked events in id order, after after_id."""
        if not 1 <= limit <= MAX_CLAIM:
            raise error("InvalidArgument", f"limit must be 1-{MAX_CLAIM}")

        async def q(conn: AsyncConnection) -> list[OutboxEvent]:
            rows = await conn.execute(
                sa.select(outbox)
                .where(_o.parked_at.is_not(None), _o.id > after_id)
                .order_by(_o.id)
                .limit(limit)
            )
            return [_event(r) for r in rows]

        return await self.db.read(q)

    async def replay_events(self, event_ids: list[int] | None = None, actor: str = "admin") -> int:
        """Put parked events (these, or all when None) back in the queue with fresh attempts."""
        if event_ids is not None and len(event_ids) > MAX_CLAIM:
            raise error("InvalidArgument", f"at most {MAX_CLAIM} event ids")

        async def tx(conn: AsyncConnection) -> int:
            stmt = sa.update(outbox).where(_o.parked_at.is_not(None))
            if event_ids is not None:
                stmt = stmt.where(_o.id.in_(sorted(set(event_ids))))
            result = await conn.execute(
                stmt.values(
                    parked_at=None, attempts=0, available_at=None, claimed_by=None, lease_until=None
                ).returning(_o.id)
            )
            replayed = sorted(r.id for r in result)
            if replayed:
                await record_audit(conn, actor, "events.replay", "outbox", {"ids": replayed[:1000]})
            return len(replayed)

        return await self.db.write(tx)

    # ---- named leases ------------------------------------------------------------------------

    async def acquire_lease(self, name: str, worker_id: str, lease_s: float) -> WorkerLease | None:
        """The lease `name` for lease_s seconds if nobody holds it and its next run is due
        (see release_lease); None otherwise."""
        _check_worker(worker_id, lease_s)
        if not name or len(name) > 128:
            raise error("InvalidArgument", "lease name must be 1-128 characters")

        async def tx(conn: AsyncConnection) -> WorkerLease | None:
            now = self.now()
            await conn.execute(
                self.db.insert(worker_leases)
                .values(name=name, holder=None, lease_until=None, not_before=None, state={}, updated_at=now)
                .on_conflict_do_nothing(index_elements=[_wl.name])
            )
            row = (
                await conn.execute(
                    sa.update(worker_leases)
                    .where(
                        _wl.name == name,
                        sa.or_(_wl.lease_until.is_(None), _wl.lease_until < now),
                        sa.or_(_wl.not_before.is_(None), _wl.not_before <= now),
                    )
                    .values(holder=worker_id, lease_until=now + lease_s, updated_at=now)
                    .returning(_wl.name, _wl.holder, _wl.lease_until, _wl.state)
                )
            ).first()
            return None if row is None else _lease(row)

        return await self.db.write(tx)

    async def renew_lease(
        self, name: str, worker_id: str, lease_s: float, state: dict[str, Any] | None = None
    ) -> WorkerLease | None:
        """Extend a held lease (and save the job's state); None if this worker lost it."""
        _check_worker(worker_id, lease_s)

        async def tx(conn: AsyncConnection) -> WorkerLease | None:
            now = self.now()
            values: dict[str, Any] = {"lease_until": now + lease_s, "updated_at": now}
            if state is not None:
                values["state"] = state
            row = (
                await conn.execute(
                    sa.update(worker_leases)
                    .where(_wl.name == name, _wl.holder == worker_id, _wl.lease_until >= now)
                    .values(**values)
                    .returning(_wl.name, _wl.holder, _wl.lease_until, _wl.state)
                )
            ).first()
            return None if row is None else _lease(row)

        return await self.db.write(tx)

    async def release_lease(
        self, name: str, worker_id: str, state: dict[str, Any] | None = None, run_again_in_s: float = 0.0
    ) -> bool:
        """Give the lease back, saving the job's state; nobody takes it again (this worker
        included) for run_again_in_s. False if this worker no longer held it."""
        _check_worker(worker_id)
        if run_again_in_s < 0:
            raise error("InvalidArgument", "run_again_in_s must not be negative")

        async def tx(conn: AsyncConnection) -> bool:
            now = self.now()
            values: dict[str, Any] = {
                "holder": None,
                "lease_until": None,
                "not_before": now + run_again_in_s,
                "updated_at": now,
            }
            if state is not None:
                values["state"] = state
            result = await conn.execute(
                sa.update(worker_leases).where(_wl.name == name, _wl.holder == worker_id).values(**values)
            )
            return result.rowcount > 0

        return await self.db.write(tx)

    async def list_leases(self) -> list[WorkerLease]:
        """Every named lease with its state (held or not: holder empty when free)."""

        async def q(conn: AsyncConnection) -> list[WorkerLease]:
            rows = await conn.execute(
                sa.select(_wl.name, _wl.holder, _wl.lease_until, _wl.state).order_by(_wl.name)
            )
            return [_lease(r) for r in rows]

        return await self.db.read(q)


def _lease(row: Any) -> WorkerLease:
    return WorkerLease(
        name=row.name,
        holder=row.holder or "",
        lease_until=row.lease_until or 0.0,
        state=dict(row.state or {}),
    )
