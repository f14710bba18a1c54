"""What a scanner answers about an object, and how that becomes its status and scan result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

Outcome = Literal["clean", "infected", "too_large"]


class ScannerUnavailable(Exception):
    """The scanner could not give an answer (down, timed out, answered nonsense): scan later."""


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    signature: str | None = None  # what was found (infected)
    detail: str = ""  # why it was not scanned whole (too_large)
    scanner: str = ""  # which scanner (and version) answered

    def result(self) -> str:
        """The object's scan result as users and admins see it."""
        if self.outcome == "clean":
            return "clean"
        if self.outcome == "infected":
            return f"infected: {self.signature}"
        return f"unscanned: too large ({self.detail})" if self.detail else "unscanned: too large"

    def status(self, too_large_policy: str) -> str:
        """ready | quarantined. An object the scanner could not take whole gets the configured
        policy's status; its result says `unscanned: too large` either way."""
        if self.outcome == "infected":
            return "quarantined"
        if self.outcome == "too_large":
            return "quarantined" if too_large_policy == "quarantine" else "ready"
        return "ready"


class Scanner(Protocol):
    @property
    def name(self) -> str:
        """The scanner and its signature version, recorded with every result."""
        ...

    async def available(self) -> bool:
        """Whether scans can run now (the worker claims no scan work otherwise)."""
        ...

    async def scan(self, stream: AsyncIterator[bytes | memoryview], size: int) -> Verdict:
        """Read the whole stream (the object's bytes, in order) and judge it. Raises
        ScannerUnavailable if no answer can be had."""
        ...
