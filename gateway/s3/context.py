"""Per-process gateway state and the per-request context every S3 handler receives.

The router builds one `S3Context` per request (bucket, key, authenticated identity,
request id) so handlers are plain `async def handler(ctx) -> web.StreamResponse`
functions that never parse addressing or authentication again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDictProxy

from blob import ChunkStore, ReadStats
from config.settings import GatewaySection
from coordinator.api import CoordinatorAPI
from coordinator.records import MAX_TOUCH_BATCH, BucketInfo, CoordinatorError, KeyInfo, ObjectInfo
from gateway.downloads import DownloadLog
from gateway.s3.errors import S3Error
from gateway.s3.payload import PayloadStream
from gateway.s3.sigv4 import AuthContext
from gateway.ttlcache import TtlCache
from gateway.usage import UsageMeter

log = logging.getLogger("gateway.s3")
MAX_XML_BODY = 2 << 20     # DeleteObjects with 1000 keys of 1024 bytes fits; anything bigger is abuse
S3_MAX_PUT = 5 << 30       # single PUT / part limit
TOUCH_INTERVAL_S = 60.0   # a version read again within this is not reported again
TOUCH_FLUSH_S = 1.0       # reads are reported to the coordinator in one call per this period


@dataclass
class GatewayState:
    """What every request of one gateway process shares."""

    cfg: GatewaySection
    coordinator: CoordinatorAPI
    store: ChunkStore
    keys: TtlCache[str, KeyInfo]
    buckets: TtlCache[tuple[str, str], BucketInfo]
    downloads: DownloadLog
    # Buckets by name alone, for requests that carry no credentials (public-read ACLs, CORS).
    public_buckets: TtlCache[str, BucketInfo] | None = None
    usage: UsageMeter | None = None      # per-tenant requests and bytes (gateway/usage.py)
    touched: dict[str, float] = field(default_factory=dict)
    touch_pending: set[str] = field(default_factory=set)
    touch_flusher: asyncio.Task | None = None

    def forget_bucket(self, tenant_id: str, name: str) -> None:
        """After this gateway changed a bucket's settings: its next requests see them at once."""
        self.buckets.forget((tenant_id, name))
        if self.public_buckets is not None:
            self.public_buckets.forget(name)

    def touch(self, version_id: str) -> None:
        """Record a read for lifecycle (last access); best effort, never delays the answer.

        Last access only needs to be roughly right (lifecycle rules count days), so each
        version is reported at most once per `TOUCH_INTERVAL_S`, and the reports of one
        `TOUCH_FLUSH_S` go to the coordinator as one call: a burst of GETs costs one metadata
        write a second, not one per GET.
        """
        now = time.monotonic()
        last = self.touched.get(version_id)
        recent = last is not None and now - last < TOUCH_INTERVAL_S
        if recent or len(self.touch_pending) >= MAX_TOUCH_BATCH:  # one call carries them all
            return
        if len(self.touched) >= 10000:
            self.touched.clear()
        self.touched[version_id] = now
        self.touch_pending.add(version_id)
        if self.touch_flusher is None or self.touch_flusher.done():
            self.touch_flusher = asyncio.get_running_loop().create_task(self._flush_touches())

    def served(self, ctx: S3Context, obj: ObjectInfo) -> None:
        """The object's bytes went out: record the read (last access; downloads audit)."""
        self.touch(obj.version_id)
        assert ctx.auth is not None
        self.downloads.note(obj, ctx.auth.key.user_id, ctx.request.remote)

    async def _flush_touches(self) -> None:
        while self.touch_pending:
            await asyncio.sleep(TOUCH_FLUSH_S)
            await self._send_touches()

    async def _send_touches(self) -> None:
        batch, self.touch_pending = list(self.touch_pending), set()
        try:
            await self.coordinator.touch_objects(batch)
        except Exception as exc:
            log.debug("touch.failed", extra={"fields": {"versions": len(batch), "error": repr(exc)}})

    async def drain(self) -> None:
        """Report the reads still pending (at shutdown), without waiting for the next period."""
        await self.downloads.drain()
        if self.touch_flusher is not None and not self.touch_flusher.done():
            self.touch_flusher.cancel()
            await asyncio.gather(self.touch_flusher, return_exceptions=True)
        if self.touch_pending:
            await asyncio.wait_for(self._send_touches(), timeout=5.0)
        if self.usage is not None:
            await self.usage.drain()


STATE_KEY = web.AppKey("shardbox_gateway", GatewayState)


@dataclass
class S3Context:
    request: web.Request
    state: GatewayState
    request_id: str
    bucket: str | None = None
    key: str | None = None
    auth: AuthContext | None = None     # set once the signature checked out
    continued: bool = False
    log_fields: dict[str, Any] = field(default_factory=dict)
    # Node traffic of the object bytes this request read (logged with the request).
    read_stats: ReadStats = field(default_factory=ReadStats)
    trailers: dict[str, str] = field(default_factory=dict)
    # The bucket an unsigned request reads under a public-read ACL (gateway/s3/public.py).
    anonymous_bucket: BucketInfo | None = None

    @property
    def tenant_id(self) -> str:
        assert self.auth is not None
        return self.auth.key.tenant_id

    @property
    def user_id(self) -> str:
        assert self.auth is not None
        return self.auth.key.user_id

    @property
    def query(self) -> MultiDictProxy[str]:
        return self.request.query

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.request.headers

    @property
    def version_id(self) -> str | None:
        """`?versionId=` ("null" names the null version, which every never-versioned object is)."""
        version = self.request.query.get("versionId")
        if version == "":
            raise S3Error("InvalidArgument", "Version id cannot be the empty string",
                          ArgumentName="versionId", ArgumentValue="")
        return version

    @property
    def resource(self) -> str:
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + (f"/{self.key}" if self.key is not None else "")

    async def send_continue(self) -> None:
        """Answer `Expect: 100-continue` now that the request is known to be acceptable.

        The route's expect handler deliberately does nothing, so a request refused on its
        headers (bad signature, missing bucket, quota) is answered before the client sends
        a byte of its body.
        """
        if self.continued:
            return
        self.continued = True
        expect = self.request.headers.get("Expect", "")
        if expect.lower() == "100-continue" and self.request.version >= (1, 1):
            await self.request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.request.writer.output_size = 0

    def payload(self) -> PayloadStream:
        """The decoded, verified request body as a stream (call `send_continue` before iterating)."""
        assert self.auth is not None
        return PayloadStream(self.request, self.auth)

    async def read_small_body(self, limit: int = MAX_XML_BODY) -> bytes:
        """Read a request document (XML) whole, refusing anything over `limit` bytes."""
        length = self.request.content_length
        if length is not None and length > limit:
            raise S3Error("MaxMessageLengthExceeded", f"request body over {limit} bytes")
        await self.send_continue()
        stream = self.payload()
        if stream.decoded_length is not None and stream.decoded_length > limit:
            raise S3Error("MaxMessageLengthExceeded", f"request body over {limit} bytes")
        buf = bytearray()
        async for piece in stream:
            buf += piece
            if len(buf) > limit:
                raise S3Error("MaxMessageLengthExceeded", f"request body over {limit} bytes")
        self.trailers = getattr(stream, "trailers", {}) or {}
        return bytes(buf)


def s3_error_from(exc: CoordinatorError) -> S3Error:
    """A coordinator error answer as the S3 error the client sees."""
    return S3Error(exc.code, exc.message, status=exc.status)
