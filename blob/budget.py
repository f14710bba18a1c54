"""A FIFO byte budget: bounds the memory of chunks in flight across all requests.

Counting chunks would either cap big transfers loosely or throttle small objects (a 4 KiB
object would take a whole 8 MiB slot); counting bytes does both right. Waiters are served
in arrival order so a large request is not starved by a stream of small ones.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("budget limit must be positive")
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[asyncio.Future[None], int]] = deque()

    async def acquire(self, n: int) -> int:
        """Wait until `n` bytes fit (at most the whole budget); returns what to release."""
        n = max(0, min(n, self.limit))
        if not self._waiters and self.used + n <= self.limit:
            self.used += n
            return n
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (fut, n)
        self._waiters.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(n)          # granted just as we were cancelled: give it back
            else:
                self._waiters.remove(entry)
                self._wake()
            raise
        return n

    def release(self, n: int) -> None:
        self.used -= n
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            fut, need = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if self.used + need > self.limit:
                break
            self._waiters.popleft()
            self.used += need
            fut.set_result(None)
