"""Where the 14 shards of a chunk go: weighted rendezvous hashing with failure-domain spread.

Pure functions, no I/O. Rendezvous (highest-random-weight) hashing gives every node a
pseudo-random score per chunk key, so the same node set and chunk key always give the same
answer (concurrent writers of one chunk land on the same nodes, which makes dedup free) and
adding or removing a node moves only the shards that node wins or held. Scores follow
`-weight / ln(u)` with u uniform in (0, 1), which picks a node first with probability
proportional to its weight (free space).

From the ranked list we pick greedily, preferring a node whose host holds no shard yet, then
one whose rack holds the fewest; with fewer hosts than shards, hosts are reused evenly.

With fewer nodes up than shards, every node gets one and the last indexes (parity first)
stay unplaced: the writer stores what it can, a chunk is durable at 12 acknowledged shards
and the unplaced ones are repair work (design: "missing ones go to the repair queue").
Whether that is enough to write at all is the writer's call (its `min_acks`): a chunk kept
inline in the metadata needs no node.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

SHARDS = 14


@dataclass(frozen=True)
class Candidate:
    node_id: str
    weight: float = 1.0  # e.g. free bytes; <= 0 is treated as tiny, not excluded
    host: str | None = None
    rack: str | None = None


def _unit(chunk_key: str, node_id: str) -> float:
    digest = hashlib.blake2b(f"{chunk_key}\x00{node_id}".encode(), digest_size=8).digest()
    # (n + 0.5) / 2^64 is strictly inside (0, 1), so ln() is finite and negative.
    return (int.from_bytes(digest, "big") + 0.5) / 18446744073709551616.0


def score(chunk_key: str, node: Candidate) -> float:
    weight = node.weight if node.weight > 0 else 1e-9
    return -weight / math.log(_unit(chunk_key, node.node_id))


def rank(chunk_key: str, nodes: Sequence[Candidate]) -> list[Candidate]:
    """All nodes, best first; ties broken by node id so the order is total."""
    return sorted(nodes, key=lambda n: (-score(chunk_key, n), n.node_id))


def place(chunk_key: str, nodes: Sequence[Candidate], count: int = SHARDS) -> list[Candidate]:
    """Choose up to `count` distinct nodes for chunk_key (all of them when fewer); index i of
    the result holds shard i."""
    unique = {n.node_id: n for n in nodes}
    count = min(count, len(unique))
    ranked = rank(chunk_key, list(unique.values()))
    host_load: dict[str, int] = {}
    rack_load: dict[str | None, int] = {}
    chosen: list[Candidate] = []
    remaining = ranked
    while len(chosen) < count:
        best_i = 0
        best_key: tuple[int, int] | None = None
        for i, node in enumerate(remaining):
            key = (host_load.get(_host(node), 0), rack_load.get(node.rack, 0))
            if best_key is None or key < best_key:
                best_i, best_key = i, key
                if key == (0, 0):
                    break  # cannot do better than an untouched host in an untouched rack
        node = remaining.pop(best_i)
        chosen.append(node)
        host_load[_host(node)] = host_load.get(_host(node), 0) + 1
        if node.rack is not None:
            rack_load[node.rack] = rack_load.get(node.rack, 0) + 1
    return chosen


def _host(node: Candidate) -> str:
    # A node without a host label is its own failure domain.
    return node.host if node.host is not None else f"\x00node:{node.node_id}"


def replacements(
    chunk_key: str, nodes: Sequence[Candidate], kept: Sequence[Candidate], count: int
) -> list[Candidate]:
    """Up to `count` new homes for shards of chunk_key (repair, drain, tier moves): nodes not
    among `kept` (those holding its other shards), best ranked first, preferring hosts and
    racks the kept shards do not use yet. Fewer than `count` when too few nodes qualify."""
    taken = {n.node_id for n in kept}
    host_load: dict[str, int] = {}
    rack_load: dict[str | None, int] = {}
    for node in kept:
        host_load[_host(node)] = host_load.get(_host(node), 0) + 1
        if node.rack is not None:
            rack_load[node.rack] = rack_load.get(node.rack, 0) + 1
    remaining = rank(chunk_key, [n for n in {n.node_id: n for n in nodes}.values() if n.node_id not in taken])
    chosen: list[Candidate] = []
    while remaining and len(chosen) < count:
        def load(i: int) -> tuple[int, int, int]:
            return host_load.get(_host(remaining[i]), 0), rack_load.get(remaining[i].rack, 0), i

        best = min(range(len(remaining)), key=load)
        node = remaining.pop(best)
        chosen.append(node)
        host_load[_host(node)] = host_load.get(_host(node), 0) + 1
        if node.rack is not None:
            rack_load[node.rack] = rack_load.get(node.rack, 0) + 1
    return chosen
