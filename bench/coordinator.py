"""Coordinator call rates through `CoordinatorClient` against a real coordinator process.

Starts `shardbox coordinator` on a fresh SQLite database (and, with --postgres, on a
throwaway PostgreSQL 15 cluster too), registers 14 nodes, then drives each call type with
16 concurrent callers for a fixed time and prints calls/s and p50/p99 latency per call:

    get_object        get_object(with_chunks=True) of a 1-chunk object (14 shards)
    put_object        put_object of a 4 KiB object kept inline (one RPC per PUT)
    put_object(14sh)  put_object of a placed 1-chunk object (14 shards; placement not timed)
    place_chunks      place_chunks for 1 new chunk
    begin+finalize    begin_upload + finalize_put of a 1-chunk object (counted as one flow)
    get_key           get_key (the gateway caches keys; for reference)
    heartbeat         a node heartbeat

Client and server share the machine (the client costs CPU too); check `uptime` first.

    .venv/bin/python bench/coordinator.py [--seconds 5] [--concurrency 16] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coordinator.client import CoordinatorClient  # noqa: E402
from coordinator.records import ChunkRef, CoordinatorError  # noqa: E402
from tests.util import ThrowawayPostgres, free_port, postgres_available, wait_for_port  # noqa: E402

SECRET = "bench-cluster-secret-0123456789"


class Server:
    """A coordinator child process with its own config."""

    def __init__(self, tmp: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / f"coordinator-{self.port}.toml"
        config.write_text(
            f'[cluster]\nsecret = "{SECRET}"\n\n[coordinator]\n'
            f'listen = "127.0.0.1:{self.port}"\ndatabase_url = "{database_url}"\n'
        )
        self.log = open(tmp / f"coordinator-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shardbox", "coordinator", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=30, proc=self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def health(i: int) -> dict:
    return {
        "node_id": f"node-{i:02d}",
        "address": f"http://127.0.0.1:{20000 + i}",
        "pool": "hot",
        "host": f"h{i}",
        "capacity_bytes": 20 << 30,
        "used_bytes": 10 << 30,
        "free_bytes": 10 << 30,
        "shard_count": 0,
        "volumes": 1,
        "garbage_bytes": 0,
        "last_scrub": None,
    }


async def run_phase(
    name: str, seconds: float, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> dict:
    """Run `call(i)` from `concurrency` workers for `seconds`; latencies per call."""
    lat: list[float] = []
    counter = iter(range(1 << 62))
    deadline = time.perf_counter() + seconds
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await call(next(counter))
            except CoordinatorError as exc:
                errors += 1
                if errors == 1:
                    print(f"  {name}: {exc}", file=sys.stderr)
                if exc.code in ("NotFound", "InvalidRequest"):
                    return
                continue
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    n = len(lat)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    return {
        "name": name,
        "rate": n / elapsed if n > 0 else 0.0,
        "p50": pick(0.5),
        "p99": pick(0.99),
        "calls": n,
        "errors": errors,
    }


def fresh_sha(tag: str, i: int) -> str:
    return hashlib.sha256(f"{tag}-{i}-{os.getpid()}-{time.time_ns()}".encode()).hexdigest()


async def bench_backend(url: str, seconds: float, concurrency: int) -> list[dict]:
    async with CoordinatorClient(url, SECRET) as api:
        await asyncio.gather(*(api.heartbeat(health(i)) for i in range(14)))
        await api.create_tenant("bench", None)
        await api.create_user("bench", "bench")
        key = await api.create_key("bench")
        tid, uid = key.tenant_id, key.user_id
        await api.create_bucket(tid, uid, "bench", "us-east-1")
        results = []

        async def place(i: int) -> None:
            await api.place_chunks(tid, [(fresh_sha("p", i), 4096)])

        results.append(await run_phase("place_chunks", seconds, concurrency, place))

        # Placement is not part of the measured pair: place the chunks beforehand, in one call.
        datas = [f"flow-{i}-{time.time_ns()}".encode() * 100 for i in range(10000)]
        plans = await api.place_chunks(tid, [(hashlib.sha256(d).hexdigest(), len(d)) for d in datas])
        refs = []
        for data, plan in zip(datas, plans, strict=True):
            for s in plan.shards:
                s.checksum = "0" * 32
            refs.append(
                ChunkRef(
                    sha256=plan.sha256,
                    chunk_key=plan.chunk_key,
                    size=len(data),
                    enc_size=len(data) + 16,
                    key_id="m1",
                    shards=plan.shards,
                )
            )

        async def flow(i: int) -> None:
            ref = refs[i % 5000]  # new chunks (until 5000 flows, then dedup hits)
            up = await api.begin_upload(
                tid,
                uid,
                "bench",
                f"big/{i}",
                "put",
                ref.size,
                "application/octet-stream",
                {},
                {},
                "STANDARD",
                None,
            )
            await api.finalize_put(up.upload_id, ref.size, "0" * 32, [ref], {})

        r = await run_phase("begin+finalize", seconds, concurrency, flow)
        results.append(r)
        objects = max(1, r["calls"])

        async def put_sharded(i: int) -> None:
            ref = refs[5000 + i % 5000]
            await api.put_object(
                tid, uid, "bench", f"mid/{i}", ref.size, "0" * 32, None, {}, {}, "STANDARD", [ref], {}
            )

        results.append(await run_phase("put_object(14sh)", seconds, concurrency, put_sharded))

        payload = os.urandom(4096)

        async def put_inline(i: int) -> None:
            data = payload[:4088] + i.to_bytes(8, "big")
            digest = hashlib.sha256(data).hexdigest()
            ck = hashlib.sha256(f"{tid}:{digest}".encode()).hexdigest()
            ref = ChunkRef(
                sha256=digest,
                chunk_key=ck,
                size=len(data),
                enc_size=len(data) + 16,
                key_id="m1",
                inline=base64.b64encode(data + b"\0" * 16).decode(),
            )
            await api.put_object(
                tid,
                uid,
                "bench",
                f"small/{i % 5000}",
                len(data),
                hashlib.md5(data).hexdigest(),
                "application/octet-stream",
                {},
                {},
                "STANDARD",
                [ref],
                {},
            )

        results.append(await run_phase("put_object", seconds, concurrency, put_inline))

        async def get(i: int) -> None:
            info = await api.get_object(tid, "bench", f"big/{i % objects}", with_chunks=True)
            assert len(info.chunks) == 1 and len(info.chunks[0].shards) == 14

        results.append(await run_phase("get_object", seconds, concurrency, get))

        async def get_key(_i: int) -> None:
            await api.get_key(key.access_key)

        results.append(await run_phase("get_key", seconds, concurrency, get_key))

        async def beat(i: int) -> None:
            await api.heartbeat(health(i % 14))

        results.append(await run_phase("heartbeat", seconds, concurrency, beat))
        return results


TARGETS = {"get_object": 1500, "put_object": 600, "place_chunks": 1500, "begin+finalize": 300}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", action="store_true", help="also measure on a throwaway PostgreSQL")
    args = parser.parse_args()
    backends: list[tuple[str, list[dict]]] = []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sbx-bench-coord-") as tmp:
        server = Server(Path(tmp), f"sqlite+aiosqlite:///{tmp}/meta.db")
        try:
            backends.append(
                ("sqlite", asyncio.run(bench_backend(server.url, args.seconds, args.concurrency)))
            )
        finally:
            server.stop()
        if args.postgres and postgres_available():
            pg = ThrowawayPostgres()
            pg.start()
            try:
                server = Server(Path(tmp), pg.create_db("bench"))
                try:
                    backends.append(
                        ("postgres", asyncio.run(bench_backend(server.url, args.seconds, args.concurrency)))
                    )
                finally:
                    server.stop()
            finally:
                pg.stop()
    print(
        f"\ncoordinator calls, {args.concurrency} concurrent callers, {args.seconds:g} s per call type, "
        f"load before {load[0]:.2f}, {os.cpu_count()} cpus"
    )
    print(f"{'backend':9} {'call':16} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'target':>7} {'errors':>6}")
    summary = []
    for backend, results in backends:
        for r in results:
            target = TARGETS.get(r["name"])
            print(
                f"{backend:9} {r['name']:16} {r['rate']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} "
                f"{target or '':>7} {r['errors']:6}"
            )
            if target:
                summary.append(
                    f"{backend}/{r['name']} {r['rate']:.0f}/s"
                    f"{'' if r['rate'] >= target else ' (below ' + str(target) + ')'}"
                )
    print("summary: " + "; ".join(summary))


if __name__ == "__main__":
    main()
