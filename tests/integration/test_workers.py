"""Workers sharing one metadata store (SQLite through its coordinator, or PostgreSQL): every
event handled exactly once in effect, also when one worker is killed midway; the built-in
scanner (EICAR, the operator's blocklist) and a rescan quarantining a late positive."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import tomli_w

from tests.clamd import EICAR
from tests.integration import ops
from tests.integration.cluster import Cluster, start_cluster
from tests.integration.conftest import _database_url
from tests.util import ControlledClock

LEASE_S = 60.0


@pytest.fixture(scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple[Cluster, ControlledClock, dict]]:
    root = tmp_path_factory.mktemp("workers")
    clock = ControlledClock(root / "clock")
    data = root / "data"
    data.mkdir()
    cluster = start_cluster(
        data, database_url=_database_url(request), args=("--scanner", "builtin"), env=clock.env()
    )
    second = {
        "config": data / "config" / "worker-2.toml",
        "log": data / "logs" / "worker-2.log",
        "proc": None,
    }
    try:
        yield cluster, clock, second
    finally:
        if second["proc"] is not None and second["proc"].poll() is None:
            second["proc"].terminate()
            second["proc"].wait(30)
        cluster.stop()


def start_second_worker(cluster: Cluster, second: dict) -> subprocess.Popen:
    """Another `shardbox worker` on the same coordinator, configured like up's own."""
    cfg = tomllib.loads((cluster.data_dir / "config" / "worker.toml").read_text())
    cfg["worker"]["id"] = "worker-2"
    second["config"].write_text(tomli_w.dumps(cfg))
    log = open(second["log"], "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "shardbox", "worker", "--config", str(second["config"])],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    second["proc"] = proc
    return proc


# tests/integration/ops.py's wait, with this module's patience (scans and GC rounds are slow).
wait_for = functools.partial(ops.wait_for, timeout=180.0, every=0.2)


def run(fn, cluster: Cluster):
    async def go():
        async with cluster.coordinator() as api:
            return await fn(api)

    return asyncio.run(go())


def scanned_lines(path) -> list[dict]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("event") == "object.scanned"]


def test_two_workers_handle_every_event_exactly_once_in_effect(env):
    cluster, clock, second = env
    assert cluster.info["scanner"].startswith("builtin (EICAR + SHA-256 blocklist ")
    s3 = cluster.s3()
    s3.create_bucket(Bucket="many")
    worker2 = start_second_worker(cluster, second)
    keys = [f"obj-{i:03d}" for i in range(150)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda k: s3.put_object(Bucket="many", Key=k, Body=os.urandom(2048) + k.encode()), keys)
        )
    # Kill one of the two halfway through: its claimed events come back when their leases end.
    wait_for("worker-2 to scan some", lambda: len(scanned_lines(second["log"])) >= 10, timeout=120)
    worker2.send_signal(signal.SIGKILL)
    worker2.wait(30)
    cluster.advance_clock(clock, LEASE_S + 1)

    def settled():
        status = run(lambda api: api.pipeline_status(), cluster)
        return status.scanning == 0 and status.outbox_pending == 0

    wait_for("every object scanned", settled, timeout=300)

    async def scan_rows(api):
        return {k: [e for e in await api.object_audit("many", k) if e.action == "object.scan"] for k in keys}

    rows = run(scan_rows, cluster)
    assert {k: len(v) for k, v in rows.items()} == {k: 1 for k in keys}
    assert {v[0].detail["result"] for v in rows.values()} == {"clean"}
    by_first = len(
        {
            line["key"]
            for line in scanned_lines(cluster.data_dir / "logs" / "worker.log")
            if line["bucket"] == "many"
        }
    )
    by_second = len({line["key"] for line in scanned_lines(second["log"]) if line["bucket"] == "many"})
    # both did work (a scan worker-2 recorded just before its kill may miss its log line)
    assert by_first > 0 and by_second >= 10
    assert run(lambda api: api.pipeline_status(), cluster).parked_events == 0


def test_builtin_scanner_quarantines_eicar(env):
    cluster, _clock, _second = env
    s3 = cluster.s3()
    s3.create_bucket(Bucket="builtin")
    s3.put_object(Bucket="builtin", Key="eicar.com", Body=EICAR)
    s3.put_object(Bucket="builtin", Key="inside.bin", Body=os.urandom(100_000) + EICAR + os.urandom(50_000))

    def status(key: str) -> str:
        return s3.head_object(Bucket="builtin", Key=key)["ResponseMetadata"]["HTTPHeaders"][
            "x-shardbox-status"
        ]

    wait_for("both quarantined", lambda: status("eicar.com") == status("inside.bin") == "quarantined")
    headers = s3.head_object(Bucket="builtin", Key="inside.bin")["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-shardbox-scan-result"] == "infected: Eicar-Test-Signature"


def test_rescan_quarantines_a_late_positive_from_the_operators_blocklist(env):
    cluster, _clock, _second = env
    s3 = cluster.s3()
    s3.create_bucket(Bucket="late")
    installer = os.urandom(300_000)
    s3.put_object(Bucket="late", Key="installer.exe", Body=installer)
    s3.put_object(Bucket="late", Key="fine.txt", Body=os.urandom(5000))

    def status(key: str) -> str:
        return s3.head_object(Bucket="late", Key=key)["ResponseMetadata"]["HTTPHeaders"]["x-shardbox-status"]

    wait_for("both ready", lambda: status("installer.exe") == status("fine.txt") == "ready")
    blocklist = cluster.data_dir / "config" / "scan-blocklist.txt"
    with open(blocklist, "a") as f:
        f.write(f"{hashlib.sha256(installer).hexdigest()}  Trojan.Late-Installer\n")
    out = cluster.admin("scan", "--rescan", "--json").stdout
    rescan_id = json.loads(out)["rescan"]["id"]
    wait_for("the late positive", lambda: status("installer.exe") == "quarantined", timeout=240)
    assert status("fine.txt") == "ready"
    headers = s3.head_object(Bucket="late", Key="installer.exe")["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-shardbox-scan-result"] == "infected: Trojan.Late-Installer"

    def finished():
        doc = json.loads(cluster.admin("scan", "--json").stdout)
        (job,) = [r for r in doc["rescans"] if r["id"] == rescan_id]
        return job if job["finished_at"] else None

    job = wait_for("the rescan to finish", finished, timeout=240)
    assert job["found"] == 1 and job["scanned"] >= 2
