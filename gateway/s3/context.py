"""Per-process gateway state and the per-request context every S3 handler receives.

The router builds one `S3Context` per request (bucket, key, authenticated identity,
request id) so handlers are plain `async def handler(ctx) -> web.StreamResponse`
functions that never parse addressing or authentication again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from config.settings import GatewaySection
from coordinator.records import CoordinatorAPI, CoordinatorError
from gateway.keycache import KeyCache
from gateway.s3.errors import S3Error

MAX_XML_BODY = 2 << 20     # DeleteObjects with 1000 keys of 1024 bytes fits; anything bigger is abuse
S3_MAX_PUT = 5 << 30       # single PUT / part limit
STATE_KEY: web.AppKey[GatewayState] = web.AppKey("shardbox_gateway", None)  # type: ignore[arg-type]


@dataclass
class GatewayState:
    """What every request of one gateway process shares."""

    cfg: GatewaySection
    coordinator: CoordinatorAPI
    store: Any                      # gateway.datapath.ChunkStore
    keys: KeyCache


@dataclass
class S3Context:
    request: web.Request
    state: GatewayState
    request_id: str
    bucket: str | None = None
    key: str | None = None
    auth: Any = None                # gateway.s3.sigv4.AuthContext once authenticated
    continued: bool = False
    body_started: bool = False      # the request body was (partly) read
    log_fields: dict[str, Any] = field(default_factory=dict)
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def tenant_id(self) -> str:
        return self.auth.key.tenant_id

    @property
    def user_id(self) -> str:
        return self.auth.key.user_id

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def headers(self) -> Any:
        return self.request.headers

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

    def payload(self) -> Any:
        """The decoded, verified request body as a stream (after sending 100 Continue)."""
        from gateway.s3.payload import PayloadStream
        self.body_started = True
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


async def coord(awaitable: Any) -> Any:
    """Await a coordinator call, turning its errors into S3 errors."""
    try:
        return await awaitable
    except CoordinatorError as exc:
        raise s3_error_from(exc) from None
