"""What an operator does to a running `shardbox up`, for tests: the admin CLI as a
subprocess, signed calls to nodes, calls to the coordinator."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coordinator.client import CoordinatorClient
from tests.integration.nodes import all_shards, node_json, node_request


def secret(data_dir: Path) -> str:
    return json.loads((data_dir / "config" / "cluster.json").read_text())["secret"]


def admin(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`shardbox admin ARGS --data DIR` (options after the command words, as people type them)."""
    return subprocess.run([sys.executable, "-m", "shardbox", "admin", *args, "--data", str(data_dir)],
                          capture_output=True, text=True, timeout=timeout)


def admin_json(data_dir: Path, *args: str) -> tuple[int, Any]:
    done = admin(data_dir, *args, "--json")
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def node_call(data_dir: Path, node: dict, method: str, path: str) -> Any:
    """A signed request to a node's API (`node`: an entry of up.json's "nodes"); its JSON answer."""
    return node_json(secret(data_dir), node, method, path)


def shard_bytes(data_dir: Path, node: dict, sid: str) -> bytes:
    r = node_request(secret(data_dir), node, "GET", f"/shards/{sid}")
    assert r.status == 200, (r.status, r.data[:300])
    return r.data


def shards_on(data_dir: Path, node: dict) -> dict[str, str]:
    """Every live shard on a node: shard id -> checksum."""
    return {s["id"]: s["checksum"] for s in all_shards(secret(data_dir), node)}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Coordinator:
    """Calls to the cluster's coordinator from the test (its own event loop)."""

    def __init__(self, data_dir: Path, coordinator_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = CoordinatorClient(coordinator_url, secret(data_dir))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def lifecycle(self, now: float | None = None) -> Any:
        """One lifecycle pass (what the worker runs every [worker.lifecycle] interval_s)."""
        return self.run(self.client.lifecycle_step(now))

    def close(self) -> None:
        self.run(self.client.close())
        self.loop.close()
