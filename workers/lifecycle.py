"""The lifecycle pass, run periodically: `lifecycle_step()` on the coordinator, by the
coordinator's clock unless a clock is given (coordinator/lifecycle.py does the work; bytes
then move through the repair queue). Idempotent: a pass repeated, or run by two workers at
once, finds nothing more to do for what the first one did."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from coordinator.api import CoordinatorAPI
from coordinator.records import CoordinatorError, LifecycleReport

log = logging.getLogger("workers.lifecycle")


class LifecycleWorker:
    def __init__(self, coordinator: CoordinatorAPI, *, interval_s: float = 300.0, batch: int = 1000,
                 clock: Callable[[], float] | None = None) -> None:
        self.coordinator = coordinator
        self.interval_s = interval_s
        self.batch = batch
        self.clock = clock

    async def run_once(self) -> LifecycleReport:
        """Passes until one leaves nothing of its batch undone."""
        total = LifecycleReport()
        while True:
            now = None if self.clock is None else self.clock()
            report = await self.coordinator.lifecycle_step(now, self.batch)
            for name, value in vars(report).items():
                setattr(total, name, getattr(total, name) + value)
            if report.transitioned + report.expired + report.aborted_uploads < self.batch:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except CoordinatorError as exc:
                log.warning("lifecycle.coordinator_error", extra={"fields": {"error": str(exc)}})
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except TimeoutError:
                pass
