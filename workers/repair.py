"""The repair worker: claims chunks from the repair queue and fixes them (blob/rebuild.py).

One loop per worker process: claim a batch (most lost shards first, coordinator/repairs.py),
work on up to `concurrency` chunks at a time, report each outcome, then delete the old copies
of shards that moved. Paced to `rate_mb_s` of shard bytes read plus written, so repair after
a node loss never takes the disks and network from clients. A worker killed mid-chunk loses
nothing: its lease runs out and another worker claims the chunk; every step is idempotent
(a shard written twice is stored once, a placement row moves only from the node read).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from blob.node_client import NodeClient
from blob.rebuild import RebuildOutcome, delete_stale, rebuild_chunk
from coordinator.api import CoordinatorAPI
from coordinator.records import CoordinatorError, RepairTask

log = logging.getLogger("workers.repair")


def worker_name(role: str = "repair") -> str:
    """A worker id unique across hosts and restarts (claims are recorded under it)."""
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class RepairStats:
    chunks: int = 0
    shards_written: int = 0
    shards_rebuilt: int = 0
    shards_verified: int = 0
    failures: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    started: float = field(default_factory=time.monotonic)


class RepairWorker:
    def __init__(
        self,
        coordinator: CoordinatorAPI,
        nodes: NodeClient,
        *,
        worker_id: str | None = None,
        batch: int = 16,
        concurrency: int = 4,
        rate_mb_s: float = 200.0,
        lease_s: float = 300.0,
        shard_timeout_s: float = 10.0,
    ) -> None:
        self.coordinator = coordinator
        self.nodes = nodes
        self.worker_id = worker_id or worker_name()
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.rate = rate_mb_s * 1e6
        self.lease_s = lease_s
        self.shard_timeout_s = shard_timeout_s
        self.stats = RepairStats()
        self._paced_bytes = 0
        self._pace_t0 = time.monotonic()

    async def _pace(self, nbytes: int) -> None:
        """Sleep as long as it takes to stay under rate_mb_s on average."""
        self._paced_bytes += nbytes
        ahead = self._paced_bytes / self.rate - (time.monotonic() - self._pace_t0)
        if ahead > 0:
            await asyncio.sleep(ahead)
        elif ahead < -1.0:  # idle for a while: no credit for it
            self._paced_bytes, self._pace_t0 = 0, time.monotonic()

    async def _one(self, task: RepairTask) -> None:
        try:
            out = await rebuild_chunk(self.nodes, task, timeout_s=self.shard_timeout_s)
        except Exception as exc:  # a bug or an unexpected node answer: back off, never lose the row
            log.exception("repair.chunk_failed", extra={"fields": {"chunk_key": task.chunk_key}})
            out = RebuildOutcome(
                failed=[(t.index, f"{type(exc).__name__}: {exc}"[:300]) for t in task.targets]
            )
        await self.coordinator.complete_repair(
            task.chunk_key, self.worker_id, out.moved, out.verified, out.failed, out.bytes_written
        )
        if out.stale:
            await delete_stale(self.nodes, task.chunk_key, out.stale, timeout_s=self.shard_timeout_s)
        s = self.stats
        s.chunks += 1
        s.shards_written += len(out.moved)
        s.shards_rebuilt += out.rebuilt
        s.shards_verified += len(out.verified)
        s.failures += len(out.failed)
        s.bytes_read += out.bytes_read
        s.bytes_written += out.bytes_written
        fields = {
            "chunk_key": task.chunk_key,
            "moved": [m.index for m in out.moved],
            "rebuilt": out.rebuilt,
            "verified": out.verified,
            "reasons": sorted(set(task.reasons)),
            "worker": self.worker_id,
        }
        if out.failed:
            log.warning("repair.partial", extra={"fields": {**fields, "failed": out.failed}})
        elif out.moved:
            log.info("repair.done", extra={"fields": fields})
        await self._pace(out.bytes_read + out.bytes_written)

    async def run_once(self) -> int:
        """Claim one batch and work it off; the number of chunks claimed (0: nothing to do)."""
        tasks = await self.coordinator.claim_repairs(self.worker_id, self.batch, self.lease_s)
        if not tasks:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def guarded(task: RepairTask) -> None:
            async with gate:
                await self._one(task)

        await asyncio.gather(*(guarded(t) for t in tasks))
        return len(tasks)

    async def run(self, stop: asyncio.Event, idle_s: float = 2.0) -> None:
        """Until stop is set: work while there is work, poll every idle_s when there is none."""
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except CoordinatorError as exc:
                log.warning("repair.coordinator_error", extra={"fields": {"error": str(exc)}})
                busy = 0
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), idle_s)
                except TimeoutError:
                    pass
