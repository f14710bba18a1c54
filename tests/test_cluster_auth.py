"""The inter-service credential: signed requests verify; anything altered is refused."""

from __future__ import annotations

import pytest

from config.cluster_auth import (
    COORDINATOR,
    MAX_SKEW_S,
    ClusterAuthError,
    body_hash,
    sign_headers,
    verify_headers,
)

SECRET = "s" * 32


def test_round_trip_returns_the_signed_content_hash():
    h = body_hash(b"payload")
    headers = sign_headers(SECRET, "PUT", "/shards/abc.0", h, now=1000, target="n01")
    assert verify_headers(SECRET, "PUT", "/shards/abc.0", headers, now=1010, target="n01") == h


@pytest.mark.parametrize("field,value", [("method", "GET"), ("path", "/shards/abc.1"), ("secret", "t" * 32),
                                         ("target", "n02"), ("target", COORDINATOR)])
def test_altered_request_is_forbidden(field, value):
    headers = sign_headers(SECRET, "PUT", "/shards/abc.0", now=1000, target="n01")
    args = {"secret": SECRET, "method": "PUT", "path": "/shards/abc.0", "target": "n01"}
    args[field] = value
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(args["secret"], args["method"], args["path"], headers, now=1000, target=args["target"])
    assert e.value.status == 403


def test_altered_content_hash_is_forbidden():
    headers = sign_headers(SECRET, "PUT", "/x", body_hash(b"a"), now=1000, target="n01")
    headers["X-Shardbox-Content-Hash"] = body_hash(b"b")
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "PUT", "/x", headers, now=1000, target="n01")
    assert e.value.status == 403


def test_missing_credential_is_401_and_stale_date_403():
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "GET", "/health", {}, now=1000, target="n01")
    assert e.value.status == 401
    headers = sign_headers(SECRET, "GET", "/health", now=1000, target="n01")
    assert verify_headers(SECRET, "GET", "/health", headers, now=1000 + MAX_SKEW_S, target="n01")
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "GET", "/health", headers, now=1001 + MAX_SKEW_S, target="n01")
    assert e.value.status == 403 and "date" in e.value.message


@pytest.mark.parametrize("date,signature", [
    ("²", None), ("1" * 5000, None), ("-5", None), ("+1000", None), ("1_000", None), (" 1000", None),
    ("٣", None), (None, "\xff" * 64), (None, "é"), (None, "0" * 5000), (None, "g" * 64)])
def test_malformed_fields_are_403_not_a_crash(date, signature):
    headers = sign_headers(SECRET, "GET", "/health", now=1000, target="n01")
    if date is not None:
        headers["X-Shardbox-Date"] = date
    if signature is not None:
        headers["Authorization"] = "SBX2 " + signature
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "GET", "/health", headers, now=1000, target="n01")
    assert e.value.status == 403
