"""The repair queue: what gets rebuilt or moved, who works on it, and the node states behind it.

Rows of `repair_queue` name one shard (chunk key, index) and why it needs work: a write that
did not reach every node (`write_shortfall`), a reader that could not use it (the reader's
reason), a node's scrub (`scrub`), a node down longer than `node_repair_after_s`
(`node_down`), removed (`node_removed`) or drained (`drain`), or a chunk whose tier changed
(`tier`, coordinator/tiers.py). One mechanism serves them all: a worker claims chunks, and for
each claimed index the coordinator says where its shard must end up (`RepairTask.targets`):
the node it is on when that node is up and in the chunk's pool (the worker then only checks
the shard and rewrites it if bad), else a healthy node of the chunk's pool holding no other
shard of it. The worker (workers/repair.py) reads any 10 good shards, rebuilds or copies,
writes, and reports with `complete_repair`, which moves the placement rows only if they
still name the node the worker read from (a concurrent rewrite wins).

Claims are leases (`lease_until`): a worker that dies loses nothing, its rows are claimable
again after the lease. Claiming is one conditional UPDATE per batch (`... WHERE lease_until IS
NULL OR lease_until < now`), so two workers never hold the same row on either backend.
Chunks with the most lost shards go first; moves (drain, tier), which lose nothing, go last.
A failed attempt backs off exponentially (`not_before`).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import placement
from coordinator.chunkrefs import QUEUE_REPAIR
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.nodes import NodeQueries, home_pool
from coordinator.records import RepairTask, ShardMove, ShardPlacement
from coordinator.schema import chunk_shards, chunks, nodes, repair_log, repair_queue
from coordinator.tiers import MOVE_REASONS

log = logging.getLogger(__name__)

_rq = repair_queue.c
_cs = chunk_shards.c
_c = chunks.c
_n = nodes.c
MAX_CLAIM = 256
BACKOFF_S = (5.0, 30.0, 120.0, 600.0, 1800.0)
LOG_KEEP_S = 7 * 86400.0
RATE_WINDOW_S = 600.0

_NOW = sa.bindparam("now", type_=sa.Float)
_CLAIMABLE = sa.and_(
    sa.or_(_rq.lease_until.is_(None), _rq.lease_until < _NOW),
    sa.or_(_rq.not_before.is_(None), _rq.not_before <= _NOW),
)
_LOST = sa.func.sum(sa.case((_rq.reason.in_(MOVE_REASONS), 0), else_=1))
_CANDIDATES = (
    sa.select(_rq.chunk_key)
    .where(_CLAIMABLE)
    .group_by(_rq.chunk_key)
    .order_by(_LOST.desc(), sa.func.min(_rq.created_at), _rq.chunk_key)
    .limit(sa.bindparam("n", type_=sa.Integer))
)
_CLAIM = (
    sa.update(repair_queue)
    .where(_rq.chunk_key.in_(sa.bindparam("keys", expanding=True)), _CLAIMABLE)
    .values(claimed_by=sa.bindparam("worker"), lease_until=sa.bindparam("until", type_=sa.Float))
    .returning(_rq.chunk_key, _rq.idx, _rq.reason, _rq.node_id)
)
_CHUNKS = sa.select(
    _c.chunk_key, _c.enc_size, _c.refcount, _c.tier, _c.inline_data.is_(None).label("sharded")
).where(_c.chunk_key.in_(sa.bindparam("keys", expanding=True)))
_SHARDS = sa.select(_cs.chunk_key, _cs.idx, _cs.node_id, _cs.checksum).where(
    _cs.chunk_key.in_(sa.bindparam("keys", expanding=True))
)
_MINE = sa.and_(_rq.chunk_key == sa.bindparam("k"), _rq.claimed_by == sa.bindparam("worker"))
_DROP_ROWS = sa.delete(repair_queue).where(_MINE, _rq.idx.in_(sa.bindparam("idx", expanding=True)))
_DROP_CLAIMED = sa.delete(repair_queue).where(_MINE)
_RELEASE = (
    sa.update(repair_queue)
    .where(_MINE)
    .values(
        claimed_by=None,
        lease_until=None,
        attempts=_rq.attempts + 1,
        not_before=sa.bindparam("not_before", type_=sa.Float),
        last_error=sa.bindparam("err"),
    )
)
_UNCLAIM = sa.update(repair_queue).where(_MINE).values(claimed_by=None, lease_until=None)
_ADD_SHARD = {
    d: ins(chunk_shards).on_conflict_do_nothing(index_elements=[_cs.chunk_key, _cs.idx])
    for d, ins in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
}
_MOVE_SHARD = (
    sa.update(chunk_shards)
    .where(
        _cs.chunk_key == sa.bindparam("k"), _cs.idx == sa.bindparam("i"), _cs.node_id == sa.bindparam("old")
    )
    .values(node_id=sa.bindparam("new"), checksum=sa.bindparam("checksum"))
)


# Shards on a node that hold data someone references (garbage at refcount 0 is GC's).
_REFERENCED_ON_NODE = sa.and_(_cs.node_id == sa.bindparam("node"), _c.refcount > 0)
_HELD = (
    sa.select(sa.func.count())
    .select_from(chunk_shards.join(chunks, _c.chunk_key == _cs.chunk_key))
    .where(_REFERENCED_ON_NODE)
)


def _queue_node_shards(insert: Any) -> Any:
    """Every referenced shard the placement records on one node, queued with one reason."""
    select = (
        sa.select(
            _cs.chunk_key, _cs.idx, sa.bindparam("reason"), _cs.node_id, sa.bindparam("now", type_=sa.Float)
        )
        .select_from(chunk_shards.join(chunks, _c.chunk_key == _cs.chunk_key))
        .where(_REFERENCED_ON_NODE)
    )
    return (
        insert(repair_queue)
        .from_select(["chunk_key", "idx", "reason", "node_id", "created_at"], select)
        .on_conflict_do_nothing(index_elements=[_rq.chunk_key, _rq.idx])
    )


_QUEUE_NODE = {
    "sqlite": _queue_node_shards(sqlite.insert),
    "postgresql": _queue_node_shards(postgresql.insert),
}


def backoff(attempts: int) -> float:
    return BACKOFF_S[min(attempts, len(BACKOFF_S) - 1)]


class RepairQueries(NodeQueries):
    # ---- what queues work ----------------------------------------------------------------------

    async def queue_corrupt_shards(
        self, conn: AsyncConnection, node_id: str, shard_ids: list[str], now: float
    ) -> None:
        """Shards a node's scrub (or its reads) found corrupt, from its heartbeat: queued if the
        placement records them on that node (anything else is an orphan, not ours to fix)."""
        wanted: list[tuple[str, int]] = []
        for sid in shard_ids:
            key, _, index = sid.rpartition(".")
            if key and index.isdigit() and int(index) < placement.SHARDS:
                wanted.append((key, int(index)))
        if not wanted:
            return
        rows = []
        for key, index in wanted:
            found = (
                await conn.execute(
                    sa.select(_cs.chunk_key).where(
                        _cs.chunk_key == key, _cs.idx == index, _cs.node_id == node_id
                    )
                )
            ).first()
            if found is not None:
                rows.append(
                    {"chunk_key": key, "idx": index, "reason": "scrub", "node_id": node_id, "created_at": now}
                )
        if rows:
            await conn.execute(QUEUE_REPAIR[self.db.dialect], rows)
            log.warning("repair.scrub_report", extra={"fields": {"node_id": node_id, "shards": len(rows)}})

    async def _queue_node(self, conn: AsyncConnection, node_id: str, reason: str, now: float) -> int:
        result = await conn.execute(
            _QUEUE_NODE[self.db.dialect], {"reason": reason, "node": node_id, "now": now}
        )
        await conn.execute(sa.update(nodes).where(_n.node_id == node_id).values(repair_queued_at=now))
        return max(0, result.rowcount or 0)

    async def _queue_down_nodes(self, conn: AsyncConnection, now: float) -> None:
        """Nodes silent for longer than node_repair_after_s get all their shards queued, once.

        The period counts from when a claim first found the node silent (`down_since`), not from
        its last heartbeat, so a coordinator back from an outage (or a clock that jumped) does
        not find every node overdue at once.

        Not while fewer than 14 nodes answer: then the silence is more likely the coordinator's
        (its network, or its clock jumping) than the nodes', and there would be nowhere to
        rebuild to anyway."""
        alive = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(nodes)
                .where(_n.last_seen >= now - self.node_down_after_s, _n.state.in_(("up", "draining")))
            )
        ).scalar() or 0
        if alive < placement.SHARDS:
            return
        silent = sa.and_(_n.last_seen < now - self.node_down_after_s, _n.state != "removed")
        await conn.execute(sa.update(nodes).where(silent, _n.down_since.is_(None)).values(down_since=now))
        rows = (
            await conn.execute(
                sa.select(_n.node_id).where(
                    silent,
                    _n.down_since <= now - self.node_repair_after_s,
                    _n.repair_queued_at.is_(None),
                )
            )
        ).all()
        for row in rows:
            queued = await self._queue_node(conn, row.node_id, "node_down", now)
            log.warning("repair.node_down", extra={"fields": {"node_id": row.node_id, "shards": queued}})

    # ---- the worker's side ---------------------------------------------------------------------

    async def claim_repairs(
        self, worker_id: str, limit: int = 16, lease_s: float = 300.0
    ) -> list[RepairTask]:
        if not worker_id or len(worker_id) > 200:
            raise error("InvalidArgument", "worker_id must be 1-200 characters")
        if not 1 <= limit <= MAX_CLAIM:
            raise error("InvalidArgument", f"limit must be 1..{MAX_CLAIM}")
        if not 1.0 <= lease_s <= 86400.0:
            raise error("InvalidArgument", "lease_s must be 1..86400 seconds")

        async def tx(conn: AsyncConnection) -> list[RepairTask]:
            now = self.now()
            await self._queue_down_nodes(conn, now)
            keys = [r.chunk_key for r in await conn.execute(_CANDIDATES, {"now": now, "n": limit})]
            if not keys:
                return []
            claimed: dict[str, dict[int, Any]] = {}
            for r in await conn.execute(
                _CLAIM, {"keys": keys, "now": now, "worker": worker_id, "until": now + lease_s}
            ):
                claimed.setdefault(r.chunk_key, {})[r.idx] = r
            if not claimed:
                return []
            wanted = [k for k in keys if k in claimed]  # most lost shards first
            chunk_rows = {r.chunk_key: r for r in await conn.execute(_CHUNKS, {"keys": wanted})}
            shard_rows: dict[str, dict[int, Any]] = {}
            for r in await conn.execute(_SHARDS, {"keys": wanted}):
                shard_rows.setdefault(r.chunk_key, {})[r.idx] = r
            node_rows = {r.node_id: r for r in await self._node_rows(conn)}
            tasks = []
            for key in wanted:
                chunk = chunk_rows.get(key)
                if chunk is None or chunk.refcount <= 0 or not chunk.sharded:
                    # Gone, garbage (GC deletes it) or kept inline: nothing to repair.
                    await conn.execute(_DROP_CLAIMED, {"k": key, "worker": worker_id})
                    continue
                task, unplaceable = self._plan(chunk, shard_rows.get(key, {}), claimed[key], node_rows, now)
                if unplaceable:
                    await conn.execute(
                        _RELEASE.where(_rq.idx.in_(unplaceable)),
                        {
                            "k": key,
                            "worker": worker_id,
                            "not_before": now + backoff(0),
                            "err": "no healthy node without a shard of this chunk in its pool",
                        },
                    )
                if task.targets:
                    tasks.append(task)
            return tasks

        return await self.db.write(tx)

    def _plan(
        self,
        chunk: Any,
        shards: dict[int, Any],
        claimed: dict[int, Any],
        node_rows: dict[str, Any],
        now: float,
    ) -> tuple[RepairTask, list[int]]:
        """Where each claimed index's shard must end up; the indexes no node can take.

        The chunk's home is the pool of its tier if the cluster has one (14 registered nodes
        or more), else the STANDARD pool, else every node, as placement chooses. Only its up
        nodes take shards: while too few of them answer, the moves wait (backing off) rather
        than land in another pool and stay there."""
        state = {nid: self._state(r, now) for nid, r in node_rows.items()}
        pool = [r for r in home_pool(node_rows.values(), chunk.tier) if state[r.node_id] == "up"]
        in_pool = {r.node_id for r in pool}

        def candidate(r: Any) -> placement.Candidate:
            return placement.Candidate(
                r.node_id, float(r.free_bytes) if r.free_bytes > 0 else 1.0, r.host, r.rack
            )

        targets: dict[int, str] = {}
        moving: list[int] = []
        for index in sorted(claimed):
            cur = shards.get(index)
            if cur is not None and cur.node_id in in_pool:
                targets[index] = cur.node_id  # check it, rewrite it there if bad
            else:
                moving.append(index)
        kept = [
            candidate(node_rows[s.node_id])
            for i, s in shards.items()
            if i not in moving and s.node_id in node_rows
        ]
        # A node holding a shard being moved off it is no home for another of the chunk's shards.
        holding = {s.node_id for s in shards.values()}
        free = [candidate(r) for r in pool if r.node_id not in holding]
        homes = placement.replacements(chunk.chunk_key, free, kept, len(moving))
        for index, node in zip(moving, homes, strict=False):
            targets[index] = node.node_id
        unplaceable = moving[len(homes) :]

        def at(index: int, node_id: str, checksum: str | None) -> ShardPlacement:
            row = node_rows.get(node_id)
            return ShardPlacement(
                index=index, node_id=node_id, address=row.address if row else "", checksum=checksum
            )

        recorded = [at(i, s.node_id, s.checksum) for i, s in sorted(shards.items())]
        readable = [i for i, s in sorted(shards.items()) if state.get(s.node_id) in ("up", "draining")]
        task = RepairTask(
            chunk_key=chunk.chunk_key,
            enc_size=chunk.enc_size,
            shards=recorded,
            readable=readable,
            targets=[
                at(i, n, shards[i].checksum if i in shards else None) for i, n in sorted(targets.items())
            ],
            reasons=[claimed[i].reason for i in sorted(targets)],
            tier=chunk.tier,
        )
        return task, unplaceable

    async def complete_repair(
        self,
        chunk_key: str,
        worker_id: str,
        moved: list[ShardMove],
        verified: list[int],
        failed: list[tuple[int, str]],
        bytes_written: int = 0,
    ) -> None:
        for m in moved:
            if not 0 <= m.index < placement.SHARDS or not m.new_node or len(m.new_node) > 64:
                raise error("InvalidArgument", f"invalid shard move {m}")

        async def tx(conn: AsyncConnection) -> None:
            now = self.now()
            landed = []
            for m in moved:
                # Only from the node the worker read: a concurrent rewrite or move wins, and the
                # row stays queued to be planned again against what the placement says now.
                if m.old_node:
                    result = await conn.execute(
                        _MOVE_SHARD,
                        {
                            "k": chunk_key,
                            "i": m.index,
                            "old": m.old_node,
                            "new": m.new_node,
                            "checksum": m.checksum,
                        },
                    )
                else:
                    result = await conn.execute(
                        _ADD_SHARD[self.db.dialect],
                        {
                            "chunk_key": chunk_key,
                            "idx": m.index,
                            "node_id": m.new_node,
                            "checksum": m.checksum,
                        },
                    )
                if result.rowcount:
                    landed.append(m)
            done = sorted({m.index for m in landed} | set(verified))
            if done:
                await conn.execute(_DROP_ROWS, {"k": chunk_key, "worker": worker_id, "idx": done})
            if failed:
                attempts = (
                    await conn.execute(sa.select(sa.func.max(_rq.attempts)).where(_rq.chunk_key == chunk_key))
                ).scalar() or 0
                reason = "; ".join(f"shard {i}: {why}" for i, why in sorted(failed))[:1000]
                await conn.execute(
                    _RELEASE.where(_rq.idx.in_(sorted({i for i, _ in failed}))),
                    {
                        "k": chunk_key,
                        "worker": worker_id,
                        "not_before": now + backoff(attempts),
                        "err": reason,
                    },
                )
            # Claimed rows it did not settle (a move that lost a race, none normally): back to the queue.
            await conn.execute(_UNCLAIM, {"k": chunk_key, "worker": worker_id})
            if landed:
                await conn.execute(
                    repair_log.insert().values(
                        at=now,
                        chunk_key=chunk_key,
                        shards=len(landed),
                        bytes=max(0, bytes_written),
                        reason="repair",
                    )
                )
                await conn.execute(sa.delete(repair_log).where(repair_log.c.at < now - LOG_KEEP_S))

        await self.db.write(tx)

    # ---- operators -----------------------------------------------------------------------------

    async def _node(self, conn: AsyncConnection, node_id: str) -> Any:
        row = (
            await conn.execute(
                sa.select(*(c for c in nodes.c if c.name != "health")).where(_n.node_id == node_id)
            )
        ).first()
        if row is None:
            raise error("NoSuchNode", f"no node {node_id!r} is registered")
        return row

    async def drain_node(self, node_id: str) -> dict[str, Any]:
        async def tx(conn: AsyncConnection) -> dict[str, Any]:
            row = await self._node(conn, node_id)
            if row.state == "removed":
                raise error("InvalidRequest", f"node {node_id} is removed")
            now = self.now()
            await conn.execute(sa.update(nodes).where(_n.node_id == node_id).values(state="draining"))
            queued = await self._queue_node(conn, node_id, "drain", now)
            await record_audit(conn, "admin", "node.drain", node_id, {"shards": queued}, at=now)
            return {"node_id": node_id, "state": "draining", "queued_shards": queued}

        self._view = None
        return await self.db.write(tx)

    async def remove_node(self, node_id: str, force: bool = False) -> dict[str, Any]:
        async def tx(conn: AsyncConnection) -> dict[str, Any]:
            row = await self._node(conn, node_id)
            now = self.now()
            held = (await conn.execute(_HELD, {"node": node_id})).scalar() or 0
            alive = self._state(row, now) in ("up", "draining")
            if held and alive and not force:
                raise error(
                    "InvalidRequest",
                    f"node {node_id} is up and still holds {held} shards: drain it first "
                    "(`shardbox admin nodes drain`), or remove it with --force to rebuild them "
                    "from the others",
                )
            await conn.execute(sa.update(nodes).where(_n.node_id == node_id).values(state="removed"))
            queued = await self._queue_node(conn, node_id, "node_removed", now) if held else 0
            await record_audit(
                conn, "admin", "node.remove", node_id, {"shards": queued, "force": force}, at=now
            )
            return {"node_id": node_id, "state": "removed", "queued_shards": queued}

        self._view = None
        return await self.db.write(tx)

    async def repair_status(self) -> dict[str, Any]:
        async def q(conn: AsyncConnection) -> dict[str, Any]:
            now = self.now()
            by_reason = {
                r.reason: {"shards": r.shards, "chunks": r.chunks}
                for r in await conn.execute(
                    sa.select(
                        _rq.reason,
                        sa.func.count().label("shards"),
                        sa.func.count(sa.distinct(_rq.chunk_key)).label("chunks"),
                    ).group_by(_rq.reason)
                )
            }
            totals = (
                await conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.count(sa.distinct(_rq.chunk_key)),
                        sa.func.sum(sa.case((_rq.lease_until > now, 1), else_=0)),
                        sa.func.sum(sa.case((_rq.not_before > now, 1), else_=0)),
                        sa.func.min(_rq.created_at),
                    )
                )
            ).one()
            recent = (
                await conn.execute(
                    sa.select(
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(repair_log.c.shards), 0),
                        sa.func.coalesce(sa.func.sum(repair_log.c.bytes), 0),
                    ).where(repair_log.c.at >= now - RATE_WINDOW_S)
                )
            ).one()
            errors = [
                {
                    "chunk_key": r.chunk_key,
                    "index": r.idx,
                    "attempts": r.attempts,
                    "error": r.last_error,
                    "retry_at": r.not_before,
                }
                for r in await conn.execute(
                    sa.select(_rq.chunk_key, _rq.idx, _rq.attempts, _rq.last_error, _rq.not_before)
                    .where(_rq.last_error.is_not(None))
                    .order_by(_rq.attempts.desc(), _rq.chunk_key)
                    .limit(20)
                )
            ]
            return {
                "backlog_shards": totals[0],
                "backlog_chunks": totals[1],
                "in_progress_shards": int(totals[2] or 0),
                "backing_off_shards": int(totals[3] or 0),
                "oldest_queued_at": totals[4],
                "by_reason": by_reason,
                "window_s": RATE_WINDOW_S,
                "repaired_chunks": recent[0],
                "repaired_shards": int(recent[1]),
                "repaired_bytes": int(recent[2]),
                "shards_per_s": round(int(recent[1]) / RATE_WINDOW_S, 3),
                "bytes_per_s": round(int(recent[2]) / RATE_WINDOW_S, 1),
                "errors": errors,
            }

        return await self.db.read(q)
