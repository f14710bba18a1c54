"""Moving a version's chunks to another tier's pool: set the tier, queue the shards.

A chunk's `tier` names the pool its shards belong in; changing it queues every shard of the
chunk with reason `tier`, and the repair worker moves them (coordinator/repairs.py decides
the nodes), so tiering, restores, drains and repairs share one mover. Chunks are
deduplicated: a chunk goes colder only if the version being tiered holds every reference to
it (its refcount equals that version's references), so an object never becomes slower
because another object sharing its bytes was archived; it may always go warmer.

A row already queued for a shard (a repair, or a move in the other direction that a worker
is busy with) is handed back to the queue: the worker's report then lands its placement
move but leaves the row, which is claimed again and planned against the new tier.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from config.tiers import COLD, TIERS, storage_tier
from coordinator.records import ObjectInfo
from coordinator.schema import chunk_shards, chunks, object_chunks, object_restores, repair_queue

_c = chunks.c
_cs = chunk_shards.c
_rq = repair_queue.c
_oc = object_chunks.c
MOVE_REASONS = ("drain", "tier")  # shards that are fine where they are, only in the wrong place

_MANIFEST_KEYS = sa.select(_oc.chunk_key).where(_oc.version_id == sa.bindparam("v"))
_CHUNK_TIERS = sa.select(_c.chunk_key, _c.refcount, _c.tier, _c.inline_data.is_(None).label("sharded")).where(
    _c.chunk_key.in_(sa.bindparam("keys", expanding=True))
)
_SET_TIER = sa.update(chunks).where(_c.chunk_key == sa.bindparam("k")).values(tier=sa.bindparam("t"))


def _queue_chunk(insert: Any) -> Any:
    select = sa.select(
        _cs.chunk_key, _cs.idx, sa.literal("tier"), _cs.node_id, sa.bindparam("now", type_=sa.Float)
    ).where(_cs.chunk_key == sa.bindparam("k"))
    ins = insert(repair_queue).from_select(["chunk_key", "idx", "reason", "node_id", "created_at"], select)
    return ins.on_conflict_do_update(
        index_elements=[_rq.chunk_key, _rq.idx],
        set_={
            "reason": sa.case((_rq.reason.in_(MOVE_REASONS), "tier"), else_=_rq.reason),
            "claimed_by": None,
            "lease_until": None,
            "not_before": None,
        },
    )


_QUEUE_CHUNK = {"sqlite": _queue_chunk(sqlite.insert), "postgresql": _queue_chunk(postgresql.insert)}


async def retier_version(dialect: str, conn: AsyncConnection, version_id: str, tier: str, now: float) -> int:
    """Send the version's chunks to `tier` (colder: only those it holds every reference to);
    returns how many chunks will move."""
    assert tier in TIERS, tier
    refs = Counter(r.chunk_key for r in await conn.execute(_MANIFEST_KEYS, {"v": version_id}))
    if not refs:
        return 0
    moved = 0
    keys = sorted(refs)
    for i in range(0, len(keys), 500):
        for row in await conn.execute(_CHUNK_TIERS, {"keys": keys[i : i + 500]}):
            if not row.sharded or row.tier == tier:
                continue
            if TIERS.index(tier) > TIERS.index(row.tier) and row.refcount != refs[row.chunk_key]:
                continue  # shared with another version: it stays as warm as it is
            await conn.execute(_SET_TIER, {"k": row.chunk_key, "t": tier})
            await conn.execute(_QUEUE_CHUNK[dialect], {"k": row.chunk_key, "now": now})
            moved += 1
    return moved


_PENDING = (
    sa.select(sa.func.count())
    .select_from(repair_queue.join(object_chunks, _oc.chunk_key == _rq.chunk_key))
    .where(_oc.version_id == sa.bindparam("v"), _rq.reason == "tier")
)


async def moves_pending(conn: AsyncConnection, version_id: str) -> int:
    """Shards of the version's chunks still waiting to move to their tier."""
    return (await conn.execute(_PENDING, {"v": version_id})).scalar() or 0


_RESTORE = sa.select(object_restores.c.state, object_restores.c.expires_at).where(
    object_restores.c.version_id == sa.bindparam("v")
)


async def with_restore(conn: AsyncConnection, info: ObjectInfo) -> ObjectInfo:
    """ObjectInfo of a COLD version with its RestoreObject state (other versions have none)."""
    if storage_tier(info.storage_class) == COLD:
        row = (await conn.execute(_RESTORE, {"v": info.version_id})).first()
        if row is not None:
            info.restore, info.restore_expires_at = row.state, row.expires_at
    return info
