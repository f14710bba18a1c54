"""Test helpers: a real node process on 127.0.0.1 and a tiny signed client for it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from config.cluster_auth import EMPTY_HASH, sign_headers
from tests.util import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-cluster-secret-0123456789"
NODE_ID = "n1"     # the id test nodes run with (requests are signed for it)


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class NodeClient:
    """Signs every request with the cluster credential, like the gateway does."""

    port: int
    secret: str = SECRET
    timeout: float = 30.0
    node_id: str = NODE_ID

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                sign: bool = True, content_hash: str | None = None) -> Reply:
        hdrs = dict(headers or {})
        if sign:
            hdrs.update(sign_headers(self.secret, method, path,
                                     content_hash if content_hash is not None else (xxh(body) if body
                                                                                    else EMPTY_HASH),
                                     target=self.node_id))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body if body or method in ("PUT", "POST") else None, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def put(self, shard_id: str, data: bytes) -> Reply:
        return self.request("PUT", f"/shards/{shard_id}", data)

    def get(self, shard_id: str) -> Reply:
        return self.request("GET", f"/shards/{shard_id}")

    def head(self, shard_id: str) -> Reply:
        return self.request("HEAD", f"/shards/{shard_id}")

    def delete(self, shard_id: str) -> Reply:
        return self.request("DELETE", f"/shards/{shard_id}")

    def delete_many(self, ids: list[str]) -> Reply:
        return self.request("POST", "/shards/delete", json.dumps({"ids": ids}).encode(),
                            {"Content-Type": "application/json"})

    def list(self, after: str | None = None, limit: int | None = None) -> Reply:
        qs = "&".join(f"{k}={v}" for k, v in (("after", after), ("limit", limit)) if v is not None)
        return self.request("GET", "/shards" + (f"?{qs}" if qs else ""))

    def list_all(self, page: int = 1000) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        after = None
        while True:
            doc = self.list(after, page).json()
            for row in doc["shards"]:
                out[row["id"]] = (row["length"], row["checksum"])
            if doc["next"] is None:
                return out
            after = doc["next"]

    def health(self) -> dict:
        return self.request("GET", "/health").json()

    def post(self, path: str) -> Reply:
        return self.request("POST", path, b"")


@dataclass
class NodeProcess:
    """`shardbox node --config FILE` in a temporary directory."""

    root: Path
    options: dict = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.config_path = self.root / "node.toml"
        self.log_path = self.root / "node.log"
        self.write_config()
        self.client = NodeClient(self.port, node_id=self.options.get("id", NODE_ID))

    def write_config(self) -> None:
        opts = {"id": NODE_ID, "listen": f"127.0.0.1:{self.port}", "data_dir": str(self.data_dir),
                "reserve_bytes": 0, "scrub_interval_s": 0, "group_commit_ms": 1.0, **self.options}
        lines = ["log_level = \"info\"", "", "[cluster]", f'secret = "{SECRET}"', "", "[node]"]
        for key, value in opts.items():
            lines.append(f"{key} = {json.dumps(value)}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _cmd(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "shardbox", "node", "--config", str(self.config_path), *extra]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO)}

    def start(self) -> NodeProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(self._cmd(), cwd=REPO, env=self._env(), stdout=log, stderr=log)
        log.close()
        wait_for_port(self.port, timeout=30, proc=self.proc)
        return self

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def rebuild_index(self) -> dict:
        out = subprocess.run(self._cmd("rebuild-index"), cwd=REPO, env=self._env(), capture_output=True,
                             timeout=120, check=True)
        return json.loads(out.stdout)

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def volume_files(self) -> list[Path]:
        return sorted((self.data_dir / "volumes").glob("*.vol"))

    def volume_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.volume_files())
