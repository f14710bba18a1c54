"""Malware scans: new objects (`object.finalized`, `object.copied`) and rescans.

A new object waits in `scanning` (coordinator/scans.py has the status rule). This handler
streams the whole object, in order, to the configured scanner (clamd or the built-in one)
straight from the nodes through the blob layer, a window of the manifest at a time, so
memory stays bounded whatever the size. The verdict becomes the status (`ready` or
`quarantined`, the too-large policy for objects the scanner cannot take whole) and the scan
result, recorded only if the object is still `scanning`: a scan that runs twice (its worker
died after scanning, another took the event) changes nothing the second time.

While the scanner does not answer, the worker claims no scan events: they wait in the
outbox (the scan backlog), not in retries that would end up parked.

Rescans (`shardbox admin scan --rescan [--since DATE]`) go over `ready` versions in version
id order at a bounded rate (objects and bytes per second), one worker at a time, the
cursor saved after each batch; a late positive quarantines the version like a first scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from blob import ChunkStore
from coordinator.api import CoordinatorAPI
from coordinator.records import CoordinatorError, ObjectInfo, OutboxEvent
from workers.runner import JobLease
from workers.verdict import Scanner, Verdict

log = logging.getLogger("workers.scan")

WINDOW = 256 << 20  # bytes of the object whose manifest is loaded at a time
GONE = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
RESCAN_BATCH = 50


async def object_bytes(
    coordinator: CoordinatorAPI, store: ChunkStore, obj: ObjectInfo
) -> AsyncIterator[bytes]:
    """The whole version's bytes in order (CoordinatorError NoSuchVersion if it goes meanwhile)."""
    for start in range(0, obj.size, WINDOW):
        end = min(obj.size, start + WINDOW) - 1
        window = await coordinator.get_object(
            obj.tenant_id,
            obj.bucket,
            obj.key,
            version_id=obj.version_id,
            with_chunks=True,
            range_start=start,
            range_end=end,
        )
        async with contextlib.aclosing(store.read(window, start, end)) as pieces:
            async for piece in pieces:
                yield piece


class ScanHandler:
    """Scans new objects; with no scanner (backend "none") it only acknowledges the events of
    objects that need no scan and gives the others back."""

    event_types = ("object.finalized", "object.copied")

    def __init__(
        self,
        coordinator: CoordinatorAPI,
        store: ChunkStore,
        scanner: Scanner | None,
        *,
        too_large: str = "ready",
        max_scan_bytes: int | None = None,
        concurrency: int = 2,
    ) -> None:
        self.coordinator = coordinator
        self.store = store
        self.scanner = scanner
        self.too_large = too_large
        self.max_scan_bytes = max_scan_bytes
        self._slots = asyncio.Semaphore(concurrency)

    async def ready(self) -> bool:
        return self.scanner is None or await self.scanner.available()

    async def handle(self, event: OutboxEvent) -> None:
        p = event.payload
        obj = await self.version(p["tenant_id"], p["bucket"], p["key"], p["version_id"])
        if obj is None or obj.status != "scanning":
            return  # gone, needs no scan, or scanned already
        if self.scanner is None:
            raise RuntimeError('no scanner on this worker ([worker.scan] backend = "none")')
        await self.scan_and_record(obj, expect="scanning")

    async def version(self, tenant_id: str, bucket: str, key: str, version_id: str) -> ObjectInfo | None:
        try:
            return await self.coordinator.get_object(tenant_id, bucket, key, version_id=version_id)
        except CoordinatorError as exc:
            if exc.code in GONE:
                return None
            raise

    async def scan(self, obj: ObjectInfo) -> Verdict:
        """The scanner's verdict on the whole object."""
        assert self.scanner is not None
        if self.max_scan_bytes is not None and obj.size > self.max_scan_bytes:
            return Verdict(
                "too_large", detail=f"over max_scan_bytes = {self.max_scan_bytes}", scanner=self.scanner.name
            )
        async with self._slots:
            stream = object_bytes(self.coordinator, self.store, obj)
            async with contextlib.aclosing(stream):
                return await self.scanner.scan(stream, obj.size)

    async def scan_and_record(self, obj: ObjectInfo, *, expect: str) -> Verdict | None:
        """Scan and record the outcome if the version is still in `expect`; None if it went."""
        started = time.monotonic()
        try:
            verdict = await self.scan(obj)
        except CoordinatorError as exc:
            if exc.code in GONE:
                return None
            raise
        status = verdict.status(self.too_large)
        changed = await self.coordinator.record_scan(
            obj.version_id, status, verdict.result(), verdict.scanner, [expect]
        )
        level = logging.WARNING if status == "quarantined" else logging.INFO
        log.log(
            level,
            "object.scanned",
            extra={
                "fields": {
                    "version_id": obj.version_id,
                    "bucket": obj.bucket,
                    "key": obj.key,
                    "size": obj.size,
                    "result": verdict.result(),
                    "status": status,
                    "recorded": changed,
                    "scanner": verdict.scanner,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
        return verdict if changed else None


class RescanJob:
    """`shardbox admin scan --rescan`: ready versions scanned again at a bounded rate."""

    name = "scan.rescan"

    def __init__(
        self,
        coordinator: CoordinatorAPI,
        handler: ScanHandler,
        *,
        objects_per_s: float,
        mb_per_s: float,
        interval_s: float = 10.0,
    ) -> None:
        self.coordinator = coordinator
        self.handler = handler
        self.objects_per_s = objects_per_s
        self.bytes_per_s = mb_per_s * (1 << 20)
        self.interval_s = interval_s

    async def run(self, lease: JobLease) -> None:
        assert self.handler.scanner is not None
        if not await self.handler.scanner.available():
            return
        while True:
            batch = await self.coordinator.next_rescan_items(RESCAN_BATCH)
            if batch is None:
                return
            job = batch.rescan
            if not batch.items:
                await self.coordinator.advance_rescan(job.id, job.cursor, 0, 0, finished=True)
                log.info(
                    "rescan.finished",
                    extra={"fields": {"rescan": job.id, "scanned": job.scanned, "found": job.found}},
                )
                continue
            scanned = found = 0
            for item in batch.items:
                started = time.monotonic()
                obj = await self.handler.version(item.tenant_id, item.bucket, item.key, item.version_id)
                if obj is not None and obj.status == "ready":
                    verdict = await self.handler.scan_and_record(obj, expect="ready")
                    scanned += 1
                    found += verdict is not None and verdict.outcome == "infected"
                # The bound: this many objects and bytes per second, whatever the scanner could do.
                pause = max(1.0 / self.objects_per_s, item.size / self.bytes_per_s) - (
                    time.monotonic() - started
                )
                if pause > 0:
                    await asyncio.sleep(pause)
            await self.coordinator.advance_rescan(job.id, batch.items[-1].version_id, scanned, found)
            lease.state.update(rescan=job.id, cursor=batch.items[-1].version_id)
            await lease.save()
