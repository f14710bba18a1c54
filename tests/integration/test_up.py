"""`shardbox up` as an operator meets it: start, restart on the same data, admin commands, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from botocore.exceptions import ClientError

from tests.integration.cluster import free_port_block, start_cluster

pytestmark = pytest.mark.backend_agnostic


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_up_restart_keeps_data_and_credentials_and_stops_cleanly(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    first = start_cluster(data)
    try:
        info = first.info
        assert len(info["nodes"]) == 14
        assert len({n["address"] for n in info["nodes"]}) == 14
        assert all(_alive(n["pid"]) for n in info["nodes"])
        assert _alive(info["worker"]["pid"])
        s3 = first.s3()
        s3.create_bucket(Bucket="keep")
        s3.put_object(Bucket="keep", Key="k", Body=b"persisted" * 1000)

        admin = subprocess.run([sys.executable, "-m", "shardbox", "admin", "--data", str(data), "user", "add",
                                "alice", "--tenant", "acme"], capture_output=True, text=True, timeout=60)
        assert admin.returncode == 0, admin.stderr
        lines = dict(line.split(": ", 1) for line in admin.stdout.splitlines() if ": " in line)
        alice_key, alice_secret = lines["access key"], lines["secret key"]
        more = subprocess.run([sys.executable, "-m", "shardbox", "admin", "--data", str(data), "key", "add",
                               "alice"], capture_output=True, text=True, timeout=60)
        assert more.returncode == 0, more.stderr
        assert "access key: " in more.stdout and alice_key not in more.stdout
        bad = subprocess.run([sys.executable, "-m", "shardbox", "admin", "--data", str(data), "key", "add",
                              "nobody-here"], capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and bad.stderr.strip()
    finally:
        pids = [n["pid"] for n in first.info["nodes"]] + [first.info["gateway"]["pid"],
                                                           first.info["coordinator"]["pid"],
                                                           first.info["worker"]["pid"]]
        assert first.stop() == 0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "children outlived shardbox up"

    # The restart runs on the numpy kernel (as without libisal2): the console says so, and
    # what ISA-L wrote reads back.
    monkeypatch.setenv("SHARDBOX_ERASURE_KERNEL", "numpy")
    second = start_cluster(data, port=first.port)
    try:
        console = tmp_path / "data-up.log"
        deadline = time.monotonic() + 30
        while "slow numpy kernel" not in console.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "SHARDBOX_ERASURE_KERNEL=numpy" in console.read_text()
        assert second.info["access_key"] == first.info["access_key"]
        assert second.info["secret_key"] == first.info["secret_key"]
        s3 = second.s3()
        assert s3.get_object(Bucket="keep", Key="k")["Body"].read() == b"persisted" * 1000
        # alice is a user of another tenant: her key works, and she cannot see the admin's bucket
        import boto3
        from botocore.config import Config as BotoConfig
        alice = boto3.client("s3", endpoint_url=second.endpoint, region_name="us-east-1",
                             aws_access_key_id=alice_key, aws_secret_access_key=alice_secret,
                             config=BotoConfig(s3={"addressing_style": "path"}))
        assert alice.list_buckets()["Buckets"] == []
        with pytest.raises(ClientError):
            alice.get_object(Bucket="keep", Key="k")
        saved = json.loads((data / "up.json").read_text())
        assert saved["endpoint"] == second.endpoint
        assert {"id", "pid", "address"} <= set(saved["nodes"][0])
    finally:
        second.stop()


def test_up_refuses_a_busy_port(tmp_path):
    data = tmp_path / "d1"
    data.mkdir()
    c = start_cluster(data)
    try:
        other = tmp_path / "d2"
        cmd = [sys.executable, "-m", "shardbox", "up", "--data", str(other), "--port", str(c.port)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "in use" in r.stdout + r.stderr
    finally:
        c.stop()


def test_config_errors_are_readable(tmp_path):
    cfg = tmp_path / "node.toml"
    cfg.write_text('[cluster]\nsecret = "short"\n[node]\nid = "n1"\nlisten = "nope"\ndata_dir = "x"\n')
    r = subprocess.run([sys.executable, "-m", "shardbox", "node", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2
    assert "cluster.secret" in r.stderr and "node.listen" in r.stderr and "Traceback" not in r.stderr
    cmd = [sys.executable, "-m", "shardbox", "gateway", "--config", str(tmp_path / "missing.toml")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "not found" in r.stderr


def test_sigterm_on_up_while_starting_leaves_no_children(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "shardbox", "up", "--data", str(data), "--port",
                             str(free_port_block())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    deadline = time.monotonic() + 10
    while any(_alive(c.pid) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(c.pid) for c in children)
    os.sync()


def _wait_restarted(data, role: str, old_pid: int, timeout: float = 60.0) -> tuple[int, float]:
    """The new pid up.json names for `role` once it is alive and accepting connections,
    and how long that took."""
    import socket
    from urllib.parse import urlsplit

    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        info = json.loads((data / "up.json").read_text())
        entry = info[role] if role in ("gateway", "coordinator") else next(
            n for n in info["nodes"] if n["id"] == role)
        if entry["pid"] != old_pid and _alive(entry["pid"]):
            url = urlsplit(entry["address"])
            try:
                with socket.create_connection((url.hostname, url.port), timeout=1):
                    return entry["pid"], time.monotonic() - started
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"{role} was not restarted within {timeout:.0f} s")


def test_up_restarts_a_killed_node_and_gateway_and_stops_cleanly(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    c = start_cluster(data)
    console = data.parent / "data-up.log"
    restarted: list[int] = []
    try:
        s3 = c.s3()
        s3.create_bucket(Bucket="survive")
        body = os.urandom(3 << 20)
        s3.put_object(Bucket="survive", Key="k", Body=body)

        node = c.info["nodes"][3]
        os.kill(node["pid"], signal.SIGKILL)
        new_pid, took = _wait_restarted(data, node["id"], node["pid"])
        restarted.append(new_pid)
        assert took < 30, took
        assert s3.get_object(Bucket="survive", Key="k")["Body"].read() == body

        gateway_pid = c.info["gateway"]["pid"]
        os.kill(gateway_pid, signal.SIGKILL)
        new_pid, took = _wait_restarted(data, "gateway", gateway_pid)
        restarted.append(new_pid)
        assert took < 30, took
        assert s3.get_object(Bucket="survive", Key="k")["Body"].read() == body
        s3.put_object(Bucket="survive", Key="after", Body=b"written after the restarts")
        assert s3.get_object(Bucket="survive", Key="after")["Body"].read() == b"written after the restarts"

        text = console.read_text()
        assert f"{node['id']} (pid {node['pid']}) exited with signal SIGKILL; restarting it in" in text
        assert f"gateway (pid {gateway_pid}) exited with signal SIGKILL; restarting it in" in text
        assert f"gateway is back (pid {restarted[1]})" in text
    finally:
        info = json.loads((data / "up.json").read_text())
        pids = [n["pid"] for n in info["nodes"]]
        pids += [info[role]["pid"] for role in ("gateway", "coordinator", "worker")]
        assert c.stop() == 0
    assert set(restarted) <= set(pids)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "children outlived shardbox up"
    assert "restarting" not in console.read_text().split("shardbox: stopping")[-1]
