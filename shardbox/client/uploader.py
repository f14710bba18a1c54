"""Upload one file through the resumable, deduplicating protocol.

hash every chunk locally -> init (the server answers which chunks it lacks) -> PUT only
those, `streams` at a time, each to its signed URL -> finalize. A file whose chunks the
tenant already stores sends nothing but the init and finalize requests. The session id is
journaled at init, so a run killed half-way resumes: the next run asks the server which
chunks landed (GET /uploads/{id}) and sends the rest. Memory is bounded by `streams`
chunks in flight.
"""

from __future__ import annotations

import asyncio
import mimetypes
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from shardbox.client import journal
from shardbox.client.api import ApiError, ProductClient
from shardbox.client.chunking import DEFAULT_CHUNK_SIZE, ChunkPlan, hash_file_async, read_chunk
from shardbox.client.progress import NullTracker, Tracker

PIECE = 256 << 10           # body pieces: progress granularity and rate-limit step
MAX_ATTEMPTS = 6            # per chunk, for connection errors and 5xx answers
SESSION_GONE = (404, 410)   # an unknown or expired session: start a new one


async def first_error(coros) -> None:
    """Run them all; the first failure cancels the rest and is raised as itself, not as a group."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None


class RateLimiter:
    """A token bucket shared by all streams (`--limit-rate`): bytes per second, with one piece of burst."""

    def __init__(self, bytes_per_s: float) -> None:
        self.rate = float(bytes_per_s)
        self.allowance = 0.0
        self.last = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.allowance = min(self.rate, self.allowance + (now - self.last) * self.rate)
                self.last = now
                if self.allowance >= n or self.allowance >= self.rate:
                    self.allowance -= n
                    return
                await asyncio.sleep((n - self.allowance) / self.rate)


@dataclass
class UploadResult:
    local: str
    path: str
    size: int
    chunks: int
    chunks_sent: int = 0
    bytes_sent: int = 0
    chunks_already_stored: int = 0
    resumed: bool = False
    upload_id: str | None = None
    file: dict = field(default_factory=dict)
    seconds: float = 0.0
    hash_seconds: float = 0.0

    def as_json(self) -> dict:
        return {"local": self.local, "path": self.path, "size": self.size, "chunks": self.chunks,
                "chunks_sent": self.chunks_sent, "bytes_sent": self.bytes_sent,
                "chunks_already_stored": self.chunks_already_stored, "resumed": self.resumed,
                "upload_id": self.upload_id, "file": self.file, "seconds": round(self.seconds, 3),
                "hash_seconds": round(self.hash_seconds, 3)}


class Uploader:
    def __init__(self, client: ProductClient, user: str, *, streams: int = 4,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, limiter: RateLimiter | None = None) -> None:
        self.client = client
        self.user = user
        self.streams = asyncio.Semaphore(streams)
        self.chunk_size = chunk_size
        self.limiter = limiter

    async def upload(self, local: Path, remote_path: str, tracker: Tracker | None = None) -> UploadResult:
        tracker = tracker or NullTracker()
        started = time.monotonic()
        plan = await self._hash(local, self.chunk_size, tracker)
        result = UploadResult(local=str(local), path=remote_path, size=plan.size, chunks=plan.count,
                              hash_seconds=time.monotonic() - started)
        session, key = await self._open_session(local, remote_path, plan, result)
        if session["chunk_size"] != plan.chunk_size:
            # The server fixes the chunk size: hash again with its size and start over.
            await self.client.abort(session["upload_id"])
            journal.forget(key)
            plan = await self._hash(local, int(session["chunk_size"]), tracker)
            result.chunks = plan.count
            session, key = await self._open_session(local, remote_path, plan, result)
        missing = sorted(int(i) for i in session.get("missing", []))
        if not result.resumed:
            result.chunks_already_stored = plan.count - len(missing)
        landed = plan.size - sum(plan.span(i)[1] for i in missing)
        tracker.phase("uploading", total=plan.size, completed=landed)
        urls = {int(k): v for k, v in session.get("urls", {}).items()}
        if missing:
            await first_error(self._send(local, plan, i, urls, result, tracker) for i in missing)
        answer = await self.client.finalize(result.upload_id)
        journal.forget(key)
        result.file = answer.get("file", answer)
        result.seconds = time.monotonic() - started
        tracker.finish("stored" if result.chunks_sent or not plan.count else "stored (already there)")
        return result

    async def _hash(self, local: Path, chunk_size: int, tracker: Tracker) -> ChunkPlan:
        tracker.phase("hashing", total=local.stat().st_size)
        loop = asyncio.get_running_loop()
        return await hash_file_async(local, chunk_size,
                                     lambda n: loop.call_soon_threadsafe(tracker.advance, n))

    async def _open_session(self, local: Path, remote_path: str, plan: ChunkPlan,
                            result: UploadResult) -> tuple[dict, str]:
        key = journal.journal_key(self.client.server, self.user, remote_path, plan.content_hash,
                                  plan.chunk_size)
        entry = journal.find(key)
        if entry is not None:
            try:
                session = await self.client.upload_status(entry.upload_id)
                session.setdefault("upload_id", entry.upload_id)
                session.setdefault("chunk_size", plan.chunk_size)
                result.resumed = True
                result.upload_id = entry.upload_id
                result.chunks_already_stored = plan.count - len(session.get("missing", []))
                return session, key
            except ApiError as exc:
                if exc.status not in SESSION_GONE:
                    raise
                journal.forget(key)
        content_type = mimetypes.guess_type(local.name)[0]
        session = await self.client.init_upload(remote_path, plan.size, plan.chunk_size, list(plan.digests),
                                                plan.content_hash, content_type)
        session.setdefault("chunk_size", plan.chunk_size)
        result.upload_id = session["upload_id"]
        if session.get("missing"):
            journal.record(key, journal.new_entry(session["upload_id"], remote_path, local, plan.size,
                                                  int(session["chunk_size"])))
        return session, key

    async def _send(self, local: Path, plan: ChunkPlan, index: int, urls: dict[int, str],
                    result: UploadResult, tracker: Tracker) -> None:
        async with self.streams:
            data = await asyncio.to_thread(read_chunk, local, plan, index)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                sent = 0

                def count(n: int) -> None:
                    nonlocal sent
                    sent += n
                    tracker.advance(n)

                try:
                    if index not in urls:
                        await self._refresh_urls(result.upload_id, urls)
                    await self.client.put_chunk(urls[index], self._body(data, count), len(data))
                    result.chunks_sent += 1
                    result.bytes_sent += len(data)
                    return
                except ApiError as exc:
                    tracker.advance(-sent)
                    if exc.status in (401, 403) and attempt < MAX_ATTEMPTS:
                        urls.pop(index, None)         # the signed URL expired: ask for a fresh one
                        continue
                    if exc.status < 500 or attempt == MAX_ATTEMPTS:
                        raise
                except (aiohttp.ClientError, TimeoutError, ConnectionError):
                    tracker.advance(-sent)
                    if attempt == MAX_ATTEMPTS:
                        raise
                await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt))

    async def _refresh_urls(self, upload_id: str | None, urls: dict[int, str]) -> None:
        assert upload_id is not None
        status = await self.client.upload_status(upload_id)
        urls.update({int(k): v for k, v in status.get("urls", {}).items()})

    async def _body(self, data: bytes, count) -> AsyncIterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(view), PIECE):
            piece = view[start:start + PIECE]
            if self.limiter is not None:
                await self.limiter.take(len(piece))
            yield piece
            count(len(piece))
