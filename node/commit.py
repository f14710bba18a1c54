"""Group commit: many writers, one fdatasync per volume and one LMDB transaction per batch.

A writer appends its record, then `submit`s the index change together with the
volume it wrote to and waits. The committer takes everything queued so far, syncs
each touched volume once, applies all index changes in one synced transaction and
wakes every writer of the batch. While a batch is on disk the next one accumulates,
so under load the cost of a sync is shared by all concurrent writers; while other
writers are still streaming their bodies, the committer waits for them to submit, at
most `group_commit_ms`.

Syncing and committing run on one dedicated thread: the event loop never blocks and
LMDB sees a single writer.

A writer whose whole body is already in memory can hand its write to the committer
instead (`submit_prepared`): the commit thread appends the record, verifies it and then
syncs it with the rest of the batch. That saves a PUT one round trip to a worker thread
(a futex wake, a GIL hand-off and an event-loop wakeup each way), which is most of the
fixed CPU cost of a shard PUT when a node sees few concurrent writers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from node.index import Applied, MoveItem, PutItem
from node.volumes import Volume

log = logging.getLogger("node.commit")


@dataclass
class Prepared:
    """What a prepare step (run on the commit thread) wrote and wants committed."""

    items: Sequence[PutItem | MoveItem]
    volumes: set[Volume]
    settle: Callable[[], None] | None = None   # on the commit thread once committed or failed


@dataclass
class _Pending:
    items: Sequence[PutItem | MoveItem]
    volumes: set[Volume]
    future: asyncio.Future = field(repr=False)
    prepare: Callable[[], Prepared] | None = None


class GroupCommitter:
    def __init__(self, apply_batch: Callable[[list[Volume], list[PutItem | MoveItem]], list[Applied]],
                 delay_s: float, writers_busy: Callable[[], int]) -> None:
        self._apply_batch = apply_batch
        self._delay_s = delay_s
        self._writers_busy = writers_busy
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def submit(self, items: Sequence[PutItem | MoveItem], volumes: set[Volume]) -> list[Applied]:
        """Queue index changes whose bytes are written; return once synced and committed."""
        if self._closing:
            raise RuntimeError("store is shutting down")
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(items, volumes, fut))
        self._wake.set()
        return await fut

    async def submit_prepared(self, prepare: Callable[[], Prepared]) -> list[Applied]:
        """Run `prepare` on the commit thread, then commit what it returns with the batch.

        If `prepare` raises, only this submission fails (with that exception); it must
        then have cleaned up after itself. `Prepared.settle` runs in every other case.
        """
        if self._closing:
            raise RuntimeError("store is shutting down")
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending((), set(), fut, prepare))
        self._wake.set()
        return await fut

    async def close(self) -> None:
        """Commit whatever is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._thread.shutdown(wait=True)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give writers still streaming their body up to delay_s to join this batch."""
        deadline = loop.time() + self._delay_s
        while self._writers_busy() > 0 and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather(loop)
            batch, self._queue = self._queue, []
            try:
                failed, results = await loop.run_in_executor(self._thread, self._execute, batch)
            except Exception as exc:  # an I/O error fails the whole batch, nothing acknowledged
                n_items = sum(len(p.items) for p in batch)
                log.error("commit.failed", exc_info=True, extra={"fields": {"items": n_items}})
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            pos = 0
            for i, p in enumerate(batch):
                if i in failed:
                    if not p.future.done():
                        p.future.set_exception(failed[i])
                    continue
                n = len(p.items)
                if not p.future.done():
                    p.future.set_result(results[pos:pos + n])
                pos += n

    def _execute(self, batch: list[_Pending]) -> tuple[dict[int, BaseException], list[Applied]]:
        """Commit thread: run prepare steps, then one sync per volume and one index transaction."""
        failed: dict[int, BaseException] = {}
        settles: list[Callable[[], None]] = []
        try:
            for i, p in enumerate(batch):
                if p.prepare is None:
                    continue
                try:
                    prepared = p.prepare()
                except Exception as exc:
                    failed[i] = exc
                    continue
                p.items, p.volumes = prepared.items, prepared.volumes
                if prepared.settle is not None:
                    settles.append(prepared.settle)
            volumes: dict[int, Volume] = {}
            items: list[PutItem | MoveItem] = []
            for i, p in enumerate(batch):
                if i in failed:
                    continue
                for v in p.volumes:
                    volumes[id(v)] = v
                items.extend(p.items)
            results = self._apply_batch(list(volumes.values()), items) if items else []
            return failed, results
        finally:
            for settle in settles:
                settle()
