"""SQLite (the embedded metadata store): statements on the event loop, group commit in a thread.

Why not aiosqlite: it hops to a thread and back for every statement (tens of microseconds
each, several statements per call), while the statements themselves take a few
microseconds against pages in cache. Here queries run synchronously on the event loop
through the stdlib sqlite3 driver, wrapped in `LoopConnection`, which offers the small
part of SQLAlchemy's AsyncConnection the query modules use (`await conn.execute(...)`),
so the queries stay one source for both backends. The only slow operation, the fsync of
a COMMIT, runs in a dedicated thread while the loop serves other calls.

Group commit: write calls queue up; one flusher task opens a transaction (BEGIN
IMMEDIATE), runs every queued write function inside its own SAVEPOINT, and commits the
lot with one fsync (WAL, synchronous=FULL). A function that raises is rolled back to its
savepoint and gets its exception; the others are unaffected. Results are handed out only
after the COMMIT returned, so an acknowledged write is on disk. Crash safety: a crash
before the COMMIT's WAL frame is synced loses the whole batch, none of which had been
acknowledged; after it, the batch is durable as a whole. Writes queued while a commit is
in flight form the next batch, so under load one fsync serves many calls and with a
single caller nothing waits for company.

Reads use their own connections (WAL readers never block on the writer): BEGIN, the
function, ROLLBACK, all on the loop; they see the last committed state, never a batch
that is still being assembled or committed.

One process owns the database file (the embedded single-coordinator setup); another
process writing it would make BEGIN IMMEDIATE wait up to busy_timeout on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa

from coordinator.errors import RetryTransaction, error

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 256  # write calls per transaction: bounds the latency one batch adds
_MAX_RETRIES = 8
_IDLE_READERS = 4


FAST_READ = "shardbox_fast_read"


def fast_read(statement: T) -> T:
    """Mark a SELECT that hot read paths run (get_object, get_key): on SQLite it skips
    SQLAlchemy's per-execution machinery (~40 us a statement, more than the query itself)
    and runs as compiled once, with the same type processing. Elsewhere the mark is inert.
    """
    return statement.execution_options(**{FAST_READ: True})  # type: ignore[attr-defined]


class _Rows:
    """The part of a CursorResult that callers of fast_read statements use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Any:
        return iter(self._rows)


class _Plan:
    """A fast_read statement compiled for SQLite once: SQL text, parameter order, and the
    bind and result processors SQLAlchemy itself would apply (JSON, booleans, ...)."""

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.compiled = compiled
        self.sql = str(compiled)
        self.positions = list(compiled.positiontup or ())
        self.binds = compiled._bind_processors
        columns = compiled._result_columns
        self.processors = [col[3]._cached_result_processor(dialect, None) for col in columns]
        self.row = collections.namedtuple("Row", [col[0] for col in columns], rename=True)  # type: ignore[misc]

    def run(self, dbapi_connection: Any, parameters: Mapping[str, Any]) -> _Rows:
        values = self.compiled.construct_params(parameters)
        args = []
        for name in self.positions:
            value = values[name]
            bind = self.binds.get(name)
            args.append(value if bind is None else bind(value))
        rows = dbapi_connection.execute(self.sql, args).fetchall()
        processors, make = self.processors, self.row._make
        if not any(processors):
            return _Rows([make(r) for r in rows])
        return _Rows(
            [make([v if p is None else p(v) for p, v in zip(processors, r, strict=True)]) for r in rows]
        )


class LoopConnection:
    """The AsyncConnection subset the query modules use, over a sync Connection, on the loop.

    Nothing here suspends: a whole write or read function runs without letting another
    task in, which also makes a read function one atomic step on the loop.
    """

    __slots__ = ("_plans", "sync_connection")

    def __init__(self, sync_connection: sa.Connection, plans: dict[Any, _Plan] | None = None) -> None:
        self.sync_connection = sync_connection
        self._plans = plans

    async def execute(
        self, statement: Any, parameters: Any = None, *, execution_options: Mapping[str, Any] | None = None
    ) -> Any:
        if self._plans is not None and isinstance(parameters, dict) and execution_options is None:
            plan = self._plans.get(statement)
            if plan is None and statement.get_execution_options().get(FAST_READ):
                plan = self._plans[statement] = _Plan(statement, self.sync_connection.dialect)
            if plan is not None:
                return plan.run(self.sync_connection.connection.driver_connection, parameters)
        return self.sync_connection.execute(statement, parameters, execution_options=execution_options)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync_connection.scalar(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> sa.CursorResult[Any]:
        return self.sync_connection.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self.sync_connection, *args, **kwargs)

    @property
    def dialect(self) -> sa.Dialect:
        return self.sync_connection.dialect


def sync_url(url: str) -> str:
    """sqlite+aiosqlite:///PATH (the configured form) -> the stdlib driver's URL."""
    return "sqlite+pysqlite" + url[url.index(":") :]


