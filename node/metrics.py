"""Process counters and their Prometheus text rendering.

Counters are plain integers bumped from the event loop and from worker threads; a
lost increment under a race would only blur a statistic, and CPython's GIL makes
`+=` on a dict slot effectively atomic here, so no lock is taken on hot paths.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

_HELP = {
    "shardbox_node_puts_total": "shards written (new records appended)",
    "shardbox_node_put_dedup_total": "PUTs answered from an identical existing shard",
    "shardbox_node_put_bytes_total": "shard bytes written",
    "shardbox_node_gets_total": "shards read",
    "shardbox_node_get_bytes_total": "shard bytes sent",
    "shardbox_node_deletes_total": "shards deleted",
    "shardbox_node_fsyncs_total": "fdatasync calls on volume files",
    "shardbox_node_index_commits_total": "synced LMDB index transactions",
    "shardbox_node_commit_batches_total": "group-commit batches",
    "shardbox_node_commit_items_total": "index changes committed in batches",
    "shardbox_node_corrupt_detected_total": "checksum mismatches found by reads, scrub or compaction",
    "shardbox_node_compacted_volumes_total": "volumes rewritten by compaction",
    "shardbox_node_reclaimed_bytes_total": "bytes given back by compaction",
    "shardbox_node_scrubbed_shards_total": "shards verified by scrub",
}


class Metrics:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.responses: Counter[tuple[str, int]] = Counter()

    def inc(self, name: str, value: int = 1) -> None:
        self.counters[name] += value

    def response(self, method: str, status: int) -> None:
        self.responses[(method, status)] += 1

    def render(self, gauges: Mapping[str, float]) -> str:
        lines: list[str] = []
        for name, help_text in _HELP.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter",
                      f"{name} {self.counters.get(name, 0)}"]
        lines += ["# HELP shardbox_node_http_responses_total HTTP responses by method and status",
                  "# TYPE shardbox_node_http_responses_total counter"]
        for (method, status), count in sorted(self.responses.items()):
            lines.append(f'shardbox_node_http_responses_total{{method="{method}",status="{status}"}} {count}')
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"
