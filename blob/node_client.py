"""HTTP client for the storage node shard API (docs/internals.md "node/ HTTP API").

Requests go over `config.internal_http`'s keep-alive connections (a chunk is 14 parallel shard PUTs
or 10+ parallel GETs and several chunks are in flight, so reconnecting per request would
dominate), which receive shard bodies in place instead of through aiohttp's copies.
Every request carries the cluster credential (`config.cluster_auth.sign_headers`), bound
to the body through its xxh3-128 and to the node it is meant for through the node's id (a
request captured on its way to one node verifies on no other), and the caller's
`X-Request-Id`.

Reads are verified here: the bytes a node returns must hash to the checksum recorded in
the manifest at write time (bitrot check on every shard read). A ranged read cannot be
checked against the manifest's whole-shard checksum: the node verified every 64 KiB block
it read against its block sums before answering, and the bytes received must hash to the
node's `X-Shardbox-Range-Checksum` (nothing changed them on the way); the reader's AES-GCM
segment tags then authenticate the bytes themselves. Anything short of verified bytes
raises `ShardError` with a short `reason` the reader reports to the coordinator for repair.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import xxhash

from blob.stats import ReadStats
from config.cluster_auth import EMPTY_HASH, sign_headers
from config.internal_http import InternalHttp, ProtocolError, Response
from erasure.buffers import FreshBytes

Buffer = bytes | bytearray | memoryview
MAX_SHARD_BODY = 64 << 20  # far above any shard (a 64 MiB chunk gives 6.4 MiB shards)
MAX_REPLY_BODY = 1 << 20  # a PUT's or DELETE's JSON answer


class ShardError(Exception):
    """A shard request that did not yield what was asked (timeout, refused, corrupt, ...)."""

    def __init__(self, reason: str, shard_id: str, address: str, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(f"{reason}: shard {shard_id} on {address}")
        self.reason = reason
        self.shard_id = shard_id
        self.address = address
        self.status = status
        self.code = code

    @property
    def unreachable(self) -> bool:
        """The node did not answer at all (as opposed to answering with an error)."""
        return self.reason == "timeout" or self.reason.startswith("connection")


def shard_checksum(data: Buffer) -> str:
    """xxh3-128 hex, the checksum nodes and manifests use for shards."""
    return xxhash.xxh3_128_hexdigest(data)


def shard_id(chunk_key: str, index: int) -> str:
    return f"{chunk_key}.{index}"


class NodeClient:
    """Signed shard PUT/GET/DELETE against nodes over keep-alive connections (internal_http)."""

    def __init__(
        self, cluster_secret: str, *, limit_per_host: int = 64, connect_timeout_s: float = 5.0
    ) -> None:
        self._secret = cluster_secret
        self._http = InternalHttp(
            max_idle_per_server=limit_per_host, connect_timeout_s=connect_timeout_s, alloc=_fresh_body
        )

    async def close(self) -> None:
        self._http.close()

    def _headers(self, node_id: str, method: str, path: str, content_hash: str,
                 request_id: str | None) -> dict[str, str]:
        headers = sign_headers(self._secret, method, path, content_hash, target=node_id)
        if request_id:
            headers["X-Request-Id"] = request_id
        return headers

    async def _exchange(
        self, address: str, sid: str, method: str, headers: dict[str, str], body: Buffer | None,
        timeout_s: float, max_body: int, into: memoryview | None = None,
    ) -> Response:
        try:
            async with asyncio.timeout(timeout_s):
                return await self._http.request(address, method, f"/shards/{sid}", headers, body,
                                                max_body=max_body, into=into)
        except TimeoutError:
            raise ShardError("timeout", sid, address) from None
        except (OSError, ProtocolError) as exc:
            raise ShardError(f"connection ({type(exc).__name__})", sid, address) from None

    async def put_shard(self, address: str, sid: str, data: Buffer, checksum: str, *, node_id: str,
                        timeout_s: float, request_id: str | None = None) -> None:
        """Store one shard; returns once the node acknowledged it durable (201)."""
        headers = self._headers(node_id, "PUT", f"/shards/{sid}", checksum, request_id)
        headers["Content-Type"] = "application/octet-stream"
        resp = await self._exchange(address, sid, "PUT", headers, data, timeout_s, MAX_REPLY_BODY)
        if resp.status != 201:
            code = _error_code(resp.body)
            raise ShardError(f"put refused ({resp.status} {code})", sid, address, resp.status, code)

    async def get_shard(self, address: str, sid: str, expected_checksum: str | None, *, node_id: str,
                        timeout_s: float, request_id: str | None = None, stats: ReadStats | None = None,
                        into: memoryview | None = None) -> Buffer:
        """Fetch one shard and verify it against the manifest's checksum (or the node's header).

        With `into` (exactly the shard's length) the body is received there and `into` is
        returned; a shard of another length fails as a checksum mismatch.
        """
        headers = self._headers(node_id, "GET", f"/shards/{sid}", EMPTY_HASH, request_id)
        resp = await self._get(address, sid, headers, timeout_s, stats, into)
        if into is not None and resp.body is not into:
            raise ShardError(f"wrong length ({len(resp.body)} bytes, expected {len(into)})", sid, address,
                             200)
        expected = expected_checksum or resp.headers.get("x-shardbox-checksum")
        if expected is None:
            raise ShardError("no checksum to verify against", sid, address)
        if shard_checksum(resp.body) != expected.lower():
            raise ShardError("checksum mismatch", sid, address, 200, "ChecksumMismatch")
        return resp.body

    async def get_shard_range(self, address: str, sid: str, start: int, end: int, *, node_id: str,
                              timeout_s: float, into: memoryview, request_id: str | None = None,
                              stats: ReadStats | None = None) -> memoryview:
        """Bytes [start, end) of one shard, received into `into` (end - start bytes).

        The node checked every block it read against its block sums; here the bytes must
        hash to the range checksum it sent, and be the range asked for.
        """
        if len(into) != end - start or start < 0 or end <= start:
            raise ValueError(f"range [{start}, {end}) does not fit a buffer of {len(into)} bytes")
        headers = self._headers(node_id, "GET", f"/shards/{sid}", EMPTY_HASH, request_id)
        headers["Range"] = f"bytes={start}-{end - 1}"
        resp = await self._get(address, sid, headers, timeout_s, stats, into, status=206)
        content_range = resp.headers.get("content-range", "")
        if resp.body is not into or not content_range.startswith(f"bytes {start}-{end - 1}/"):
            raise ShardError(f"wrong range answered ({content_range or 'none'})", sid, address, 206)
        expected = resp.headers.get("x-shardbox-range-checksum")
        if expected is None or shard_checksum(into) != expected.lower():
            raise ShardError("range checksum mismatch", sid, address, 206, "ChecksumMismatch")
        return into

    async def _get(self, address: str, sid: str, headers: dict[str, str], timeout_s: float,
                   stats: ReadStats | None, into: memoryview | None, status: int = 200) -> Response:
        if stats is not None:
            stats.shard_gets += 1
        resp = await self._exchange(address, sid, "GET", headers, None, timeout_s, MAX_SHARD_BODY, into)
        if stats is not None:
            stats.node_bytes_in += len(resp.body)
        if resp.status != status:
            code = _error_code(resp.body)
            reason = {404: "missing", 500: "corrupt on node"}.get(resp.status, "get failed")
            raise ShardError(f"{reason} ({resp.status} {code})", sid, address, resp.status, code)
        return resp

    async def delete_shard(self, address: str, sid: str, *, node_id: str, timeout_s: float,
                           request_id: str | None = None) -> bool:
        """Delete one shard; True if it existed, False if the node did not have it."""
        headers = self._headers(node_id, "DELETE", f"/shards/{sid}", EMPTY_HASH, request_id)
        resp = await self._exchange(address, sid, "DELETE", headers, None, timeout_s, MAX_REPLY_BODY)
        if resp.status == 204:
            return True
        if resp.status == 404:
            return False
        code = _error_code(resp.body)
        raise ShardError(f"delete refused ({resp.status} {code})", sid, address, resp.status, code)


def _fresh_body(n: int) -> tuple[memoryview, Callable[[], bytes]]:
    """Shard bodies are received straight into the `bytes` object the caller gets."""
    fresh = FreshBytes(n)
    return memoryview(fresh.view), lambda: fresh.value


def _error_code(body: Buffer) -> str | None:
    try:
        return json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


__all__ = ["NodeClient", "ShardError", "shard_checksum", "shard_id"]
