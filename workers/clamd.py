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

    async def _scan(self, stream: AsyncIterator[bytes | memoryview]) -> Verdict:
        reader, writer = await self._connect()
        reply = asyncio.create_task(self._reply(reader))
        try:
            sent_all = await self._send(writer, stream, reply)
            try:
                async with asyncio.timeout(self.timeout_s):
                    line = await reply
            except TimeoutError:
                raise ScannerUnavailable(
                    f"clamd at {self.where()} gave no answer in {self.timeout_s:.0f} s"
                ) from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise ScannerUnavailable(
                    f"clamd at {self.where()} closed without an answer: {exc!r}"
                ) from None
        finally:
            if not reply.done():
                reply.cancel()
                await asyncio.gather(reply, return_exceptions=True)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return self._verdict(line, sent_all)

    @staticmethod
    async def _reply(reader: asyncio.StreamReader) -> str:
        return (await reader.readuntil(b"\0"))[:-1].decode("utf-8", "replace").strip()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        stream: AsyncIterator[bytes | memoryview],
        reply: asyncio.Task[str],
    ) -> bool:
        """Send the stream; False if clamd stopped taking it (it answers why)."""
        try:
            writer.write(b"zINSTREAM\0")
            async for piece in stream:
                view = memoryview(piece)
                for i in range(0, len(view), FRAME):
                    frame = view[i : i + FRAME]
                    writer.write(struct.pack(">I", len(frame)))
                    writer.write(frame)
                    async with asyncio.timeout(self.timeout_s):
                        await writer.drain()
                    if reply.done():  # clamd answered early: a limit, or an error
                        return False
            writer.write(struct.pack(">I", 0))
            async with asyncio.timeout(self.timeout_s):
                await writer.drain()
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
