"""What the writer and reader share: services, settings and the worker threads.

Held by `ChunkStore` (one per gateway process) and handed to the write and read paths,
so each of those modules has one job and no globals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from coordinator.records import CoordinatorAPI
from gateway.datapath.crypto import ChunkCipher
from gateway.datapath.node_client import NodeClient

log = logging.getLogger("gateway.datapath")
T = TypeVar("T")


@dataclass
class DatapathContext:
    coordinator: CoordinatorAPI
    cipher: ChunkCipher
    nodes: NodeClient
    executor: ThreadPoolExecutor
    chunk_size: int
    min_acks: int
    shard_timeout_s: float
    write_depth: int = 2        # chunks hashed/encoded/uploaded at once per write (+1 being read)
    read_ahead: int = 2         # chunks fetched ahead of the one being sent per read
    buffer_pool: list[bytearray] = field(default_factory=list)   # reusable chunk buffers
    buffer_pool_max: int = 8
    background: set[asyncio.Task] = field(default_factory=set)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run CPU work (hashing, AES, RS) on the worker threads; all of it releases the GIL."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    def take_buffer(self, size: int) -> bytearray:
        while self.buffer_pool:
            buf = self.buffer_pool.pop()
            if len(buf) == size:
                return buf
        return bytearray(size)

    def give_buffer(self, buf: bytearray) -> None:
        if len(self.buffer_pool) < self.buffer_pool_max:
            self.buffer_pool.append(buf)

    def report_shard_failure(self, chunk_key: str, index: int, node_id: str, reason: str,
                             request_id: str | None = None) -> None:
        """Tell the coordinator a shard needs repair; fire and forget (reads never wait for it)."""
        log.warning("shard.failed", extra={"fields": {
            "chunk_key": chunk_key, "index": index, "node_id": node_id, "reason": reason,
            "request_id": request_id}})

        async def send() -> None:
            try:
                await self.coordinator.report_shard_failure(chunk_key, index, node_id, reason)
            except Exception as exc:  # best effort: scrub and repair find it later anyway
                log.warning("shard.report_failed", extra={"fields": {
                    "chunk_key": chunk_key, "index": index, "error": str(exc), "request_id": request_id}})

        task = asyncio.get_running_loop().create_task(send())
        self.background.add(task)
        task.add_done_callback(self.background.discard)
