"""Chunk reference counting, placement rows and manifests.

Every change of who references which chunk goes through `apply_deltas`: the caller sums
+1 / -1 per chunk key for the whole transaction and the deltas are applied in chunk-key
order, so two transactions touching the same chunks always lock them in the same order
(no deadlocks on PostgreSQL). A positive delta is one `INSERT ... ON CONFLICT DO UPDATE SET
refcount = refcount + n` — the only dedup lock. Placement rows are written only when that
statement created the chunk (or revived one at refcount 0, whose shards the gateway just
wrote again). A chunk that drops to 0 gets `zero_since` and a `chunk.unreferenced` event; its
shards are left for the GC worker after the grace period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.db import Database
from coordinator.errors import error
from coordinator.events import emit
from coordinator.names import check_sha256
from coordinator.records import ChunkRef, ShardPlacement
from coordinator.schema import chunk_shards, chunks, nodes, object_chunks, repair_queue

_c = chunks.c


async def apply_deltas(
    db: Database,
    conn: AsyncConnection,
    deltas: Counter[str],
    new_refs: dict[str, ChunkRef],
    scope: str,
    now: float,
) -> None:
    """Apply refcount changes; new_refs describes chunks that may not exist yet."""
    for key in sorted(deltas):
        delta = deltas[key]
        if delta > 0:
            await _increment(db, conn, key, delta, new_refs.get(key), scope, now)
        elif delta < 0:
            await _decrement(conn, key, delta, now)


async def _increment(
    db: Database, conn: AsyncConnection, key: str, delta: int, ref: ChunkRef | None, scope: str, now: float
) -> None:
    if ref is None:  # a new reference to a chunk already recorded (copy, multipart assembly)
        row = (
            await conn.execute(
                sa.update(chunks)
                .where(_c.chunk_key == key)
                .values(refcount=_c.refcount + delta, zero_since=None)
                .returning(_c.refcount)
            )
        ).first()
        if row is None:
            raise error("InvalidArgument", f"chunk {key} is not recorded")
        return
    stmt = db.insert(chunks).values(
        chunk_key=key,
        scope=scope,
        sha256=ref.sha256,
        size=ref.size,
        enc_size=ref.enc_size,
        key_id=ref.key_id,
        refcount=delta,
        created_at=now,
        zero_since=None,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[_c.chunk_key], set_={"refcount": _c.refcount + delta, "zero_since": None}
    )
    refcount = (await conn.execute(stmt.returning(_c.refcount))).scalar_one()
    if refcount != delta:
        return  # already stored and referenced: its recorded placement stays
    if not ref.shards:
        raise error(
            "InvalidArgument",
            f"chunk {key} is not stored (it was unreferenced meanwhile); place and write it again",
        )
    ins = db.insert(chunk_shards).values(
        [{"chunk_key": key, "idx": s.index, "node_id": s.node_id, "checksum": s.checksum} for s in ref.shards]
    )
    ins = ins.on_conflict_do_update(
        index_elements=[chunk_shards.c.chunk_key, chunk_shards.c.idx],
        set_={"node_id": ins.excluded.node_id, "checksum": ins.excluded.checksum},
    )
    await conn.execute(ins)


async def _decrement(conn: AsyncConnection, key: str, delta: int, now: float) -> None:
    new_count = _c.refcount + delta
    row = (
        await conn.execute(
            sa.update(chunks)
            .where(_c.chunk_key == key)
            .values(refcount=new_count, zero_since=sa.case((new_count <= 0, now), else_=_c.zero_since))
            .returning(_c.refcount)
        )
    ).first()
    if row is not None and row.refcount <= 0:
        await emit(conn, "chunk.unreferenced", {"chunk_key": key}, at=now)


def check_refs(refs: Iterable[ChunkRef], scope_key: dict[str, str]) -> None:
    """Validate chunk refs from the gateway against the scope's chunk keys (sha256 -> key)."""
    for ref in refs:
        check_sha256(ref.sha256)
        expected = scope_key.get(ref.sha256)
        if expected is None or ref.chunk_key != expected:
            raise error(
                "InvalidArgument",
                f"chunk_key {ref.chunk_key!r} does not belong to sha256 "
                f"{ref.sha256!r} in this tenant's dedup scope",
            )
        if ref.size < 0 or ref.enc_size < 0:
            raise error("InvalidArgument", f"chunk {ref.chunk_key} has a negative size")
        indexes = [s.index for s in ref.shards]
        if any(not 0 <= i < 14 for i in indexes) or len(set(indexes)) != len(indexes):
            raise error("InvalidArgument", f"chunk {ref.chunk_key} has invalid or duplicate shard indexes")
        if any(not 0 <= i < 14 for i in ref.missing):
            raise error("InvalidArgument", f"chunk {ref.chunk_key} lists invalid missing shard indexes")
        if any(not s.node_id or len(s.node_id) > 64 for s in ref.shards):
            raise error("InvalidArgument", f"chunk {ref.chunk_key} has a shard without a valid node id")


async def queue_missing(db: Database, conn: AsyncConnection, refs: Iterable[ChunkRef], now: float) -> None:
    """Write shortfalls (shards not acknowledged) become repair work."""
    rows = []
    for ref in refs:
        by_index = {s.index: s.node_id for s in ref.shards}
        rows += [
            {
                "chunk_key": ref.chunk_key,
                "idx": i,
                "reason": "write_shortfall",
                "node_id": by_index.get(i),
                "created_at": now,
            }
            for i in sorted(set(ref.missing))
        ]
    if rows:
        await conn.execute(
            db.insert(repair_queue)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[repair_queue.c.chunk_key, repair_queue.c.idx])
        )


async def load_refs(conn: AsyncConnection, version_id: str) -> list[ChunkRef]:
    """The manifest of a version in order, with offsets, placements and node addresses."""
    oc = object_chunks.c
    rows = (
        await conn.execute(
            sa.select(oc.seq, oc.offset, oc.size, _c.chunk_key, _c.sha256, _c.enc_size, _c.key_id)
            .select_from(object_chunks.join(chunks, oc.chunk_key == _c.chunk_key))
            .where(oc.version_id == version_id)
            .order_by(oc.seq)
        )
    ).all()
    cs = chunk_shards.c
    shard_rows = (
        await conn.execute(
            sa.select(cs.chunk_key, cs.idx, cs.node_id, cs.checksum, nodes.c.address)
            .distinct()
            .select_from(
                object_chunks.join(chunk_shards, oc.chunk_key == cs.chunk_key).outerjoin(
                    nodes, nodes.c.node_id == cs.node_id
                )
            )
            .where(oc.version_id == version_id)
        )
    ).all()
    placements: dict[str, list[ShardPlacement]] = {}
    for s in shard_rows:
        placements.setdefault(s.chunk_key, []).append(
            ShardPlacement(index=s.idx, node_id=s.node_id, address=s.address or "", checksum=s.checksum)
        )
    for shards in placements.values():
        shards.sort(key=lambda p: p.index)
    return [
        ChunkRef(
            sha256=r.sha256,
            chunk_key=r.chunk_key,
            size=r.size,
            enc_size=r.enc_size,
            key_id=r.key_id,
            shards=list(placements.get(r.chunk_key, [])),
            offset=r.offset,
        )
        for r in rows
    ]
