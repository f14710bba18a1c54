"""Which request a write is, so that retrying it is safe.

An SDK that loses the answer to a write (a timeout, a reset connection) sends the same call
again. AWS SDKs put the same `amz-sdk-invocation-id` on every attempt of one call and count
the attempts in `amz-sdk-request: attempt=N; max=M`. The gateway passes the first as the
write's `write_id` (kept with the version it makes) and whether this is a retry; the
coordinator then answers a retry whose first attempt did commit with that version (or delete
marker) instead of making a second one (coordinator/versions.py). Clients that send neither
header get S3's plain semantics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_INVOCATION = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_ATTEMPT = re.compile(r"(?:^|;)\s*attempt=(\d{1,4})\b")


def attempt(headers: Mapping[str, str]) -> tuple[str | None, bool]:
    """(write_id, retried) of a write request: ("sdk:<invocation id>" or None, attempt > 1)."""
    invocation = headers.get("amz-sdk-invocation-id", "").strip()
    if not _INVOCATION.match(invocation):
        return None, False
    counted = _ATTEMPT.search(headers.get("amz-sdk-request", ""))
    return f"sdk:{invocation}", bool(counted and int(counted.group(1)) > 1)
