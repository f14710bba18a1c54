"""A 1 GiB multipart upload through boto3's transfer manager, verified by SHA-256,
while the gateway's memory stays bounded."""

from __future__ import annotations

import hashlib
import threading

import psutil
import pytest
from boto3.s3.transfer import TransferConfig

pytestmark = pytest.mark.backend_agnostic

MiB = 1 << 20
GiB = 1 << 30
RSS_LIMIT = 300 * MiB


class PatternReader:
    """A 1 GiB file-like object made of distinct 1 MiB blocks, hashed as it is read."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0
        self.sha = hashlib.sha256()
        self.block = bytearray(hashlib.sha256(b"seed").digest() * (MiB // 32))

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            idx, off = divmod(self.pos + len(out), MiB)
            blk = self.block[:]
            blk[:8] = idx.to_bytes(8, "big")
            take = min(MiB - off, n - len(out))
            out += blk[off:off + take]
        self.pos += n
        self.sha.update(out)
        return bytes(out)


class RssWatch:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> RssWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def test_one_gib_multipart_roundtrip(cluster, s3, bucket):
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4)
    src = PatternReader(GiB)
    with RssWatch(cluster.info["gateway"]["pid"]) as watch:
        s3.upload_fileobj(src, bucket, "big/1gib.bin", Config=cfg)
        head = s3.head_object(Bucket=bucket, Key="big/1gib.bin")
        assert head["ContentLength"] == GiB
        assert head["ETag"].endswith('-64"')
        got = hashlib.sha256()
        body = s3.get_object(Bucket=bucket, Key="big/1gib.bin")["Body"]
        for piece in body.iter_chunks(4 * MiB):
            got.update(piece)
    assert got.hexdigest() == src.sha.hexdigest()
    print(f"gateway peak RSS {watch.peak / MiB:.0f} MiB")
    assert watch.peak < RSS_LIMIT, f"gateway peak RSS {watch.peak / MiB:.0f} MiB"


def _blocks(total: int, block: bytes):
    """`total` bytes of 1 MiB blocks that all differ (so nothing dedups), without holding them."""
    for i in range(total // MiB):
        yield i.to_bytes(8, "big") + block[8:]


def test_single_4gib_put_and_get_keep_gateway_memory_bounded(cluster, s3, bucket):
    """One plain PUT of 4 GiB (no multipart) and its GET stream through the gateway."""
    import http.client
    import os
    import urllib.parse

    size = 4 * GiB
    block = os.urandom(MiB)
    want = hashlib.sha256()
    for piece in _blocks(size, block):
        want.update(piece)
    where = {"Bucket": bucket, "Key": "huge"}
    put_url = s3.generate_presigned_url("put_object", Params=where, ExpiresIn=3600)
    get_url = s3.generate_presigned_url("get_object", Params=where, ExpiresIn=3600)
    with RssWatch(cluster.info["gateway"]["pid"]) as watch:
        u = urllib.parse.urlsplit(put_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
        conn.putrequest("PUT", f"{u.path}?{u.query}", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for piece in _blocks(size, block):
            conn.send(piece)
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()[:500]
        resp.read()
        u = urllib.parse.urlsplit(get_url)
        conn.request("GET", f"{u.path}?{u.query}")
        resp = conn.getresponse()
        assert resp.status == 200
        got, n = hashlib.sha256(), 0
        while piece := resp.read(4 * MiB):
            got.update(piece)
            n += len(piece)
        conn.close()
    assert n == size and got.hexdigest() == want.hexdigest()
    print(f"gateway peak RSS {watch.peak / MiB:.0f} MiB")
    assert watch.peak < RSS_LIMIT, f"gateway peak RSS {watch.peak / MiB:.0f} MiB"
