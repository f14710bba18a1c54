"""What every role's `serve()` needs the same way: its listen address, a stop signal, and an
HTTP server that bounds how long a client may keep it waiting.

aiohttp closes idle keep-alive connections (`keepalive_timeout`) but nothing else: a client
that sends half a request head, stops halfway through a body or stops reading an answer
holds its connection, its request slot and its buffers for good. `app_runner` builds the
aiohttp runner with a request handler (the per-connection protocol) that adds the missing
clocks of `ServerTimeouts`:

- head: from a connection's start, or from the first byte of a request, to its complete
  head. A partial head then gets `408` and the connection closes; a connection that sent
  nothing is closed silently.
- body: the longest pause while the server waits for body bytes. It counts only while a
  handler is actually waiting to read (so neither while the server is busy with the bytes
  it has and its reading is paused, nor while a client waits for `100 Continue`); the
  waiting read then raises `BodyTimeout`, which each role answers (S3: 400
  RequestTimeout; internally 408) before the connection closes.
- send: the longest time an answer's bytes stay unread by the client while the server
  has more to send; the connection is then dropped (there is nobody to answer).

One timer per connection checks these a few times per timeout, never per byte. Every
answer also carries `Keep-Alive: timeout=N`, so our own clients (config/internal_http)
never reuse a connection the server is about to close.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from config.settings import ServerTimeouts

log = logging.getLogger("config.serving")

_HEAD_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 34\r\n"
                        b"Connection: close\r\n\r\nrequest head not received in time\n")


class BodyTimeout(TimeoutError):
    """The client stopped sending a request body the server was reading (ServerTimeouts.body_idle_s)."""


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (validated by config.settings) -> (host without IPv6 brackets, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def stop_event(stop: asyncio.Event | None = None) -> asyncio.Event:
    """`stop`, or a new event set by SIGTERM/SIGINT (where this thread may handle signals)."""
    if stop is not None:
        return stop
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    return stop


def app_runner(app: web.Application, timeouts: ServerTimeouts, **kwargs: Any) -> web.AppRunner:
    """An aiohttp runner for `app` whose connections obey `timeouts` (kwargs go to AppRunner)."""
    return _GuardedRunner(app, timeouts, **kwargs)


class _GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, timeouts: ServerTimeouts, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=timeouts.keepalive_s, **kwargs)
        self.timeouts = timeouts
        hint = f"timeout={int(timeouts.keepalive_s)}"

        async def announce_keepalive(_request: web.Request, response: web.StreamResponse) -> None:
            if response.keep_alive is not False:
                response.headers.setdefault("Keep-Alive", hint)

        app.on_response_prepare.append(announce_keepalive)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The server aiohttp built for the app, made to create guarded protocols (a subclass
        # that only overrides the factory call, so the object is otherwise unchanged).
        server.__class__ = _GuardedServer
        server.timeouts = self.timeouts  # type: ignore[attr-defined]
        server.request_handler = _refuse_unknown_expectations(server.request_handler)
        return server


class _GuardedServer(web.Server):
    timeouts: ServerTimeouts

    def __call__(self) -> RequestHandler:
        return _GuardedProtocol(self, loop=self._loop, timeouts=self.timeouts, **self._kwargs)


def _refuse_unknown_expectations(
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """`Expect` other than 100-continue: 417, before the routes' expect handlers (aiohttp's
    default one quotes the value back and fails on bytes that are not UTF-8)."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect is not None and expect.strip().lower() != "100-continue":
            return web.Response(status=417, text="only Expect: 100-continue is supported\n")
        return await handler(request)

    return handle


class _GuardedProtocol(RequestHandler):
    """aiohttp's per-connection request handler plus the head, body and send clocks."""

    __slots__ = (
        "_body",
        "_body_expired",
        "_guard",
        "_head_bytes",
        "_head_since",
        "_last_rx",
        "_poll_s",
        "_send_since",
        "_send_size",
        "_timeouts",
        "_wait_ref",
        "_wait_seen",
    )

    def __init__(self, manager: web.Server, *, timeouts: ServerTimeouts, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._timeouts = timeouts
        self._poll_s = min(timeouts.header_s, timeouts.body_idle_s, timeouts.send_idle_s) / 4
        self._guard: asyncio.TimerHandle | None = None
        self._head_since: float | None = None      # a request head is due since then
        self._head_bytes = False                   # ... and some of it arrived
        self._body: Any = None                     # the payload of the latest request
        self._last_rx = 0.0
        self._wait_ref: object = None              # the body read last seen waiting ...
        self._wait_seen = 0.0                      # ... since then
        self._body_expired: float | None = None
        self._send_size = -1
        self._send_since = 0.0

    # ---- the connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        now = self._loop.time()
        self._head_since = self._last_rx = now
        self._arm(now + self._timeouts.header_s)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        self._body = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self._last_rx = self._loop.time()
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:             # a head completed
            self._head_since, self._head_bytes = None, False
            if self._messages:
                self._body, self._body_expired = self._messages[-1][1], None
        elif data and not self._head_bytes and not self._messages and (
                self._body is None or self._body.is_eof()):
            if self._head_since is None:             # the first bytes of the next request
                self._head_since = now
            self._head_bytes = True

    # ---- the clocks -----------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        if self._guard is not None:
            self._guard.cancel()
        self._guard = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._guard = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        now = self._loop.time()
        t = self._timeouts
        due = now + self._poll_s
        if self._head_since is not None and not self._request_in_progress and not self._messages:
            deadline = self._head_since + t.header_s
            if now >= deadline:
                self._expire_head(transport)
                return
            due = min(due, deadline)
        body = self._body
        if body is not None and not body.is_eof():
            if self._body_expired is not None:
                if now >= self._body_expired + t.body_idle_s:   # answered or not, the client is gone
                    transport.abort()
                    return
            else:
                waiter = getattr(body, "_waiter", None)
                if waiter is not None and not self._reading_paused:
                    if waiter is not self._wait_ref:
                        self._wait_ref, self._wait_seen = waiter, now
                    deadline = max(self._last_rx, self._wait_seen) + t.body_idle_s
                    if now >= deadline:
                        self._expire_body(body, now)
                    else:
                        due = min(due, deadline)
        if self.writing_paused:
            size = transport.get_write_buffer_size()
            if size != self._send_size:
                self._send_size, self._send_since = size, now
            deadline = self._send_since + t.send_idle_s
            if now >= deadline:
                self._log("send", transport)
                transport.abort()
                return
            due = min(due, deadline)
        else:
            self._send_size = -1
        self._arm(due)

    def _expire_head(self, transport: asyncio.Transport) -> None:
        if self._head_bytes:
            self._log("head", transport)
            transport.write(_HEAD_TIMEOUT_ANSWER)
        self.force_close()

    def _expire_body(self, body: Any, now: float) -> None:
        self._body_expired = now
        self._log("body", self.transport)
        body.set_exception(BodyTimeout(f"no request body bytes for {self._timeouts.body_idle_s:g} s"))

    @staticmethod
    def _log(phase: str, transport: asyncio.BaseTransport | None) -> None:
        peer = transport.get_extra_info("peername") if transport is not None else None
        log.info("http.timeout", extra={"fields": {"phase": phase, "remote": peer[0] if peer else None}})
