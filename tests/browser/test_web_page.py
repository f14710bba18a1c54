"""The web page against a real `shardbox up`: how the gateway serves it, then a person's
session in headless Chromium."""

from __future__ import annotations

import urllib.error
import urllib.request

from tests.integration.cluster import Cluster


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_gateway_serves_the_page_to_browsers_and_s3_to_s3_clients(cluster: Cluster, s3):
    status, headers, body = fetch(cluster.endpoint + "/", {"Accept": "text/html,application/xhtml+xml"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert b'<script type="module" src="/_app/app.js">' in body

    status, headers, body = fetch(cluster.endpoint + "/")          # an S3 client without credentials
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    s3.create_bucket(Bucket="still-s3")
    assert "still-s3" in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    status, headers, body = fetch(cluster.endpoint + "/_app/app.js")
    assert status == 200 and "javascript" in headers["Content-Type"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, _ = fetch(cluster.endpoint + "/_app/vendor/htm-preact-3.1.1.js")
    assert status == 200
    status, _, body = fetch(cluster.endpoint + "/_app/%2e%2e/webpage.py")   # falls through to S3
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, _, _ = fetch(cluster.endpoint + "/_app/nothing-here.js")
    assert status == 404
