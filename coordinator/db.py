"""The metadata database handle: engine setup per backend, write transactions, upserts.

SQLite (embedded) allows one writer at a time; rather than letting concurrent writers
collide on "database is locked", every write transaction of this process runs under one
asyncio.Lock. PostgreSQL runs writers concurrently; a transaction that loses a race
(deadlock, serialization failure, or a concurrent insert of the same latest object key)
raises and is retried from the start, which is safe because it committed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from coordinator.schema import metadata

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_MAX_ATTEMPTS = 8


class RetryTransaction(Exception):
    """Raised inside a write function when it lost a race and should simply run again."""


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


class Database:
    """One engine plus the policy for running reads and writes against it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine: AsyncEngine = create_async_engine(url, echo=echo)
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=30,
                                              pool_pre_ping=True)
        self.dialect = self.engine.dialect.name
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    async def create_schema(self) -> None:
        """Create missing tables and indexes; idempotent, safe on every start."""
        async with self._serialised(), self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which offers on_conflict_do_update / _do_nothing."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    @contextlib.asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
        else:
            async with self._write_lock:
                yield

    async def read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self.engine.connect() as conn:
            return await fn(conn)

    async def write(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run fn in one transaction; commit if it returns, roll back if it raises."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                async with self._serialised(), self.engine.begin() as conn:
                    return await fn(conn)
            except RetryTransaction:
                if attempt == _MAX_ATTEMPTS:
                    raise
            except sa.exc.DBAPIError as exc:
                if _sqlstate(exc) not in _RETRY_SQLSTATES or attempt == _MAX_ATTEMPTS:
                    raise
            log.debug("db.retry", extra={"fields": {"attempt": attempt}})
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))
        raise AssertionError("unreachable")

    def for_update(self, stmt: sa.Select) -> sa.Select:
        """Row locks on PostgreSQL; SQLite needs none (writers are serialised)."""
        return stmt.with_for_update() if self.dialect == "postgresql" else stmt


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
