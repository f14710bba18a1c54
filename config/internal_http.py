"""Keep-alive HTTP/1.1 exchanges between our own services that receive bodies in place.

Why not aiohttp's client for the calls of the data path (gateway -> nodes, gateway ->
coordinator): its parser hands a body over as fresh `bytes` pieces (one copy out of the
read buffer, another in the parser) that `read()` then joins (a third), and a call costs
~150 us of client CPU against ~50 here. A GET of one GiB is ~1,300 shard requests; a small
GET is one coordinator call. An `asyncio.BufferedProtocol` lets the event loop's socket
read land directly in the buffer the body ends up in (for shards, a `bytes` object filled
once: the caller passes the allocator; or, per request, the caller's own buffer `into`, so
the ten data shards of a chunk land at their offsets in one stripe buffer).

This speaks only the subset of HTTP/1.1 our own servers (aiohttp) answer with: one
request at a time per connection, `Content-Length` framing, keep-alive unless the server
says `Connection: close`. Anything else (chunked responses, a head over 16 KiB, a body
over the caller's limit) is refused as a protocol error and the connection closed.
Idempotent requests that fail on a reused connection before any answer are retried once
on a fresh one (the server may have closed it as we reused it); POSTs never are, so an
idle connection is reused only for half the server's announced keep-alive time
(`Keep-Alive: timeout=N`, which config/serving adds to every answer), at most IDLE_TTL_S.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Buffer = bytes | bytearray | memoryview
# n -> (a writable view of n bytes to receive into, a function giving the finished body)
BodyAllocator = Callable[[int], tuple[memoryview, Callable[[], Buffer]]]

HEAD_MAX = 16 << 10
IDLE_TTL_S = 30.0  # at most; less when the server announces a short keep-alive
_KEEPALIVE_TIMEOUT = re.compile(r"timeout=(\d{1,6})", re.ASCII)


_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE"))


class ProtocolError(Exception):
    """The server's answer is not HTTP we understand."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: Buffer


def bytearray_body(n: int) -> tuple[memoryview, Callable[[], Buffer]]:
    buf = bytearray(n)
    return memoryview(buf), lambda: buf


class _Connection(asyncio.BufferedProtocol):
    """One TCP connection to a server; carries one exchange at a time."""

    def __init__(self, alloc: BodyAllocator) -> None:
        self._alloc = alloc
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._head = bytearray(HEAD_MAX)
        self._head_view = memoryview(self._head)
        self._head_len = 0
        self._body: Callable[[], Buffer] | None = None
        self._body_view: memoryview | None = None
        self._body_pos = 0
        self._status = 0
        self._headers: dict[str, str] = {}
        self._max_body = 0
        self._into: memoryview | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self.reusable = False
        self.idle_ttl = IDLE_TTL_S

    # ---- asyncio protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError(f"connection closed by the server ({exc or 'EOF'})"))

    def eof_received(self) -> bool:
        self._fail(ConnectionResetError("connection closed by the server"))
        return False

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body_view is not None:
            return self._body_view[self._body_pos :]
        if self._head_len >= HEAD_MAX:  # only after _close: the bytes are discarded
            return self._head_view
        return self._head_view[self._head_len :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._body_view is not None:
            self._body_pos += nbytes
            if self._body_pos == len(self._body_view):
                self._finish()
            return
        start = max(0, self._head_len - 3)
        self._head_len += nbytes
        if self._waiter is None or self._waiter.done():
            self._close(ProtocolError("the server sent bytes nobody asked for"))
            return
        end = self._head.find(b"\r\n\r\n", start, self._head_len)
        if end < 0:
            if self._head_len >= HEAD_MAX:
                self._close(ProtocolError(f"response head over {HEAD_MAX} bytes"))
            return
        try:
            length = self._parse_head(end)
        except ProtocolError as exc:
            self._close(exc)
            return
        extra = self._head_len - (end + 4)
        if extra > length:
            self._close(ProtocolError("the server sent more than the response body"))
            return
        if length == 0:
            self._finish()
            return
        into = self._into
        if into is not None and 200 <= self._status < 300 and length == len(into):
            self._body_view, self._body = into, lambda: into
        else:
            self._body_view, self._body = self._alloc(length)
        if extra:
            self._body_view[:extra] = self._head_view[end + 4 : self._head_len]
        self._body_pos = extra
        if self._body_pos == length:
            self._finish()

    # ---- exchange ---------------------------------------------------------------------

    def _parse_head(self, end: int) -> int:
        lines = bytes(self._head_view[:end]).split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        self._status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        self._headers = headers
        if "transfer-encoding" in headers:
            raise ProtocolError("chunked responses are not expected from our services")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ProtocolError("bad Content-Length") from None
        if not 0 <= length <= self._max_body:
            raise ProtocolError(f"response body of {length} bytes, expected at most {self._max_body}")
        self.reusable = headers.get("connection", "").lower() != "close"
        announced = _KEEPALIVE_TIMEOUT.search(headers.get("keep-alive", ""))
        if announced is not None:
            self.idle_ttl = min(IDLE_TTL_S, int(announced.group(1)) / 2)
        return length

    def _finish(self) -> None:
        body = self._body() if self._body is not None else b""
        response = Response(self._status, self._headers, body)
        self._reset()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _reset(self) -> None:
        self._into = None
        self._head_len = 0
        self._body = None
        self._body_view = None
        self._body_pos = 0

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _close(self, exc: Exception) -> None:
        self._fail(exc)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, head: bytes, body: Buffer | None, max_body: int,
             into: memoryview | None = None) -> asyncio.Future[Response]:
        assert self.transport is not None and self._waiter is None
        self._reset()
        self.reusable = False
        self._max_body = max_body
        self._into = into
        self._waiter = asyncio.get_running_loop().create_future()
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        return self._waiter

    def abort(self) -> None:
        self._close(ConnectionAbortedError("exchange abandoned"))


