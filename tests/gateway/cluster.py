"""A real shardbox cluster on 127.0.0.1 for tests: 1 coordinator (SQLite), 14 nodes, 1 gateway.

Every role runs as its own process started the way an operator starts it
(`python -m shardbox coordinator|node|gateway --config FILE`), with its config written to a temp
directory, so tests exercise the real wiring. Usage:

    with MiniCluster(tmp_dir) as cluster:
        s3 = cluster.boto3_client()
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from coordinator.client import CoordinatorClient
from coordinator.records import KeyInfo
from tests.util import free_ports, wait_for_port

REPO = Path(__file__).resolve().parents[2]
NODES = 14
T = TypeVar("T")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_lines(settings: dict[str, object]) -> str:
    """Extra `key = value` lines for a section (a dict value becomes an inline table)."""
    import tomli_w

    lines = []
    for key, value in settings.items():
        if isinstance(value, dict):
            inner = ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
            lines.append(f"{key} = {{{inner}}}")
        else:
            lines.append(tomli_w.dumps({key: value}).strip())
    return "".join(line + "\n" for line in lines)


class MiniCluster:
    def __init__(self, root: Path, *, chunk_size: int = 1 << 20, nodes: int = NODES,
                 database_url: str | None = None, domain: str | None = None,
                 coordinator_settings: dict[str, object] | None = None,
                 gateway_settings: dict[str, object] | None = None,
                 timeouts: dict[str, float] | None = None) -> None:
        self.root = Path(root)
        self.chunk_size = chunk_size
        self.node_count = nodes
        self.secret = base64.b64encode(os.urandom(24)).decode()
        self.master_key = base64.b64encode(os.urandom(32)).decode()
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.root / 'meta.db'}"
        self.domain = domain
        self.coordinator_settings = coordinator_settings or {}
        self.gateway_settings = gateway_settings or {}
        self.timeouts = timeouts or {}
        self.coordinator_port, self.gateway_port, *self.node_ports = free_ports(nodes + 2)
        self.procs: dict[str, subprocess.Popen] = {}
        self.admin: KeyInfo | None = None

    # ------------------------------------------------------------------ configs

    def _cluster_section(self, with_master: bool = False) -> str:
        text = f"log_level = \"info\"\n\n[cluster]\nsecret = {_toml_str(self.secret)}\n"
        if with_master:
            text += f"master_key = {_toml_str(self.master_key)}\n"
        return text

    @property
    def coordinator_url(self) -> str:
        return f"http://127.0.0.1:{self.coordinator_port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _write(self, name: str, text: str) -> Path:
        path = self.root / f"{name}.toml"
        role = next(r for r in ("coordinator", "node", "gateway") if f"\n[{r}]\n" in text)
        if self.timeouts:
            text += f"\n[{role}.timeouts]\n" + "".join(f"{k} = {v}\n" for k, v in self.timeouts.items())
        path.write_text(text)
        return path

    def _start(self, name: str, module: str, config: Path) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen([sys.executable, "-m", "shardbox", module, "--config", str(config)], cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 60.0) -> MiniCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        coord_cfg = self._write("coordinator", self._cluster_section() + (
            f"\n[coordinator]\nlisten = \"127.0.0.1:{self.coordinator_port}\"\n"
            f"database_url = {_toml_str(self.database_url)}\n"
            + _toml_lines({"node_down_after_s": 30.0, **self.coordinator_settings})))
        proc = self._start("coordinator", "coordinator", coord_cfg)
        wait_for_port(self.coordinator_port, timeout, proc)
        for i, port in enumerate(self.node_ports):
            data = self.root / f"node{i:02d}"
            data.mkdir(exist_ok=True)
            cfg = self._write(f"node{i:02d}", self._cluster_section() + (
                f"\n[node]\nid = \"n{i:02d}\"\nlisten = \"127.0.0.1:{port}\"\n"
                f"data_dir = {_toml_str(str(data))}\nvolume_size = {64 << 20}\nreserve_bytes = 0\n"
                f"coordinator = {_toml_str(self.coordinator_url)}\nheartbeat_s = 0.5\n"
                f"host = \"h{i:02d}\"\nscrub_interval_s = 0\n"))
            self._start(f"node{i:02d}", "node", cfg)
        for i, port in enumerate(self.node_ports):
            wait_for_port(port, timeout, self.procs[f"node{i:02d}"])
        self._start_gateway(timeout)
        self.admin = asyncio.run(self._bootstrap(timeout))
        return self

    def _start_gateway(self, timeout: float, **extra: object) -> None:
        gw_cfg = self._write("gateway", self._cluster_section(with_master=True) + (
            f"\n[gateway]\nlisten = \"127.0.0.1:{self.gateway_port}\"\n"
            f"coordinator = {_toml_str(self.coordinator_url)}\nchunk_size = {self.chunk_size}\n"
            + (f"domain = {_toml_str(self.domain)}\n" if self.domain else "")
            + _toml_lines({**self.gateway_settings, **extra})))
        gw = self._start("gateway", "gateway", gw_cfg)
        wait_for_port(self.gateway_port, timeout, gw)

    def restart_gateway(self, timeout: float = 60.0, **extra: object) -> None:
        """Stop the gateway and start it again with extra [gateway] settings."""
        proc = self.procs["gateway"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        self._start_gateway(timeout, **extra)

    async def _bootstrap(self, timeout: float) -> KeyInfo:
        """Wait until every node has heartbeated, then create (or fetch) the admin key."""
        async with CoordinatorClient(self.coordinator_url, self.secret) as client:
            deadline = time.monotonic() + timeout
            while True:
                nodes = await client.list_nodes()
                if sum(1 for n in nodes if n.state == "up") >= self.node_count:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(nodes)} nodes registered after {timeout}s")
                await asyncio.sleep(0.2)
            return await client.ensure_admin()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> MiniCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill_node(self, index: int) -> None:
        proc = self.procs[f"node{index:02d}"]
        proc.kill()
        proc.wait()

    def restart_node(self, index: int, timeout: float = 60.0) -> None:
        """Start a killed node again on its data and port."""
        name = f"node{index:02d}"
        proc = self._start(name, "node", self.root / f"{name}.toml")
        wait_for_port(self.node_ports[index], timeout, proc)

    def node_states(self) -> dict[str, str]:
        """node id -> "up" / "down", as the coordinator sees them."""
        return {n.node_id: n.state for n in self.admin_call(lambda c: c.list_nodes())}

    def wait_node_states(self, want: dict[str, str], timeout: float = 60.0) -> None:
        """Until the coordinator sees each named node in the given state."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.node_states()
            if all(states.get(n) == s for n, s in want.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"node states {states} never became {want}")
            time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # ------------------------------------------------------------------ clients

    def admin_call(self, fn: Callable[[CoordinatorClient], Awaitable[T]]) -> T:
        """Run one coordinator (admin) call from synchronous test code."""
        async def go() -> T:
            async with CoordinatorClient(self.coordinator_url, self.secret) as client:
                return await fn(client)
        return asyncio.run(go())

    def new_user(self, tenant: str, user: str, quota_bytes: int | None = None) -> KeyInfo:
        """A fresh tenant + user + access key (a second identity for isolation and quota tests)."""
        async def make(client: CoordinatorClient) -> KeyInfo:
            await client.create_tenant(tenant, quota_bytes)
            await client.create_user(tenant, user)
            return await client.create_key(user)
        return self.admin_call(make)

    def boto3_client(self, key: KeyInfo | None = None, **config: object):
        import boto3
        from botocore.config import Config as BotoConfig

        key = key or self.admin
        assert key is not None
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))
