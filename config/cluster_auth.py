"""The cluster credential: how shardbox processes prove to each other that they belong.

Every request between services carries

    X-Shardbox-Date:         unix seconds
    X-Shardbox-Content-Hash: xxh3-128 hex of the request body (of b"" when there is none)
    Authorization:           SBX2 <hex HMAC-SHA256(secret, METHOD \n TARGET \n PATH?QUERY \n DATE \n
                                                            CONTENT-HASH)>

TARGET names the receiver: a storage node's id, or `coordinator` (any coordinator of the
cluster may answer a coordinator call). A request captured on its way to one node thus
verifies on no other, and only within MAX_SKEW_S of its date: the window covers clock
differences between machines synced by NTP, not replays.

The body is bound through its xxh3-128 rather than SHA-256 because shard bodies are
already checksummed with xxh3-128 by the receiver (it must verify them anyway), so the
signature costs nothing per byte. Receivers MUST compare the body they read against
X-Shardbox-Content-Hash before acting on it. It lives in `config` because every role
(node, coordinator, gateway) needs it and nodes may import nothing else of ours.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping

import xxhash

from config.values import BadValue, parse_uint, secrets_equal

SCHEME = "SBX2"
DATE_HEADER = "X-Shardbox-Date"
HASH_HEADER = "X-Shardbox-Content-Hash"
MAX_SKEW_S = 30
COORDINATOR = "coordinator"     # the target name of coordinator calls
_MAX_DATE = (1 << 40) - 1       # unix seconds, far past any clock
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)


class ClusterAuthError(Exception):
    """Credential missing (status 401) or wrong (status 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_hash(body: bytes | memoryview = b"") -> str:
    return xxhash.xxh3_128_hexdigest(body)


EMPTY_HASH = body_hash(b"")


def _signature(secret: str, target: str, method: str, path_qs: str, date: str, content_hash: str) -> str:
    msg = f"{method.upper()}\n{target}\n{path_qs}\n{date}\n{content_hash}".encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def sign_headers(secret: str, method: str, path_qs: str, content_hash: str = EMPTY_HASH,
                 now: float | None = None, *, target: str) -> dict[str, str]:
    """Headers to add to a request to `target` (a node id or COORDINATOR); `path_qs` is the
    raw path plus `?query` if any."""
    date = str(int(time.time() if now is None else now))
    return {
        DATE_HEADER: date,
        HASH_HEADER: content_hash,
        "Authorization": f"{SCHEME} {_signature(secret, target, method, path_qs, date, content_hash)}",
    }


def verify_headers(secret: str, method: str, path_qs: str, headers: Mapping[str, str],
                   now: float | None = None, *, target: str) -> str:
    """Check the credential of a request received as `target`; return the claimed content
    hash the body must still match. Missing -> 401; malformed, stale or wrong -> 403."""
    auth = headers.get("Authorization", "")
    date = headers.get(DATE_HEADER)
    content_hash = headers.get(HASH_HEADER)
    if not auth or date is None or content_hash is None:
        raise ClusterAuthError(401, "cluster credential required")
    scheme, _, sig = auth.partition(" ")
    if scheme != SCHEME or not sig:
        raise ClusterAuthError(401, "unsupported authorization scheme")
    try:
        signed_at = parse_uint(date, _MAX_DATE)
    except BadValue:
        raise ClusterAuthError(403, "malformed date") from None
    if abs((time.time() if now is None else now) - signed_at) > MAX_SKEW_S:
        raise ClusterAuthError(403, "request date too far from server time")
    sig = sig.strip()
    if not _HEX64.fullmatch(sig):
        raise ClusterAuthError(403, "malformed signature")
    if not secrets_equal(_signature(secret, target, method, path_qs, date, content_hash), sig):
        raise ClusterAuthError(403, "cluster credential does not match")
    return content_hash
