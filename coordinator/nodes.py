"""Node registry (heartbeats, up/down), chunk placement answers and shard failure reports.

A node is `down` when its last heartbeat is older than node_down_after_s; this is computed
on read from last_seen, so no timer has to run and every coordinator agrees. `draining` and
`removed` are administrative states (coordinator/repairs.py): placement never picks such a
node. New chunks go to up nodes of the pool of their storage tier (config/tiers.py).

Scrub reports ride on heartbeats: the node's /health document lists the shards it found
corrupt, and every one newly listed that the placement records on that node is queued for
repair.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from config.tiers import STANDARD, TIERS, storage_tier
from coordinator import placement
from coordinator.base import QueryBase
from coordinator.errors import error
from coordinator.names import check_sha256
from coordinator.records import ChunkPlan, NodeInfo, ShardPlacement
from coordinator.schema import chunk_shards, nodes, repair_queue
from coordinator.schema import chunks as chunks_t

log = logging.getLogger(__name__)
_n = nodes.c
_cs = chunk_shards.c
MAX_PLACE_BATCH = 10000
PLACEMENT_VIEW_S = 1.0
_UPDATABLE = (
    "address",
    "pool",
    "host",
    "rack",
    "capacity_bytes",
    "used_bytes",
    "free_bytes",
    "shard_count",
    "last_seen",
    "health",
    "storage_class",
    "repair_queued_at",
    "down_since",
)


def _upsert_node(insert: Any) -> Any:
    ins = insert(nodes)
    return ins.on_conflict_do_update(
        index_elements=[_n.node_id], set_={name: ins.excluded[name] for name in _UPDATABLE}
    )


# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
_UPSERT_NODE = {"sqlite": _upsert_node(sqlite.insert), "postgresql": _upsert_node(postgresql.insert)}
_NODE_SEEN = sa.select(_n.last_seen, _n.state, _n.health).where(_n.node_id == sa.bindparam("node_id"))
MAX_CORRUPT_REPORT = 1000
# Everything but the health document (JSON nobody here reads).
_NODE_ROWS = sa.select(*(c for c in nodes.c if c.name != "health")).order_by(_n.node_id)
_STORED = (
    sa.select(_cs.chunk_key, _cs.idx, _cs.node_id, _cs.checksum, chunks_t.c.format)
    .select_from(chunks_t.join(chunk_shards, chunks_t.c.chunk_key == _cs.chunk_key))
    .where(chunks_t.c.chunk_key.in_(sa.bindparam("keys", expanding=True)), chunks_t.c.refcount > 0)
    .order_by(_cs.chunk_key, _cs.idx)
)


def home_pool(node_rows: Iterable[Any], tier: str) -> list[Any]:
    """The nodes, up or not (removed ones aside), of the pool where chunks of `tier` live: the
    tier's pool if it has 14 such nodes, else the STANDARD pool's if it has, else every node.
    New chunks are placed and repaired shards rebuilt only there."""
    registered = [r for r in node_rows if r.state != "removed"]
    for want in (tier, STANDARD):
        members = [r for r in registered if r.storage_class == want]
        if len(members) >= placement.SHARDS:
            return members
    return registered


class NodeQueries(QueryBase):
    _view: tuple[float, dict[str, str], dict[str, list[placement.Candidate]]] | None = None

    def _state(self, row: Any, now: float) -> str:
        if row.state == "removed":
            return "removed"
        if now - row.last_seen > self.node_down_after_s:
            return "down"
        return row.state

    def _info(self, row: Any, now: float) -> NodeInfo:
        return NodeInfo(
            node_id=row.node_id,
            address=row.address,
            pool=row.pool,
            host=row.host,
            rack=row.rack,
            capacity_bytes=row.capacity_bytes,
            free_bytes=row.free_bytes,
            used_bytes=row.used_bytes,
            shard_count=row.shard_count,
            state=self._state(row, now),
            last_seen=row.last_seen,
            storage_class=row.storage_class,
        )

    async def heartbeat(
        self,
        node_id: str,
        address: str,
        pool: str = "standard",
        storage_class: str = STANDARD,
        host: str | None = None,
        rack: str | None = None,
        capacity_bytes: int = 0,
        used_bytes: int = 0,
        free_bytes: int = 0,
        shard_count: int = 0,
        health: dict[str, Any] | None = None,
    ) -> NodeInfo:
        """Register or refresh a node; returns what the registry now holds for it."""
        if not node_id or len(node_id) > 64:
            raise error("InvalidArgument", "node_id must be 1-64 characters")
        if not address.startswith(("http://", "https://")):
            raise error("InvalidArgument", f"address must be an http(s) base URL, got {address!r}")
        if min(capacity_bytes, used_bytes, free_bytes, shard_count) < 0:
            raise error("InvalidArgument", "node sizes and counts must not be negative")
        if storage_class not in TIERS:
            raise error("InvalidArgument", f"storage_class must be one of {', '.join(TIERS)}")
        now = self.now()
        values = {
            "address": address.rstrip("/"),
            "pool": pool,
            "storage_class": storage_class,
            "repair_queued_at": None,
            "down_since": None,
            "host": host,
            "rack": rack,
            "capacity_bytes": capacity_bytes,
            "used_bytes": used_bytes,
            "free_bytes": free_bytes,
            "shard_count": shard_count,
            "last_seen": now,
            "health": health or {},
        }

        async def tx(conn: AsyncConnection) -> Any:
            old = (await conn.execute(_NODE_SEEN, {"node_id": node_id})).first()
            await conn.execute(_UPSERT_NODE[self.db.dialect], {"node_id": node_id, "state": "up", **values})
            before = set((old.health or {}).get("corrupt") or []) if old is not None else set()
            reported = (health or {}).get("corrupt") or []
            if isinstance(reported, list):
                fresh = [s for s in reported[:MAX_CORRUPT_REPORT] if isinstance(s, str) and s not in before]
                await self.queue_corrupt_shards(conn, node_id, fresh, now)
            return old

        old = await self.db.write(tx)
        self._view = None
        if old is None or now - old.last_seen > self.node_down_after_s:
            log.info(
                "node.up", extra={"fields": {"node_id": node_id, "address": address, "new": old is None}}
            )
        state = "up" if old is None or old.state == "up" else old.state
        return NodeInfo(node_id=node_id, state=state,
                        **{k: v for k, v in values.items()
                           if k not in ("health", "repair_queued_at", "down_since")})

    async def _node_rows(self, conn: AsyncConnection) -> list[Any]:
        return list((await conn.execute(_NODE_ROWS)).all())

    async def list_nodes(self) -> list[NodeInfo]:
        rows = await self.db.read(self._node_rows)
        now = self.now()
        return [self._info(r, now) for r in rows]

    async def node_counts(self) -> dict[str, int]:
        counts = {"up": 0, "down": 0}
        for n in await self.list_nodes():
            counts[n.state] = counts.get(n.state, 0) + 1
        return counts

    async def place_chunks(
        self, tenant_id: str, chunks: list[tuple[str, int]], storage_class: str = STANDARD
    ) -> list[ChunkPlan]:
        """For each (sha256, size): the recorded placement if stored, else fresh placements on
        up to 14 up nodes of the storage class's pool (config/tiers.py; fewer when fewer are up
        there: the unplaced indexes are the last ones, and the writer decides)."""
        if len(chunks) > MAX_PLACE_BATCH:
            raise error("InvalidArgument", f"at most {MAX_PLACE_BATCH} chunks per call")
        for sha, size in chunks:
            check_sha256(sha)
            if size < 0:
                raise error("InvalidArgument", "chunk size must not be negative")
        keys = [self.chunk_key(tenant_id, sha) for sha, _ in chunks]

        async def q(conn: AsyncConnection) -> dict[str, list[Any]]:
            stored: dict[str, list[Any]] = {}
            wanted = sorted(set(keys))
            for i in range(0, len(wanted), 500):
                batch = wanted[i : i + 500]
                for r in await conn.execute(_STORED, {"keys": batch}):
                    stored.setdefault(r.chunk_key, []).append(r)
            return stored

        address, candidates = await self._placement_view(storage_tier(storage_class))
        stored = await self.db.read(q) if keys else {}
        # What the caller is about to write must not be collected before it commits.
        await self.pin_for_write([k for k in keys if k not in stored])  # type: ignore[attr-defined]
        plans = []
        for (sha, _size), key in zip(chunks, keys, strict=True):
            if key in stored:
                shards = [
                    ShardPlacement(
                        index=r.idx,
                        node_id=r.node_id,
                        address=address.get(r.node_id, ""),
                        checksum=r.checksum,
                    )
                    for r in stored[key]
                ]
                plans.append(ChunkPlan(sha256=sha, chunk_key=key, exists=True, shards=shards,
                                       format=stored[key][0].format))
                continue
            chosen = placement.place(key, candidates)
            plans.append(
                ChunkPlan(
                    sha256=sha,
                    chunk_key=key,
                    exists=False,
                    shards=[
                        ShardPlacement(index=i, node_id=c.node_id, address=address[c.node_id])
                        for i, c in enumerate(chosen)
                    ],
                )
            )
        return plans

    async def _placement_view(self, tier: str = STANDARD) -> tuple[dict[str, str], list[placement.Candidate]]:
        """(node_id -> address, placement candidates of the tier), the registry reused for up to
        PLACEMENT_VIEW_S: placing a chunk should not re-read and re-rank the registry each
        time. A heartbeat through this process drops it; other coordinators' changes show
        within PLACEMENT_VIEW_S, far below heartbeat and node-down intervals."""
        now = self.now()
        view = self._view
        if view is None or not 0 <= now - view[0] < PLACEMENT_VIEW_S:
            rows = await self.db.read(self._node_rows)
            now = self.now()
            by_tier = {t: self._candidates(rows, now, t) for t in TIERS}
            view = (now, {r.node_id: r.address for r in rows}, by_tier)
            self._view = view
        return view[1], view[2][tier]

    def _candidates(
        self, node_rows: list[Any], now: float, tier: str = STANDARD
    ) -> list[placement.Candidate]:
        """Up nodes of the tier's pool (home_pool): a few of them down makes a degraded write
        in the pool, never a write in another pool."""
        use = [r for r in home_pool(node_rows, tier) if self._state(r, now) == "up"]
        return [
            placement.Candidate(
                node_id=r.node_id,
                weight=float(r.free_bytes) if r.free_bytes > 0 else 1.0,
                host=r.host,
                rack=r.rack,
            )
            for r in use
        ]

    async def report_shard_failure(self, chunk_key: str, index: int, node_id: str, reason: str) -> None:
        """A reader found a shard missing or corrupt: queue it for repair (once per shard)."""
        if not 0 <= index < placement.SHARDS:
            raise error("InvalidArgument", f"shard index must be 0..13, got {index}")

        async def tx(conn: AsyncConnection) -> None:
            await conn.execute(
                self.db.insert(repair_queue)
                .values(
                    chunk_key=chunk_key,
                    idx=index,
                    reason=(reason or "read_failure")[:256],
                    node_id=node_id,
                    created_at=self.now(),
                )
                .on_conflict_do_nothing(index_elements=[repair_queue.c.chunk_key, repair_queue.c.idx])
            )

        await self.db.write(tx)
        log.warning(
            "shard.failure",
            extra={"fields": {"chunk_key": chunk_key, "index": index, "node_id": node_id, "reason": reason}},
        )
