"""Garbage collection: unreferenced chunks, orphan shards and expired upload sessions.

Chunks. A chunk whose refcount reached 0 keeps its row and shards for the grace period
(`[coordinator] gc_grace_s`, 24 h by default); a write referencing it again within that
time revives it. After it, `gc_claim_chunks` claims it with a lease (`gc_worker`,
`gc_lease_until`): from that moment the claim is a tombstone. The worker deletes the shards
on their nodes, then `gc_finish_chunks` removes the row (its placements go with it). A
worker that dies mid-way leaves the tombstone; another claims it again when the lease ends
and deletes again (deleting is idempotent).

Why the tombstone and the pin. Placement is deterministic, so a client writing the same
bytes again writes the very shards GC is deleting. Two rules close that race:
- a commit cannot reference a chunk GC has claimed: the reference's upsert does nothing to
  a tombstoned row (`ON CONFLICT ... DO UPDATE ... WHERE gc_lease_until IS NULL`) and the
  commit fails with ServiceUnavailable (the client retries);
- `place_chunks` pins what it is asked about: a chunk at refcount 0 starts its grace
  again (zero_since = now) and orphan candidates of it are forgotten, so nothing the
  writer is about to write can be collected before the writer commits, unless the commit
  comes more than a grace period later; a chunk GC has claimed answers ServiceUnavailable
  until its collection is done (then it is simply new).

Orphans. Reconciliation lists every node's shards (`gc_note_shards`, page by page, for one
pass id); a shard no chunk_shards row places on that node becomes a candidate with the
time it was first seen; after a whole pass, candidates of the node it did not see again
are forgotten (`gc_forget_orphans`). Candidates unreferenced for the grace period are
claimed (`gc_claim_orphans`, checked once more against the metadata), deleted on the node
and forgotten (`gc_finish_orphans`).

Expiry. `expire_uploads` aborts sessions past their expiry (multipart, single PUT, product
uploads alike): chunk references and quota reservations are released.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.base import QueryBase
from coordinator.errors import being_collected, error
from coordinator.records import CoordinatorError, GcChunk, GcOrphan, ShardPlacement
from coordinator.schema import chunk_shards, chunks, gc_orphans, nodes, repair_queue, upload_sessions
from coordinator.workqueue import MAX_CLAIM, _check_worker, claim_rows

log = logging.getLogger(__name__)
_c = chunks.c
_cs = chunk_shards.c
_go = gc_orphans.c
_us = upload_sessions.c
MAX_NOTE = 10_000
_KEY_IN = 500  # keys per IN (...) list
_SHARD_ID = re.compile(r"^([0-9a-f]{64})\.([0-9]|1[0-3])$")


def parse_shard_id(shard_id: str) -> tuple[str, int] | None:
    """(chunk_key, index) of a shard id this system writes, else None."""
    m = _SHARD_ID.match(shard_id)
    return (m.group(1), int(m.group(2))) if m else None


class GcQueries(QueryBase):
    # ---- the writers' side: placement pins what it hands out ---------------------------------

    async def pin_for_write(self, keys: list[str]) -> None:
        """Called by place_chunks (see the module doc): chunks at refcount 0 start their grace
        again, orphan candidates of them are forgotten; ServiceUnavailable for a chunk GC has
        claimed. A read first: the common case (new chunks, nothing to pin) writes nothing."""
        wanted = sorted(set(keys))
        if not wanted:
            return

        async def look(conn: AsyncConnection) -> tuple[list[str], list[str], str | None]:
            zero, orphaned, busy = [], [], None
            for i in range(0, len(wanted), _KEY_IN):
                batch = wanted[i : i + _KEY_IN]
                for r in await conn.execute(
                    sa.select(_c.chunk_key, _c.gc_lease_until).where(
                        _c.chunk_key.in_(batch), _c.refcount <= 0
                    )
                ):
                    if r.gc_lease_until is not None:
                        busy = r.chunk_key
                    zero.append(r.chunk_key)
                for r in await conn.execute(
                    sa.select(_go.chunk_key, _go.lease_until).where(_go.chunk_key.in_(batch))
                ):
                    if r.lease_until is not None:
                        busy = r.chunk_key
                    orphaned.append(r.chunk_key)
            return zero, sorted(set(orphaned)), busy

        zero, orphaned, busy = await self.db.read(look)
        if busy is not None:
            raise being_collected(busy)
        if not zero and not orphaned:
            return

        async def pin(conn: AsyncConnection) -> None:
            now = self.now()
            for i in range(0, len(zero), _KEY_IN):
                batch = zero[i : i + _KEY_IN]
                pinned = await conn.execute(
                    sa.update(chunks)
                    .where(_c.chunk_key.in_(batch), _c.refcount <= 0, _c.gc_lease_until.is_(None))
                    .values(zero_since=now)
                    .returning(_c.chunk_key)
                )
                missed = set(batch) - {r.chunk_key for r in pinned}
                if missed:  # revived meanwhile (fine), or claimed by GC meanwhile (not)
                    claimed = (
                        await conn.execute(
                            sa.select(_c.chunk_key).where(
                                _c.chunk_key.in_(sorted(missed)), _c.gc_lease_until.is_not(None)
                            )
                        )
                    ).first()
                    if claimed is not None:
                        raise being_collected(claimed.chunk_key)
            for i in range(0, len(orphaned), _KEY_IN):
                batch = orphaned[i : i + _KEY_IN]
                await conn.execute(
                    sa.delete(gc_orphans).where(_go.chunk_key.in_(batch), _go.lease_until.is_(None))
                )
                claimed = (
                    await conn.execute(sa.select(_go.chunk_key).where(_go.chunk_key.in_(batch)).limit(1))
                ).first()
                if claimed is not None:
                    raise being_collected(claimed.chunk_key)

        await self.db.write(pin)

    # ---- chunks --------------------------------------------------------------------------------

    async def gc_claim_chunks(self, worker_id: str, limit: int = 200, lease_s: float = 60.0) -> list[GcChunk]:
        _check_worker(worker_id, lease_s)
        if not 1 <= limit <= MAX_CLAIM * 5:
            raise error("InvalidArgument", f"limit must be 1-{MAX_CLAIM * 5}")

        async def tx(conn: AsyncConnection) -> list[GcChunk]:
            now = self.now()
            rows = await claim_rows(
                self.db,
                conn,
                chunks,
                where=[_c.refcount <= 0, _c.zero_since < now - self.gc_grace_s],
                order_by=[_c.zero_since],
                limit=limit,
                worker_id=worker_id,
                lease_s=lease_s,
                now=now,
                holder="gc_worker",
                lease="gc_lease_until",
                attempts=None,
                returning=[_c.chunk_key, _c.size],
            )
            found = {r.chunk_key: GcChunk(chunk_key=r.chunk_key, size=r.size) for r in rows}
            keys = sorted(found)
            for i in range(0, len(keys), _KEY_IN):
                for s in await conn.execute(
                    sa.select(_cs.chunk_key, _cs.idx, _cs.node_id, _cs.checksum, nodes.c.address)
                    .select_from(chunk_shards.outerjoin(nodes, nodes.c.node_id == _cs.node_id))
                    .where(_cs.chunk_key.in_(keys[i : i + _KEY_IN]))
                    .order_by(_cs.chunk_key, _cs.idx)
                ):
                    found[s.chunk_key].shards.append(
                        ShardPlacement(s.idx, s.node_id, s.address or "", s.checksum)
                    )
            return [found[k] for k in keys]

        return await self.db.write(tx)

    async def gc_finish_chunks(self, worker_id: str, chunk_keys: list[str]) -> int:
        _check_worker(worker_id)
        keys = sorted(set(chunk_keys))
        if len(keys) > MAX_CLAIM * 5:
            raise error("InvalidArgument", f"at most {MAX_CLAIM * 5} chunk keys")

        async def tx(conn: AsyncConnection) -> int:
            done = 0
            for i in range(0, len(keys), _KEY_IN):
                batch = keys[i : i + _KEY_IN]
                result = await conn.execute(
                    sa.delete(chunks)
                    .where(_c.chunk_key.in_(batch), _c.gc_worker == worker_id, _c.refcount <= 0)
                    .returning(_c.chunk_key)
                )
                gone = [r.chunk_key for r in result]
                done += len(gone)
                if gone:  # nothing left to repair of a chunk that no longer exists
                    await conn.execute(sa.delete(repair_queue).where(repair_queue.c.chunk_key.in_(gone)))
            return done

        return await self.db.write(tx)

    # ---- orphan shards -------------------------------------------------------------------------

    async def gc_note_shards(self, node_id: str, shard_ids: list[str], pass_id: str) -> int:
        if len(shard_ids) > MAX_NOTE:
            raise error("InvalidArgument", f"at most {MAX_NOTE} shard ids per call")
        if not pass_id or len(pass_id) > 64 or not node_id or len(node_id) > 64:
            raise error("InvalidArgument", "node_id and pass_id must be 1-64 characters")
        parsed = {sid: p for sid in set(shard_ids) if (p := parse_shard_id(sid)) is not None}

        keys = sorted({k for k, _ in parsed.values()})

        # A read first: in a healthy cluster a page holds no orphan and no stale candidate,
        # and a pass over millions of shards should write nothing then.
        ids = sorted(parsed)

        async def look(conn: AsyncConnection) -> tuple[list[str], list[str]]:
            # Both by index (node_id first): ix_chunk_shards_node_chunk and the candidates'
            # unique (node_id, shard_id); the cost is the page's, not the node's shard count.
            referenced: set[tuple[str, int]] = set()
            candidates: set[str] = set()
            for i in range(0, len(keys), _KEY_IN):
                for r in await conn.execute(
                    sa.select(_cs.chunk_key, _cs.idx).where(
                        _cs.node_id == node_id, _cs.chunk_key.in_(keys[i : i + _KEY_IN])
                    )
                ):
                    referenced.add((r.chunk_key, r.idx))
            for i in range(0, len(ids), _KEY_IN):
                for r in await conn.execute(
                    sa.select(_go.shard_id).where(
                        _go.node_id == node_id, _go.shard_id.in_(ids[i : i + _KEY_IN])
                    )
                ):
                    candidates.add(r.shard_id)
            orphans = sorted(sid for sid, p in parsed.items() if p not in referenced)
            # referenced again since they were noted: no longer candidates
            stale = sorted(sid for sid, p in parsed.items() if p in referenced and sid in candidates)
            return orphans, stale

        orphans, stale = await self.db.read(look)
        if not orphans and not stale:
            return 0

        async def tx(conn: AsyncConnection) -> int:
            now = self.now()
            for i in range(0, len(stale), _KEY_IN):
                await conn.execute(
                    sa.delete(gc_orphans).where(
                        _go.node_id == node_id,
                        _go.shard_id.in_(stale[i : i + _KEY_IN]),
                        _go.lease_until.is_(None),
                    )
                )
            if orphans:
                ins = self.db.insert(gc_orphans)
                await conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=[_go.node_id, _go.shard_id], set_={"pass_id": ins.excluded.pass_id}
                    ),
                    [
                        {
                            "node_id": node_id,
                            "shard_id": sid,
                            "chunk_key": parsed[sid][0],
                            "idx": parsed[sid][1],
                            "first_seen": now,
                            "pass_id": pass_id,
                            "attempts": 0,
                        }
                        for sid in orphans
                    ],
                )
            return len(orphans)

        return await self.db.write(tx)

    async def gc_forget_orphans(self, node_id: str, pass_id: str) -> int:
        async def tx(conn: AsyncConnection) -> int:
            result = await conn.execute(
                sa.delete(gc_orphans).where(
                    _go.node_id == node_id, _go.pass_id != pass_id, _go.lease_until.is_(None)
                )
            )
            return result.rowcount

        return await self.db.write(tx)

    async def gc_claim_orphans(
        self, worker_id: str, limit: int = 1000, lease_s: float = 60.0
    ) -> list[GcOrphan]:
        _check_worker(worker_id, lease_s)
        if not 1 <= limit <= MAX_NOTE:
            raise error("InvalidArgument", f"limit must be 1-{MAX_NOTE}")

        async def tx(conn: AsyncConnection) -> list[GcOrphan]:
            now = self.now()
            rows = await claim_rows(
                self.db,
                conn,
                gc_orphans,
                where=[_go.first_seen < now - self.gc_grace_s],
                order_by=[_go.id],
                limit=limit,
                worker_id=worker_id,
                lease_s=lease_s,
                now=now,
            )
            # Checked once more: a chunk written since the listing places this very shard.
            placed: set[tuple[str, int, str]] = set()
            keys = sorted({r.chunk_key for r in rows})
            for i in range(0, len(keys), _KEY_IN):
                for r in await conn.execute(
                    sa.select(_cs.chunk_key, _cs.idx, _cs.node_id).where(
                        _cs.chunk_key.in_(keys[i : i + _KEY_IN])
                    )
                ):
                    placed.add((r.chunk_key, r.idx, r.node_id))
            stale = [r.id for r in rows if (r.chunk_key, r.idx, r.node_id) in placed]
            if stale:
                await conn.execute(sa.delete(gc_orphans).where(_go.id.in_(stale)))
            address = {
                r.node_id: r.address for r in await conn.execute(sa.select(nodes.c.node_id, nodes.c.address))
            }
            return [
                GcOrphan(id=r.id, node_id=r.node_id, address=address.get(r.node_id, ""), shard_id=r.shard_id)
                for r in sorted(rows, key=lambda r: r.id)
                if r.id not in stale
            ]

        return await self.db.write(tx)

    async def gc_finish_orphans(self, worker_id: str, orphan_ids: list[int]) -> int:
        _check_worker(worker_id)
        ids = sorted(set(orphan_ids))

        async def tx(conn: AsyncConnection) -> int:
            done = 0
            for i in range(0, len(ids), _KEY_IN):
                result = await conn.execute(
                    sa.delete(gc_orphans).where(_go.id.in_(ids[i : i + _KEY_IN]), _go.claimed_by == worker_id)
                )
                done += result.rowcount
            return done

        return await self.db.write(tx)

    # ---- expired upload sessions ----------------------------------------------------------------

    async def expire_uploads(self, limit: int = 100) -> int:
        if not 1 <= limit <= MAX_CLAIM:
            raise error("InvalidArgument", f"limit must be 1-{MAX_CLAIM}")

        async def q(conn: AsyncConnection) -> list[Any]:
            return list(
                (
                    await conn.execute(
                        sa.select(_us.upload_id, _us.tenant_id, _us.bucket)
                        .where(_us.expires_at < self.now())
                        .order_by(_us.expires_at)
                        .limit(limit)
                    )
                ).all()
            )

        expired = 0
        for row in await self.db.read(q):
            try:  # each in its own transaction: one big multipart session does not hold the rest
                await self.end_session(  # type: ignore[attr-defined] - UploadQueries, in Metadata
                    row.tenant_id, row.bucket, row.upload_id, expired=True
                )
                expired += 1
            except CoordinatorError as exc:
                if exc.code != "NoSuchUpload":  # completed or aborted meanwhile
                    raise
        return expired
