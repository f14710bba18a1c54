"""The built-in scanner of the embedded default: EICAR anywhere in the bytes, and a SHA-256
blocklist of whole files that operators extend.

EICAR is found wherever it sits (as ClamAV's body signatures find it, also inside a large
file), including across the boundary of two pieces of the stream. The blocklist file holds
one lowercase or uppercase SHA-256 hex digest per line, optionally followed by a name;
`#` starts a comment. It is read again whenever its modification time changes, so adding a
line takes effect with the next scan, without a restart. Hashing and searching run on a
thread (both release the GIL on large buffers); there is no size limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from workers.verdict import Verdict

log = logging.getLogger("workers.scan")

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Eicar-Test-Signature"
_LINE = re.compile(r"^([0-9a-fA-F]{64})(?:\s+(\S.*))?$")


def parse_blocklist(text: str) -> dict[str, str]:
    """digest -> name, from the blocklist file's text; malformed lines raise ValueError."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None:
            raise ValueError(
                f"line {number}: expected a SHA-256 hex digest and an optional name, got {raw!r}"
            )
        digest = m.group(1).lower()
        entries[digest] = (m.group(2) or f"Blocklist.Sha256.{digest[:12]}").strip()
    return entries


class BuiltinScanner:
    def __init__(self, blocklist: Path | None = None) -> None:
        self.blocklist_path = blocklist
        self._entries: dict[str, str] = {}
        self._mtime: float | None = None

    @property
    def name(self) -> str:
        return f"builtin (EICAR, blocklist of {len(self._entries)})"

    def _reload(self) -> None:
        if self.blocklist_path is None:
            return
        try:
            mtime = self.blocklist_path.stat().st_mtime
        except FileNotFoundError:
            self._entries, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        # A malformed file keeps the previous entries (and says why) rather than dropping them.
        try:
            self._entries = parse_blocklist(self.blocklist_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            log.error(
                "blocklist.invalid", extra={"fields": {"path": str(self.blocklist_path), "error": str(exc)}}
            )
        self._mtime = mtime

    async def available(self) -> bool:
        return True

    async def scan(self, stream: AsyncIterator[bytes | memoryview], size: int) -> Verdict:
        self._reload()
        loop = asyncio.get_running_loop()
        digest = hashlib.sha256()
        tail = b""
        found = False
        keep = len(EICAR) - 1
        async for piece in stream:
            found = await loop.run_in_executor(None, _step, digest, piece, tail) or found
            tail = (tail + bytes(memoryview(piece)[-keep:]))[-keep:]
        if found:
            return Verdict("infected", signature=EICAR_NAME, scanner=self.name)
        name = self._entries.get(digest.hexdigest())
        if name is not None:
            return Verdict("infected", signature=name, scanner=self.name)
        return Verdict("clean", scanner=self.name)


def _step(digest: Any, piece: bytes | memoryview, tail: bytes) -> bool:
    """Hash a piece; whether EICAR is in it or straddles its start (the tail of the piece before)."""
    digest.update(piece)
    data = piece if isinstance(piece, bytes | bytearray) else bytes(piece)
    return EICAR in tail + data[: len(EICAR) - 1] or data.find(EICAR) >= 0
