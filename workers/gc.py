"""Garbage collection, upload expiry, reconciliation and compaction: periodic jobs.

- `gc.chunks`: chunks at refcount 0 past the grace period are claimed in batches
  (coordinator/gc.py says why a claim is a tombstone no write crosses), their shards deleted
  on the nodes (one batch request per node), then their rows removed. Paced at
  `max_chunks_per_s`, so deleting 10 TB is a steady trickle of small transactions and node
  requests rather than a storm that stalls foreground reads. A node that is down keeps its
  shards: they are orphans reconciliation finds later.
- `gc.uploads`: upload sessions past their expiry are aborted (references and quota
  reservations released).
- `gc.reconcile`: every node's shard list is compared with the metadata, page by page
  (`reconcile_shards_per_s`; the cursor is saved, so a pass survives its worker); shards
  nothing references are noted and, once unreferenced for the grace period, deleted.
- Compaction: a node that had shards deleted is asked to compact (`POST /compact`, which
  rewrites the volumes whose garbage passed its threshold), at most every
  `compact_interval_s`, so the space comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from blob.node_maintenance import NodeCallFailed, NodeMaintenance
from config.settings import GcSection
from coordinator.api import CoordinatorAPI
from workers.runner import JobLease

log = logging.getLogger("workers.gc")


class Pace:
    """At most `per_s` units per second on average: wait after work that went faster."""

    def __init__(self, per_s: float) -> None:
        self.per_s = per_s
        self._next = time.monotonic()

    async def took(self, units: int) -> None:
        self._next = max(self._next, time.monotonic() - 1.0) + units / self.per_s
        delay = self._next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def delete_on_nodes(maint: NodeMaintenance, by_node: dict[tuple[str, str], list[str]]) -> set[str]:
    """Delete shard ids grouped by (node id, address); the node ids that answered. A node that
    does not answer keeps its shards (reconciliation collects them later)."""

    async def one(node_id: str, address: str, ids: list[str]) -> str | None:
        if not address:
            return None
        try:
            await maint.delete_shards(node_id, address, ids)
            return node_id
        except NodeCallFailed as exc:
            log.warning(
                "gc.node_delete_failed",
                extra={"fields": {"node_id": node_id, "shards": len(ids), "error": str(exc)}},
            )
            return None

    done = await asyncio.gather(*(one(n, a, ids) for (n, a), ids in by_node.items()))
    return {n for n in done if n is not None}


class Compactor:
    """Asks nodes that had shards deleted to compact, at most every `interval_s` per node."""

    def __init__(self, maint: NodeMaintenance, interval_s: float) -> None:
        self.maint = maint
        self.interval_s = interval_s

    async def after_deletes(self, nodes: Iterable[tuple[str, str]], state: dict[str, Any]) -> None:
        last: dict[str, float] = state.setdefault("compacted_at", {})
        for node_id, address in sorted(set(nodes)):
            if time.time() - last.get(node_id, 0.0) < self.interval_s:
                continue
            try:
                result = await self.maint.compact(node_id, address)
            except NodeCallFailed as exc:
                log.warning("gc.compact_failed", extra={"fields": {"node_id": node_id, "error": str(exc)}})
                continue
            last[node_id] = time.time()
            log.info("gc.compacted", extra={"fields": {"node_id": node_id, **result}})


class ChunkGc:
    name = "gc.chunks"

    def __init__(
        self,
        coordinator: CoordinatorAPI,
        maint: NodeMaintenance,
        worker_id: str,
        settings: GcSection,
        lease_s: float,
    ) -> None:
        self.coordinator = coordinator
        self.maint = maint
        self.worker_id = worker_id
        self.interval_s = settings.interval_s
        self.batch = settings.batch_chunks
        self.pace = Pace(settings.max_chunks_per_s)
        self.compactor = Compactor(maint, settings.compact_interval_s)
        self.lease_s = lease_s

    async def run(self, lease: JobLease) -> None:
        touched: set[tuple[str, str]] = set()
        collected = 0
        while True:
            claimed = await self.coordinator.gc_claim_chunks(self.worker_id, self.batch, self.lease_s)
            if not claimed:
                break
            by_node: dict[tuple[str, str], list[str]] = defaultdict(list)
            for chunk in claimed:
                for s in chunk.shards:
                    by_node[(s.node_id, s.address)].append(f"{chunk.chunk_key}.{s.index}")
            answered = await delete_on_nodes(self.maint, by_node)
            touched |= {(n, a) for n, a in by_node if n in answered}
            done = await self.coordinator.gc_finish_chunks(self.worker_id, [c.chunk_key for c in claimed])
            collected += done
            lease.state["collected"] = lease.state.get("collected", 0) + done
            await lease.save()
            await self.pace.took(len(claimed))
        if collected:
            log.info("gc.chunks_collected", extra={"fields": {"chunks": collected, "nodes": len(touched)}})
        await self.compactor.after_deletes(touched, lease.state)


class UploadExpiry:
    name = "gc.uploads"

    def __init__(self, coordinator: CoordinatorAPI, settings: GcSection) -> None:
        self.coordinator = coordinator
        self.interval_s = settings.expiry_interval_s

    async def run(self, lease: JobLease) -> None:
        total = 0
        while True:
            expired = await self.coordinator.expire_uploads(100)
            total += expired
            if expired < 100:
                break
        if total:
            lease.state["expired"] = lease.state.get("expired", 0) + total
            log.info("gc.uploads_expired", extra={"fields": {"sessions": total}})


class Reconcile:
    name = "gc.reconcile"
    PAGE = 500

    def __init__(
        self,
        coordinator: CoordinatorAPI,
        maint: NodeMaintenance,
        worker_id: str,
        settings: GcSection,
        lease_s: float,
    ) -> None:
        self.coordinator = coordinator
        self.maint = maint
        self.worker_id = worker_id
        self.interval_s = settings.reconcile_interval_s
        self.pace = Pace(settings.reconcile_shards_per_s)
        self.compactor = Compactor(maint, settings.compact_interval_s)
        self.lease_s = lease_s

    async def run(self, lease: JobLease) -> None:
        state = lease.state
        if not state.get("pass_id"):
            state.update(pass_id=uuid.uuid4().hex, nodes_done=[], node=None, after=None)
        # Every registered node: one that is down fails its listing and is skipped (its
        # candidates stay as they are); "down" as the registry computes it may only be late.
        nodes = sorted(await self.coordinator.list_nodes(), key=lambda n: n.node_id)
        for node in nodes:
            if node.node_id in state["nodes_done"]:
                continue
            after = state["after"] if state.get("node") == node.node_id else None
            try:
                while True:
                    page = await self.maint.list_shards(node.node_id, node.address, after, self.PAGE)
                    if page.ids:
                        await self.coordinator.gc_note_shards(node.node_id, page.ids, state["pass_id"])
                    after = page.next
                    state.update(node=node.node_id, after=after)
                    await lease.save()
                    await self.pace.took(len(page.ids))
                    if not after:
                        break
            except NodeCallFailed as exc:  # down meanwhile: its candidates stay as they are
                log.warning(
                    "gc.reconcile_node_failed", extra={"fields": {"node_id": node.node_id, "error": str(exc)}}
                )
                continue
            forgotten = await self.coordinator.gc_forget_orphans(node.node_id, state["pass_id"])
            state["nodes_done"].append(node.node_id)
            state.update(node=None, after=None)
            await lease.save()
            log.info(
                "gc.reconciled_node", extra={"fields": {"node_id": node.node_id, "forgotten": forgotten}}
            )
        touched, deleted = await self._collect()
        state.update(
            pass_id=None,
            nodes_done=[],
            node=None,
            after=None,
            passes=state.get("passes", 0) + 1,
            orphans_deleted=state.get("orphans_deleted", 0) + deleted,
        )
        await self.compactor.after_deletes(touched, state)

    async def _collect(self) -> tuple[set[tuple[str, str]], int]:
        """Delete the candidates unreferenced for the grace period."""
        touched: set[tuple[str, str]] = set()
        deleted = 0
        while True:
            orphans = await self.coordinator.gc_claim_orphans(self.worker_id, self.PAGE, self.lease_s)
            if not orphans:
                return touched, deleted
            by_node: dict[tuple[str, str], list[str]] = defaultdict(list)
            for o in orphans:
                by_node[(o.node_id, o.address)].append(o.shard_id)
            answered = await delete_on_nodes(self.maint, by_node)
            touched |= {(n, a) for n, a in by_node if n in answered}
            done = [o.id for o in orphans if o.node_id in answered]
            if done:
                deleted += await self.coordinator.gc_finish_orphans(self.worker_id, done)
            if len(done) < len(orphans):  # some nodes did not answer: try those next pass
                return touched, deleted
            await self.pace.took(len(orphans))
