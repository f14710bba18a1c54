"""The byte side of a repair: check, copy or rebuild the shards a `RepairTask` names.

For every target index the worker needs the shard's bytes on the target node. A shard that
reads back good from its recorded node and is to stay there is only verified; one that
reads back good but must move (drain, tier) is copied; one that is missing, corrupt or on a
node that is gone is rebuilt from any 10 good shards of the chunk.

Nothing is decrypted: Reed-Solomon coding is the same per byte position in both storage
formats (v1 column-interleaved, v2 contiguous shards), so `erasure.reconstruct` rebuilds
whole shards of either from whole shards, and every shard written must hash to the xxh3-128
recorded when the chunk was first stored, so a wrong rebuild is never written.

Reads are verified by NodeClient against the recorded checksums. The shards to check are
read first, then data shards, then parity, and more are asked for only as reads fail, so
a chunk that lost one shard costs ten reads, not fourteen.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import erasure
from blob.node_client import NodeClient, ShardError, shard_checksum, shard_id
from coordinator.records import RepairTask, ShardMove, ShardPlacement


@dataclass
class RebuildOutcome:
    moved: list[ShardMove] = field(default_factory=list)  # written where the target says
    verified: list[int] = field(default_factory=list)  # good where they are, left alone
    failed: list[tuple[int, str]] = field(default_factory=list)
    stale: list[ShardPlacement] = field(default_factory=list)  # old copies to delete once recorded
    bytes_read: int = 0
    bytes_written: int = 0
    rebuilt: int = 0  # shards computed (not copied)


async def rebuild_chunk(
    nodes: NodeClient, task: RepairTask, *, timeout_s: float = 10.0, request_id: str | None = None
) -> RebuildOutcome:
    out = RebuildOutcome()
    recorded = {p.index: p for p in task.shards}
    targets = {t.index: t for t in task.targets}
    readable = [i for i in task.readable if i in recorded]
    first = [i for i in readable if i in targets]
    rest = [i for i in readable if i not in targets]
    good: dict[int, bytes] = {}
    bad: dict[int, str] = {}

    async def fetch(i: int) -> None:
        p = recorded[i]
        try:
            data = await nodes.get_shard(
                p.address, shard_id(task.chunk_key, i), p.checksum, node_id=p.node_id, timeout_s=timeout_s,
                request_id=request_id,
            )
        except ShardError as exc:
            bad[i] = exc.reason
            return
        good[i] = data
        out.bytes_read += len(data)

    wave = first + rest[: max(0, erasure.DATA - len(first))]
    rest = rest[len(wave) - len(first) :]
    while wave:
        await asyncio.gather(*(fetch(i) for i in wave))
        short = erasure.DATA - len(good)
        wave, rest = (rest[:short], rest[short:]) if short > 0 else ([], rest)

    writes: dict[int, bytes] = {}
    need_rebuild = []
    for i, target in sorted(targets.items()):
        cur = recorded.get(i)
        if i in good and cur is not None and cur.node_id == target.node_id:
            out.verified.append(i)
        elif i in good:
            writes[i] = good[i]
        else:
            need_rebuild.append(i)
    if need_rebuild:
        if len(good) < erasure.DATA:
            why = f"only {len(good)} good shards of the chunk could be read, {erasure.DATA} are needed"
            out.failed += [(i, why) for i in need_rebuild]
        else:
            present = [good.get(i) for i in range(erasure.TOTAL)]
            full = await asyncio.to_thread(erasure.reconstruct, present)
            for i in need_rebuild:
                expected = targets[i].checksum or (recorded[i].checksum if i in recorded else None)
                if expected is not None and shard_checksum(full[i]) != expected:
                    out.failed.append((i, "the rebuilt shard does not match its recorded checksum"))
                    continue
                writes[i] = full[i]
                out.rebuilt += 1

    async def put(i: int, data: bytes) -> None:
        target = targets[i]
        checksum = shard_checksum(data)
        try:
            await nodes.put_shard(
                target.address,
                shard_id(task.chunk_key, i),
                data,
                checksum,
                node_id=target.node_id,
                timeout_s=timeout_s,
                request_id=request_id,
            )
        except ShardError as exc:
            out.failed.append((i, f"writing to {target.node_id}: {exc.reason}"))
            return
        old = recorded.get(i)
        out.moved.append(
            ShardMove(
                index=i, old_node=old.node_id if old else "", new_node=target.node_id, checksum=checksum
            )
        )
        out.bytes_written += len(data)
        if old is not None and old.node_id != target.node_id and i in readable:
            out.stale.append(old)

    await asyncio.gather(*(put(i, d) for i, d in sorted(writes.items())))
    out.moved.sort(key=lambda m: m.index)
    out.failed.sort()
    return out


async def delete_stale(
    nodes: NodeClient, chunk_key: str, stale: list[ShardPlacement], *, timeout_s: float = 10.0
) -> int:
    """Delete the old copies of moved shards (after the new placement is recorded); best effort:
    a copy left behind is an orphan for GC's reconciliation, never a reference."""

    async def one(p: ShardPlacement) -> bool:
        try:
            return await nodes.delete_shard(
                p.address, shard_id(chunk_key, p.index), node_id=p.node_id, timeout_s=timeout_s
            )
        except ShardError:
            return False

    return sum(await asyncio.gather(*(one(p) for p in stale)))
