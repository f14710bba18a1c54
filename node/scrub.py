"""Scrub: re-read every stored shard at a bounded rate and report the corrupt ones.

Every shard's whole xxh3-128 is checked, and its per-block sums (what ranged reads
verify, node/blocksums.py) where it has them: a shard whose sums no longer match its
verified bytes would refuse ranged reads, so it is reported like one whose bytes rotted.
Reads go volume by volume in file order (sequential I/O) in batches of a few MiB on
the store's worker threads; after each batch the scrubber sleeps long enough to stay
under `scrub_rate_mb_s`, so a scrub never starves client traffic. A mismatch is
double-checked against the current index entry (the shard may have been overwritten
meanwhile) before it is reported.
"""

from __future__ import annotations

import asyncio
import logging
import time

import xxhash

from node.blocksums import block_sums
from node.records import IndexEntry
from node.store import ShardStore

log = logging.getLogger("node.scrub")

_BATCH_BYTES = 4 << 20


class Scrubber:
    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self.lock = asyncio.Lock()
        self.last: dict | None = None

    def _verify(self, number: int, batch: list[tuple[str, IndexEntry]]) -> tuple[int, list[str], int]:
        store = self.store
        vol = store.volumes.get(number)
        if vol is None:          # compacted away while we were scrubbing; its shards moved on
            return 0, [], 0
        checked, corrupt, nbytes = 0, [], 0
        for sid, entry in batch:
            data = vol.pread(entry.data_offset, entry.length)
            nbytes += len(data)
            checked += 1
            if (len(data) == entry.length and xxhash.xxh3_128_digest(data) == entry.checksum
                    and (entry.block_sums is None or block_sums(data) == entry.block_sums)):
                continue
            if store.index.get(sid) == entry:
                store.report_corrupt(sid, "scrub")
                corrupt.append(sid)
        return checked, corrupt, nbytes

    async def run(self) -> dict:
        async with self.lock:
            store = self.store
            rate = store.cfg.scrub_rate_mb_s * 1e6
            started = time.time()
            t0 = time.monotonic()
            checked, done_bytes = 0, 0
            corrupt: list[str] = []
            for number in store.volumes.numbers():
                entries = await store.run_io(store.index.in_volume, number)
                live = [(sid, e) for sid, e in entries if not e.tombstone]
                pos = 0
                while pos < len(live):
                    batch, size = [], 0
                    while pos < len(live) and (not batch or size < _BATCH_BYTES):
                        batch.append(live[pos])
                        size += live[pos][1].length
                        pos += 1
                    n, bad, nbytes = await store.run_io(self._verify, number, batch)
                    checked += n
                    corrupt += bad
                    done_bytes += nbytes
                    ahead = done_bytes / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            store.metrics.inc("shardbox_node_scrubbed_shards_total", checked)
            result = {"checked": checked, "corrupt": sorted(corrupt), "started": round(started, 3),
                      "finished": round(time.time(), 3)}
            self.last = {**result, "corrupt": len(corrupt)}
            log.info("scrub.done", extra={"fields": {**self.last, "bytes": done_bytes}})
            return result
