"""Chunk reference counting, placement rows, inline chunk data and manifests.

Every change of who references which chunk goes through `apply_deltas`: the caller sums
+1 / -1 per chunk key for the whole transaction and the deltas are applied in chunk-key
order, so two transactions touching the same chunks always lock them in the same order
(no deadlocks on PostgreSQL). A positive delta is one `INSERT ... ON CONFLICT DO UPDATE SET
refcount = refcount + n` — the only dedup lock. Placement rows (or the inline ciphertext of a
small chunk) are written only when that statement created the chunk or revived one at
refcount 0, whose bytes the gateway just wrote again. A chunk row with inline data never
has placement rows. A chunk that drops to 0 gets `zero_since`; its shards (or row) are left
for the GC worker after the grace period, which finds them through the index on zero_since
(no event per chunk: deleting 10 TB would otherwise write a million outbox rows).

Statements are built once at import (bind parameters for the values): building and
cache-keying a SQLAlchemy statement costs several times more than running it on SQLite.
"""

from __future__ import annotations

import binascii
from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.db import Database, fast_read
from coordinator.errors import being_collected, error
from coordinator.names import check_sha256
from coordinator.records import CHUNK_FORMATS, ChunkRef, ShardPlacement
from coordinator.schema import chunk_shards, chunks, nodes, object_chunks, repair_queue

_c = chunks.c
_cs = chunk_shards.c
# The largest chunk ciphertext kept inline in the database (the gateway inlines objects of
# at most 32 KiB by default); bigger chunks belong on the nodes.
MAX_INLINE_BYTES = 1 << 20

_DELTA = sa.bindparam("delta", type_=sa.BigInteger)
_ADD_REFS = (
    sa.update(chunks)
    .where(_c.chunk_key == sa.bindparam("k"))
    .values(refcount=_c.refcount + _DELTA, zero_since=None)
    .returning(_c.refcount)
)
_DROP_REFS = (
    sa.update(chunks)
    .where(_c.chunk_key == sa.bindparam("k"))
    .values(
        refcount=_c.refcount + _DELTA,
        zero_since=sa.case(
            (_c.refcount + _DELTA <= 0, sa.bindparam("now", type_=sa.Float)), else_=_c.zero_since
        ),
    )
)
_SET_BYTES = (
    sa.update(chunks)
    .where(_c.chunk_key == sa.bindparam("k"))
    .values(inline_data=sa.bindparam("d"), format=sa.bindparam("f"))
)
_DROP_SHARDS = sa.delete(chunk_shards).where(_cs.chunk_key == sa.bindparam("k"))


def _upsert_chunk(insert: Any) -> Any:
    # A chunk GC has claimed (a tombstone: its shards are being deleted) takes no reference:
    # the statement then returns no row and the commit fails (coordinator/gc.py says why).
    return (
        insert(chunks)
        .on_conflict_do_update(
            index_elements=[_c.chunk_key],
            set_={"refcount": _c.refcount + _DELTA, "zero_since": None},
            where=_c.gc_lease_until.is_(None),
        )
        .returning(_c.refcount, _c.created_at)
    )


def _upsert_shards(insert: Any) -> Any:
    ins = insert(chunk_shards)
    return ins.on_conflict_do_update(
        index_elements=[_cs.chunk_key, _cs.idx],
        set_={"node_id": ins.excluded.node_id, "checksum": ins.excluded.checksum},
    )


def _queue_repair(insert: Any) -> Any:
    return insert(repair_queue).on_conflict_do_nothing(
        index_elements=[repair_queue.c.chunk_key, repair_queue.c.idx]
    )


_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
UPSERT_CHUNK = {d: _upsert_chunk(i) for d, i in _INSERTS.items()}
UPSERT_SHARDS = {d: _upsert_shards(i) for d, i in _INSERTS.items()}
QUEUE_REPAIR = {d: _queue_repair(i) for d, i in _INSERTS.items()}


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


def inline_bytes(ref: ChunkRef) -> bytes | None:
    """The decoded inline ciphertext of a ref, or None; InvalidArgument if malformed."""
    if ref.inline is None:
        return None
    try:
        data = binascii.a2b_base64(ref.inline, strict_mode=True)
    except (binascii.Error, ValueError):
        raise error("InvalidArgument", f"chunk {ref.chunk_key}: inline data is not valid base64") from None
    if len(data) != ref.enc_size:
        raise error(
            "InvalidArgument",
            f"chunk {ref.chunk_key}: inline data is {len(data)} bytes, enc_size says {ref.enc_size}",
        )
    return data


async def _increment(
    db: Database, conn: AsyncConnection, key: str, delta: int, ref: ChunkRef | None, scope: str, now: float
) -> None:
    if ref is None:  # a new reference to a chunk already recorded (copy, multipart assembly)
        row = (await conn.execute(_ADD_REFS, {"k": key, "delta": delta})).first()
        if row is None:
            raise error("InvalidArgument", f"chunk {key} is not recorded")
        return
    data = inline_bytes(ref)
    params = {
        "chunk_key": key,
        "scope": scope,
        "sha256": ref.sha256,
        "size": ref.size,
        "enc_size": ref.enc_size,
        "key_id": ref.key_id,
        "refcount": delta,
        "created_at": now,
        "zero_since": None,
        "inline_data": data,
        "format": ref.format,
        "delta": delta,
    }
    row = (await conn.execute(UPSERT_CHUNK[db.dialect], params)).first()
    if row is None:
        raise being_collected(key)
    if row.refcount != delta:
        return  # already stored and referenced: its recorded placement (or inline data) stays
    if row.created_at != now:
        # Revived from refcount 0: the bytes were just written again, maybe the other way
        # (inline or not, and in this writer's storage format).
        await conn.execute(_SET_BYTES, {"k": key, "d": data, "f": ref.format})
        if data is not None:
            await conn.execute(_DROP_SHARDS, {"k": key})
    if data is not None:
        return
    if not ref.shards:
        raise error(
            "InvalidArgument",
            f"chunk {key} is not stored (it was unreferenced meanwhile); place and write it again",
        )
    await conn.execute(
        UPSERT_SHARDS[db.dialect],
        [
            {"chunk_key": key, "idx": s.index, "node_id": s.node_id, "checksum": s.checksum}
            for s in ref.shards
        ],
    )


