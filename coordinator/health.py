"""Cluster health and per-tenant usage: what `shardbox admin health` and `admin usage` show.

Health judges the cluster by its data, not only its nodes: for every referenced chunk, how
many of its 14 shards are readable now (on a node that answers, and not queued as missing or
corrupt). The verdict is one rule, here: `at_risk` when some chunk has fewer than 10 (it
cannot be read until nodes come back: data at risk of loss), `degraded` when some chunk has
fewer than 14, a node is down, or repairs are queued, else `healthy`. The CLI turns them
into exit codes 2, 1 and 0 for monitoring.

Usage: stored bytes are a snapshot (logical: the sizes of the tenant's versions, by storage
class; physical: the distinct chunks in the tenant's dedup scope as stored, shards and
parity included, by tier); requests, egress, ingress and scans are counted per calendar
month (UTC) by the gateways and workers through `record_usage`.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import placement
from coordinator.errors import error
from coordinator.records import UsageDelta
from coordinator.repairs import RepairQueries
from coordinator.schema import (
    chunk_shards,
    chunks,
    nodes,
    object_versions,
    outbox,
    repair_queue,
    tenants,
    usage_counters,
)
from coordinator.tiers import MOVE_REASONS

_cs = chunk_shards.c
_c = chunks.c
_rq = repair_queue.c
_uc = usage_counters.c
VERDICTS = ("healthy", "degraded", "at_risk")
MAX_USAGE_BATCH = 10_000


def month_of(ts: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(ts))


def _last_scrub(health: dict[str, Any]) -> float | None:
    last = health.get("last_scrub")
    return last.get("finished") if isinstance(last, dict) else None


class HealthQueries(RepairQueries):
    async def cluster_health(self) -> dict[str, Any]:
        async def q(conn: AsyncConnection) -> dict[str, Any]:
            now = self.now()
            node_rows = (await conn.execute(sa.select(nodes).order_by(nodes.c.node_id))).all()
            states = {r.node_id: self._state(r, now) for r in node_rows}
            alive = sorted(n for n, s in states.items() if s in ("up", "draining"))
            lost = sa.exists().where(
                _rq.chunk_key == _cs.chunk_key, _rq.idx == _cs.idx, _rq.reason.not_in(MOVE_REASONS)
            )
            surviving = (
                sa.select(_cs.chunk_key, sa.func.count().label("n"))
                .where(_cs.node_id.in_(alive or [""]), ~lost)
                .group_by(_cs.chunk_key)
                .subquery()
            )
            count = sa.func.coalesce(surviving.c.n, 0)
            hist_rows = await conn.execute(
                sa.select(count.label("n"), sa.func.count().label("chunks"))
                .select_from(chunks.outerjoin(surviving, surviving.c.chunk_key == _c.chunk_key))
                .where(_c.refcount > 0, _c.inline_data.is_(None))
                .group_by(count)
            )
            by_surviving: dict[str, int] = {str(n): 0 for n in range(placement.SHARDS, 9, -1)}
            by_surviving["under_10"] = 0
            for r in hist_rows:
                slot = str(min(r.n, placement.SHARDS)) if r.n >= 10 else "under_10"
                by_surviving[slot] += r.chunks
            scanning = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(object_versions)
                    .where(object_versions.c.status == "scanning")
                )
            ).scalar() or 0
            gc_backlog = (
                await conn.execute(sa.select(sa.func.count()).select_from(chunks).where(_c.refcount <= 0))
            ).scalar() or 0
            oldest_event = (
                await conn.execute(
                    sa.select(sa.func.min(outbox.c.created_at)).where(
                        outbox.c.done_at.is_(None), outbox.c.parked_at.is_(None)
                    )
                )
            ).scalar()
            parked = (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(outbox).where(
                        outbox.c.done_at.is_(None), outbox.c.parked_at.is_not(None)
                    )
                )
            ).scalar() or 0
            node_docs = [
                {
                    "node_id": r.node_id,
                    "state": states[r.node_id],
                    "pool": r.pool,
                    "storage_class": r.storage_class,
                    "host": r.host,
                    "rack": r.rack,
                    "address": r.address,
                    "capacity_bytes": r.capacity_bytes,
                    "used_bytes": r.used_bytes,
                    "free_bytes": r.free_bytes,
                    "shard_count": r.shard_count,
                    "last_seen": r.last_seen,
                    "last_scrub": _last_scrub(r.health or {}),
                    "corrupt_shards": (r.health or {}).get("corrupt_count", 0),
                }
                for r in node_rows
            ]
            return {
                "at": now,
                "nodes": node_docs,
                "chunks_by_surviving_shards": by_surviving,
                "outbox_lag_s": None if oldest_event is None else max(0.0, now - oldest_event),
                "scan_backlog": scanning,
                "gc_backlog_chunks": gc_backlog,
                "parked_events": parked,
            }

        doc = await self.db.read(q)
        doc["repair"] = await self.repair_status()
        doc["status"] = verdict(doc)
        return doc

    # ---- usage -------------------------------------------------------------------------------------

    async def record_usage(self, deltas: list[UsageDelta]) -> None:
        if len(deltas) > MAX_USAGE_BATCH:
            raise error("InvalidArgument", f"at most {MAX_USAGE_BATCH} usage deltas per call")
        current = month_of(self.now())
        for d in deltas:
            d.month = d.month or current
            if len(d.month) != 7 or d.month[4] != "-" or not (d.month[:4] + d.month[5:]).isdigit():
                raise error("InvalidArgument", f"month must be YYYY-MM, got {d.month!r}")
            if min(d.api_requests, d.egress_bytes, d.ingress_bytes, d.scan_calls) < 0 or not d.tenant_id:
                raise error("InvalidArgument", "usage counts must not be negative")
        merged: dict[tuple[str, str], list[int]] = {}
        for d in deltas:
            acc = merged.setdefault((d.tenant_id[:64], d.month), [0, 0, 0, 0])
            for i, v in enumerate((d.api_requests, d.egress_bytes, d.ingress_bytes, d.scan_calls)):
                acc[i] += v
        if not merged:
            return

        async def tx(conn: AsyncConnection) -> None:
            for (tenant_id, month), (req, egress, ingress, scans) in sorted(merged.items()):
                ins = self.db.insert(usage_counters).values(
                    tenant_id=tenant_id,
                    month=month,
                    api_requests=req,
                    egress_bytes=egress,
                    ingress_bytes=ingress,
                    scan_calls=scans,
                )
                await conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=[_uc.tenant_id, _uc.month],
                        set_={
                            "api_requests": _uc.api_requests + req,
                            "egress_bytes": _uc.egress_bytes + egress,
                            "ingress_bytes": _uc.ingress_bytes + ingress,
                            "scan_calls": _uc.scan_calls + scans,
                        },
                    )
                )

        await self.db.write(tx)

    async def usage_report(
        self, month: str | None = None, tenant_name: str | None = None
    ) -> list[dict[str, Any]]:
        month = month or month_of(self.now())
        if len(month) != 7 or month[4] != "-":
            raise error("InvalidArgument", f"month must be YYYY-MM, got {month!r}")
        ov, t = object_versions.c, tenants.c

        async def q(conn: AsyncConnection) -> list[dict[str, Any]]:
            stmt = sa.select(t.tenant_id, t.name, t.quota_bytes, t.used_bytes, t.reserved_bytes).order_by(
                t.name
            )
            if tenant_name is not None:
                stmt = stmt.where(t.name == tenant_name)
            rows = (await conn.execute(stmt)).all()
            if tenant_name is not None and not rows:
                raise error("NoSuchTenant", f"tenant {tenant_name!r} does not exist")
            logical: dict[str, dict[str, int]] = {}
            for r in await conn.execute(
                sa.select(ov.tenant_id, ov.storage_class, sa.func.sum(ov.size), sa.func.count())
                .where(ov.status != "deleted")
                .group_by(ov.tenant_id, ov.storage_class)
            ):
                logical.setdefault(r[0], {})[r[1]] = int(r[2] or 0)
            objects = {
                r[0]: int(r[1])
                for r in await conn.execute(
                    sa.select(ov.tenant_id, sa.func.count())
                    .where(ov.status != "deleted")
                    .group_by(ov.tenant_id)
                )
            }
            stored = sa.case(
                (_c.inline_data.is_(None), _c.enc_size * placement.SHARDS / 10), else_=_c.enc_size
            )
            physical: dict[str, dict[str, int]] = {}
            for r in await conn.execute(
                sa.select(_c.scope, _c.tier, sa.func.sum(stored), sa.func.sum(_c.size))
                .where(_c.refcount > 0)
                .group_by(_c.scope, _c.tier)
            ):
                physical.setdefault(r[0], {})[r[1]] = int(r[2] or 0)
                physical[r[0]]["_unique"] = physical[r[0]].get("_unique", 0) + int(r[3] or 0)
            counters = {
                r.tenant_id: r
                for r in await conn.execute(sa.select(usage_counters).where(_uc.month == month))
            }
            out = []
            for r in rows:
                c = counters.get(r.tenant_id)
                phys = dict(physical.get(r.tenant_id if self.dedup_scope == "tenant" else "global", {}))
                unique = phys.pop("_unique", 0)
                out.append(
                    {
                        "tenant": r.name,
                        "tenant_id": r.tenant_id,
                        "month": month,
                        "objects": objects.get(r.tenant_id, 0),
                        "logical_bytes": sum(logical.get(r.tenant_id, {}).values()),
                        "logical_bytes_by_class": logical.get(r.tenant_id, {}),
                        "unique_bytes": unique,
                        "physical_bytes": sum(phys.values()),
                        "physical_bytes_by_tier": phys,
                        "dedup_scope": self.dedup_scope,
                        "quota_bytes": r.quota_bytes,
                        "used_bytes": r.used_bytes,
                        "reserved_bytes": r.reserved_bytes,
                        "api_requests": c.api_requests if c else 0,
                        "egress_bytes": c.egress_bytes if c else 0,
                        "ingress_bytes": c.ingress_bytes if c else 0,
                        "scan_calls": c.scan_calls if c else 0,
                    }
                )
            return out

        return await self.db.read(q)


def verdict(doc: dict[str, Any]) -> str:
    """healthy / degraded / at_risk (see the module doc): the one place this is decided."""
    hist = doc["chunks_by_surviving_shards"]
    if hist.get("under_10", 0):
        return "at_risk"
    short = any(count for n, count in hist.items() if n != str(placement.SHARDS) and n != "under_10")
    down = any(n["state"] == "down" for n in doc["nodes"])
    backlog = sum(v["shards"] for r, v in doc["repair"]["by_reason"].items() if r not in MOVE_REASONS)
    return "degraded" if short or down or backlog else "healthy"
