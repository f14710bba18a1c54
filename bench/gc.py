"""Foreground 4 KiB GET latency with and without garbage collection deleting 100,000 chunks.

Starts a `shardbox up` (no scanner) in a temporary directory, stores `--hot` objects of
4 KiB (the small reads measured) and `--chunks` chunks of `--chunk-kib` KiB in
multi-chunk objects (placed and committed through the coordinator, their shards written
to the nodes directly: see store_chunks), then:

1. measures GET latency of random hot objects with `--clients` concurrent clients for
   `--seconds` (keep-alive HTTP/1.1 with presigned URLs, so the figures are the server's,
   not boto3's);
2. deletes every multi-chunk object (their chunks drop to refcount 0), moves the
   coordinator's clock past the grace period (the file named by SHARDBOX_TEST_CLOCK_FILE)
   and measures the same GETs while the worker collects the chunks, until none is left.

Prints the latency percentiles of both phases, how long GC took and its rate, and the
nodes' disk usage before and after.

    .venv/bin/python bench/gc.py [--chunks 100000] [--hot 2000] [--seconds 30] [--clients 4]
        [--gc-batch N] [--gc-rate CHUNKS_PER_S]   (the worker's [worker.gc] settings for this run)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
from pathlib import Path

os.environ.setdefault("BOTO_DISABLE_CRT", "true")

import boto3
import tomli_w
from botocore.config import Config as BotoConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blob.node_client import NodeClient, shard_checksum  # noqa: E402
from config.cluster_auth import body_hash, sign_headers  # noqa: E402
from coordinator.client import CoordinatorClient  # noqa: E402
from coordinator.records import ChunkRef, ShardPlacement  # noqa: E402
from tests.integration.cluster import start_cluster  # noqa: E402

MiB = 1 << 20
GRACE_S = 86400.0


class Up:
    def __init__(self, data: Path, clock: Path) -> None:
        clock.write_text("0")
        self.clock = clock
        self.data = data
        env = {**os.environ, "SHARDBOX_TEST_CLOCK_FILE": str(clock)}
        self.up = start_cluster(data, args=("--scanner", "none"), env=env)
        self.info = self.up.info
        self.cluster = json.loads((data / "config" / "cluster.json").read_text())

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.info["endpoint"],
            region_name="us-east-1",
            aws_access_key_id=self.info["access_key"],
            aws_secret_access_key=self.info["secret_key"],
            config=BotoConfig(s3={"addressing_style": "path"}, max_pool_connections=32),
        )

    def set_gc(self, batch: int | None, rate: float | None) -> None:
        """Run the worker with other [worker.gc] settings: edit its config and kill it, so
        `shardbox up` starts it again (it re-reads the file; up.json gets the new pid)."""
        if batch is None and rate is None:
            return
        path = self.data / "config" / "worker.toml"
        doc = tomllib.loads(path.read_text())
        gc = doc["worker"].setdefault("gc", {})
        if batch is not None:
            gc["batch_chunks"] = batch
        if rate is not None:
            gc["max_chunks_per_s"] = rate
        path.write_text(tomli_w.dumps(doc))
        old = self.info["worker"]["pid"]
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while json.loads((self.data / "up.json").read_text())["worker"]["pid"] == old:
            if time.monotonic() > deadline:
                raise RuntimeError("shardbox up did not restart the worker")
            time.sleep(0.2)
        self.info = json.loads((self.data / "up.json").read_text())
        print(f"worker restarted with [worker.gc] {gc}", flush=True)

    def coordinator(self) -> CoordinatorClient:
        return CoordinatorClient(self.info["coordinator"]["address"], self.cluster["secret"])

    def advance(self, seconds: float) -> None:
        self.clock.write_text(repr(float(self.clock.read_text()) + seconds))

    def node_used(self) -> int:
        total = 0
        for n in self.info["nodes"]:
            url = urllib.parse.urlsplit(n["address"])
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            conn.request(
                "GET",
                "/health",
                headers=sign_headers(
                    self.cluster["secret"], "GET", "/health", body_hash(b""), target=n["id"]
                ),
            )
            total += json.loads(conn.getresponse().read())["used_bytes"]
            conn.close()
        return total

    def stop(self) -> None:
        self.up.stop()


async def store_chunks(up: Up, count: int, chunk_kib: int, per_object: int) -> int:
    """`count` chunks in objects of `per_object` chunks (bucket "doomed").

    Placed by the coordinator (`place_chunks`, a thousand at a time) and committed like any
    upload (`begin_upload` + `finalize_put`), but written to the nodes directly, 14 shards of
    random bytes each: nothing reads these chunks back, GC only deletes them, and 100,000
    chunks through the S3 path (one placement call and 14 shard PUTs per chunk, in order)
    take the better part of an hour on this machine."""
    api = up.coordinator()
    key = await api.get_key(up.info["access_key"])
    nodes = NodeClient(up.cluster["secret"])
    chunk = chunk_kib << 10
    shard = os.urandom(chunk // 10 + 16)
    checksum = shard_checksum(shard)
    inflight = asyncio.Semaphore(256)
    done = 0
    started = time.monotonic()

    async def put(node_id: str, address: str, sid: str) -> None:
        async with inflight:
            await nodes.put_shard(address, sid, shard, checksum, node_id=node_id, timeout_s=60)

    for first in range(0, count, 1000):
        shas = [os.urandom(32).hex() for _ in range(min(1000, count - first))]
        plans = await api.place_chunks(key.tenant_id, [(sha, chunk) for sha in shas])
        await asyncio.gather(
            *(put(p.node_id, p.address, f"{plan.chunk_key}.{p.index}") for plan in plans for p in plan.shards)
        )
        refs = [
            ChunkRef(
                sha256=plan.sha256,
                chunk_key=plan.chunk_key,
                size=chunk,
                enc_size=len(shard) * 10,
                key_id="m1",
                format=plan.format,
                shards=[ShardPlacement(p.index, p.node_id, p.address, checksum) for p in plan.shards],
            )
            for plan in plans
        ]
        for i in range(0, len(refs), per_object):
            part = refs[i : i + per_object]
            size = chunk * len(part)
            upload = await api.begin_upload(
                key.tenant_id,
                key.user_id,
                "doomed",
                f"obj-{(first + i) // per_object:06d}",
                "put",
                size,
                None,
                {},
                {},
                "STANDARD",
                None,
            )
            await api.finalize_put(upload.upload_id, size, hashlib.md5(os.urandom(8)).hexdigest(), part, {})
        done += len(refs)
        print(f"  stored {done} chunks ({done / (time.monotonic() - started):.0f}/s)", flush=True)
    await nodes.close()
    await api.close()
    return done


class Load:
    """`clients` threads GETting random hot objects over keep-alive connections."""

    def __init__(self, urls: list[str], clients: int) -> None:
        self.urls = urls
        self.clients = clients
        self.latencies: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _client(self) -> None:
        first = urllib.parse.urlsplit(self.urls[0])
        conn = http.client.HTTPConnection(first.hostname, first.port, timeout=30)
        mine: list[float] = []
        while not self._stop.is_set():
            url = urllib.parse.urlsplit(random.choice(self.urls))
            t0 = time.perf_counter()
            try:
                conn.request("GET", f"{url.path}?{url.query}")
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200 and len(body) == 4096
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(first.hostname, first.port, timeout=30)
                ok = False
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                with self._lock:
                    self.errors += 1
        with self._lock:
            self.latencies += mine

    def run(self, until) -> None:
        threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for t in threads:
            t.start()
        try:
            until()
        finally:
            self._stop.set()
            for t in threads:
                t.join()


def percentiles(values: list[float]) -> dict[str, float]:
    s = sorted(values)

    def p(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] * 1000

    return {"n": len(s), "p50": p(0.50), "p90": p(0.90), "p99": p(0.99), "max": s[-1] * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--chunk-kib", type=int, default=8)
    ap.add_argument("--per-object", type=int, default=100)
    ap.add_argument("--hot", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--gc-batch", type=int, default=None,
                    help="[worker.gc] batch_chunks (default: the config's)")
    ap.add_argument("--gc-rate", type=float, default=None,
                    help="[worker.gc] max_chunks_per_s (default: the config's)")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sbx-bench-gc-"))
    (root / "data").mkdir()
    print(f"load average at start: {os.getloadavg()[0]:.1f}; data in {root}", flush=True)
    up = Up(root / "data", root / "clock")
    try:
        up.set_gc(args.gc_batch, args.gc_rate)
        s3 = up.s3()
        s3.create_bucket(Bucket="hot")
        s3.create_bucket(Bucket="doomed")
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda i: s3.put_object(Bucket="hot", Key=f"k{i:05d}", Body=os.urandom(4096)),
                    range(args.hot),
                )
            )
        urls = [
            s3.generate_presigned_url(
                "get_object", Params={"Bucket": "hot", "Key": f"k{i:05d}"}, ExpiresIn=7 * 86400
            )
            for i in range(args.hot)
        ]
        print(f"storing {args.chunks} chunks of {args.chunk_kib} KiB ...", flush=True)
        t0 = time.monotonic()
        stored = asyncio.run(store_chunks(up, args.chunks, args.chunk_kib, args.per_object))
        print(f"  {stored} chunks in {time.monotonic() - t0:.0f} s", flush=True)
        used_full = up.node_used()

        print(f"GET 4 KiB, {args.clients} clients, {args.seconds:.0f} s, no GC ...", flush=True)
        quiet = Load(urls, args.clients)
        quiet.run(lambda: time.sleep(args.seconds))

        keys = [f"obj-{i:06d}" for i in range((args.chunks + args.per_object - 1) // args.per_object)]
        t0 = time.monotonic()
        for i in range(0, len(keys), 1000):
            s3.delete_objects(
                Bucket="doomed", Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )
        deleted_s = time.monotonic() - t0

        async def status():
            async with up.coordinator() as api:
                return await api.pipeline_status()

        zero = asyncio.run(status()).gc_chunks
        print(
            f"deleted {len(keys)} objects ({zero} chunks at refcount 0) in {deleted_s:.1f} s; "
            "past the grace period now; GET while GC runs ...",
            flush=True,
        )
        up.advance(GRACE_S + 1)
        busy = Load(urls, args.clients)
        gc_times: dict[str, float] = {}

        def until_collected() -> None:
            start = time.monotonic()
            while True:
                left = asyncio.run(status()).gc_chunks
                if left < zero and "first" not in gc_times:
                    gc_times["first"] = time.monotonic() - start
                if left == 0:
                    gc_times["done"] = time.monotonic() - start
                    return
                time.sleep(1.0)

        busy.run(until_collected)
        time.sleep(5)  # let compaction finish before reading the disk usage
        used_after = up.node_used()
        a, b = percentiles(quiet.latencies), percentiles(busy.latencies)
        gc_s = gc_times["done"] - gc_times.get("first", 0.0)
        print()
        print(f"{'GET 4 KiB latency (ms)':<28}{'n':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'errors':>8}")
        for name, p, load in (("without GC", a, quiet), ("while GC deletes", b, busy)):
            print(
                f"{name:<28}{p['n']:>8}{p['p50']:>8.2f}{p['p90']:>8.2f}{p['p99']:>8.2f}{p['max']:>8.1f}"
                f"{load.errors:>8}"
            )
        print(
            f"GC: {zero} chunks ({zero * 14} shards) collected in {gc_s:.0f} s "
            f"({zero / max(gc_s, 0.001):.0f} chunks/s; first batch after {gc_times.get('first', 0):.1f} s)"
        )
        print(
            f"nodes' disk usage: {used_full / MiB:.0f} MiB with the chunks, "
            f"{used_after / MiB:.0f} MiB after GC and compaction"
        )
        print(f"p99 ratio while GC runs: {b['p99'] / a['p99']:.2f}x")
    finally:
        up.stop()
        shutil.rmtree(root, ignore_errors=True)  # up to a few GiB of shards and metadata


if __name__ == "__main__":
    main()