async def _decrement(conn: AsyncConnection, key: str, delta: int, now: float) -> None:
    await conn.execute(_DROP_REFS, {"k": key, "delta": delta, "now": now})


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
        if ref.format not in CHUNK_FORMATS:
            raise error("InvalidArgument", f"chunk {ref.chunk_key} has storage format {ref.format!r}; "
                        f"this coordinator knows {', '.join(map(str, CHUNK_FORMATS))}")
        indexes = [s.index for s in ref.shards]
        if any(not 0 <= i < 14 for i in indexes) or len(set(indexes)) != len(indexes):
            raise error("InvalidArgument", f"chunk {ref.chunk_key} has invalid or duplicate shard indexes")
        if any(not 0 <= i < 14 for i in ref.missing):
            raise error("InvalidArgument", f"chunk {ref.chunk_key} lists invalid missing shard indexes")
        if any(not s.node_id or len(s.node_id) > 64 for s in ref.shards):
            raise error("InvalidArgument", f"chunk {ref.chunk_key} has a shard without a valid node id")
        if ref.inline is not None:
            inline_bytes(ref)
            if ref.shards or ref.missing:
                raise error("InvalidArgument", f"chunk {ref.chunk_key} is inline and must not list shards")
            if ref.enc_size > MAX_INLINE_BYTES:
                raise error(
                    "InvalidArgument",
                    f"chunk {ref.chunk_key} is {ref.enc_size} bytes, "
                    f"at most {MAX_INLINE_BYTES} may be inline",
                )


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
        await conn.execute(QUEUE_REPAIR[db.dialect], rows)


_oc = object_chunks.c
_LOAD_REFS = fast_read(
    sa.select(
        _oc.seq,
        _oc.offset,
        _oc.size,
        _c.chunk_key,
        _c.sha256,
        _c.enc_size,
        _c.key_id,
        _c.inline_data,
        _c.format,
        _cs.idx,
        _cs.node_id,
        _cs.checksum,
        nodes.c.address,
    )
    .select_from(
        object_chunks.join(chunks, _oc.chunk_key == _c.chunk_key)
        .outerjoin(chunk_shards, _cs.chunk_key == _c.chunk_key)
        .outerjoin(nodes, nodes.c.node_id == _cs.node_id)
    )
    .where(_oc.version_id == sa.bindparam("v"))
    .order_by(_oc.seq, _cs.idx)
)
# The offset of the chunk holding byte `s`: one probe of ix_object_chunks_offset (the
# greatest offset <= s), so the ranged manifest below is an index range scan from there to
# `e` however many chunks precede the range. `offset + size > s` drops empty chunks that
# share that offset.
_FIRST_OFFSET = (
    sa.select(_oc.offset)
    .where(_oc.version_id == sa.bindparam("v"), _oc.offset <= sa.bindparam("s", type_=sa.BigInteger))
    .order_by(_oc.offset.desc())
    .limit(1)
    .scalar_subquery()
)
_LOAD_RANGE_REFS = _LOAD_REFS.where(
    _oc.offset >= _FIRST_OFFSET,
    _oc.offset <= sa.bindparam("e", type_=sa.BigInteger),
    _oc.offset + _oc.size > sa.bindparam("s", type_=sa.BigInteger),
)


async def load_refs(
    conn: AsyncConnection, version_id: str, start: int | None = None, end: int | None = None
) -> list[ChunkRef]:
    """The manifest of a version in order, with offsets, placements (with node addresses) or
    inline data, in one query: a row per (reference, shard), one per inline reference.

    With `start` and `end` (inclusive byte offsets, end may lie past the object) only the
    references whose bytes overlap [start, end] are loaded: a ranged GET of a big object
    needs one or two of its chunks, not the whole manifest.
    """
    refs: list[ChunkRef] = []
    shards: list[ShardPlacement] = []
    last = -1
    if start is None or end is None:
        rows = (await conn.execute(_LOAD_REFS, {"v": version_id})).all()
    else:
        rows = (await conn.execute(_LOAD_RANGE_REFS, {"v": version_id, "s": start, "e": end})).all()
    # Plain tuple unpacking: attribute access per column costs more than the query here.
    for seq, offset, size, key, sha, enc_size, key_id, inline, fmt, idx, node_id, checksum, address in rows:
        if seq != last:
            last = seq
            shards = []
            refs.append(
                ChunkRef(
                    sha256=sha,
                    chunk_key=key,
                    size=size,
                    enc_size=enc_size,
                    key_id=key_id,
                    shards=shards,
                    offset=offset,
                    inline=None if inline is None else binascii.b2a_base64(inline, newline=False).decode(),
                    format=fmt,
                )
            )
        if idx is not None:
            shards.append(ShardPlacement(idx, node_id, address or "", checksum))
    return refs
