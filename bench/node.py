"""Benchmark one storage node: shard PUT/GET throughput, node CPU cost per byte, group commit.

Starts `shardbox node` on 127.0.0.1 with a temporary data directory, drives it from
this (separate) process with 16 concurrent aiohttp clients (every request signed with
the cluster credential, as the gateway does), and prints for each shard size MB/s and
ops/s of PUT and GET, the node process's CPU seconds per GiB moved (user and system,
from psutil, so the client's own cost is not counted) and the number of fsyncs (volume
fdatasyncs + synced LMDB commits) per 1,000 PUTs.

Sizes: 64 KiB and 1 MiB, plus 840 KB, the shard size of an 8 MiB chunk after
AES-GCM (+16 bytes) and RS 10+4, which is what the gateway sends under `shardbox up`.
Node CPU per GiB is the figure that limits the cluster: 14 nodes share two cores
with the gateway.

    .venv/bin/python bench/node.py [--small N] [--large N] [--chunk N] [--clients 16]
                                   [--sizes 64k,1m,840k] [--log-level info|warning]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import xxhash

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.cluster_auth import EMPTY_HASH, sign_headers  # noqa: E402

SECRET = "bench-cluster-secret-0123456789"
NODE_ID = "bench"
CHUNK_SHARD = -(-((8 << 20) + 16) // 10)     # 838,862 bytes: one shard of an 8 MiB chunk
GIB = 1 << 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(root: Path, port: int, log_level: str = "info") -> subprocess.Popen:
    cfg = root / "node.toml"
    cfg.write_text(f'log_level = "{log_level}"\n\n[cluster]\nsecret = "{SECRET}"\n\n'
                   f'[node]\nid = "{NODE_ID}"\n'
                   f'listen = "127.0.0.1:{port}"\ndata_dir = "{root / "data"}"\nreserve_bytes = 0\n'
                   f'scrub_interval_s = 0\n')
    with open(root / "node.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "shardbox", "node", "--config", str(cfg)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("node did not start")


async def fsync_count(session: aiohttp.ClientSession, base: str) -> int:
    headers = sign_headers(SECRET, "GET", "/metrics", target=NODE_ID)
    async with session.get(base + "/metrics", headers=headers) as r:
        text = await r.text()
    total = 0
    for name in ("shardbox_node_fsyncs_total", "shardbox_node_index_commits_total"):
        total += int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))
    return total


@dataclass(frozen=True)
class Phase:
    """One timed pass over all shards: wall time and the node process's CPU time."""

    seconds: float
    user_s: float
    system_s: float


@dataclass(frozen=True)
class Row:
    label: str
    size: int
    count: int
    put: Phase
    get: Phase
    fsyncs_per_1k: float

    @property
    def mb(self) -> float:
        return self.count * self.size / 1e6

    @property
    def gib(self) -> float:
        return self.count * self.size / GIB


async def run_phase(session: aiohttp.ClientSession, base: str, method: str, ids: list[str],
                    payloads: list[bytes], hashes: list[str], clients: int,
                    node: psutil.Process) -> Phase:
    """PUT or GET every id; shard i carries payloads[i % len(payloads)] (ids differ, so no dedup)."""
    queue = list(range(len(ids)))
    n = len(payloads)

    async def worker() -> None:
        while queue:
            i = queue.pop()
            path = f"/shards/{ids[i]}"
            if method == "PUT":
                hdrs = sign_headers(SECRET, "PUT", path, hashes[i % n], target=NODE_ID)
                async with session.put(base + path, data=payloads[i % n], headers=hdrs) as r:
                    if r.status != 201:
                        raise RuntimeError(f"PUT {r.status}: {await r.text()}")
            else:
                hdrs = sign_headers(SECRET, "GET", path, EMPTY_HASH, target=NODE_ID)
                async with session.get(base + path, headers=hdrs) as r:
                    body = await r.read()
                    if r.status != 200 or len(body) != len(payloads[i % n]):
                        raise RuntimeError(f"GET {r.status}")

    cpu0 = node.cpu_times()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cpu1 = node.cpu_times()
    return Phase(elapsed, cpu1.user - cpu0.user, cpu1.system - cpu0.system)


