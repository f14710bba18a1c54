"""A ClamAV daemon (clamd) as a scanner: the INSTREAM protocol over a unix or TCP socket.

INSTREAM: `zINSTREAM\\0`, then the bytes in frames of a 4-byte big-endian length and that
many bytes (1 MiB here: clamd's throughput drops with small frames), then a zero length;
clamd answers one NUL-terminated line: `stream: OK`, `stream: NAME FOUND`, or `... ERROR`.
When a stream passes clamd's StreamMaxLength it answers `INSTREAM size limit exceeded.
ERROR` and closes while we may still be sending: the reply is read whatever happens to
the sending side. With `AlertExceedsMax yes` clamd reports its other limits (MaxScanSize,
MaxFileSize, ...) as `Heuristics.Limits.Exceeded.*` findings: those mean "not scanned
whole", not "infected". Both become the verdict `too_large`, never a silent pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

from workers.verdict import ScannerUnavailable, Verdict

FRAME = 1 << 20
_LIMITS = "Heuristics.Limits.Exceeded"


class Clamd:
    """One clamd, reached on a unix socket or at HOST:PORT; a connection per scan."""

    def __init__(
        self, socket_path: Path | None = None, address: str | None = None, *, timeout_s: float = 600.0
    ) -> None:
        if (socket_path is None) == (address is None):
            raise ValueError("give exactly one of socket_path and address")
        self.socket_path = socket_path
        self.address = address
        self.timeout_s = timeout_s
        self.version = "clamd"
        self._checked = 0.0
        self._up = False

    @property
    def name(self) -> str:
        return self.version

    def where(self) -> str:
        return str(self.socket_path) if self.socket_path is not None else f"tcp://{self.address}"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(10.0):
                if self.socket_path is not None:
                    return await asyncio.open_unix_connection(str(self.socket_path))
                host, _, port = (self.address or "").rpartition(":")
                return await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, TimeoutError) as exc:
            raise ScannerUnavailable(f"clamd at {self.where()} does not answer: {exc!r}") from None

    async def _command(self, command: bytes) -> str:
        reader, writer = await self._connect()
        try:
            writer.write(b"z" + command + b"\0")
            await writer.drain()
            async with asyncio.timeout(10.0):
                return (await reader.readuntil(b"\0"))[:-1].decode("utf-8", "replace")
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ScannerUnavailable(f"clamd at {self.where()}: {command.decode()} failed: {exc!r}") from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def available(self) -> bool:
        """PING answered PONG (checked at most every 5 s); also learns clamd's VERSION."""
        now = time.monotonic()
        if now - self._checked < 5.0:
            return self._up
        self._checked = now
        try:
            self._up = await self._command(b"PING") == "PONG"
            if self._up:
                self.version = "clamd " + await self._command(b"VERSION")
        except ScannerUnavailable:
            self._up = False
        return self._up

    async def scan(self, stream: AsyncIterator[bytes | memoryview], size: int) -> Verdict:
        try:
            return await self._scan(stream)
        except ScannerUnavailable:
            # Claim no more scan work until clamd answers PING again (see available()).
            self._up, self._checked = False, time.monotonic()
            raise

    async def _open(self) -> socket.socket:
        """A connected non-blocking socket. The scan drives the socket itself rather than
        asyncio's streams: when clamd answers and closes while we are still sending, a stream
        transport fails the write and closes, dropping the answer unread in the socket."""
        loop = asyncio.get_running_loop()
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(10.0):
                if self.socket_path is not None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.setblocking(False)
                    await loop.sock_connect(sock, str(self.socket_path))
                else:
                    host, _, port = (self.address or "").rpartition(":")
                    family, kind, proto, _, target = (
                        await loop.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
                    )[0]
                    sock = socket.socket(family, kind, proto)
                    sock.setblocking(False)
                    await loop.sock_connect(sock, target)
            return sock
        except (OSError, TimeoutError) as exc:
            if sock is not None:
                sock.close()
            raise ScannerUnavailable(f"clamd at {self.where()} does not answer: {exc!r}") from None

    async def _scan(self, stream: AsyncIterator[bytes | memoryview]) -> Verdict:
        sock = await self._open()
        try:
            sent_all = await self._send(sock, stream)
            try:
                async with asyncio.timeout(self.timeout_s):
                    line = await self._reply(sock)
            except TimeoutError:
                raise ScannerUnavailable(
                    f"clamd at {self.where()} gave no answer in {self.timeout_s:.0f} s"
                ) from None
            except OSError as exc:
                raise ScannerUnavailable(
                    f"clamd at {self.where()} closed without an answer: {exc!r}"
                ) from None
        finally:
            sock.close()
        return self._verdict(line, sent_all)

    @staticmethod
    async def _reply(sock: socket.socket) -> str:
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while b"\0" not in buf:
            data = await loop.sock_recv(sock, 4096)
            if not data:
                raise ConnectionAbortedError("end of stream before the answer's NUL")
            buf += data
        return bytes(buf[: buf.index(b"\0")]).decode("utf-8", "replace").strip()

    async def _send(self, sock: socket.socket, stream: AsyncIterator[bytes | memoryview]) -> bool:
        """Send the stream; False if clamd stopped taking it (it answers why)."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                await loop.sock_sendall(sock, b"zINSTREAM\0")
            async for piece in stream:
                view = memoryview(piece)
                for i in range(0, len(view), FRAME):
                    frame = view[i : i + FRAME]
                    async with asyncio.timeout(self.timeout_s):
                        await loop.sock_sendall(sock, struct.pack(">I", len(frame)))
                        await loop.sock_sendall(sock, frame)
                    if _answered(sock):  # clamd answered early: a limit, or an error
                        return False
            async with asyncio.timeout(self.timeout_s):
                await loop.sock_sendall(sock, struct.pack(">I", 0))
            return True
        except (ConnectionError, BrokenPipeError):
            return False
        except TimeoutError:
            raise ScannerUnavailable(
                f"clamd at {self.where()} stopped reading for {self.timeout_s:.0f} s"
            ) from None

    def _verdict(self, line: str, sent_all: bool) -> Verdict:
        body = line.removeprefix("stream:").strip()
        if body == "OK":
            return (
                Verdict("clean", scanner=self.name)
                if sent_all
                else Verdict("too_large", detail="clamd stopped reading the stream", scanner=self.name)
            )
        if body.endswith(" FOUND"):
            name = body[: -len(" FOUND")].strip()
            if name.startswith(_LIMITS):
                return Verdict("too_large", detail=f"clamd limit: {name}", scanner=self.name)
            return Verdict("infected", signature=name, scanner=self.name)
        if "size limit exceeded" in body:
            return Verdict("too_large", detail="clamd StreamMaxLength", scanner=self.name)
        raise ScannerUnavailable(f"clamd at {self.where()} answered {line!r}")


def _answered(sock: socket.socket) -> bool:
    """Whether clamd has written something (or closed) already, without consuming it."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True
