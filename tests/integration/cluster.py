"""A real `shardbox up` started as a subprocess on 127.0.0.1, for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig

from tests.integration.ops import wait_for
from tests.util import ControlledClock, free_port_block


@dataclass
class Cluster:
    data_dir: Path
    port: int
    proc: subprocess.Popen
    info: dict

    @property
    def endpoint(self) -> str:
        return self.info["endpoint"]

    def s3(self, **config) -> object:
        options = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 2}, **config}
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=self.info["access_key"], aws_secret_access_key=self.info["secret_key"],
            config=BotoConfig(**options))

    def aws_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=self.info["access_key"], AWS_SECRET_ACCESS_KEY=self.info["secret_key"],
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        return env

    def aws(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        aws_bin = str(Path(sys.executable).with_name("aws"))
        return subprocess.run([aws_bin, "--endpoint-url", self.endpoint, *args], env=self.aws_env(),
                              capture_output=True, text=True, check=check, timeout=timeout)

    def coordinator(self) -> object:
        """A CoordinatorClient of this cluster (admin calls; use it inside a running loop)."""
        from coordinator.client import CoordinatorClient
        secret = json.loads((self.data_dir / "config" / "cluster.json").read_text())["secret"]
        return CoordinatorClient(self.info["coordinator"]["address"], secret)

    def admin(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`shardbox admin --data DIR ARGS...`."""
        cmd = [sys.executable, "-m", "shardbox", "admin", "--data", str(self.data_dir), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"shardbox admin {' '.join(args)} failed: {done.stderr}")
        return done

    def advance_clock(self, clock: ControlledClock, seconds: float) -> None:
        """Move the coordinator's test clock, then wait until every node that was up has
        heartbeated by the new clock (until then its last heartbeat looks `seconds` old, the
        node down, and writes would find too few nodes)."""
        async def up() -> set[str]:
            async with self.coordinator() as api:
                return {n.node_id for n in await api.list_nodes() if n.state == "up"}

        before = asyncio.run(up())
        clock.advance(seconds)
        wait_for("the nodes to heartbeat by the moved clock", lambda: before <= asyncio.run(up()),
                 timeout=60, every=0.2)

    def node_pids(self) -> list[int]:
        return [n["pid"] for n in self.info["nodes"]]

    def kill_node(self, index: int) -> None:
        os.kill(self.info["nodes"][index]["pid"], signal.SIGKILL)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_cluster(data_dir: Path, port: int | None = None, database_url: str | None = None,
                  timeout: float = 120, args: tuple[str, ...] = (),
                  env: dict[str, str] | None = None, nodes: int | None = None,
                  pools: dict[str, int] | None = None) -> Cluster:
    """`shardbox up` with extra `args`, in `env` (e.g. a ControlledClock's) if given."""
    port = port or free_port_block(2 + (nodes or 14) + sum((pools or {}).values()))
    up_json = data_dir / "up.json"
    if up_json.exists():
        up_json.unlink()
    cmd = [sys.executable, "-m", "shardbox", "up", "--data", str(data_dir), "--port", str(port)]
    if database_url:
        cmd += ["--database-url", database_url]
    if nodes is not None:
        cmd += ["--nodes", str(nodes)]
    for name, count in (pools or {}).items():
        cmd += ["--pool", f"{name}={count}"]
    cmd += list(args)
    log = open(data_dir.parent / f"{data_dir.name}-up.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"shardbox up exited with {proc.returncode}: "
                               f"{(data_dir.parent / f'{data_dir.name}-up.log').read_text()[-3000:]}")
        if up_json.exists():
            try:
                info = json.loads(up_json.read_text())
                return Cluster(data_dir, port, proc, info)
            except json.JSONDecodeError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError("shardbox up did not write up.json in time")
