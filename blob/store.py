"""`ChunkStore`: the gateway's one object for putting bytes on nodes and getting them back."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from blob import formats
from blob.availability import NodeView, check_readable
from blob.context import DatapathContext
from blob.crypto import ChunkCipher
from blob.errors import ChunkMismatch
from blob.hashing import sha256_hex
from blob.node_client import NodeClient
from blob.reader import read_range
from blob.stats import ReadStats
from blob.writer import Buffer, StreamWriter, WriteResult, seal_chunk, upload_sealed
from config.malloc import tune_malloc as tune_process_malloc
from coordinator.api import CoordinatorAPI
from coordinator.records import ChunkRef, ObjectInfo


class ChunkStore:
    """One per gateway process: chunking, hashing, encryption, RS coding and shard I/O."""

    def __init__(self, coordinator: CoordinatorAPI, master_key: bytes, cluster_secret: str,
                 chunk_size: int = 8 << 20, min_acks: int = 12, shard_timeout_s: float = 10.0,
                 key_id: str = "m1", *, inline_max: int = 32 << 10, threads: int | None = None,
                 write_depth: int = 2,
                 read_ahead: int = 1, hedge_s: float | None = None, straggler_s: float | None = None,
                 suspect_s: float = 30.0,
                 max_chunks_in_flight: int = 3, tune_malloc: bool = True,
                 write_format: int = formats.WRITE_FORMAT) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if not 10 <= min_acks <= 14:
            raise ValueError("min_acks must be between 10 and 14")
        formats.enc_size(0, write_format)   # UnknownFormat (a ValueError) for a format we cannot write
        if tune_malloc:
            tune_process_malloc()
        # MD5, the in-order full-payload hashers, the chunk SHA-256 and encrypt+encode of one
        # write run at once; a few more threads let concurrent requests overlap. More threads
        # than that add no speed: the work is CPU bound.
        workers = threads or max(4, (os.cpu_count() or 1) + 2)
        self._ctx = DatapathContext(
            coordinator=coordinator,
            cipher=ChunkCipher(master_key, key_id),
            nodes=NodeClient(cluster_secret),
            executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="datapath"),
            chunk_size=chunk_size,
            min_acks=min_acks,
            shard_timeout_s=shard_timeout_s,
            inline_max=max(0, min(inline_max, chunk_size)),
            write_depth=max(1, write_depth),
            read_ahead=max(0, read_ahead),
            hedge_s=hedge_s if hedge_s is not None else min(1.0, shard_timeout_s / 4),
            straggler_s=straggler_s if straggler_s is not None else min(5.0, shard_timeout_s / 2),
            suspect_s=suspect_s,
            max_chunks_in_flight=max(1, max_chunks_in_flight),
            write_format=write_format,
        )
        self._node_view = NodeView(self._ctx)

    @property
    def chunk_size(self) -> int:
        return self._ctx.chunk_size

    @property
    def nodes(self) -> NodeClient:
        """The shared node client (also used to delete shards, e.g. by tools)."""
        return self._ctx.nodes

    async def write(self, tenant_id: str, source: AsyncIterator[Buffer],
                    algorithms: set[str] | frozenset[str], *, request_id: str | None = None,
                    payload_sha256: bool = True) -> WriteResult:
        """Store a stream as chunks; see blob/__init__.py for the contract."""
        writer = StreamWriter(self._ctx, tenant_id, algorithms, request_id, payload_sha256)
        return await writer.run(source)

    async def write_chunk(self, tenant_id: str, data: Buffer, sha256: str, *,
                          request_id: str | None = None) -> ChunkRef:
        """Store one chunk whose SHA-256 was announced before its bytes (the product API's
        resumable upload): ChunkMismatch, with nothing sent to a node, unless `data` hashes
        to `sha256`. Unlike `write`, no ETag or payload checksum is computed: the bytes are
        hashed once, and that hash is the check and the chunk's id."""
        ctx = self._ctx
        if len(data) > ctx.chunk_size:
            raise ChunkMismatch(f"a chunk is at most {ctx.chunk_size} bytes, got {len(data)}")
        view = memoryview(data).cast("B")
        granted = await ctx.write_budget.acquire(len(view))
        try:
            await self.verify_chunk(view, sha256)
            sealed = await seal_chunk(ctx, tenant_id, view, sha256, inline=len(view) <= ctx.inline_max)
            return await upload_sealed(ctx, sealed, 0, request_id)
        finally:
            ctx.write_budget.release(granted)

    async def verify_chunk(self, data: Buffer, sha256: str) -> None:
        """ChunkMismatch unless `data` hashes to the announced `sha256` (on a worker thread)."""
        actual = await self._ctx.run(sha256_hex, data)
        if actual != sha256:
            raise ChunkMismatch(f"the body's SHA-256 is {actual}, the upload announced {sha256}")

    def read(self, obj: ObjectInfo, start: int, end: int, *, request_id: str | None = None,
             stats: ReadStats | None = None) -> AsyncIterator[bytes]:
        """Bytes start..end (inclusive) of an object whose `chunks` are filled in."""
        return read_range(self._ctx, obj, start, end, request_id, stats)

    async def check_available(self, obj: ObjectInfo, start: int, end: int) -> None:
        """DataUnavailable unless every chunk holding bytes start..end has 10 shards on nodes
        believed up (see blob/availability.py): call it before committing to a status line."""
        await check_readable(self._ctx, self._node_view, obj, start, end)

    # Names used by docs/internals.md.
    write_stream = write
    read_range = read

    async def close(self) -> None:
        """Close the node connection pool, let failure reports finish, stop the threads."""
        if self._ctx.background:
            with contextlib.suppress(Exception):
                await asyncio.wait(list(self._ctx.background), timeout=5.0)
        await self._ctx.nodes.close()
        self._ctx.executor.shutdown(wait=False, cancel_futures=True)
