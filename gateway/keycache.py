"""A short-lived cache of access keys in front of `CoordinatorAPI.get_key`.

Every S3 request needs the secret of its access key to check the signature; asking the
coordinator each time would put it on the hot path of every request. Entries live
`ttl_s` seconds, so a revoked key stops working within that time. Unknown keys are not
cached (a typo must not hide a key created a moment later), and concurrent misses for
the same key share one coordinator call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from coordinator.records import CoordinatorAPI, CoordinatorError, KeyInfo
from gateway.s3.errors import S3Error


@dataclass
class _Entry:
    key: KeyInfo
    expires: float


class KeyCache:
    def __init__(self, coordinator: CoordinatorAPI, ttl_s: float, max_entries: int = 10000) -> None:
        self._coordinator = coordinator
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, asyncio.Future[KeyInfo]] = {}

    async def lookup(self, access_key: str) -> KeyInfo:
        """The key's record; the coordinator's CoordinatorError (InvalidAccessKeyId ...) otherwise."""
        now = time.monotonic()
        entry = self._entries.get(access_key)
        if entry is not None and entry.expires > now:
            return entry.key
        pending = self._pending.get(access_key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[KeyInfo] = asyncio.get_running_loop().create_future()
        self._pending[access_key] = fut
        try:
            key = await self._coordinator.get_key(access_key)
        except CoordinatorError as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: nobody else may be waiting
            raise
        except BaseException as exc:
            fut.set_exception(S3Error("ServiceUnavailable", f"key lookup failed: {exc}"))
            fut.exception()
            raise
        finally:
            self._pending.pop(access_key, None)
        if self._ttl > 0:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[access_key] = _Entry(key, now + self._ttl)
        fut.set_result(key)
        return key

    def forget(self, access_key: str) -> None:
        self._entries.pop(access_key, None)
