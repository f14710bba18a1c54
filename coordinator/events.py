"""Audit rows and outbox events, written inside the transaction of the change they describe."""

from __future__ import annotations

import contextvars
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import clock
from coordinator.schema import audit, outbox

# Set per request by the HTTP layer from the gateway's X-Shardbox-Client header.
client_addr: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_addr", default=None)
_AUDIT = audit.insert()
_OUTBOX = outbox.insert()


async def record_audit(
    conn: AsyncConnection,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    at: float | None = None,
    version_id: str | None = None,
) -> None:
    await conn.execute(
        _AUDIT,
        {
            "at": clock.now() if at is None else at,
            "actor": actor or "-",
            "action": action,
            "target": target[:1200],
            "detail": detail or {},
            "client_addr": client_addr.get(),
            "version_id": version_id,
        },
    )


async def emit(
    conn: AsyncConnection, event_type: str, payload: dict[str, Any], at: float | None = None
) -> None:
    await conn.execute(
        _OUTBOX,
        {"event_type": event_type, "payload": payload, "created_at": clock.now() if at is None else at},
    )
