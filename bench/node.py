"""Benchmark one storage node: shard PUT/GET throughput and group-commit efficiency.

Starts `python -m node` on 127.0.0.1 with a temporary data directory, drives it with
16 concurrent aiohttp clients (every request signed with the cluster credential, as
the gateway does), and prints MB/s and ops/s for 64 KiB and 1 MiB shards plus the
number of fsyncs (volume fdatasyncs + synced LMDB commits) per 1,000 small PUTs.

    .venv/bin/python bench/node.py [--small N] [--large N] [--clients 16]
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
from pathlib import Path

import aiohttp
import xxhash

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.cluster_auth import EMPTY_HASH, sign_headers  # noqa: E402

SECRET = "bench-cluster-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(root: Path, port: int) -> subprocess.Popen:
    cfg = root / "node.toml"
    cfg.write_text(f'log_level = "warning"\n\n[cluster]\nsecret = "{SECRET}"\n\n[node]\nid = "bench"\n'
                   f'listen = "127.0.0.1:{port}"\ndata_dir = "{root / "data"}"\nreserve_bytes = 0\n'
                   f'scrub_interval_s = 0\n')
    with open(root / "node.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "node", "--config", str(cfg)], cwd=REPO,
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
    async with session.get(base + "/metrics", headers=sign_headers(SECRET, "GET", "/metrics")) as r:
        text = await r.text()
    total = 0
    for name in ("shardbox_node_fsyncs_total", "shardbox_node_index_commits_total"):
        total += int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))
    return total


async def run_phase(session: aiohttp.ClientSession, base: str, method: str, ids: list[str],
                    payloads: list[bytes], hashes: list[str], clients: int) -> float:
    queue = list(range(len(ids)))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            path = f"/shards/{ids[i]}"
            if method == "PUT":
                hdrs = sign_headers(SECRET, "PUT", path, hashes[i])
                async with session.put(base + path, data=payloads[i], headers=hdrs) as r:
                    if r.status != 201:
                        raise RuntimeError(f"PUT {r.status}: {await r.text()}")
            else:
                hdrs = sign_headers(SECRET, "GET", path, EMPTY_HASH)
                async with session.get(base + path, headers=hdrs) as r:
                    body = await r.read()
                    if r.status != 200 or len(body) != len(payloads[i]):
                        raise RuntimeError(f"GET {r.status}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - started


async def bench(port: int, small: int, large: int, clients: int) -> list[tuple]:
    base = f"http://127.0.0.1:{port}"
    rows = []
    conn = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=conn) as session:
        for label, size, count in (("64 KiB", 64 << 10, small), ("1 MiB", 1 << 20, large)):
            distinct = [os.urandom(size) for _ in range(min(count, 64))]
            # vary the first bytes so every shard is distinct without holding `count` buffers
            payloads = [i.to_bytes(8, "little") + distinct[i % len(distinct)][8:] for i in range(count)]
            hashes = [xxhash.xxh3_128_hexdigest(p) for p in payloads]
            ids = [f"b{size}-{i}.{i % 14}" for i in range(count)]
            f0 = await fsync_count(session, base)
            put_s = await run_phase(session, base, "PUT", ids, payloads, hashes, clients)
            f1 = await fsync_count(session, base)
            get_s = await run_phase(session, base, "GET", ids, payloads, hashes, clients)
            mb = count * size / 1e6
            rows.append((label, count, mb / put_s, count / put_s, mb / get_s, count / get_s,
                         (f1 - f0) * 1000 / count))
            del payloads
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=4000, help="number of 64 KiB shards")
    ap.add_argument("--large", type=int, default=500, help="number of 1 MiB shards")
    ap.add_argument("--clients", type=int, default=16)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sbx-bench-node-"))
    port = free_port()
    proc = start_node(root, port)
    try:
        rows = asyncio.run(bench(port, args.small, args.large, args.clients))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    print(f"node benchmark: 1 node on 127.0.0.1, {args.clients} concurrent clients, "
          f"{os.cpu_count()} CPUs, data in {tempfile.gettempdir()}")
    print(f"{'shard':>7} {'count':>6} {'PUT MB/s':>9} {'PUT op/s':>9} {'GET MB/s':>9} {'GET op/s':>9} "
          f"{'fsyncs/1k PUT':>14}")
    for label, count, pm, po, gm, go, fs in rows:
        print(f"{label:>7} {count:>6} {pm:>9.1f} {po:>9.0f} {gm:>9.1f} {go:>9.0f} {fs:>14.0f}")
    small = rows[0]
    print(f"summary: 64 KiB PUT {small[3]:.0f} op/s with {small[6]:.0f} fsyncs per 1,000 PUTs "
          f"(group commit; 2,000 without), 1 MiB PUT {rows[1][2]:.0f} MB/s, GET {rows[1][4]:.0f} MB/s")


if __name__ == "__main__":
    main()
