"""Repair rate of a `shardbox up --nodes 18` on this machine.

Uploads `--mib` MiB of random objects (8 MiB chunks), then for each scenario freezes nodes
for good, removes them (`shardbox admin nodes remove`: repair starts at once) and times one
repair worker (workers/repair.py, in this process, unthrottled; the worker `shardbox up`
runs is frozen meanwhile) until every chunk has its 14 shards again. Prints chunks/s,
shards rebuilt/s and MB/s of shards written and read, plus the CPU the whole cluster
(gateway, coordinator, nodes) and the worker spent per GiB rebuilt. Scenarios: one node
lost (every chunk it held misses one shard: ten reads and one write each), then three more
(chunks missing up to three).

    .venv/bin/python bench/repair.py [--mib 512]

Client, worker and servers share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psutil
from botocore.config import Config as BotoConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import cpu_description  # noqa: E402

from blob.node_client import NodeClient  # noqa: E402
from coordinator.client import CoordinatorClient  # noqa: E402
from tests.integration.cluster import start_cluster  # noqa: E402
from workers.repair import RepairWorker  # noqa: E402

MiB = 1 << 20
NODES = 18


def _admin(data: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "shardbox", "admin", *args, "--data", str(data), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    return json.loads(out.stdout) if out.stdout.strip() else {"error": out.stderr}


def _cluster_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def _repair(data: Path, coordinator: str, secret: str) -> tuple[float, RepairWorker]:
    async with CoordinatorClient(coordinator, secret) as client:
        nodes = NodeClient(secret)
        worker = RepairWorker(client, nodes, worker_id="bench", rate_mb_s=1e6, concurrency=4, batch=32)
        t0 = time.perf_counter()
        while await worker.run_once():
            pass
        elapsed = time.perf_counter() - t0
        await nodes.close()
        return elapsed, worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512, help="data to store before losing nodes (MiB)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sbx-repair-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        cluster = start_cluster(data, nodes=NODES)
        frozen: list[int] = []
        try:
            info = cluster.info
            secret = json.loads((data / "config" / "cluster.json").read_text())["secret"]
            s3 = boto3.client(
                "s3",
                endpoint_url=info["endpoint"],
                region_name="us-east-1",
                aws_access_key_id=info["access_key"],
                aws_secret_access_key=info["secret_key"],
                config=BotoConfig(s3={"addressing_style": "path"}),
            )
            s3.create_bucket(Bucket="bench")
            obj = 32 * MiB
            for i in range(max(1, args.mib * MiB // obj)):
                s3.put_object(Bucket="bench", Key=f"o{i}", Body=os.urandom(obj))
            chunks = _admin(data, "health")["chunks_by_surviving_shards"]["14"]
            # `shardbox up`'s own worker would repair too: frozen, so one worker (this one) does it all.
            os.kill(info["worker"]["pid"], signal.SIGSTOP)
            pids = [n["pid"] for n in info["nodes"]] + [info["gateway"]["pid"], info["coordinator"]["pid"]]
            print(
                f"repair bench: {chunks} chunks of 8 MiB on {NODES} nodes, CPU {cpu_description()}, "
                "one worker, unthrottled"
            )
            print(
                f"{'scenario':<26}{'chunks':>8}{'shards':>8}{'s':>8}{'chunks/s':>10}{'shards/s':>10}"
                f"{'MB/s out':>10}{'MB/s in':>10}{'CPU s/GiB':>11}"
            )
            victims = [n for n in info["nodes"]]
            for label, lost in (("1 node lost", victims[:1]), ("3 more nodes lost", victims[1:4])):
                # Lost for good: frozen (SIGSTOP), since `shardbox up` restarts a node that exits
                # and a node that answers again cannot be removed without draining it.
                for n in lost:
                    os.kill(n["pid"], signal.SIGSTOP)
                    frozen.append(n["pid"])
                    pids.remove(n["pid"])
                time.sleep(12)  # down after 10 s of silence (shardbox up's setting)
                for n in lost:
                    removed = _admin(data, "nodes", "remove", n["id"])
                    if "error" in removed:
                        raise RuntimeError(f"removing {n['id']} failed: {removed['error']}")
                cpu0 = _cluster_cpu(pids) + sum(os.times()[:2])
                elapsed, w = asyncio.run(_repair(data, info["coordinator"]["address"], secret))
                cpu = _cluster_cpu(pids) + sum(os.times()[:2]) - cpu0
                s = w.stats
                gib = s.bytes_written / (1 << 30) or 1e-9
                print(
                    f"{label:<26}{s.chunks:>8}{s.shards_written:>8}{elapsed:>8.2f}{s.chunks / elapsed:>10.1f}"
                    f"{s.shards_written / elapsed:>10.1f}{s.bytes_written / elapsed / 1e6:>10.1f}"
                    f"{s.bytes_read / elapsed / 1e6:>10.1f}{cpu / gib:>11.1f}"
                )
            health = _admin(data, "health")
            print(
                f"after: status {health['status']}, chunks by readable shards "
                f"{health['chunks_by_surviving_shards']}"
            )
        finally:
            for pid in [info["worker"]["pid"], *frozen]:  # so that they can stop
                os.kill(pid, signal.SIGCONT)
            cluster.stop()


if __name__ == "__main__":
    main()
