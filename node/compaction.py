"""Compaction: give back the space of deleted and overwritten records.

A volume whose garbage (bytes no index entry points at) passes `compact_threshold`
is rewritten: each record the index still points at is copied, unchanged (same seq),
to the end of the active volume (a shard stored before block sums existed gets them on the
way, from its verified bytes); the index is repointed with conditional MoveItems
through the group committer (a record overwritten or deleted meanwhile is simply not
moved); when nothing points at the old volume any more its file is deleted.

Only the volume being compacted is read and only the active volume is appended to,
so reads and writes of every other volume go on as usual; readers that found a record
in the old volume just before it was unlinked still hold its open descriptor.
The active volume is sealed (a new one started) before it is compacted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import xxhash

from node.blocksums import block_sums
from node.index import MoveItem
from node.records import IndexEntry
from node.store import ShardStore
from node.volumes import Reservation, StorageFull

log = logging.getLogger("node.compaction")

_BATCH_BYTES = 8 << 20
_BATCH_RECORDS = 1000


@dataclass
class CompactionResult:
    compacted: list[int]
    reclaimed_bytes: int

    def to_json(self) -> dict:
        return {"compacted": self.compacted, "reclaimed_bytes": self.reclaimed_bytes}


class Compactor:
    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self.lock = asyncio.Lock()

    def _over_threshold(self, number: int) -> bool:
        store = self.store
        vol = store.volumes.get(number)
        if vol is None or vol.end == 0:
            return False
        with store.stats_lock:
            live = store.live.get(number, 0)
        return max(0, vol.end - live) / vol.end >= store.cfg.compact_threshold

    def _candidates(self) -> list[int]:
        return [n for n in self.store.volumes.numbers() if self._over_threshold(n)]

    async def run(self) -> CompactionResult:
        async with self.lock:
            result = CompactionResult([], 0)
            for number in self._candidates():
                try:
                    reclaimed = await self._compact_volume(number)
                except StorageFull as exc:
                    log.warning("compaction.no_space",
                                extra={"fields": {"volume": number, "error": str(exc)}})
                    break
                if reclaimed is not None:
                    result.compacted.append(number)
                    result.reclaimed_bytes += reclaimed
            if result.compacted:
                self.store.metrics.inc("shardbox_node_compacted_volumes_total", len(result.compacted))
                self.store.metrics.inc("shardbox_node_reclaimed_bytes_total", result.reclaimed_bytes)
            return result

    async def _wait_idle(self, number: int, timeout_s: float = 10.0) -> bool:
        """Seal the volume if it is the active one and wait for its writers to finish."""
        store = self.store
        await store.run_io(store.volumes.seal, number)
        vol = store.volumes.get(number)
        deadline = time.monotonic() + timeout_s
        while vol is not None and vol.inflight > 0:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return vol is not None

    async def _compact_volume(self, number: int) -> int | None:
        store = self.store
        if not await self._wait_idle(number):
            return None
        if not self._over_threshold(number):   # in-flight writes made it look emptier than it is
            return None
        started = time.monotonic()
        entries = await store.run_io(store.index.in_volume, number)
        batch: list[tuple[str, IndexEntry]] = []
        size = 0
        moved = 0
        for sid, entry in entries:
            batch.append((sid, entry))
            size += entry.record_size
            if size >= _BATCH_BYTES or len(batch) >= _BATCH_RECORDS:
                moved += await self._move(number, batch)
                batch, size = [], 0
        if batch:
            moved += await self._move(number, batch)
        if await store.run_io(store.index.in_volume, number):
            log.warning("compaction.volume_still_referenced", extra={"fields": {"volume": number}})
            return None
        vol = store.volumes.get(number)
        if vol is None:
            return None
        reclaimed = vol.end
        await store.run_io(store.volumes.remove, number)
        with store.stats_lock:
            store.live.pop(number, None)
        log.info("compaction.volume_done", extra={"fields": {
            "volume": number, "moved": moved, "reclaimed_bytes": reclaimed,
            "seconds": round(time.monotonic() - started, 3)}})
        return reclaimed

    def _copy(self, number: int,
              batch: list[tuple[str, IndexEntry]]) -> tuple[list[MoveItem], list[Reservation]]:
        store = self.store
        src = store.volumes.get(number)
        assert src is not None
        items: list[MoveItem] = []
        reservations: list[Reservation] = []
        try:
            for sid, entry in batch:
                raw = src.pread(entry.offset, entry.record_size)
                data = memoryview(raw)[entry.data_offset - entry.offset:]
                sums = entry.block_sums
                if len(raw) != entry.record_size or xxhash.xxh3_128_digest(data) != entry.checksum:
                    store.report_corrupt(sid, "compaction")  # copied as is: GET keeps refusing it
                elif sums is None and not entry.tombstone:
                    sums = block_sums(data)   # a shard stored before block sums: it gets them now
                res = store.volumes.reserve(sid, entry.length, entry.checksum, entry.flags, seq=entry.seq)
                reservations.append(res)
                res.volume.pwrite(res.data_offset, data)
                new = IndexEntry(res.volume.number, res.offset, entry.length, entry.checksum, entry.flags,
                                 entry.seq, len(sid), sums)
                items.append(MoveItem(sid, number, entry.offset, new))
        except BaseException:
            for res in reservations:
                store.volumes.release(res)
            raise
        return items, reservations

    async def _move(self, number: int, batch: list[tuple[str, IndexEntry]]) -> int:
        store = self.store
        items, reservations = await store.run_io(self._copy, number, batch)
        try:
            results = await store._commit(items, {r.volume for r in reservations})
        finally:
            for res in reservations:
                store.volumes.release(res)
        return sum(r.applied for r in results)