class SQLiteStore:
    """Connections, reads and group-committed writes on one SQLite database file."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.engine = sa.create_engine(
            sync_url(url),
            echo=echo,
            pool_size=_IDLE_READERS + 1,
            max_overflow=64,
            connect_args={"check_same_thread": False},  # COMMIT runs in the commit thread
        )
        sa.event.listen(self.engine, "connect", _on_connect)
        sa.event.listen(self.engine, "begin", _on_begin)
        self._idle: list[sa.Connection] = []
        self._writer: sa.Connection | None = None
        self._queue: list[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._plans: dict[Any, _Plan] = {}  # fast_read statements, compiled once
        # One thread: COMMITs of successive batches never overlap (there is one writer).
        self._committer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sqlite-commit")
        self.batches = 0  # counters for tests and the bench: how well writes were grouped
        self.batched_writes = 0

    # ---- reads ----------------------------------------------------------------------------

    async def read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        # Yield once, as any I/O would: a caller looping over reads must not starve the loop.
        await asyncio.sleep(0)
        conn = self._idle.pop() if self._idle else self.engine.connect()
        trans = conn.begin()
        try:
            return await fn(LoopConnection(conn, self._plans))
        finally:
            try:
                trans.rollback()
            except Exception:
                conn.invalidate()
                conn.close()
                conn = None  # type: ignore[assignment]
            if conn is not None:
                if len(self._idle) < _IDLE_READERS:
                    self._idle.append(conn)
                else:
                    conn.close()

    # ---- writes ---------------------------------------------------------------------------

    async def write(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
            await self._run_batch(batch)

    def _writer_connection(self) -> sa.Connection:
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = self.engine.connect().execution_options(shardbox_write=True)
        return self._writer

    async def _run_batch(
        self, batch: list[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]]]
    ) -> None:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        committing = False
        try:
            conn = self._writer_connection()
            trans = conn.begin()
            try:
                wrapped = LoopConnection(conn, self._plans)
                for fn, future in batch:
                    if future.done():  # the caller gave up before its turn: do not run it
                        continue
                    ok, value = await self._run_member(conn, wrapped, fn)
                    outcomes.append((future, ok, value))
                    # Let reads in between members (they see only committed data anyway).
                    await asyncio.sleep(0)
                if any(ok for _f, ok, _v in outcomes):
                    committing = True
                    commit = asyncio.get_running_loop().run_in_executor(self._committer, trans.commit)
                    await asyncio.shield(commit)
                else:
                    trans.rollback()
            except BaseException:
                # The transaction broke, its COMMIT failed, or we were cancelled: report the
                # batch as failed. A COMMIT still running in its thread is waited for first,
                # so the connection is never used from two threads at once.
                if committing:
                    self._committer.submit(_noop).result()
                try:
                    trans.rollback()
                except Exception:
                    conn.invalidate()
                raise
        except BaseException as exc:
            log.error("sqlite.batch_failed", exc_info=True, extra={"fields": {"calls": len(batch)}})
            for _fn, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.batched_writes += len(outcomes)
        for future, ok, value in outcomes:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    @staticmethod
    async def _run_member(
        conn: sa.Connection, wrapped: LoopConnection, fn: Callable[[Any], Awaitable[Any]]
    ) -> tuple[bool, Any]:
        """Run one write function in a savepoint: (True, result) or (False, its exception)."""
        for _attempt in range(_MAX_RETRIES):
            savepoint = conn.begin_nested()
            try:
                result = await fn(wrapped)
            except RetryTransaction:
                savepoint.rollback()
                continue
            except Exception as exc:
                savepoint.rollback()  # if even this fails the transaction is broken: fail the batch
                return False, exc
            savepoint.commit()
            return True, result
        return False, error("ServiceUnavailable", "the metadata database kept conflicting; retry")

    async def close(self) -> None:
        if self._flusher is not None:
            try:
                await self._flusher
            except Exception:
                pass
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._committer.shutdown(wait=True)
        self.engine.dispose()


def _noop() -> None:
    pass


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    # FULL: with WAL, every COMMIT fsyncs the log, so an acknowledged write survives power
    # loss; group commit makes that one fsync per batch rather than per call.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache per connection
    cur.execute("PRAGMA mmap_size=268435456")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()
    # The sqlite3 module would only BEGIN before the first write, leaving the reads of a
    # transaction outside it; we issue BEGIN ourselves (see _on_begin).
    dbapi_conn.isolation_level = None


def _on_begin(conn: sa.Connection) -> None:
    """Reads: BEGIN (a WAL snapshot from the first SELECT). Writes: BEGIN IMMEDIATE (the
    write lock up front, so a transaction never fails upgrading from reader to writer)."""
    write = conn.get_execution_options().get("shardbox_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
