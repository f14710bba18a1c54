"""Micro-benchmark of the gateway data path: ChunkStore write and read MB/s.

Runs against 14 real node processes on 127.0.0.1 (temporary data directories) with an
in-process placement stand-in for the coordinator (deterministic placement, no metadata
database): what is measured is hashing, encryption, RS coding and the shard HTTP traffic,
all sharing this machine's cores with the nodes. Prints a table; compare with
single-thread MD5 speed, the natural ceiling of an S3 PUT (the ETag is a serial MD5).

    .venv/bin/python bench/datapath.py [--size-mib 1024] [--chunk-mib 8] [--piece-kib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blob import ChunkStore
from coordinator.records import ObjectInfo
from tests.blob.cluster import MASTER_KEY, NodeCluster, PlacementCoordinator


def md5_speed() -> float:
    buf = os.urandom(64 << 20)
    start = time.perf_counter()
    hashlib.md5(buf).digest()
    return len(buf) / (time.perf_counter() - start) / 1e6


class PeakRss:
    """Samples this process's RSS every 20 ms in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


POOL_BYTES = 64 << 20


async def source(total: int, piece: int):
    """`total` bytes in `piece`-sized views of a random pool; a counter keeps chunks distinct."""
    pool = memoryview(os.urandom(POOL_BYTES))
    sent = 0
    n = 0
    while sent < total:
        tag = n.to_bytes(8, "big")[: total - sent]
        yield tag
        sent += len(tag)
        size = min(piece, total - sent)
        start = (n * piece) % (len(pool) - piece)
        yield pool[start:start + size]
        sent += size
        n += 1


async def bench(args: argparse.Namespace, cluster: NodeCluster) -> None:
    coord = PlacementCoordinator([(n.node_id, n.address) for n in cluster.nodes])
    store = ChunkStore(coord, MASTER_KEY, cluster.secret, chunk_size=args.chunk_mib << 20, min_acks=12,
                       shard_timeout_s=30.0, tune_malloc=not args.no_tune_malloc,
                       read_ahead=args.read_ahead, write_depth=args.write_depth)
    total = args.size_mib << 20
    me = psutil.Process()
    node_procs = [psutil.Process(n.proc.pid) for n in cluster.nodes]

    def nodes_cpu() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in node_procs)
    src = source(total, args.piece_kib << 10)
    await anext(src)   # allocates the source's pool before the baseline is taken
    base_rss = me.memory_info().rss
    pool_bytes = POOL_BYTES   # the source's pool is not the data path's memory: reported without it

    async def stream():
        yield (0).to_bytes(8, "big")
        async for piece in src:
            yield piece

    try:
        with PeakRss() as rss_w:
            cpu0, ncpu0 = sum(me.cpu_times()[:2]), nodes_cpu()
            t0 = time.perf_counter()
            result = await store.write("bench", stream(), set(args.checksums),
                                       payload_sha256=not args.no_payload_sha256)
            write_s = time.perf_counter() - t0
            write_cpu = sum(me.cpu_times()[:2]) - cpu0
            write_ncpu = nodes_cpu() - ncpu0
        obj = ObjectInfo(bucket="b", key="k", version_id="v", tenant_id="bench", size=result.size, etag="",
                         last_modified=0.0, chunks=result.chunks)
        with PeakRss() as rss_r:
            cpu0, ncpu0 = sum(me.cpu_times()[:2]), nodes_cpu()
            t0 = time.perf_counter()
            got = 0
            async for piece in store.read(obj, 0, obj.size - 1):
                got += len(piece)
            read_s = time.perf_counter() - t0
            read_cpu = sum(me.cpu_times()[:2]) - cpu0
            read_ncpu = nodes_cpu() - ncpu0
        assert got == total
    finally:
        await store.close()
    short = sum(1 for c in result.chunks if c.missing)
    if short or coord.reports:
        print(f"note: {short} of {len(result.chunks)} chunks written with missing shards, "
              f"{len(coord.reports)} shard failures reported on read")
    md5 = md5_speed()
    w = total / write_s / 1e6
    r = total / read_s / 1e6
    gib = total / (1 << 30)
    print("| payload | chunk | checksums | write MB/s | read MB/s | md5 1-thread MB/s | write/md5 "
          "| read/md5 | CPU s/GiB write: gateway | nodes | read: gateway | nodes "
          "| peak RSS MB write | read | (baseline) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    algos = ",".join(args.checksums) or "-"
    print(f"| {args.size_mib} MiB | {args.chunk_mib} MiB | {algos} | {w:.0f} | {r:.0f} "
          f"| {md5:.0f} | {w / md5:.0%} | {r / md5:.0%} | {write_cpu / gib:.2f} | {write_ncpu / gib:.2f} "
          f"| {read_cpu / gib:.2f} | {read_ncpu / gib:.2f} "
          f"| {(rss_w.peak - pool_bytes) / 1e6:.0f} | {(rss_r.peak - pool_bytes) / 1e6:.0f} "
          f"| {(base_rss - pool_bytes) / 1e6:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=8)
    parser.add_argument("--piece-kib", type=int, default=1024, help="size of the pieces the source yields")
    parser.add_argument("--checksums", nargs="*", default=["crc32"], help="S3 checksums to compute too")
    parser.add_argument("--no-payload-sha256", action="store_true",
                        help="skip the full-payload SHA-256 (unsigned payload)")
    parser.add_argument("--read-ahead", type=int, default=1, help="chunks prefetched per read")
    parser.add_argument("--write-depth", type=int, default=2, help="chunks in flight per write")
    parser.add_argument("--no-tune-malloc", action="store_true",
                        help="leave glibc's malloc defaults (ChunkStore tune_malloc=False)")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="sbx-bench-") as root:
        cluster = NodeCluster(Path(root))
        cluster.start()
        try:
            asyncio.run(bench(args, cluster))
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
