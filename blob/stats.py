"""What one read cost in node traffic, for the request log (and the benchmarks that read it).

A ranged GET of a few bytes should cost a few segments of node traffic, not a whole
chunk: operators see that per request in the gateway's `s3.request` line
(`node_bytes_in`, `shard_gets`), and bench/s3.py reports it from there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReadStats:
    """Counters one `ChunkStore.read` call fills in as it goes (never reset by it)."""

    node_bytes_in: int = 0   # body bytes received from nodes
    shard_gets: int = 0      # shard GET requests sent (whole shards and ranges)
    ranged_chunks: int = 0   # chunks read by fetching only the segments they needed
    fallbacks: int = 0       # ranged chunk reads that fell back to the whole stripe

    def log_fields(self) -> dict[str, int]:
        return {"node_bytes_in": self.node_bytes_in, "shard_gets": self.shard_gets,
                "ranged_chunks": self.ranged_chunks, "fallbacks": self.fallbacks}
