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

from coordinator.errors import error
from coordinator.schema import metadata

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_MAX_ATTEMPTS = 8


class RetryTransaction(Exception):
    """Raised inside a write function when it lost a race and should simply run again."""


def is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    """True for a duplicate key (as opposed to e.g. a foreign key violation), on either backend."""
    return _sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


class Database:
    """One engine plus the policy for running reads and writes against it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine: AsyncEngine = create_async_engine(url, echo=echo)
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            self._reader = self.engine
        else:
            self.engine = create_async_engine(
                url, echo=echo, pool_size=10, max_overflow=30, pool_pre_ping=True
            )
            # One snapshot per read, so e.g. a version row and its manifest always agree
            # even while the key is overwritten; read-only snapshots never fail to commit.
            self._reader = self.engine.execution_options(isolation_level="REPEATABLE READ")
        self._writer = self.engine.execution_options(shardbox_write=True)
        self.dialect = self.engine.dialect.name
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    async def create_schema(self) -> None:
        """Create missing tables and indexes; idempotent, safe on every start."""
        async with self._serialised(), self.engine.begin() as conn:
            if self.dialect == "postgresql":  # several coordinators may start at once
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(73501190)"))
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
        """Run fn in one read transaction (a consistent snapshot on both backends)."""
        async with self._reader.connect() as conn:
            return await fn(conn)

    async def write(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run fn in one transaction; commit if it returns, roll back if it raises."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                async with self._serialised(), self._writer.begin() as conn:
                    return await fn(conn)
            except RetryTransaction:
                pass
            except sa.exc.DBAPIError as exc:
                if _sqlstate(exc) not in _RETRY_SQLSTATES:
                    raise
            log.debug("db.retry", extra={"fields": {"attempt": attempt}})
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))
        raise error("ServiceUnavailable", "the metadata database is too busy with conflicting writes; retry")

    async def lock_name(self, conn: AsyncConnection, name: str) -> None:
        """Serialise writers of one name (e.g. an object key) until the transaction ends.

        PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the name, so
        concurrent overwrites of one key queue up instead of colliding and retrying.
        SQLite: nothing to do, writers are serialised already.
        """
        if self.dialect == "postgresql":
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(name, 0))))

    def for_update(self, stmt: sa.Select) -> sa.Select:
        """Row locks on PostgreSQL; SQLite needs none (writers are serialised)."""
        return stmt.with_for_update() if self.dialect == "postgresql" else stmt


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    # The sqlite3 module would only BEGIN before the first write, leaving the reads of a
    # transaction outside it; we issue BEGIN ourselves (see _sqlite_begin).
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: sa.Connection) -> None:
    """Reads: BEGIN (a WAL snapshot from the first SELECT). Writes: BEGIN IMMEDIATE (the
    write lock up front, so a transaction never fails upgrading from reader to writer)."""
    write = conn.get_execution_options().get("shardbox_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
