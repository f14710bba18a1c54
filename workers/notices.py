"""Events no byte work follows: acknowledged, and logged where an operator should see them."""

from __future__ import annotations

import logging

from coordinator.records import OutboxEvent

log = logging.getLogger("workers.notices")


class Notices:
    """`object.deleted` (a version or delete marker removed for good: the chunks it released
    are found by GC through their refcounts), `object.delete_marker` (a key hidden by a delete
    marker: nothing to do with bytes) and `object.quarantined` (logged as a warning: a
    structured alert for log monitoring; the owner sees the status and the audit has the
    details)."""

    event_types = ("object.deleted", "object.delete_marker", "object.quarantined")

    async def ready(self) -> bool:
        return True

    async def handle(self, event: OutboxEvent) -> None:
        if event.event_type == "object.quarantined":
            log.warning("object.quarantined", extra={"fields": dict(event.payload)})
