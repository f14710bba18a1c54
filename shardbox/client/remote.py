"""Remote paths as the user types them, and finding the entry a path names."""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime, timedelta

from shardbox.client.api import ApiError, ProductClient


def normalise(path: str) -> str:
    """`docs/a.txt`, `/docs//a.txt/` -> `/docs/a.txt`; `` and `/` -> `/` (the drive's root)."""
    if ".." in path.split("/"):
        raise ValueError(f"{path!r}: '..' is not allowed in a remote path")
    clean = posixpath.normpath("/" + path.strip())
    return "/" + clean.lstrip("/")


def join(folder: str, name: str) -> str:
    return normalise(posixpath.join(normalise(folder), name))


def split(path: str) -> tuple[str, str]:
    path = normalise(path)
    parent, name = posixpath.split(path)
    return parent or "/", name


class NotFound(Exception):
    pass


async def list_all(client: ProductClient, folder: str) -> list[dict]:
    """Every entry of a folder, following the listing's cursor."""
    items: list[dict] = []
    cursor = None
    while True:
        page = await client.list_folder(normalise(folder), cursor=cursor)
        items.extend(page.get("items", []))
        cursor = page.get("next")
        if not cursor:
            return items


async def resolve(client: ProductClient, path: str) -> dict:
    """The entry (file or folder) at `path`, or NotFound with the path in its message."""
    path = normalise(path)
    if path == "/":
        return {"id": None, "name": "", "path": "/", "type": "folder"}
    try:
        return await client.stat(path)
    except ApiError as exc:
        if exc.status == 404:
            raise NotFound(f"{path}: no such file or folder") from None
        raise


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def expiry(text: str, now: datetime | None = None) -> str:
    """`7d`, `12h`, `30m`, `2w` or an ISO 8601 time -> ISO 8601 UTC (`...Z`), as the API takes it."""
    now = now or datetime.now(UTC)
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        if amount <= 0:
            raise ValueError(f"--expires {text}: must be in the future")
        when = now + timedelta(**{_UNITS[unit]: amount})
    else:
        try:
            when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--expires {text!r}: use a duration like 7d, 12h, 30m, 2w or an ISO 8601 "
                             "time like 2030-01-31T12:00:00Z") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when <= now:
            raise ValueError(f"--expires {text}: that time has passed")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
