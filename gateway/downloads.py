"""Reads of object bytes reported to the coordinator's audit, so a late-positive scan can name
who downloaded a file before (coordinator/scans.py).

Never on the response path: a download is noted in memory and the notes of one
`FLUSH_S` go to the coordinator as one `record_downloads` call. The same reader (user or
link, address) of the same version is noted once per `REPEAT_S`: a client reading a file
in a thousand ranges is one downloader, not a thousand rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from coordinator.api import CoordinatorAPI
from coordinator.records import Download, ObjectInfo

log = logging.getLogger("gateway.downloads")
FLUSH_S = 1.0
REPEAT_S = 300.0
MAX_PENDING = 10_000  # one call's worth; beyond it (a flood) notes wait for the next period
_MAX_REMEMBERED = 100_000


class DownloadLog:
    def __init__(self, coordinator: CoordinatorAPI) -> None:
        self._coordinator = coordinator
        self._seen: dict[tuple[str, str, str | None], float] = {}
        self._pending: list[Download] = []
        self._flusher: asyncio.Task[None] | None = None

    def note(self, obj: ObjectInfo, actor: str, client_addr: str | None, via: str = "s3") -> None:
        now = time.monotonic()
        key = (obj.version_id, actor, client_addr)
        last = self._seen.get(key)
        if (last is not None and now - last < REPEAT_S) or len(self._pending) >= MAX_PENDING:
            return
        if len(self._seen) >= _MAX_REMEMBERED:
            self._seen.clear()
        self._seen[key] = now
        self._pending.append(
            Download(
                version_id=obj.version_id,
                bucket=obj.bucket,
                key=obj.key,
                actor=actor,
                client_addr=client_addr,
                at=time.time(),
                via=via,
            )
        )
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._pending:
            await asyncio.sleep(FLUSH_S)
            await self._send()

    async def _send(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._coordinator.record_downloads(batch)
        except Exception as exc:  # best effort, like access logs: the read itself succeeded
            log.warning(
                "downloads.report_failed", extra={"fields": {"downloads": len(batch), "error": repr(exc)}}
            )

    async def drain(self) -> None:
        """Report what is pending now (at shutdown)."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._send(), timeout=5.0)
