"""Maintenance calls on storage nodes (docs/internals.md "node/ HTTP API"): list a node's
shards, delete shards in batches, compact, read its health. Used by workers (garbage
collection, reconciliation) and tools; the data path's shard I/O is blob/node_client.py.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from config.cluster_auth import EMPTY_HASH, body_hash, sign_headers
from config.internal_http import InternalHttp, ProtocolError

MAX_LIST = 10_000  # the node's limit per listing page
MAX_DELETE = 10_000  # ... and per batch delete
_MAX_ANSWER = 16 << 20


class NodeCallFailed(Exception):
    """A node did not answer a maintenance call as documented (down, refused, bad answer)."""


@dataclass(frozen=True)
class ShardListing:
    ids: list[str]
    next: str | None  # pass as `after` for the next page; None: that was the last


class NodeMaintenance:
    def __init__(self, cluster_secret: str, *, timeout_s: float = 60.0) -> None:
        self._secret = cluster_secret
        self._timeout_s = timeout_s
        self._http = InternalHttp(max_idle_per_server=4)

    async def close(self) -> None:
        self._http.close()

    async def _call(self, node_id: str, address: str, method: str, path: str, doc: Any = None) -> Any:
        """`node_id` is what the request's signature binds (config/cluster_auth.py): the node at
        `address` refuses a request signed for another."""
        body = b"" if doc is None else json.dumps(doc).encode()
        headers = sign_headers(self._secret, method, path, body_hash(body) if body else EMPTY_HASH,
                               target=node_id)
        if body:
            headers["Content-Type"] = "application/json"
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._http.request(
                    address, method, path, headers, body or None, max_body=_MAX_ANSWER
                )
        except (OSError, TimeoutError, ProtocolError) as exc:
            raise NodeCallFailed(f"{method} {address}{path}: {exc!r}") from None
        if resp.status != 200:
            raise NodeCallFailed(f"{method} {address}{path}: {resp.status} {bytes(resp.body[:200])!r}")
        try:
            return json.loads(resp.body)
        except ValueError:
            raise NodeCallFailed(f"{method} {address}{path}: answer is not JSON") from None

    async def list_shards(
        self, node_id: str, address: str, after: str | None = None, limit: int = 1000
    ) -> ShardListing:
        query = {"limit": str(min(limit, MAX_LIST))}
        if after:
            query["after"] = after
        doc = await self._call(node_id, address, "GET", "/shards?" + urllib.parse.urlencode(query))
        return ShardListing([s["id"] for s in doc["shards"]], doc.get("next"))

    async def delete_shards(self, node_id: str, address: str, ids: list[str]) -> tuple[list[str], list[str]]:
        """(deleted, missing) ids; batches of MAX_DELETE."""
        deleted: list[str] = []
        missing: list[str] = []
        for i in range(0, len(ids), MAX_DELETE):
            batch = {"ids": ids[i : i + MAX_DELETE]}
            doc = await self._call(node_id, address, "POST", "/shards/delete", batch)
            deleted += doc.get("deleted", [])
            missing += doc.get("missing", [])
        return deleted, missing

    async def compact(self, node_id: str, address: str) -> dict[str, Any]:
        return await self._call(node_id, address, "POST", "/compact")

    async def health(self, node_id: str, address: str) -> dict[str, Any]:
        return await self._call(node_id, address, "GET", "/health")
