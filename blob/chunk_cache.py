"""Recently read chunks, kept for hot share links, and one node fetch per chunk at a time.

A link that goes viral makes every download read the same chunks. Two things keep that
from reaching the nodes once per download:

- collapsing: concurrent reads of one chunk share a single fetch (the first reader fetches,
  the others wait for its result), so 200 simultaneous downloads cost one fetch per chunk;
- a bounded cache of plaintext chunks (least recently used out first), for the downloads
  that follow. Only share-link reads go through it (that is where a file gets hot); a large
  one-off download may push hot chunks out, which then cost one fetch each to come back.

Built only on `ChunkStore.read` (one chunk at a time, whole), so it follows the store's
format and fallbacks; `read` yields the requested bytes of an object like `ChunkStore.read`
does, one chunk ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import replace

from blob.reader import chunks_for_range
from blob.stats import ReadStats
from blob.store import ChunkStore
from coordinator.records import ChunkRef, ObjectInfo


class ChunkCache:
    def __init__(self, store: ChunkStore, max_bytes: int) -> None:
        self._store = store
        self.max_bytes = max_bytes
        self.bytes = 0
        self._chunks: OrderedDict[str, bytes] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self.hits = self.misses = self.collapsed = 0

    def _admit(self, key: str, data: bytes) -> None:
        if key in self._chunks or len(data) > self.max_bytes:
            return
        self._chunks[key] = data
        self.bytes += len(data)
        while self.bytes > self.max_bytes:
            _, old = self._chunks.popitem(last=False)
            self.bytes -= len(old)

    async def chunk(self, obj: ObjectInfo, ref: ChunkRef, request_id: str | None = None,
                    stats: ReadStats | None = None) -> bytes:
        """The plaintext of one chunk of `obj`: from the cache, from a fetch already running,
        or fetched now (whole) from the nodes. The fetch runs apart from its readers, so one
        of them going away (a client that disconnects) never fails the others."""
        key = ref.chunk_key
        data = self._chunks.get(key)
        if data is not None:
            self._chunks.move_to_end(key)
            self.hits += 1
            return data
        running = self._inflight.get(key)
        if running is not None:
            self.collapsed += 1
        else:
            self.misses += 1
            running = asyncio.ensure_future(self._fetch(obj, ref, request_id, stats))
            self._inflight[key] = running
        return await asyncio.shield(running)

    async def _fetch(self, obj: ObjectInfo, ref: ChunkRef, request_id: str | None,
                     stats: ReadStats | None) -> bytes:
        try:
            one = replace(obj, size=ref.size, chunks=[replace(ref, offset=0)])
            pieces = []
            async with contextlib.aclosing(self._store.read(one, 0, ref.size - 1, request_id=request_id,
                                                            stats=stats)) as stream:
                async for piece in stream:
                    pieces.append(piece)
            data = pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)
        finally:
            self._inflight.pop(ref.chunk_key, None)
        if self.max_bytes > 0:
            self._admit(ref.chunk_key, data)
        return data

    async def read(self, obj: ObjectInfo, start: int, end: int, *, request_id: str | None = None,
                   stats: ReadStats | None = None) -> AsyncIterator[bytes | memoryview]:
        """Bytes start..end (inclusive) of `obj` (its chunks filled in), through the cache, with
        the next chunk on its way while one is sent. Pull the first piece before answering:
        DataUnavailable comes from there."""
        if obj.size == 0 or end < start:
            return
        selected = chunks_for_range(obj.chunks, start, end)
        pending: dict[int, asyncio.Future[bytes]] = {}

        def want(i: int) -> None:
            if i < len(selected) and i not in pending:
                pending[i] = asyncio.ensure_future(self.chunk(obj, selected[i][0], request_id, stats))

        try:
            for i, (_ref, lo, hi) in enumerate(selected):
                want(i)
                want(i + 1)
                data = await pending.pop(i)
                yield data if lo == 0 and hi == len(data) - 1 else memoryview(data)[lo:hi + 1]
        finally:
            for task in pending.values():
                task.cancel()
            if pending:
                with contextlib.suppress(BaseException):
                    await asyncio.gather(*pending.values(), return_exceptions=True)
