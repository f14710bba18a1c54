"""Which request a write is, so that retrying it is safe.

An SDK that loses the answer to a write (a timeout, a reset connection) sends the same call
again. AWS SDKs put the same `amz-sdk-invocation-id` on every attempt of one call and count
the attempts in `amz-sdk-request: attempt=N; max=M`. The gateway passes the first as the
write's `write_id` (kept with the version it makes) and whether this is a retry; the
coordinator then answers a retry whose first attempt did commit with that version (or delete
marker) instead of making a second one (coordinator/versions.py). Clients that send neither
header get S3's plain semantics.

Deletes of a whole bucket or upload leave nothing to answer from: a retry of one that finds
its target gone (the first attempt's doing, as far as anyone can tell) answers success too.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from typing import Any

from coordinator.records import CoordinatorError
from gateway.s3.context import S3Context

_INVOCATION = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_ATTEMPT = re.compile(r"(?:^|;)\s*attempt=(\d{1,4})\b")


def attempt(headers: Mapping[str, str]) -> tuple[str | None, bool]:
    """(write_id, retried) of a write request: ("sdk:<invocation id>" or None, attempt > 1)."""
    invocation = headers.get("amz-sdk-invocation-id", "").strip()
    if not _INVOCATION.match(invocation):
        return None, False
    counted = _ATTEMPT.search(headers.get("amz-sdk-request", ""))
    return f"sdk:{invocation}", bool(counted and int(counted.group(1)) > 1)


async def tolerating_done(ctx: S3Context, gone_code: str, call: Awaitable[Any]) -> None:
    """Run a delete; on a retry, `gone_code` (the target is gone already) counts as done."""
    try:
        await call
    except CoordinatorError as exc:
        if exc.code != gone_code or not attempt(ctx.headers)[1]:
            raise
