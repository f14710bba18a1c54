"""Per-tenant request and transfer counts for billing (`shardbox admin usage`).

Every authenticated S3 request adds one request and its bytes in and out to its tenant's
counts for the current month (UTC, as the coordinator's clock says); the counts go to the
coordinator (`record_usage`) as one call every FLUSH_S, not one per request. Best effort by
design: counts of the last seconds before a crash are lost, which billing by the month
tolerates; a failed flush is kept and retried with the next one.
"""

from __future__ import annotations

import asyncio
import logging

from coordinator.api import CoordinatorAPI
from coordinator.records import UsageDelta

log = logging.getLogger("gateway.usage")

FLUSH_S = 10.0
MAX_PENDING = 5000       # tenant-months held before counts are dropped (coordinator unreachable)


class UsageMeter:
    def __init__(self, coordinator: CoordinatorAPI) -> None:
        self.coordinator = coordinator
        self.pending: dict[tuple[str, str], UsageDelta] = {}
        self.flusher: asyncio.Task | None = None

    def count(self, tenant_id: str, bytes_in: int, bytes_out: int, requests: int = 1) -> None:
        # The month is the coordinator's (its clock decides every metadata time): "" = current.
        month = ""
        delta = self.pending.get((tenant_id, month))
        if delta is None:
            if len(self.pending) >= MAX_PENDING:
                return
            delta = self.pending[(tenant_id, month)] = UsageDelta(tenant_id=tenant_id, month=month)
        delta.api_requests += requests
        delta.ingress_bytes += max(0, bytes_in)
        delta.egress_bytes += max(0, bytes_out)
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        while self.pending:
            await asyncio.sleep(FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, {}
        if not batch:
            return
        try:
            await self.coordinator.record_usage(list(batch.values()))
        except Exception as exc:
            log.warning("usage.flush_failed", extra={"fields": {"tenants": len(batch), "error": repr(exc)}})
            for key, delta in batch.items():   # keep them for the next flush
                mine = self.pending.setdefault(key, UsageDelta(tenant_id=delta.tenant_id, month=delta.month))
                mine.api_requests += delta.api_requests
                mine.ingress_bytes += delta.ingress_bytes
                mine.egress_bytes += delta.egress_bytes

    async def drain(self) -> None:
        if self.flusher is not None and not self.flusher.done():
            self.flusher.cancel()
            await asyncio.gather(self.flusher, return_exceptions=True)
        await asyncio.wait_for(self.flush(), timeout=5.0)
