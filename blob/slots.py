"""Plaintext slots: the chunk-sized buffers writes fill from the network, shared by every
write of a gateway and counted store-wide.

A write holds a slot while it fills it from its client and until the chunk is hashed
(encryption, coding and upload work on their own buffers). With slots owned per write,
memory grew with the number of concurrent uploads (measured: 32 concurrent 32 MiB PUTs
took the gateway to 751 MiB). With a fixed number of slots, a write that finds none free
waits before reading more of its body, so clients are slowed by TCP backpressure instead.
Waiters are served in arrival order (asyncio.Semaphore is FIFO).

A slot handed back may still be read by a worker thread of a write that failed (thread
jobs cannot be cancelled); that is harmless: the next owner only overwrites the bytes in
place, and the failed write's results are discarded.
"""

from __future__ import annotations

import asyncio


class SlotPool:
    """At most `limit` buffers of `size` bytes out at once; up to `keep` idle ones are kept
    (their pages stay mapped for the next write), the rest are freed."""

    def __init__(self, size: int, limit: int, keep: int) -> None:
        if limit < 1:
            raise ValueError("a slot pool needs at least one slot")
        self.size = size
        self.limit = limit
        self._keep = keep
        self._free: list[bytearray] = []
        self._available = asyncio.Semaphore(limit)
        self.out = 0

    async def take(self) -> bytearray:
        await self._available.acquire()
        self.out += 1
        return self._free.pop() if self._free else bytearray(self.size)

    def give(self, buf: bytearray) -> None:
        if len(self._free) < self._keep:
            self._free.append(buf)
        self.out -= 1
        self._available.release()