class InternalHttp:
    """A pool of keep-alive connections per server address."""

    def __init__(
        self,
        *,
        max_idle_per_server: int = 64,
        connect_timeout_s: float = 5.0,
        alloc: BodyAllocator = bytearray_body,
    ) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._targets: dict[str, tuple[str, int, str]] = {}
        self._max_idle = max_idle_per_server
        self._connect_timeout_s = connect_timeout_s
        self._alloc = alloc
        self._loop: asyncio.AbstractEventLoop | None = None

    def _target(self, address: str) -> tuple[str, int, str]:
        found = self._targets.get(address)
        if found is None:
            url = urllib.parse.urlsplit(address)
            if url.scheme != "http" or not url.hostname:
                raise ValueError(f"service address {address!r} is not http://host:port")
            port = url.port or 80
            found = (url.hostname, port, f"{url.hostname}:{port}")
            self._targets[address] = found
        return found

    async def request(
        self,
        address: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: Buffer | None = None,
        *,
        max_body: int,
        into: memoryview | None = None,
    ) -> Response:
        """One exchange; raises OSError (ConnectionError, ...) / ProtocolError.

        A 2xx answer whose body is exactly len(into) bytes is received into `into` (then
        `Response.body` is `into`); any other body goes to the pool's allocator. Nothing is
        written into `into` once this call has returned or raised (the connection of an
        abandoned exchange is aborted). No timeout of its own (beyond connecting): wrap the
        call in asyncio.timeout.
        """
        host, port, host_header = self._target(address)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body) if body else 0}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        retries = 1 if method in _IDEMPOTENT else 0
        for attempt in range(retries + 1):
            conn, reused = await self._acquire(host, port)
            try:
                response = await conn.send(head, body, max_body, into)
            except ConnectionError:
                conn.abort()
                if reused and attempt < retries:
                    continue  # the server closed an idle connection as we reused it: once more, fresh
                raise
            except BaseException:
                conn.abort()  # timed out or cancelled mid-exchange: the connection is in an unknown state
                raise
            self._release(host, port, conn)
            return response
        raise AssertionError("unreachable")

    async def _acquire(self, host: str, port: int) -> tuple[_Connection, bool]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that made them
            self._idle.clear()
            self._loop = loop
        idle = self._idle.get((host, port))
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < conn.idle_ttl:
                return conn, True
            conn.abort()
        async with asyncio.timeout(self._connect_timeout_s):
            _transport, conn = await loop.create_connection(lambda: _Connection(self._alloc), host, port)
        return conn, False

    def _release(self, host: str, port: int, conn: _Connection) -> None:
        idle = self._idle.setdefault((host, port), [])
        if conn.closed or not conn.reusable or len(idle) >= self._max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
