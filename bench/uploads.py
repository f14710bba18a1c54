"""The product API's upload and share paths on a `shardbox up` of this machine.

Three measurements, with the `shardbox` user client's own code (shardbox/client) as the
client:

1. a 1 GiB file of random bytes uploaded with 4 parallel chunk streams (MB/s of the
   chunk transfer, and end to end including the local SHA-256 of every chunk);
2. the same file uploaded again to another path: fully deduplicated at init, so no chunk
   is sent (time; chunk bytes sent);
3. 200 concurrent downloads of one 200 MB file through a download share link
   (GET /share/{token}/download -> 302 -> the signed URL, every body read to the end):
   aggregate MB/s, and the shard bytes the 14 nodes sent meanwhile (their
   shardbox_node_get_bytes_total counters), which the gateway's chunk cache and request
   collapsing should keep close to one copy of the file.

Client and servers share the machine's cores (and other work running on it: the load
average before and after is printed), so the figures are lower bounds.

    .venv/bin/python bench/uploads.py [--big-mib 1024] [--shared-mb 200] [--downloads 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_description
from s3 import CpuMeter, Up

from config.cluster_auth import sign_headers
from shardbox.client.api import ProductClient
from shardbox.client.uploader import Uploader

MiB = 1 << 20
USER, PASSWORD = "bench", "bench-password-1234"


def write_random(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 64 * MiB)
            fh.write(os.urandom(n))
            left -= n
    return path


def add_user(data: Path) -> None:
    subprocess.run([sys.executable, "-m", "shardbox", "admin", "--data", str(data), "user", "add", USER,
                    "--tenant", "bench", "--password"], input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True, timeout=120)


async def node_bytes_sent(info: dict, secret: str) -> int:
    """Sum of the nodes' shardbox_node_get_bytes_total (shard bytes they served)."""
    total = 0
    async with aiohttp.ClientSession() as session:
        for node in info["nodes"]:
            headers = sign_headers(secret, "GET", "/metrics", target=node["id"])
            async with session.get(node["address"] + "/metrics", headers=headers) as resp:
                resp.raise_for_status()
                for line in (await resp.text()).splitlines():
                    if line.startswith("shardbox_node_get_bytes_total "):
                        total += int(float(line.split()[1]))
    return total


async def download_many(share_url: str, count: int, size: int) -> tuple[float, int]:
    """`count` recipients at once: resolve the link, follow its 302, read the body to the end."""
    connector = aiohttp.TCPConnector(limit=count, limit_per_host=count)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=600)
    received = 0

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal received
        async with session.get(share_url + "/download", allow_redirects=False) as resp:
            if resp.status != 302:
                raise RuntimeError(f"share link answered {resp.status}: {await resp.text()}")
            location = resp.headers["Location"]
        async with session.get(location) as resp:
            if resp.status != 200:
                raise RuntimeError(f"signed URL answered {resp.status}")
            n = 0
            async for piece in resp.content.iter_chunked(1 << 20):
                n += len(piece)
            if n != size:
                raise RuntimeError(f"got {n} bytes of {size}")
            received += n

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(count)))
        return time.perf_counter() - t0, received


