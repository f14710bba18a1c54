"""HTTP client for the storage node shard API (docs/internals.md "node/ HTTP API").

One `aiohttp.ClientSession` per gateway process, with a large keep-alive pool: a chunk
is 14 parallel shard PUTs or 10+ parallel GETs and several chunks are in flight, so
reconnecting per request would dominate. Every request carries the cluster credential
(`config.cluster_auth.sign_headers`), bound to the body through its xxh3-128, and the
caller's `X-Request-Id`.

Reads are verified here: the bytes a node returns must hash to the checksum recorded in
the manifest at write time (bitrot check on every shard read). Anything short of a
verified shard raises `ShardError` with a short `reason` the reader reports to the
coordinator for repair.
"""

from __future__ import annotations

import json

import aiohttp
import xxhash

from config.cluster_auth import EMPTY_HASH, sign_headers

Buffer = bytes | bytearray | memoryview


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
    """Signed shard PUT/GET/DELETE against nodes; one shared connection pool."""

    def __init__(self, cluster_secret: str, *, limit_per_host: int = 64, limit: int = 1024,
                 connect_timeout_s: float = 5.0) -> None:
        self._secret = cluster_secret
        self._limit_per_host = limit_per_host
        self._limit = limit
        self._connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit_per_host,
                                             keepalive_timeout=60.0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  read_bufsize=1 << 20, raise_for_status=False,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _headers(self, method: str, path: str, content_hash: str, request_id: str | None) -> dict[str, str]:
        headers = sign_headers(self._secret, method, path, content_hash)
        if request_id:
            headers["X-Request-Id"] = request_id
        return headers

    def _timeout(self, timeout_s: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, self._connect_timeout_s))

    @staticmethod
    async def _error_code(resp: aiohttp.ClientResponse) -> str | None:
        try:
            body = await resp.read()
            return json.loads(body)["error"]["code"]
        except (ValueError, KeyError, TypeError, aiohttp.ClientError):
            return None

    async def put_shard(self, address: str, sid: str, data: Buffer, checksum: str, *, timeout_s: float,
                        request_id: str | None = None) -> None:
        """Store one shard; returns once the node acknowledged it durable (201)."""
        path = f"/shards/{sid}"
        headers = self._headers("PUT", path, checksum, request_id)
        headers["Content-Type"] = "application/octet-stream"
        try:
            async with self._get_session().put(address.rstrip("/") + path, data=data, headers=headers,
                                               timeout=self._timeout(timeout_s)) as resp:
                if resp.status == 201:
                    await resp.read()
                    return
                code = await self._error_code(resp)
                raise ShardError(f"put refused ({resp.status} {code})", sid, address, resp.status, code)
        except TimeoutError:
            raise ShardError("timeout", sid, address) from None
        except aiohttp.ClientError as exc:
            raise ShardError(f"connection ({type(exc).__name__})", sid, address) from None

    async def get_shard(self, address: str, sid: str, expected_checksum: str | None, *, timeout_s: float,
                        request_id: str | None = None) -> bytes:
        """Fetch one shard and verify it against the manifest's checksum (or the node's header)."""
        path = f"/shards/{sid}"
        headers = self._headers("GET", path, EMPTY_HASH, request_id)
        try:
            async with self._get_session().get(address.rstrip("/") + path, headers=headers,
                                               timeout=self._timeout(timeout_s)) as resp:
                if resp.status != 200:
                    code = await self._error_code(resp)
                    reason = {404: "missing", 500: "corrupt on node"}.get(resp.status, "get failed")
                    raise ShardError(f"{reason} ({resp.status} {code})", sid, address, resp.status, code)
                body = await resp.read()
                node_checksum = resp.headers.get("X-Shardbox-Checksum")
        except TimeoutError:
            raise ShardError("timeout", sid, address) from None
        except aiohttp.ClientError as exc:
            raise ShardError(f"connection ({type(exc).__name__})", sid, address) from None
        expected = expected_checksum or node_checksum
        if expected is None:
            raise ShardError("no checksum to verify against", sid, address)
        if shard_checksum(body) != expected.lower():
            raise ShardError("checksum mismatch", sid, address, 200, "ChecksumMismatch")
        return body

    async def delete_shard(self, address: str, sid: str, *, timeout_s: float,
                           request_id: str | None = None) -> bool:
        """Delete one shard; True if it existed, False if the node did not have it."""
        path = f"/shards/{sid}"
        headers = self._headers("DELETE", path, EMPTY_HASH, request_id)
        try:
            async with self._get_session().delete(address.rstrip("/") + path, headers=headers,
                                                  timeout=self._timeout(timeout_s)) as resp:
                if resp.status == 204:
                    return True
                code = await self._error_code(resp)
                if resp.status == 404:
                    return False
                raise ShardError(f"delete refused ({resp.status} {code})", sid, address, resp.status, code)
        except TimeoutError:
            raise ShardError("timeout", sid, address) from None
        except aiohttp.ClientError as exc:
            raise ShardError(f"connection ({type(exc).__name__})", sid, address) from None


__all__ = ["NodeClient", "ShardError", "shard_checksum", "shard_id"]
