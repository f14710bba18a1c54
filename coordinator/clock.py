"""The coordinator's clock for metadata decisions (grace periods, leases, expiry, node liveness).

It is `time.time()`. Tests of time-dependent behaviour (a GC grace period of 24 hours, an
upload session that expires after a week, a worker lease running out) move it forward
instead of waiting: when the environment names `SHARDBOX_TEST_CLOCK_FILE`, the number of
seconds in that file is added (read on every call, so a test changes it while the
coordinator runs). The cluster credential's freshness check keeps using the real time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TEST_CLOCK_ENV = "SHARDBOX_TEST_CLOCK_FILE"
_offset_file = os.environ.get(TEST_CLOCK_ENV) or None


def now() -> float:
    """Unix seconds, as every metadata decision sees them."""
    if _offset_file is None:
        return time.time()
    try:
        return time.time() + float(Path(_offset_file).read_text().strip() or 0)
    except (OSError, ValueError):
        return time.time()


def shifted() -> str | None:
    """The offset file in use, if any (the coordinator says so in its start log line)."""
    return _offset_file
