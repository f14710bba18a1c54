"""Attempt counters for guessable secrets (login passwords, share-link passwords).

Each key counts attempts in a fixed window: the first attempt opens the window, at most
`limit` attempts fit in it, and after `window_s` the count starts again. Counters live in
the metadata database so every gateway sees the same ones; writers of one key serialise on
its lock, so a burst of parallel guesses is counted exactly. Checking several keys at once
(one user from one address, and that address for any user) counts none of them when any is
full, so a refused attempt costs the caller nothing more.
"""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.db import Database
from coordinator.schema import login_attempts

_la = login_attempts.c
_ROW = sa.select(_la.window_start, _la.attempts).where(_la.key == sa.bindparam("k"))
_INSERT = login_attempts.insert()
_SET = (
    sa.update(login_attempts)
    .where(_la.key == sa.bindparam("k"))
    .values(window_start=sa.bindparam("w", type_=sa.Float), attempts=sa.bindparam("n", type_=sa.Integer))
)
_DROP = sa.delete(login_attempts).where(_la.key == sa.bindparam("k"))
_PRUNE = sa.delete(login_attempts).where(_la.window_start < sa.bindparam("before", type_=sa.Float))
PRUNE_ODDS = 0.01  # one call in a hundred also removes counters whose window is long over


async def take(
    db: Database, conn: AsyncConnection, limits: list[tuple[str, int]], window_s: float, now: float
) -> float:
    """Count one attempt under every key, or none: 0.0 when allowed, else the seconds until
    the fullest key's window ends."""
    rows: dict[str, Any] = {}
    for key, _limit in sorted(limits):
        await db.lock_name(conn, f"attempts:{key}")
        rows[key] = (await conn.execute(_ROW, {"k": key})).first()
    wait = 0.0
    for key, limit in limits:
        row = rows[key]
        if row is not None and now - row.window_start < window_s and row.attempts >= limit:
            wait = max(wait, row.window_start + window_s - now)
    if wait > 0:
        return wait
    for key, _limit in limits:
        row = rows[key]
        if row is None:
            await conn.execute(_INSERT, {"key": key, "window_start": now, "attempts": 1})
        elif now - row.window_start >= window_s:
            await conn.execute(_SET, {"k": key, "w": now, "n": 1})
        else:
            await conn.execute(_SET, {"k": key, "w": row.window_start, "n": row.attempts + 1})
    if random.random() < PRUNE_ODDS:
        await conn.execute(_PRUNE, {"before": now - window_s})
    return 0.0


async def forget(conn: AsyncConnection, key: str) -> None:
    """Start the key's count again (a successful login clears its user-and-address key)."""
    await conn.execute(_DROP, {"k": key})


async def give_back(db: Database, conn: AsyncConnection, key: str) -> None:
    """Uncount one attempt (a successful login does not count against its address)."""
    await db.lock_name(conn, f"attempts:{key}")
    row = (await conn.execute(_ROW, {"k": key})).first()
    if row is not None and row.attempts > 0:
        await conn.execute(_SET, {"k": key, "w": row.window_start, "n": row.attempts - 1})
