"""What the writer and reader share: services, settings and the worker threads.

Held by `ChunkStore` (one per gateway process) and handed to the write and read paths,
so each of those modules has one job and no globals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from blob import formats
from blob.budget import ByteBudget
from blob.crypto import ChunkCipher
from blob.node_client import NodeClient
from blob.slots import SlotPool
from coordinator.api import CoordinatorAPI

log = logging.getLogger("blob")
T = TypeVar("T")


@dataclass
class DatapathContext:
    """Shared state of one ChunkStore; see ChunkStore.__init__ for what the knobs do."""

    coordinator: CoordinatorAPI
    cipher: ChunkCipher
    nodes: NodeClient
    executor: ThreadPoolExecutor
    chunk_size: int
    min_acks: int
    shard_timeout_s: float
    inline_max: int = 32 << 10  # an object this small is kept encrypted in the metadata, not on nodes
    write_depth: int = 2        # chunks hashed/encoded/uploaded at once per write (+1 being read)
    read_ahead: int = 1         # chunks fetched ahead of the one being sent per read
    hedge_s: float = 1.0        # a read asks for spare shards when none arrived for this long
    straggler_s: float = 5.0    # a write waits this long past min_acks acks for the last shards
    suspect_s: float = 30.0     # how long a node that timed out or refused connections is tried last
    write_format: int = formats.WRITE_FORMAT   # storage format of new chunks (blob/formats.py)
    suspects: dict[str, float] = field(default_factory=dict)     # node_id -> monotonic deadline
    # Store-wide caps on chunk bytes being written / fetched, whatever the number of
    # requests, so gateway memory stays bounded under many concurrent large transfers (a
    # full chunk in flight holds ~2.5x its size: plaintext, shards, ciphertext or decoded copy).
    max_chunks_in_flight: int = 3
    write_budget: ByteBudget = field(init=False)
    fetch_budget: ByteBudget = field(init=False)
    # The plaintext around those chunks, in chunks of its own (2 x max_chunks_in_flight + 2):
    # the chunks in flight plus as many again filled by clients (writes) or being sent to
    # them (reads), so concurrent transfers keep the pipeline full without memory growing
    # with their number. Reads hold read_budget from the start of a chunk's fetch until its
    # reader has written it and asked for the next; writes hold slots (blob/slots.py).
    read_budget: ByteBudget = field(init=False)
    slots: SlotPool = field(init=False)
    # Stripe buffers (a chunk's sealed bytes = its ten data shards) of writes whose shards
    # all landed: the next chunk skips allocating and faulting them in.
    buffer_pool: list[bytearray] = field(default_factory=list)
    buffer_pool_max: int = 4
    background: set[asyncio.Task] = field(default_factory=set)   # failure reports in flight

    def __post_init__(self) -> None:
        self.write_budget = ByteBudget(self.max_chunks_in_flight * self.chunk_size)
        self.fetch_budget = ByteBudget(self.max_chunks_in_flight * self.chunk_size)
        plaintext_chunks = 2 * self.max_chunks_in_flight + 2
        self.read_budget = ByteBudget(plaintext_chunks * self.chunk_size)
        self.slots = SlotPool(self.chunk_size, limit=plaintext_chunks, keep=4)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run CPU work (hashing, AES, RS) on the worker threads; all of it releases the GIL."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    def take_buffer(self, size: int) -> bytearray | None:
        """A stripe buffer of exactly `size` bytes left by an earlier write (pages mapped)."""
        for i, buf in enumerate(self.buffer_pool):
            if len(buf) == size:
                return self.buffer_pool.pop(i)
        return None

    def give_buffer(self, buf: bytearray) -> None:
        full = formats.buffer_size(self.chunk_size, self.write_format)
        if len(buf) == full and len(self.buffer_pool) < self.buffer_pool_max:
            self.buffer_pool.append(buf)

    def mark_suspect(self, node_id: str) -> None:
        """Remember a node that did not answer, so the next chunks do not wait for it again."""
        if node_id not in self.suspects:
            log.warning("node.suspect", extra={"fields": {"node_id": node_id, "for_s": self.suspect_s}})
        self.suspects[node_id] = time.monotonic() + self.suspect_s

    def clear_suspect(self, node_id: str) -> None:
        self.suspects.pop(node_id, None)

    def is_suspect(self, node_id: str) -> bool:
        until = self.suspects.get(node_id)
        if until is None:
            return False
        if until < time.monotonic():
            del self.suspects[node_id]
            return False
        return True

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
