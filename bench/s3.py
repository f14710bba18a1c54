"""S3 throughput of a `shardbox up` on this machine, with boto3 as the client.

Prints a table (PUT/GET MB/s for 1 x 1 GiB and 8 x 64 MiB objects, the latency of
100-byte reads of the big object by range and by suffix and of one of its parts, 4 KiB
PUT/GET ops/s with 16 concurrent clients, gateway peak RSS) beside the ceiling measured in the same
run (single-thread MD5 MB/s), then a one-line summary. Client and servers share the
machine, so the figures include boto3's own cost (it SHA-256-signs and CRC32s every
payload over plain HTTP).

For the single 1 GiB PUT and GET it also prints the servers' CPU-seconds per GiB
(gateway + coordinator + 14 nodes, psutil) and how busy the machine's cores were with
this benchmark (servers + client, over wall time x cores). For the 100-byte ranged GET
(`bytes=0-99`) it prints, besides the client's latency, the gateway's own time for the
request and the bytes the gateway received from the nodes for it, both read from the
gateway's request log (`duration_ms`, `node_bytes_in` of its `s3.request` lines).

The client is boto3 as `pip install boto3` installs it: without awscrt. shardbox itself
depends on awscrt (CRC32C/CRC64NVME), and botocore switches to awscrt's signer whenever
it can import it; that signer pulls the body through Python callbacks 4 KiB at a time and
uses a table-driven CRC32, ~0.45 CPU-s more per GiB uploaded, on the same two cores as
the servers. BOTO_DISABLE_CRT (botocore's own switch) keeps the client the plain one;
set it to false to measure with the CRT signer.

    .venv/bin/python bench/s3.py [--big-mib 1024] [--small-seconds 10] [--big-only]

Drop the page cache first (`sync; echo 1 > /proc/sys/vm/drop_caches`): on a VM, nodes
writing into a page cache grown into never-touched memory cost twice the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("BOTO_DISABLE_CRT", "true")   # read by botocore at import; see above

import boto3
import psutil
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig

MiB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.util import free_port_block  # noqa: E402


def md5_ceiling(seconds: float = 2.0) -> float:
    buf = os.urandom(64 * MiB)
    h = hashlib.md5()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        h.update(buf)
        n += len(buf)
    return n / (time.perf_counter() - t0) / 1e6


class Up:
    def __init__(self, data: Path) -> None:
        self.data = data
        port = free_port_block()
        self.log = open(data.parent / "up.log", "wb")  # noqa: SIM115
        # No malware scanner: it would read every object back in the background while the next
        # phase is timed; this bench measures the storage path.
        self.proc = subprocess.Popen([sys.executable, "-m", "shardbox", "up", "--data", str(data), "--port",
                                      str(port), "--scanner", "none"], cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not (data / "up.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shardbox up failed; see {data.parent / 'up.log'}")
            time.sleep(0.1)
        self.info = json.loads((data / "up.json").read_text())

    def client(self):
        return boto3.client("s3", endpoint_url=self.info["endpoint"], region_name="us-east-1",
                            aws_access_key_id=self.info["access_key"],
                            aws_secret_access_key=self.info["secret_key"],
                            config=BotoConfig(s3={"addressing_style": "path"}, max_pool_connections=32,
                                              retries={"max_attempts": 1}))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.p = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self.p.memory_info().rss)

    def phase(self) -> int:
        """Peak since the last call (the process's high-water mark for one phase)."""
        peak, self.peak = self.peak, 0
        return peak

    def close(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


class CpuMeter:
    """CPU-seconds of the servers (gateway, coordinator, nodes) and of this client process."""

    def __init__(self, info: dict) -> None:
        pids = [info["gateway"]["pid"], info["coordinator"]["pid"], *(n["pid"] for n in info["nodes"])]
        self.servers = [psutil.Process(pid) for pid in pids]
        self.client = psutil.Process()

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            t = p.cpu_times()
            total += t.user + t.system
        return total

    def sample(self) -> tuple[float, float, float, float]:
        """(servers' CPU-s, client's CPU-s, wall clock, the machine's idle CPU-s) so far."""
        return self._cpu(self.servers), self._cpu([self.client]), time.perf_counter(), psutil.cpu_times().idle


@dataclass
class Waits:
    """What one phase's requests spent their time in, from the servers' request logs: the
    average number in flight (sum of durations / wall time) and the median duration, of the
    gateway's S3 requests and of the nodes' shard requests. A stream whose gateway requests
    are all in flight (as many as the client's concurrency) while the nodes' are few and
    short is held by the gateway's pipeline; long node requests (PUT: fdatasync + index
    commit) with few CPU-seconds spent mean it waits on the disks."""

    gateway_inflight: float
    gateway_median_ms: float
    node_inflight: float
    node_median_ms: float
    node_requests: int

    @classmethod
    def read(cls, info: dict, method: str, t0: float, t1: float) -> Waits:
        logs = Path(info["data_dir"]) / "logs"
        gw = _durations(logs / "gateway.log", b'"s3.request"', "duration_ms", method, t0, t1)
        nodes: list[float] = []
        for path in logs.glob("node-*.log"):
            nodes += _durations(path, b'"event":"request"', "ms", method, t0, t1, b'"/shards/')
        wall = (t1 - t0) * 1000
        return cls(sum(gw) / wall, _median(gw), sum(nodes) / wall, _median(nodes), len(nodes))

    def describe(self) -> str:
        return (f"gateway: {self.gateway_inflight:.1f} requests in flight, median "
                f"{self.gateway_median_ms:.0f} ms; nodes: {self.node_inflight:.1f} shard requests in flight, "
                f"median {self.node_median_ms:.1f} ms ({self.node_requests})")


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def _durations(path: Path, marker: bytes, field: str, method: str, t0: float, t1: float,
               also: bytes = b"") -> list[float]:
    """Durations (ms) of the requests of one method a log recorded as finished in [t0, t1]."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            if marker not in line or also not in line:
                continue
            entry = json.loads(line)
            if entry.get("method") == method and t0 <= entry.get("ts", 0) <= t1 + 1:
                out.append(float(entry[field]))
    return out


@dataclass
class Phase:
    """One timed transfer: MB/s, server CPU per GiB and the share of the cores it kept busy."""

    mb_s: float
    server_cpu_per_gib: float
    busy: float            # (servers + client CPU-s) / (wall * cores)
    machine_busy: float    # everything on the machine (other work included) over wall * cores
    waits: Waits | None = None

    @classmethod
    def measure(cls, meter: CpuMeter, size: int, run, info: dict | None = None, method: str = "") -> Phase:
        s0, c0, t0, i0 = meter.sample()
        w0 = time.time()
        run()
        s1, c1, t1, i1 = meter.sample()
        w1 = time.time()
        wall, cores = t1 - t0, os.cpu_count() or 1
        waits = Waits.read(info, method, w0, w1) if info is not None else None
        return cls(size / wall / 1e6, (s1 - s0) / (size / (1 << 30)),
                   (s1 - s0 + c1 - c0) / (wall * cores), 1 - (i1 - i0) / (wall * cores), waits)


class Sink:
    def __init__(self) -> None:
        self.n = 0

    def write(self, b: bytes) -> int:
        self.n += len(b)
        return len(b)


def bench_big(up: Up, meter: CpuMeter, size: int) -> tuple[Phase, Phase]:
    s3 = up.client()
    data = os.urandom(size)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=10)
    put = Phase.measure(meter, size, lambda: s3.upload_fileobj(io.BytesIO(data), "bench", "big", Config=cfg),
                        up.info, "PUT")
    sink = Sink()
    get = Phase.measure(meter, size, lambda: s3.download_fileobj("bench", "big", sink, Config=cfg),
                        up.info, "GET")
    assert sink.n == size
    return put, get


@dataclass
class SmallRead:
    client_ms: float             # median latency seen by boto3
    gateway_ms: float | None     # median of the gateway's own duration_ms
    node_bytes: int | None       # median bytes the gateway received from nodes per request


def gateway_requests(up: Up, ids: set[str]) -> dict[str, dict]:
    """The gateway's `s3.request` log lines of the given request ids."""
    path = Path(up.info["data_dir"]) / "logs" / "gateway.log"
    found: dict[str, dict] = {}
    deadline = time.monotonic() + 10
    while len(found) < len(ids) and time.monotonic() < deadline:
        with open(path, "rb") as f:
            for line in f:
                if b'"s3.request"' not in line:
                    continue
                entry = json.loads(line)
                if entry.get("request_id") in ids:
                    found[entry["request_id"]] = entry
        if len(found) < len(ids):
            time.sleep(0.2)   # the last lines may not be written yet
    return found


def bench_small_reads(up: Up, size: int, rounds: int = 30) -> dict[str, SmallRead]:
    """Latency (ms) of one-request reads of the big object, as a footer reader (a
    suffix), a part-at-a-time downloader (partNumber) and a plain ranged read do them;
    for each, the gateway's own time and its node traffic from its request log."""
    s3 = up.client()
    middle = max(1, size // (8 * MiB) // 2)
    asks = {"bytes=0-99": {"Range": "bytes=0-99"}, "bytes=-100": {"Range": "bytes=-100"},
            f"partNumber={middle}": {"PartNumber": middle}}
    out = {}
    for label, kwargs in asks.items():
        times, ids = [], set()
        for _ in range(rounds):
            t0 = time.perf_counter()
            resp = s3.get_object(Bucket="bench", Key="big", **kwargs)
            resp["Body"].read()
            times.append(time.perf_counter() - t0)
            ids.add(resp["ResponseMetadata"]["RequestId"])
        logged = list(gateway_requests(up, ids).values())
        gw = sorted(e["duration_ms"] for e in logged)
        nb = sorted(e.get("node_bytes_in", 0) for e in logged)
        out[label] = SmallRead(sorted(times)[rounds // 2] * 1000, gw[len(gw) // 2] if gw else None,
                               nb[len(nb) // 2] if nb else None)
    return out


def bench_many(up: Up, count: int, size: int) -> tuple[float, float]:
    clients = [up.client() for _ in range(count)]
    bodies = [os.urandom(size) for _ in range(count)]

    def put(i: int) -> None:
        clients[i].put_object(Bucket="bench", Key=f"m{i}", Body=bodies[i])

    def get(i: int) -> None:
        body = clients[i].get_object(Bucket="bench", Key=f"m{i}")["Body"]
        n = 0
        for piece in body.iter_chunks(1 * MiB):
            n += len(piece)
        assert n == size

    with ThreadPoolExecutor(count) as pool:
        t0 = time.perf_counter()
        list(pool.map(put, range(count)))
        put_rate = count * size / (time.perf_counter() - t0) / 1e6
        t0 = time.perf_counter()
        list(pool.map(get, range(count)))
        get_rate = count * size / (time.perf_counter() - t0) / 1e6
    return put_rate, get_rate


def _small_worker(info: dict, op: str, worker: int, seconds: float, keys: int, start, out) -> None:
    """One client process: boto3's per-request cost is high, so clients get their own GIL.

    Every client is built before the clock starts (`start` is a barrier with the parent):
    creating 16 boto3 clients takes a few CPU-seconds, which would otherwise be counted
    against the server in a 10 s window."""
    try:
        s3 = boto3.client("s3", endpoint_url=info["endpoint"], region_name="us-east-1",
                          aws_access_key_id=info["access_key"], aws_secret_access_key=info["secret_key"],
                          config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        body = os.urandom(4096)
        start.wait(timeout=120)
        n, t_end = 0, time.monotonic() + seconds
        while time.monotonic() < t_end and n < 100_000:
            key = f"small/{worker}/{n % keys}"
            if op == "put":
                s3.put_object(Bucket="bench", Key=key, Body=body)
            else:
                s3.get_object(Bucket="bench", Key=key)["Body"].read()
            n += 1
        out.put((n, None))
    except Exception as exc:  # reported by the parent, which must not wait forever
        start.abort()
        out.put((0, f"{type(exc).__name__}: {exc}"))


def bench_small(up: Up, clients: int, seconds: float) -> tuple[float, float]:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    rates, keys = [], 200
    for op in ("put", "get"):
        q = ctx.Queue()
        start = ctx.Barrier(clients + 1)
        procs = [ctx.Process(target=_small_worker, args=(up.info, op, w, seconds, keys, start, q))
                 for w in range(clients)]
        for p in procs:
            p.start()
        start.wait(timeout=120)
        t0 = time.perf_counter()
        results = [q.get(timeout=seconds + 120) for _ in procs]
        elapsed = time.perf_counter() - t0
        for p in procs:
            p.join()
        errors = [e for _, e in results if e]
        if errors:
            raise RuntimeError(f"{op} clients failed: {errors[:3]}")
        rates.append(sum(n for n, _ in results) / elapsed)
        keys = min(keys, min(n for n, _ in results))  # GET only keys every client wrote
    return rates[0], rates[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--small-seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--big-only", action="store_true",
                    help="only the 1 x big PUT/GET and the small reads of it (quick A/B runs)")
    args = ap.parse_args()

    ceiling = md5_ceiling()
    with tempfile.TemporaryDirectory(prefix="sbx-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        up = Up(data)
        try:
            up.client().create_bucket(Bucket="bench")
            rss = PeakRss(up.info["gateway"]["pid"])
            meter = CpuMeter(up.info)
            load = os.getloadavg()[0]
            big_put, big_get = bench_big(up, meter, args.big_mib * MiB)
            reads = bench_small_reads(up, args.big_mib * MiB)
            rss_big = rss.phase()
            many_put = many_get = small_put = small_get = float("nan")
            rss_many = rss_small = 0
            if not args.big_only:
                many_put, many_get = bench_many(up, 8, 64 * MiB)
                rss_many = rss.phase()
                small_put, small_get = bench_small(up, args.clients, args.small_seconds)
                rss_small = rss.phase()
            rss.close()
            peak = max(rss_big, rss_many, rss_small)
        finally:
            up.stop()

    first = reads["bytes=0-99"]
    rows = [
        (f"PUT 1 x {args.big_mib} MiB", f"{big_put.mb_s:8.1f} MB/s",
         f"{big_put.mb_s / ceiling * 100:5.1f}% of MD5"),
        (f"GET 1 x {args.big_mib} MiB", f"{big_get.mb_s:8.1f} MB/s",
         f"{big_get.mb_s / ceiling * 100:5.1f}% of MD5"),
        ("  server CPU-s per GiB PUT / GET",
         f"{big_put.server_cpu_per_gib:.2f} / {big_get.server_cpu_per_gib:.2f}",
         "gateway + coordinator + nodes"),
        ("  cores busy PUT / GET", f"{big_put.busy:.0%} / {big_get.busy:.0%}",
         f"servers + client over wall x {os.cpu_count()} cores (whole machine "
         f"{big_put.machine_busy:.0%} / {big_get.machine_busy:.0%})"),
        ("  waits PUT", "", big_put.waits.describe() if big_put.waits else ""),
        ("  waits GET", "", big_get.waits.describe() if big_get.waits else ""),
        (f"ranged GETs of the {args.big_mib} MiB",
         " / ".join(f"{r.client_ms:.1f}" for r in reads.values()) + " ms",
         "median: " + " / ".join(reads) + " (8 MiB)"),
        ("  bytes=0-99 at the gateway", f"{first.gateway_ms} ms",
         f"median; received from nodes: {first.node_bytes} bytes"),
        ("PUT 8 x 64 MiB (parallel)", f"{many_put:8.1f} MB/s", f"{many_put / ceiling * 100:5.1f}% of MD5"),
        ("GET 8 x 64 MiB (parallel)", f"{many_get:8.1f} MB/s", f"{many_get / ceiling * 100:5.1f}% of MD5"),
        (f"PUT 4 KiB, {args.clients} clients", f"{small_put:8.1f} ops/s", ""),
        (f"GET 4 KiB, {args.clients} clients", f"{small_get:8.1f} ops/s", ""),
        ("gateway peak RSS", f"{peak / MiB:8.1f} MiB",
         f"1 x big {rss_big / MiB:.0f}, 8 x 64 MiB {rss_many / MiB:.0f}, small {rss_small / MiB:.0f}"),
        ("ceiling: MD5, one thread", f"{ceiling:8.1f} MB/s", ""),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'value':>14}  relative")
    for name, value, rel in rows:
        print(f"{name:<{w}}  {value:>14}  {rel}")
    print(f"summary: 1GiB PUT {big_put.mb_s:.0f} MB/s ({big_put.mb_s / ceiling:.0%} of MD5 {ceiling:.0f}), "
          f"GET {big_get.mb_s:.0f} MB/s ({big_get.mb_s / ceiling:.0%}); server CPU-s/GiB PUT "
          f"{big_put.server_cpu_per_gib:.2f} GET {big_get.server_cpu_per_gib:.2f}; 100-byte range "
          f"{first.gateway_ms} ms at the gateway, {first.node_bytes} B from nodes; "
          f"4KiB PUT {small_put:.0f}/s GET {small_get:.0f}/s; "
          f"gateway peak RSS {peak / MiB:.0f} MiB; load {load:.1f} at start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
