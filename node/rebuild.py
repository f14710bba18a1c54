"""rebuild-index: recreate the LMDB index from the volume files alone.

Every volume is scanned in full; for each shard id the valid record with the highest
seq wins (a tombstone winning keeps the shard deleted); torn tails are truncated.
The new index is built beside the old one and swapped in by rename, so an
interrupted rebuild leaves the previous index in place. Needs the store lock: the
node must not be running.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from config.settings import NodeSection
from node.index import Index, PutItem
from node.records import IndexEntry
from node.scan import ScanStats, scan_volume
from node.store import lock_data_dir
from node.volumes import VolumeSet

log = logging.getLogger("node.rebuild")

_BATCH = 10_000


def rebuild_index(section: NodeSection) -> dict:
    data_dir = Path(section.data_dir)
    lock_fd = lock_data_dir(data_dir)
    started = time.monotonic()
    try:
        tmp = data_dir / "index.rebuild"
        shutil.rmtree(tmp, ignore_errors=True)
        index = Index(tmp)
        volumes = VolumeSet(data_dir / "volumes", section.volume_size)
        totals = {"volumes": 0, "records": 0, "garbage_records": 0, "garbage_bytes": 0,
                  "skipped_bytes": 0, "truncated_bytes": 0, "bytes_scanned": 0}
        max_seq = 0
        for number in volumes.numbers():
            vol = volumes.get(number)
            assert vol is not None
            stats = ScanStats()
            batch: list[PutItem] = []
            for offset, header, sums in scan_volume(vol, 0, stats):
                entry = IndexEntry(number, offset, header.length, header.checksum, header.flags,
                                   header.seq, len(header.shard_id), None if header.tombstone else sums)
                batch.append(PutItem(header.shard_id, entry))
                if len(batch) >= _BATCH:
                    index.apply(batch)
                    batch = []
            if batch:
                index.apply(batch)
            if stats.torn_at is not None:
                totals["truncated_bytes"] += vol.file_size() - stats.torn_at
                vol.truncate(stats.torn_at)
            max_seq = max(max_seq, stats.max_seq)
            totals["volumes"] += 1
            totals["records"] += stats.records
            totals["garbage_records"] += stats.garbage
            totals["garbage_bytes"] += stats.garbage_bytes
            totals["skipped_bytes"] += stats.skipped_bytes
            totals["bytes_scanned"] += stats.bytes_scanned
        index.set_seq_ceiling(max_seq + 1)
        shards = tombstones = 0
        for _, entry in index.iter_all():
            if entry.tombstone:
                tombstones += 1
            else:
                shards += 1
        index.close()
        current = data_dir / "index"
        old = data_dir / "index.old"
        shutil.rmtree(old, ignore_errors=True)
        if current.exists():
            os.rename(current, old)
        os.rename(tmp, current)
        shutil.rmtree(old, ignore_errors=True)
        result = {**totals, "shards": shards, "tombstones": tombstones,
                  "seconds": round(time.monotonic() - started, 3)}
        log.info("rebuild_index.done", extra={"fields": result})
        return result
    finally:
        os.close(lock_fd)
