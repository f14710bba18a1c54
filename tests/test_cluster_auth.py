"""The inter-service credential: signed requests verify; anything altered is refused."""

from __future__ import annotations

import pytest

from config.cluster_auth import ClusterAuthError, body_hash, sign_headers, verify_headers

SECRET = "s" * 32


def test_round_trip_returns_the_signed_content_hash():
    h = body_hash(b"payload")
    headers = sign_headers(SECRET, "PUT", "/shards/abc.0", h, now=1000)
    assert verify_headers(SECRET, "PUT", "/shards/abc.0", headers, now=1010) == h


@pytest.mark.parametrize("field,value", [("method", "GET"), ("path", "/shards/abc.1"), ("secret", "t" * 32)])
def test_altered_request_is_forbidden(field, value):
    headers = sign_headers(SECRET, "PUT", "/shards/abc.0", now=1000)
    args = {"secret": SECRET, "method": "PUT", "path": "/shards/abc.0"}
    args[field] = value
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(args["secret"], args["method"], args["path"], headers, now=1000)
    assert e.value.status == 403


def test_altered_content_hash_is_forbidden():
    headers = sign_headers(SECRET, "PUT", "/x", body_hash(b"a"), now=1000)
    headers["X-Shardbox-Content-Hash"] = body_hash(b"b")
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "PUT", "/x", headers, now=1000)
    assert e.value.status == 403


def test_missing_credential_is_401_and_stale_date_403():
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "GET", "/health", {}, now=1000)
    assert e.value.status == 401
    headers = sign_headers(SECRET, "GET", "/health", now=1000)
    with pytest.raises(ClusterAuthError) as e:
        verify_headers(SECRET, "GET", "/health", headers, now=2000)
    assert e.value.status == 403 and "date" in e.value.message
