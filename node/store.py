"""The shard store: volumes + index + group commit, with crash recovery at open.

Layout under `data_dir`:
    LOCK          flock'ed by the process that owns the store
    volumes/      00000001.vol, 00000002.vol, ... (append-only records, see records.py)
    index/        LMDB environment (see index.py)

Write protocol (PUT): take the body as the HTTP parser's own buffers (never joined),
up to BUFFER bytes at a time. A body that fits in one buffer (every real shard: ~840 KB
for an 8 MiB chunk) goes to the group committer as a prepared write: on the commit
thread it reserves a region (capacity check + header) in the active volume, hashes and
pwritev()s the pieces, compares with the claimed checksum, then is fdatasynced and
indexed with the rest of the batch; one thread hop in all. A larger body reserves its
region from a worker thread with the first buffer, streams the rest in the same way,
and then submits the index change. Either way the PUT is acknowledged only after the
volume sync and the LMDB commit. A PUT that fails at any step leaves at most a garbage
region, which no index entry points at and which recovery and rebuild recognise by its
checksum.

GET reads the record with one pread on a worker thread, verifies its xxh3 and hands
that same buffer to the response. A ranged GET reads only the 64 KiB blocks its range
touches and verifies each against the block sums kept in the index entry
(node/blocksums.py, computed at PUT from the verified body) before any byte is sent;
shards stored before block sums existed are read whole and checked as a whole.

Recovery at open: for each volume, scan records after the end of the last indexed one,
or from the lowest region that was still being written when the last batch committed
(regions commit out of order: a delete reserves its tombstones before the PUTs that
overtake it); records newer (by seq) than what the index says are indexed (crash between
fsync and commit), damaged tails are truncated. The result equals what rebuild-index
derives from the volumes alone.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import xxhash

from config.settings import NodeSection
from node.blocksums import BLOCK_SIZE, BlockHasher, first_bad_block
from node.commit import GroupCommitter, Prepared
from node.index import Applied, Index, MoveItem, PutItem
from node.metrics import Metrics
from node.records import EMPTY_CHECKSUM, FLAG_TOMBSTONE, IndexEntry
from node.scan import ScanStats, scan_volume
from node.volumes import Reservation, StorageFull, Volume, VolumeSet

log = logging.getLogger("node.store")

BUFFER = 1 << 20     # body bytes held per PUT at a time


class StoreError(Exception):
    """A request-level failure with the API code and status it maps to."""

    status = 500
    code = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadDigest(StoreError):
    status, code = 400, "BadDigest"


class IncompleteBody(StoreError):
    status, code = 400, "IncompleteBody"


class InsufficientStorage(StoreError):
    status, code = 507, "InsufficientStorage"


class ShardCorrupt(StoreError):
    status, code = 500, "ShardCorrupt"


class RangeNotSatisfiable(StoreError):
    status, code = 416, "InvalidRange"


class StoreLocked(Exception):
    """Another process owns this data directory."""


@dataclass(frozen=True)
class PutResult:
    shard_id: str
    length: int
    checksum: str
    written: bool     # False when an identical shard was already stored


@dataclass(frozen=True)
class ShardInfo:
    shard_id: str
    length: int
    checksum: str


class _BodyHasher:
    """A PUT body's xxh3-128 (checked against the claimed one) and its block sums, in one pass."""

    def __init__(self) -> None:
        self.whole = xxhash.xxh3_128()
        self.blocks = BlockHasher()

    def update(self, piece: bytes) -> None:
        self.whole.update(piece)
        self.blocks.update(piece)

    def check(self, claimed: bytes) -> None:
        if self.whole.digest() != claimed:
            raise BadDigest(f"body hashes to {self.whole.hexdigest()}, X-Shardbox-Content-Hash "
                            f"claimed {claimed.hex()}")