SIZES = {"64k": ("64 KiB", 64 << 10), "1m": ("1 MiB", 1 << 20), "840k": ("840 KB", CHUNK_SHARD)}


async def bench(port: int, plan: list[tuple[str, int]], clients: int, node: psutil.Process) -> list[Row]:
    base = f"http://127.0.0.1:{port}"
    rows = []
    conn = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=conn) as session:
        for key, count in plan:
            label, size = SIZES[key]
            payloads = [os.urandom(size) for _ in range(min(count, 64))]
            hashes = [xxhash.xxh3_128_hexdigest(p) for p in payloads]
            ids = [f"b{size}-{i}.{i % 14}" for i in range(count)]
            f0 = await fsync_count(session, base)
            put = await run_phase(session, base, "PUT", ids, payloads, hashes, clients, node)
            f1 = await fsync_count(session, base)
            get = await run_phase(session, base, "GET", ids, payloads, hashes, clients, node)
            rows.append(Row(label, size, count, put, get, (f1 - f0) * 1000 / count))
            del payloads
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=4000, help="number of 64 KiB shards")
    ap.add_argument("--large", type=int, default=500, help="number of 1 MiB shards")
    ap.add_argument("--chunk", type=int, default=1280, help="number of 840 KB shards (1280 = 1 GiB)")
    ap.add_argument("--sizes", default="64k,1m,840k", help="comma-separated subset of 64k,1m,840k")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--log-level", default="info", choices=["info", "warning"],
                    help="node log level; info (the default everywhere) logs one JSON line per request")
    args = ap.parse_args()
    counts = {"64k": args.small, "1m": args.large, "840k": args.chunk}
    keys = [k.strip() for k in args.sizes.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
    root = Path(tempfile.mkdtemp(prefix="sbx-bench-node-"))
    port = free_port()
    proc = start_node(root, port, args.log_level)
    try:
        plan = [(k, counts[k]) for k in keys]
        rows = asyncio.run(bench(port, plan, args.clients, psutil.Process(proc.pid)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    print(f"node benchmark: 1 node on 127.0.0.1, {args.clients} concurrent clients, "
          f"{os.cpu_count()} CPUs, data in {tempfile.gettempdir()}, node log level {args.log_level}")
    print("node CPU = CPU seconds of the node process per GiB moved, user+system")
    print(f"{'shard':>7} {'count':>6} {'PUT MB/s':>9} {'PUT op/s':>9} {'PUT CPU-s/GiB':>20} "
          f"{'GET MB/s':>9} {'GET op/s':>9} {'GET CPU-s/GiB':>20} {'fsyncs/1k PUT':>14}")

    def cpu(p: Phase, gib: float) -> str:
        return f"{p.user_s / gib:.2f}u+{p.system_s / gib:.2f}s={(p.user_s + p.system_s) / gib:.2f}"

    for r in rows:
        print(f"{r.label:>7} {r.count:>6} {r.mb / r.put.seconds:>9.1f} {r.count / r.put.seconds:>9.0f} "
              f"{cpu(r.put, r.gib):>20} {r.mb / r.get.seconds:>9.1f} {r.count / r.get.seconds:>9.0f} "
              f"{cpu(r.get, r.gib):>20} {r.fsyncs_per_1k:>14.0f}")
    for r in rows:
        put_cpu = (r.put.user_s + r.put.system_s) / r.gib
        get_cpu = (r.get.user_s + r.get.system_s) / r.gib
        print(f"summary {r.label}: PUT {r.mb / r.put.seconds:.0f} MB/s at {put_cpu:.2f} node CPU-s/GiB, "
              f"GET {r.mb / r.get.seconds:.0f} MB/s at {get_cpu:.2f} node CPU-s/GiB, "
              f"{r.fsyncs_per_1k:.0f} fsyncs per 1,000 PUTs (group commit; 2,000 without)")


if __name__ == "__main__":
    main()
