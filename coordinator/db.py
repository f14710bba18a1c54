"""The metadata database handle: engine setup per backend, transactions, dialect helpers.

SQLite (embedded): statements run on the event loop and concurrent writes are
group-committed, one fsync per batch (coordinator/sqlite_store.py says why and how).

PostgreSQL: SQLAlchemy on asyncpg. Writers run concurrently; a transaction that loses a
race (deadlock, serialization failure, or a concurrent insert of the same latest object
key) raises and is retried from the start, which is safe because it committed nothing.
The server batches commits itself (its WAL flush serves every transaction waiting on it).

Query functions take a connection and `await conn.execute(stmt)`; they are the same for
both backends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from coordinator.errors import RetryTransaction, error
from coordinator.migrate import upgrade_to_head
from coordinator.sqlite_store import SQLiteStore, fast_read

__all__ = ["Database", "RetryTransaction", "fast_read", "is_unique_violation"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_MAX_ATTEMPTS = 8
# Enough connections for the concurrent calls of one coordinator without churn (an
# overflow connection is opened and closed per use, a TCP + TLS-probe handshake each time),
# and few enough that several coordinators fit PostgreSQL's default max_connections (100).
# A server restart costs each broken connection one failed call (no pre-ping round trip).
_PG_POOL = {"pool_size": 24, "max_overflow": 8, "pool_recycle": 3600}
_PG_CONNECT = {"prepared_statement_cache_size": 500}


def is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    """True for a duplicate key (as opposed to e.g. a foreign key violation), on either backend."""
    return _sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


class Database:
    """One metadata store plus the policy for running reads and writes against it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self._sqlite: SQLiteStore | None = None
        if url.startswith("sqlite"):
            self._sqlite = SQLiteStore(url, echo=echo)
            self.sync_engines: tuple[sa.Engine, ...] = (self._sqlite.engine,)
            self.dialect = "sqlite"
        else:
            self._writer: AsyncEngine = create_async_engine(
                url, echo=echo, connect_args=_PG_CONNECT, **_PG_POOL
            )
            # One snapshot per read, so e.g. a version row and its manifest always agree even
            # while the key is overwritten. With asyncpg this is a clause of the BEGIN the
            # transaction sends anyway, not an extra round trip.
            self._reader: AsyncEngine = self._writer.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            self.sync_engines = (self._writer.sync_engine,)
            self.dialect = "postgresql"

    @property
    def sync_engine(self) -> sa.Engine:
        """The engine writes use (for event listeners; reads may use another, see sync_engines)."""
        return self.sync_engines[0]

    @property
    def sqlite(self) -> SQLiteStore | None:
        """The SQLite store (group-commit counters), or None on PostgreSQL."""
        return self._sqlite

    async def create_schema(self) -> None:
        """Apply the schema migrations the database lacks (coordinator/migrate.py); safe on every start."""

        async def tx(conn: Any) -> None:
            if self.dialect == "postgresql":  # several coordinators may start at once
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(73501190)"))
            await conn.run_sync(upgrade_to_head)

        await self.write(tx)

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        else:
            await self._writer.dispose()

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which offers on_conflict_do_update / _do_nothing."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    async def read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run fn in one read transaction (a consistent snapshot on both backends)."""
        if self._sqlite is not None:
            return await self._sqlite.read(fn)
        async with self._reader.connect() as conn:
            return await fn(conn)

    async def write(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run fn in one transaction; its effects are durable when this returns, none if it raises."""
        if self._sqlite is not None:
            return await self._sqlite.write(fn)
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                async with self._writer.begin() as conn:
                    return await fn(conn)
            except RetryTransaction:
                pass
            except sa.exc.DBAPIError as exc:
                if _sqlstate(exc) not in _RETRY_SQLSTATES:
                    raise
            log.debug("db.retry", extra={"fields": {"attempt": attempt}})
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))
        raise error("ServiceUnavailable", "the metadata database is too busy with conflicting writes; retry")

    async def lock_name(self, conn: Any, name: str) -> None:
        """Serialise writers of one name (e.g. an object key) until the transaction ends.

        PostgreSQL: a transaction-scoped advisory lock on a 64-bit hash of the name, so
        concurrent overwrites of one key queue up instead of colliding and retrying.
        SQLite: nothing to do, writers are serialised already.
        """
        if self.dialect == "postgresql":
            await conn.execute(_ADVISORY_LOCK, {"name": name})

    def for_update(self, stmt: sa.Select) -> sa.Select:
        """Row locks on PostgreSQL; SQLite needs none (writers are serialised)."""
        return stmt.with_for_update() if self.dialect == "postgresql" else stmt


_ADVISORY_LOCK = sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(sa.bindparam("name"), 0)))