def lock_data_dir(data_dir: Path) -> int:
    """Take the exclusive store lock; the fd must stay open for as long as it is held."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreLocked(f"{data_dir} is in use by another shardbox node process") from None
    return fd


class ShardStore:
    """One node's shards. Blocking work runs on `pool` threads; index writes go through the committer."""

    def __init__(self, section: NodeSection, metrics: Metrics | None = None) -> None:
        self.cfg = section
        self.data_dir = Path(section.data_dir)
        self.metrics = metrics or Metrics()
        self._lock_fd = lock_data_dir(self.data_dir)
        self.index = Index(self.data_dir / "index")
        self.volumes = VolumeSet(self.data_dir / "volumes", section.volume_size,
                                 persist_ceiling=self.index.set_seq_ceiling)
        self.stats_lock = threading.Lock()
        self.live: dict[int, int] = {}        # volume -> bytes of records the index points at
        self.shard_count = 0
        self.corrupt: set[str] = set()
        self.writers_busy = 0
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="store-io")
        self.committer: GroupCommitter | None = None
        self.recovery: dict = {}

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> dict:
        """Recover from a crash (tail scan + truncation) and load the in-memory stats."""
        started = time.monotonic()
        recovered: list[PutItem] = []
        truncated = 0
        max_seq = 0
        for number in self.volumes.numbers():
            vol = self.volumes.get(number)
            assert vol is not None
            stats = ScanStats()
            for offset, header, sums in scan_volume(vol, self.index.scan_from(number), stats):
                entry = IndexEntry(number, offset, header.length, header.checksum, header.flags,
                                   header.seq, len(header.shard_id), None if header.tombstone else sums)
                recovered.append(PutItem(header.shard_id, entry, require_existing=header.tombstone))
            max_seq = max(max_seq, stats.max_seq)
            if stats.torn_at is not None:
                truncated += vol.file_size() - stats.torn_at
                log.warning("recovery.torn_tail", extra={"fields": {
                    "volume": number, "offset": stats.torn_at, "bytes": vol.file_size() - stats.torn_at}})
                vol.truncate(stats.torn_at)
        recovered.sort(key=lambda item: item.entry.seq)
        applied = sum(r.applied for r in self.index.apply(recovered)) if recovered else 0
        self.index.clear_floors()
        live: dict[int, int] = {}
        count = 0
        for _, entry in self.index.iter_all():
            live[entry.volume] = live.get(entry.volume, 0) + entry.record_size
            count += not entry.tombstone
            max_seq = max(max_seq, entry.seq)
        self.live, self.shard_count = live, count
        self.corrupt = set(self.index.corrupt_ids())
        self.volumes.next_seq = max(self.index.seq_ceiling(), max_seq + 1)
        self.volumes.seq_ceiling = self.volumes.next_seq
        self.recovery = {"recovered_records": applied, "truncated_bytes": truncated,
                         "seconds": round(time.monotonic() - started, 3)}
        log.info("store.open", extra={"fields": {**self.recovery, "shards": count,
                                                  "volumes": len(self.volumes.numbers())}})
        return self.recovery

    def start(self) -> None:
        """Start the group committer on the running loop."""
        delay = self.cfg.group_commit_ms / 1000.0
        self.committer = GroupCommitter(self._apply_batch, delay, lambda: self.writers_busy)
        self.committer.start()

    async def close(self) -> None:
        if self.committer is not None:
            await self.committer.close()
        self.pool.shutdown(wait=True)
        self.index.close()
        os.close(self._lock_fd)

    async def run_io(self, fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # -- capacity ------------------------------------------------------------------------

    def disk_stats(self) -> tuple[int, int]:
        """(filesystem size, filesystem bytes available to us)."""
        st = os.statvfs(self.data_dir)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def capacity_bytes(self) -> int:
        disk, _ = self.disk_stats()
        cap = self.cfg.capacity_bytes
        return disk if cap is None else min(cap, disk)

    def free_bytes(self) -> int:
        used = self.volumes.used_bytes()
        _, avail = self.disk_stats()
        by_fs = avail - self.cfg.reserve_bytes
        by_cap = self.capacity_bytes() - used
        return max(0, min(by_fs, by_cap))

    def _check_space(self, size: int) -> None:
        cap = self.cfg.capacity_bytes
        if cap is not None:
            used = self.volumes.used_bytes()
            if used + size > cap:
                raise StorageFull(f"node capacity_bytes={cap} reached ({used} bytes used, "
                                  f"{size} more needed)")
        _, avail = self.disk_stats()
        if avail - size < self.cfg.reserve_bytes:
            raise StorageFull(f"data disk has {avail} bytes free; writing {size} more would cut into "
                              f"reserve_bytes={self.cfg.reserve_bytes}")

    def garbage_bytes(self) -> int:
        with self.stats_lock:
            return sum(max(0, v.end - self.live.get(n, 0)) for n, v in list(self.volumes.volumes.items()))

    # -- group commit ------------------------------------------------------------------

    def _apply_batch(self, volumes: list[Volume], items: list[PutItem | MoveItem]) -> list[Applied]:
        """Runs on the committer thread: sync volumes, commit the index, update counters."""
        for vol in volumes:
            vol.datasync()
            self.metrics.inc("shardbox_node_fsyncs_total")
        results = self.index.apply(items, self.volumes.recovery_floors())
        self.metrics.inc("shardbox_node_index_commits_total")
        self.metrics.inc("shardbox_node_commit_batches_total")
        self.metrics.inc("shardbox_node_commit_items_total", len(items))
        with self.stats_lock:
            for item, res in zip(items, results, strict=True):
                if not res.applied:
                    continue
                new = item.entry
                self.live[new.volume] = self.live.get(new.volume, 0) + new.record_size
                old = res.old
                if old is not None:
                    self.live[old.volume] = self.live.get(old.volume, 0) - old.record_size
                if not isinstance(item, MoveItem):
                    was_live = old is not None and not old.tombstone
                    self.shard_count += int(not new.tombstone) - int(was_live)
                    self.corrupt.discard(item.shard_id)
        return results

    async def _commit(self, items: list[PutItem | MoveItem], volumes: set[Volume]) -> list[Applied]:
        assert self.committer is not None, "store not started"
        return await self.committer.submit(items, volumes)

    # -- PUT -----------------------------------------------------------------------------

    def _reserve_and_write(self, shard_id: str, length: int, checksum: bytes, first: list[bytes],
                           hasher: _BodyHasher) -> Reservation:
        try:
            res = self.volumes.reserve(shard_id, length, checksum, check_space=self._check_space)
        except StorageFull as exc:
            raise InsufficientStorage(str(exc)) from None
        try:
            self._write_pieces(res, 0, first, hasher)
        except BaseException:
            self.volumes.release(res)
            raise
        return res

    def _write_pieces(self, res: Reservation, pos: int, pieces: list[bytes], hasher: _BodyHasher) -> None:
        """Hash and write body pieces as received: one pwritev, no joining copy."""
        for piece in pieces:
            hasher.update(piece)
        try:
            res.volume.pwritev(res.data_offset + pos, pieces)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage("no space left on the data disk while writing the shard") from None
            raise

    async def put(self, shard_id: str, length: int, checksum_hex: str,
                  next_piece: Callable[[], Awaitable[bytes]]) -> PutResult:
        """Store a shard whose body arrives as pieces from `next_piece()` (b"" at the end of the body).

        Pieces are the buffers the HTTP parser produced; they are hashed and written as
        they are (never joined), up to BUFFER bytes per thread hop. A body of at most
        BUFFER bytes (an 840 KB shard) is written by the commit thread itself: one hop and
        no user-space copy in all.
        """
        claimed = bytes.fromhex(checksum_hex)
        existing = self.index.get(shard_id)
        if (existing is not None and not existing.tombstone and existing.checksum == claimed
                and existing.length == length and shard_id not in self.corrupt):
            self.metrics.inc("shardbox_node_put_dedup_total")
            return PutResult(shard_id, length, checksum_hex, written=False)

        async def gather(remaining: int) -> tuple[list[bytes], int]:
            """min(remaining, BUFFER) body bytes or a little more (one piece), as the parser's pieces."""
            want = min(remaining, BUFFER)
            pieces: list[bytes] = []
            got = 0
            while got < want:
                try:
                    piece = await next_piece()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    piece = b""
                if not piece:
                    raise IncompleteBody(f"request body ended before Content-Length={length} bytes")
                pieces.append(piece)
                got += len(piece)
            if got > remaining:      # the parser stops at Content-Length; never write past the region
                raise IncompleteBody(f"request body is longer than Content-Length={length} bytes")
            return pieces, got

        self.writers_busy += 1
        busy = True
        res: Reservation | None = None
        try:
            hasher = _BodyHasher()
            first, pos = await gather(length)
            if pos == length:
                # Whole body in hand (every shard up to BUFFER): the commit thread writes,
                # verifies and syncs it in one hop instead of a worker hop plus a commit hop.
                self.writers_busy -= 1
                busy = False
                await self._write_and_commit(shard_id, length, claimed, first)
            else:
                res = await self.run_io(self._reserve_and_write, shard_id, length, claimed, first, hasher)
                del first
                while pos < length:
                    pieces, got = await gather(length - pos)
                    await self.run_io(self._write_pieces, res, pos, pieces, hasher)
                    pos += got
                hasher.check(claimed)
                entry = IndexEntry(res.volume.number, res.offset, length, claimed, 0, res.seq, len(shard_id),
                                   hasher.blocks.digest())
                self.writers_busy -= 1
                busy = False
                await self._commit([PutItem(shard_id, entry)], {res.volume})
        finally:
            if busy:
                self.writers_busy -= 1
            if res is not None:
                self.volumes.release(res)
        self.metrics.inc("shardbox_node_puts_total")
        self.metrics.inc("shardbox_node_put_bytes_total", length)
        return PutResult(shard_id, length, checksum_hex, written=True)

    async def _write_and_commit(self, shard_id: str, length: int, claimed: bytes,
                                pieces: list[bytes]) -> None:
        """Append, verify and index a shard whose whole body is in `pieces`, all on the commit thread."""

        def prepare() -> Prepared:
            hasher = _BodyHasher()
            res = self._reserve_and_write(shard_id, length, claimed, pieces, hasher)
            try:
                hasher.check(claimed)
            except BaseException:
                self.volumes.release(res)
                raise
            entry = IndexEntry(res.volume.number, res.offset, length, claimed, 0, res.seq, len(shard_id),
                               hasher.blocks.digest())
            return Prepared([PutItem(shard_id, entry)], {res.volume}, lambda: self.volumes.release(res))

        assert self.committer is not None, "store not started"
        await self.committer.submit_prepared(prepare)

    # -- GET / HEAD --------------------------------------------------------------------

    def lookup(self, shard_id: str) -> ShardInfo | None:
        entry = self.index.get(shard_id)
        if entry is None or entry.tombstone:
            return None
        return ShardInfo(shard_id, entry.length, entry.checksum_hex)

    def _read(self, shard_id: str) -> tuple[ShardInfo, bytes] | None:
        for _ in range(5):
            entry = self.index.get(shard_id)
            if entry is None or entry.tombstone:
                return None
            vol = self.volumes.get(entry.volume)
            if vol is None:      # compaction moved it between our lookup and now: look again
                continue
            data = vol.pread(entry.data_offset, entry.length)
            if len(data) != entry.length or xxhash.xxh3_128_digest(data) != entry.checksum:
                self.report_corrupt(shard_id, "read")
                raise ShardCorrupt(f"shard {shard_id} failed its checksum on this node")
            return ShardInfo(shard_id, entry.length, entry.checksum_hex), data
        raise StoreError(f"shard {shard_id} kept moving while being read")

    async def get(self, shard_id: str) -> tuple[ShardInfo, bytes] | None:
        found = await self.run_io(self._read, shard_id)
        if found is not None:
            self.metrics.inc("shardbox_node_gets_total")
            self.metrics.inc("shardbox_node_get_bytes_total", found[0].length)
        return found

    def _read_range(self, shard_id: str, start: int, end: int) -> tuple[ShardInfo, memoryview] | None:
        """Bytes [start, end) of a shard (0 <= start < end <= length, checked by the caller
        against `lookup`), every block they touch verified first."""
        for _ in range(5):
            entry = self.index.get(shard_id)
            if entry is None or entry.tombstone:
                return None
            if end > entry.length:
                raise RangeNotSatisfiable(f"bytes {start}-{end - 1} are past the end of shard {shard_id} "
                                          f"({entry.length} bytes)")
            vol = self.volumes.get(entry.volume)
            if vol is None:      # compaction moved it between our lookup and now: look again
                continue
            info = ShardInfo(shard_id, entry.length, entry.checksum_hex)
            if entry.block_sums is None:
                # Stored before block sums existed: only the whole checksum can vouch for it.
                data = vol.pread(entry.data_offset, entry.length)
                if len(data) != entry.length or xxhash.xxh3_128_digest(data) != entry.checksum:
                    self.report_corrupt(shard_id, "read")
                    raise ShardCorrupt(f"shard {shard_id} failed its checksum on this node")
                return info, memoryview(data)[start:end]
            first = start // BLOCK_SIZE
            lo = first * BLOCK_SIZE
            hi = min(entry.length, -(-end // BLOCK_SIZE) * BLOCK_SIZE)
            data = vol.pread(entry.data_offset + lo, hi - lo)
            bad = first_bad_block(data, first, entry.block_sums) if len(data) == hi - lo else first
            if bad is not None:
                self.report_corrupt(shard_id, f"ranged read, block {bad}")
                raise ShardCorrupt(f"shard {shard_id} failed the checksum of block {bad} on this node")
            return info, memoryview(data)[start - lo : end - lo]
        raise StoreError(f"shard {shard_id} kept moving while being read")

    async def get_range(self, shard_id: str, start: int, end: int) -> tuple[ShardInfo, memoryview] | None:
        """Bytes [start, end) of a shard, verified block by block; None if there is no such shard."""
        found = await self.run_io(self._read_range, shard_id, start, end)
        if found is not None:
            self.metrics.inc("shardbox_node_ranged_gets_total")
            self.metrics.inc("shardbox_node_get_bytes_total", end - start)
        return found

    def report_corrupt(self, shard_id: str, where: str) -> None:
        """Remember a shard whose bytes failed their checksum (thread-safe)."""
        self.metrics.inc("shardbox_node_corrupt_detected_total")
        log.error("shard.corrupt", extra={"fields": {"shard": shard_id, "found_by": where}})
        if shard_id not in self.corrupt:
            self.corrupt.add(shard_id)
            self.index.mark_corrupt(shard_id)

    # -- DELETE --------------------------------------------------------------------------

    def _append_tombstones(self, ids: list[str]) -> tuple[list[PutItem], list[Reservation], list[str]]:
        items, reservations, missing = [], [], []
        try:
            for shard_id in ids:
                entry = self.index.get(shard_id)
                if entry is None or entry.tombstone:
                    missing.append(shard_id)
                    continue
                res = self.volumes.reserve(shard_id, 0, EMPTY_CHECKSUM, FLAG_TOMBSTONE)
                reservations.append(res)
                items.append(PutItem(shard_id, IndexEntry(res.volume.number, res.offset, 0, EMPTY_CHECKSUM,
                                                          FLAG_TOMBSTONE, res.seq, len(shard_id)),
                                     require_existing=True))
        except StorageFull as exc:
            for res in reservations:
                self.volumes.release(res)
            raise InsufficientStorage(str(exc)) from None
        return items, reservations, missing

    async def delete(self, ids: list[str]) -> tuple[list[str], list[str]]:
        """Tombstone shards; returns (deleted, missing)."""
        unique = list(dict.fromkeys(ids))
        items, reservations, missing = await self.run_io(self._append_tombstones, unique)
        deleted: list[str] = []
        try:
            if items:
                results = await self._commit(items, {r.volume for r in reservations})
                for item, res in zip(items, results, strict=True):
                    (deleted if res.applied else missing).append(item.shard_id)
        finally:
            for res in reservations:
                self.volumes.release(res)
        self.metrics.inc("shardbox_node_deletes_total", len(deleted))
        return deleted, missing

    # -- listing / health --------------------------------------------------------------

    def list_shards(self, after: str | None, limit: int) -> tuple[list[ShardInfo], str | None]:
        rows, nxt = self.index.list_live(after, limit)
        return [ShardInfo(sid, e.length, e.checksum_hex) for sid, e in rows], nxt

    def health(self, last_scrub: dict | None) -> dict:
        used = self.volumes.used_bytes()
        sec = self.cfg
        corrupt = sorted(self.corrupt)
        return {
            "node_id": sec.id, "pool": sec.pool, "storage_class": sec.tier(),
            "host": sec.host, "rack": sec.rack,
            "capacity_bytes": self.capacity_bytes(), "used_bytes": used, "free_bytes": self.free_bytes(),
            "shard_count": self.shard_count, "volumes": len(self.volumes.numbers()),
            "garbage_bytes": self.garbage_bytes(), "last_scrub": last_scrub,
            "fsyncs": self.metrics.counters.get("shardbox_node_fsyncs_total", 0),
            "index_commits": self.metrics.counters.get("shardbox_node_index_commits_total", 0),
            "corrupt_count": len(corrupt), "corrupt": corrupt[:1000],
        }
