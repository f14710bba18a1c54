"""Short-lived caches in front of coordinator lookups that every request would repeat.

Every S3 request needs the secret of its access key, and every upload checks its bucket
before it accepts the body (`Expect: 100-continue`); asking the coordinator each time
would put it on the hot path twice per request. Entries live `ttl_s` seconds, so a
revoked key or a deleted bucket is noticed within that time (and a cached bucket only
lets the body start: the commit checks the bucket again). Failures are not cached (a
typo must not hide a key created a moment later), and concurrent misses for the same
name share one coordinator call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from coordinator.api import CoordinatorAPI
from coordinator.records import BucketInfo, CoordinatorError, KeyInfo
from gateway.s3.errors import S3Error

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, loader: Callable[[K], Awaitable[V]], ttl_s: float, max_entries: int = 10000) -> None:
        self._loader = loader
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: dict[K, tuple[V, float]] = {}
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def lookup(self, name: K) -> V:
        """The cached or freshly loaded value; the loader's CoordinatorError otherwise."""
        now = time.monotonic()
        entry = self._entries.get(name)
        if entry is not None and entry[1] > now:
            return entry[0]
        pending = self._pending.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[name] = fut
        try:
            value = await self._loader(name)
        except CoordinatorError as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: nobody else may be waiting
            raise
        except BaseException as exc:
            fut.set_exception(S3Error("ServiceUnavailable", f"metadata lookup failed: {exc}"))
            fut.exception()
            raise
        finally:
            self._pending.pop(name, None)
        if self._ttl > 0:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[name] = (value, now + self._ttl)
        fut.set_result(value)
        return value

    def forget(self, name: K) -> None:
        self._entries.pop(name, None)


def key_cache(coordinator: CoordinatorAPI, ttl_s: float) -> TtlCache[str, KeyInfo]:
    return TtlCache(coordinator.get_key, ttl_s)


def bucket_cache(coordinator: CoordinatorAPI, ttl_s: float) -> TtlCache[tuple[str, str], BucketInfo]:
    """(tenant_id, bucket name) -> BucketInfo."""

    async def load(name: tuple[str, str]) -> BucketInfo:
        return await coordinator.get_bucket(*name)

    return TtlCache(load, ttl_s)
