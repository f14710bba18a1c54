"""The cluster credential: how shardbox processes prove to each other that they belong.

Every request between services carries

    X-Shardbox-Date:         unix seconds
    X-Shardbox-Content-Hash: xxh3-128 hex of the request body (of b"" when there is none)
    Authorization:           SBX1 <hex HMAC-SHA256(secret, METHOD \n PATH?QUERY \n DATE \n CONTENT-HASH)>

The body is bound through its xxh3-128 rather than SHA-256 because shard bodies are
already checksummed with xxh3-128 by the receiver (it must verify them anyway), so the
signature costs nothing per byte. Receivers MUST compare the body they read against
X-Shardbox-Content-Hash before acting on it. It lives in `config` because every role
(node, coordinator, gateway) needs it and nodes may import nothing else of ours.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

import xxhash

SCHEME = "SBX1"
DATE_HEADER = "X-Shardbox-Date"
HASH_HEADER = "X-Shardbox-Content-Hash"
MAX_SKEW_S = 300


class ClusterAuthError(Exception):
    """Credential missing (status 401) or wrong (status 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def body_hash(body: bytes | memoryview = b"") -> str:
    return xxhash.xxh3_128_hexdigest(body)


EMPTY_HASH = body_hash(b"")


def _signature(secret: str, method: str, path_qs: str, date: str, content_hash: str) -> str:
    msg = f"{method.upper()}\n{path_qs}\n{date}\n{content_hash}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def sign_headers(secret: str, method: str, path_qs: str, content_hash: str = EMPTY_HASH,
                 now: float | None = None) -> dict[str, str]:
    """Headers to add to an outgoing request; `path_qs` is the raw path plus `?query` if any."""
    date = str(int(time.time() if now is None else now))
    return {
        DATE_HEADER: date,
        HASH_HEADER: content_hash,
        "Authorization": f"{SCHEME} {_signature(secret, method, path_qs, date, content_hash)}",
    }


def verify_headers(secret: str, method: str, path_qs: str, headers: Mapping[str, str],
                   now: float | None = None) -> str:
    """Check the credential; return the claimed content hash the body must still match."""
    auth = headers.get("Authorization", "")
    date = headers.get(DATE_HEADER)
    content_hash = headers.get(HASH_HEADER)
    if not auth or date is None or content_hash is None:
        raise ClusterAuthError(401, "cluster credential required")
    scheme, _, sig = auth.partition(" ")
    if scheme != SCHEME or not sig:
        raise ClusterAuthError(401, "unsupported authorization scheme")
    if not date.isdigit():
        raise ClusterAuthError(403, "malformed date")
    if abs((time.time() if now is None else now) - int(date)) > MAX_SKEW_S:
        raise ClusterAuthError(403, "request date too far from server time")
    expected = _signature(secret, method, path_qs, date, content_hash)
    if not hmac.compare_digest(expected, sig.strip()):
        raise ClusterAuthError(403, "cluster credential does not match")
    return content_hash