async def run(up: Up, work: Path, big: int, shared: int, downloads: int) -> dict:
    secret = json.loads((up.data / "config" / "cluster.json").read_text())["secret"]
    server = up.info["endpoint"]
    async with ProductClient(server) as anon:
        token = (await anon.login(USER, PASSWORD))["token"]
    out: dict = {}
    meter = CpuMeter(up.info)
    async with ProductClient(server, token) as client:
        chunk_size = int((await client.info())["chunk_size"])
        uploader = Uploader(client, USER, streams=4, chunk_size=chunk_size)

        big_file = write_random(work / "big.bin", big)
        s0, c0, _, _ = meter.sample()
        first = await uploader.upload(big_file, "/bench/big.bin")
        s1, c1, _, _ = meter.sample()
        transfer_s = first.seconds - first.hash_seconds
        out["upload"] = {"bytes": big, "chunks_sent": first.chunks_sent, "bytes_sent": first.bytes_sent,
                         "seconds": first.seconds, "hash_seconds": first.hash_seconds,
                         "transfer_mb_s": big / transfer_s / 1e6,
                         "end_to_end_mb_s": big / first.seconds / 1e6,
                         "server_cpu_s": s1 - s0, "client_cpu_s": c1 - c0}

        again = await uploader.upload(big_file, "/bench/big-again.bin")
        out["dedup_upload"] = {"seconds": again.seconds, "hash_seconds": again.hash_seconds,
                               "chunks_sent": again.chunks_sent, "bytes_sent": again.bytes_sent,
                               "status": again.file.get("status")}
        big_file.unlink()

        shared_file = write_random(work / "shared.bin", shared)
        await uploader.upload(shared_file, "/bench/shared.bin")
        shared_file.unlink()
        entry = await client.stat("/bench/shared.bin")
        link = await client.create_share(str(entry["id"]), "download")

    before = await node_bytes_sent(up.info, secret)
    s0, c0, _, _ = meter.sample()
    seconds, received = await download_many(link["url"], downloads, shared)
    s1, c1, _, _ = meter.sample()
    after = await node_bytes_sent(up.info, secret)
    out["downloads"] = {"count": downloads, "file_bytes": shared, "seconds": seconds,
                        "bytes_received": received,
                        "aggregate_mb_s": received / seconds / 1e6, "node_bytes_sent": after - before,
                        "node_bytes_per_copy": (after - before) / shared, "server_cpu_s": s1 - s0,
                        "client_cpu_s": c1 - c0}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the uploaded file (MiB)")
    parser.add_argument("--shared-mb", type=int, default=200, help="size of the shared file (MB)")
    parser.add_argument("--downloads", type=int, default=200, help="concurrent downloads of the shared file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sbx-bench-uploads-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        load_before = os.getloadavg()
        up = Up(data)
        try:
            add_user(data)
            result = asyncio.run(run(up, work, args.big_mib * MiB, args.shared_mb * 1_000_000,
                                     args.downloads))
        finally:
            up.stop()
        load_after = os.getloadavg()
    u, d, s = result["upload"], result["dedup_upload"], result["downloads"]
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"CPU: {cpu_description()}; "
          f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)")
    print(f"command: .venv/bin/python bench/uploads.py --big-mib {args.big_mib} --shared-mb {args.shared_mb} "
          f"--downloads {args.downloads}")
    print(f"upload {u['bytes'] / MiB:.0f} MiB, 4 streams: {u['transfer_mb_s']:.0f} MB/s chunk transfer, "
          f"{u['end_to_end_mb_s']:.0f} MB/s end to end "
          f"(hashing {u['hash_seconds']:.1f} s of {u['seconds']:.1f} s); "
          f"{u['chunks_sent']} chunks, {u['bytes_sent']} bytes sent; server CPU {u['server_cpu_s']:.1f} s, "
          f"client CPU {u['client_cpu_s']:.1f} s")
    print(f"same file again (deduplicated): {d['seconds']:.2f} s (hashing {d['hash_seconds']:.2f} s), "
          f"{d['chunks_sent']} chunks / {d['bytes_sent']} bytes sent")
    print(f"{s['count']} concurrent downloads of a {s['file_bytes'] / 1e6:.0f} MB shared file: "
          f"{s['aggregate_mb_s']:.0f} MB/s aggregate "
          f"({s['seconds']:.1f} s, {s['bytes_received'] / 1e9:.1f} GB); "
          f"nodes sent {s['node_bytes_sent'] / 1e6:.0f} MB = {s['node_bytes_per_copy']:.2f} x the file; "
          f"server CPU {s['server_cpu_s']:.1f} s, client CPU {s['client_cpu_s']:.1f} s")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
