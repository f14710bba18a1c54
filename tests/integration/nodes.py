"""Talking to storage nodes directly from tests, with the cluster credential of a `shardbox up`."""

from __future__ import annotations

import json
from pathlib import Path

import urllib3

from config.cluster_auth import body_hash, sign_headers

_pool = urllib3.PoolManager(maxsize=16)


def cluster_secret(data_dir: Path) -> str:
    return json.loads((data_dir / "config" / "cluster.json").read_text())["secret"]


def node_request(secret: str, node: dict, method: str, path: str, body: bytes = b"",
                 timeout: float = 30) -> urllib3.BaseHTTPResponse:
    """A signed request to `node` (an entry of up.json's "nodes": its id and address)."""
    headers = sign_headers(secret, method, path, body_hash(body), target=node["id"])
    return _pool.request(method, node["address"] + path, body=body or None, headers=headers, timeout=timeout)


def node_json(secret: str, node: dict, method: str, path: str, body: bytes = b"") -> dict:
    r = node_request(secret, node, method, path, body)
    assert r.status == 200, (r.status, r.data[:300])
    return json.loads(r.data)


def all_shards(secret: str, node: dict) -> list[dict]:
    out, after = [], None
    while True:
        path = "/shards?limit=10000" + (f"&after={after}" if after else "")
        page = node_json(secret, node, "GET", path)
        out += page["shards"]
        after = page.get("next")
        if not after:
            return out


def flip_byte_on_disk(node: dict, shard: bytes) -> None:
    """Bit rot under a node: flip one byte in the middle of `shard` where it lies in the
    node's volume files (`node`: an entry of up.json's "nodes"), behind its index's back."""
    for vol in sorted(Path(node["data_dir"]).rglob("*.vol")):
        at = vol.read_bytes().find(shard)
        if at >= 0:
            with open(vol, "r+b") as f:
                f.seek(at + len(shard) // 2)
                byte = f.read(1)
                f.seek(at + len(shard) // 2)
                f.write(bytes([byte[0] ^ 0xFF]))
            return
    raise AssertionError(f"the shard's bytes are in none of {node['id']}'s volume files")
