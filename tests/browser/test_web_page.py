"""The web page against a real `shardbox up`: how the gateway serves it, then a person's
session in headless Chromium."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from shardbox.client.chunking import hash_file
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


# --- the page in Chromium -------------------------------------------------------------------

MiB = 1 << 20


def test_the_page_hashes_chunks_as_the_server_and_the_cli_do(browser, cluster: Cluster, tmp_path):
    """The Web Worker's digests (WebCrypto, and the hash-wasm fallback for pages that are not a
    secure context) equal shardbox.client.chunking's, chunk by chunk and over the whole file."""
    sample = tmp_path / "sample.bin"
    sample.write_bytes(os.urandom(3 * MiB + 12345))
    expected = hash_file(sample, chunk_size=MiB)
    page = browser.new_page()
    try:
        page.goto(cluster.endpoint + "/")
        page.evaluate("""() => { const input = document.createElement('input'); input.type = 'file';
                                 input.id = 'probe'; document.body.appendChild(input); }""")
        page.locator("#probe").set_input_files(str(sample))
        for engine in ("auto", "wasm"):
            got = page.evaluate("""([engine, chunkSize]) => new Promise((resolve, reject) => {
                const worker = new Worker('/_app/hash-worker.js');
                worker.onmessage = (event) => {
                    if (event.data.type === 'done') resolve(event.data);
                    if (event.data.type === 'error') reject(new Error(event.data.message));
                };
                const file = document.getElementById('probe').files[0];
                worker.postMessage({ id: 1, file, chunkSize, engine });
            })""", [engine, MiB])
            assert got["engine"] == ("webcrypto" if engine == "auto" else "wasm")
            assert got["digests"] == list(expected.digests)
            assert got["contentHash"] == expected.content_hash
    finally:
        page.close()
