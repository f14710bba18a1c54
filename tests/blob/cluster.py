"""Real storage node processes on 127.0.0.1 plus an in-process coordinator stand-in.

`NodeCluster` starts `python -m shardbox node --config F` for each node (each with its own data
directory and TOML config), can kill and restart single nodes, and corrupt a stored shard
in a node's volume file. `PlacementCoordinator` is a test double of the *remote*
coordinator service implementing only the CoordinatorAPI calls the data path makes
(place_chunks, report_shard_failure): deterministic placement of 14 shards over the
nodes, dedup answers for chunks the test marks as committed, and a record of failure
reports. Used by tests/blob and bench/datapath.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from blob.crypto import chunk_key
from coordinator.records import ChunkPlan, ChunkRef, ShardPlacement
from tests.util import free_ports, wait_for_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "datapath-test-cluster-secret"
MASTER_KEY = hashlib.sha256(b"datapath test master key").digest()


@dataclass
class NodeProc:
    node_id: str
    port: int
    data_dir: Path
    config: Path
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class NodeCluster:
    def __init__(self, root: Path, count: int = 14, secret: str = SECRET) -> None:
        self.root = root
        self.secret = secret
        self.nodes: list[NodeProc] = []
        for i, port in enumerate(free_ports(count)):
            node_id = f"n{i:02d}"
            data_dir = root / node_id
            data_dir.mkdir(parents=True, exist_ok=True)
            config = root / f"{node_id}.toml"
            config.write_text(
                f'[cluster]\nsecret = "{secret}"\n\n'
                f'[node]\nid = "{node_id}"\nlisten = "127.0.0.1:{port}"\ndata_dir = "{data_dir}"\n'
                f"volume_size = {64 << 20}\nreserve_bytes = 0\nscrub_interval_s = 0\n"
            )
            self.nodes.append(NodeProc(node_id, port, data_dir, config, root / f"{node_id}.log"))

    def start(self, which: list[int] | None = None) -> None:
        targets = [self.nodes[i] for i in (which if which is not None else range(len(self.nodes)))]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for n in targets:
            if n.proc is not None and n.proc.poll() is None:
                continue
            with open(n.log, "ab") as log:
                cmd = [sys.executable, "-m", "shardbox", "node", "--config", str(n.config)]
                n.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        for n in targets:
            wait_for_port(n.port, timeout=120.0, proc=n.proc)  # 14 interpreters starting on a busy machine

    def kill(self, which: list[int]) -> None:
        for i in which:
            n = self.nodes[i]
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGKILL)
                n.proc.wait(timeout=10)

    def pause(self, which: list[int]) -> None:
        """SIGSTOP: the node keeps its sockets but answers nothing (a hung disk or host)."""
        for i in which:
            self.nodes[i].proc.send_signal(signal.SIGSTOP)

    def resume(self, which: list[int]) -> None:
        for i in which:
            self.nodes[i].proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
                n.proc.terminate()
        deadline = time.monotonic() + 10
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(timeout=5)

    def running(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.proc is not None and n.proc.poll() is None]

    def corrupt(self, node_index: int, shard_bytes: bytes) -> None:
        """Flip one byte of a stored shard in the node's volume file (found by its content)."""
        probe = shard_bytes[:256] if len(shard_bytes) > 256 else shard_bytes
        for vol in sorted(self.nodes[node_index].data_dir.rglob("*.vol")):
            content = vol.read_bytes()
            pos = content.find(probe)
            if pos >= 0:
                target = pos + len(shard_bytes) // 2
                with open(vol, "r+b") as f:
                    f.seek(target)
                    byte = f.read(1)
                    f.seek(target)
                    f.write(bytes([byte[0] ^ 0xFF]))
                return
        raise AssertionError(f"shard not found in the volumes of node {node_index}")


@dataclass
class FailureReport:
    chunk_key: str
    index: int
    node_id: str
    reason: str


@dataclass
class PlacementCoordinator:
    """Stand-in for the coordinator's place_chunks/report_shard_failure (see module doc)."""

    nodes: list[tuple[str, str]]                       # (node_id, address)
    scope: str | None = None                           # None: per tenant; "global": global dedup
    committed: dict[str, ChunkRef] = field(default_factory=dict)
    reports: list[FailureReport] = field(default_factory=list)
    place_calls: int = 0

    async def place_chunks(self, tenant_id: str, chunks: list[tuple[str, int]]) -> list[ChunkPlan]:
        self.place_calls += 1
        plans = []
        for sha, _size in chunks:
            key = chunk_key(self.scope or tenant_id, sha)
            if key in self.committed:
                plans.append(ChunkPlan(sha256=sha, chunk_key=key, exists=True,
                                       shards=list(self.committed[key].shards),
                                       format=self.committed[key].format))
                continue
            start = int(key[:8], 16) % len(self.nodes)
            shards = []
            for i in range(14):
                node_id, address = self.nodes[(start + i) % len(self.nodes)]
                shards.append(ShardPlacement(index=i, node_id=node_id, address=address))
            plans.append(ChunkPlan(sha256=sha, chunk_key=key, exists=False, shards=shards))
        return plans

    async def report_shard_failure(self, chunk_key: str, index: int, node_id: str, reason: str) -> None:
        self.reports.append(FailureReport(chunk_key, index, node_id, reason))

    def commit(self, refs: list[ChunkRef]) -> None:
        """What finalize_put would do for dedup: later writes of these chunks reuse them."""
        for ref in refs:
            self.committed.setdefault(ref.chunk_key, ref)
