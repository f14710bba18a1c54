"""The LMDB index: shard id -> current record, plus position -> id and the corrupt list.

Three named databases in one environment:
  shards   id -> IndexEntry (tombstones included, so deletes survive compaction)
  locs     (volume, offset) big-endian -> id, for compaction, scrub order and the
           "last indexed end" of a volume that crash recovery scans from
  corrupt  id -> b"" for shards whose bytes failed their checksum
  meta     b"seq_ceiling" -> u64: every write sequence ever handed out is below it, so
           sequences stay unique across restarts even for records that never got indexed;
           b"floor" + volume -> u64: the lowest region of that volume still being written
           when the last batch committed (recovery scans from there, see scan_from)

Writes happen in batches (`apply`), one synced LMDB transaction each, from the group
committer's single thread. Every change is conditional on the write sequence so a
slow writer can never replace a newer record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import lmdb

from node.records import IndexEntry, loc_key, unpack_loc

_FLOOR = b"floor"


@dataclass(frozen=True)
class PutItem:
    """Make `entry` the current record of `shard_id` if it is newer (a PUT or a delete)."""

    shard_id: str
    entry: IndexEntry
    require_existing: bool = False   # deletes only index a tombstone over a live shard


@dataclass(frozen=True)
class MoveItem:
    """Compaction copied a record: repoint the id if it still lives at the old place."""

    shard_id: str
    old_volume: int
    old_offset: int
    entry: IndexEntry


@dataclass(frozen=True)
class Applied:
    applied: bool
    old: IndexEntry | None


class Index:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(path), map_size=1 << 40, max_dbs=8, max_readers=1024,
                             sync=True, metasync=True, readonly=readonly, lock=True)
        self.shards = self.env.open_db(b"shards", create=not readonly)
        self.locs = self.env.open_db(b"locs", create=not readonly)
        self.corrupt = self.env.open_db(b"corrupt", create=not readonly)
        self.meta = self.env.open_db(b"meta", create=not readonly)

    def close(self) -> None:
        self.env.close()

    # -- reads -----------------------------------------------------------------------

    def get(self, shard_id: str) -> IndexEntry | None:
        key = shard_id.encode()
        with self.env.begin(db=self.shards, buffers=True) as txn:
            raw = txn.get(key)
            return None if raw is None else IndexEntry.unpack(raw, len(key))

    def iter_all(self) -> Iterator[tuple[str, IndexEntry]]:
        """Every indexed id (tombstones too), in id order."""
        with self.env.begin(db=self.shards) as txn:
            for key, raw in txn.cursor():
                yield key.decode(), IndexEntry.unpack(raw, len(key))

    def list_live(self, after: str | None, limit: int) -> tuple[list[tuple[str, IndexEntry]], str | None]:
        """Up to `limit` live shards with id > after, and the cursor for the next page."""
        out: list[tuple[str, IndexEntry]] = []
        with self.env.begin(db=self.shards) as txn:
            cur = txn.cursor()
            ok = cur.set_range(after.encode()) if after else cur.first()
            while ok:
                key = cur.key()
                if after is not None and key == after.encode():
                    ok = cur.next()
                    continue
                entry = IndexEntry.unpack(cur.value(), len(key))
                if not entry.tombstone:
                    if len(out) == limit:
                        return out, out[-1][0]
                    out.append((key.decode(), entry))
                ok = cur.next()
        return out, None

    def in_volume(self, volume: int) -> list[tuple[str, IndexEntry]]:
        """Current records stored in one volume, in file order."""
        out = []
        start = loc_key(volume, 0)
        with self.env.begin() as txn:
            cur = txn.cursor(db=self.locs)
            ok = cur.set_range(start)
            while ok:
                vol, _ = unpack_loc(cur.key())
                if vol != volume:
                    break
                key = bytes(cur.value())
                raw = txn.get(key, db=self.shards)
                if raw is not None:
                    out.append((key.decode(), IndexEntry.unpack(raw, len(key))))
                ok = cur.next()
        return out

    def last_end(self, volume: int) -> int:
        """End of the last indexed record in a volume (0 if none): recovery scans from here."""
        with self.env.begin() as txn:
            cur = txn.cursor(db=self.locs)
            ok = cur.prev() if cur.set_range(loc_key(volume + 1, 0)) else cur.last()
            if not ok:
                return 0
            vol, _ = unpack_loc(cur.key())
            if vol != volume:
                return 0
            key = bytes(cur.value())
            raw = txn.get(key, db=self.shards)
            return 0 if raw is None else IndexEntry.unpack(raw, len(key)).end

    def scan_from(self, volume: int) -> int:
        """Where crash recovery scans a volume from: the end of its last indexed record, or
        lower if a region below that was still being written at the last commit."""
        end = self.last_end(volume)
        with self.env.begin(db=self.meta) as txn:
            raw = txn.get(_FLOOR + volume.to_bytes(4, "big"))
        return end if raw is None else min(end, int.from_bytes(raw, "little"))

    def clear_floors(self) -> None:
        """After recovery nothing is being written: forget the floors of the crashed run."""
        with self.env.begin(write=True, db=self.meta) as txn:
            self._put_floors(txn, {})

    def _put_floors(self, txn: lmdb.Transaction, floors: Mapping[int, int]) -> None:
        cur = txn.cursor(db=self.meta)
        stale = []
        if cur.set_range(_FLOOR):
            for key in cur.iternext(values=False):
                if not bytes(key).startswith(_FLOOR):
                    break
                stale.append(bytes(key))
        for key in stale:
            txn.delete(key, db=self.meta)
        for volume, offset in floors.items():
            txn.put(_FLOOR + volume.to_bytes(4, "big"), offset.to_bytes(8, "little"), db=self.meta)

    def corrupt_ids(self) -> list[str]:
        with self.env.begin(db=self.corrupt) as txn:
            return [bytes(k).decode() for k in txn.cursor().iternext(keys=True, values=False)]

    # -- writes ----------------------------------------------------------------------

    def apply(
        self, items: Sequence[PutItem | MoveItem], floors: Mapping[int, int] | None = None
    ) -> list[Applied]:
        """Apply a batch in one synced transaction; each item says whether it took effect.

        `floors` (volume -> lowest offset still being written, VolumeSet.recovery_floors)
        replaces the stored recovery floors in the same transaction when given.
        """
        results: list[Applied] = []
        with self.env.begin(write=True) as txn:
            if floors is not None:
                self._put_floors(txn, floors)
            for item in items:
                key = item.shard_id.encode()
                raw = txn.get(key, db=self.shards)
                old = None if raw is None else IndexEntry.unpack(raw, len(key))
                if isinstance(item, MoveItem):
                    ok = old is not None and (old.volume, old.offset) == (item.old_volume, item.old_offset)
                elif item.require_existing:
                    ok = old is not None and not old.tombstone and old.seq < item.entry.seq
                else:
                    ok = old is None or old.seq < item.entry.seq
                if not ok:
                    results.append(Applied(False, None))
                    continue
                new = item.entry
                if old is not None:
                    txn.delete(loc_key(old.volume, old.offset), db=self.locs)
                txn.put(key, new.pack(), db=self.shards)
                txn.put(loc_key(new.volume, new.offset), key, db=self.locs)
                if not isinstance(item, MoveItem):
                    txn.delete(key, db=self.corrupt)
                results.append(Applied(True, old))
        return results

    def seq_ceiling(self) -> int:
        with self.env.begin(db=self.meta) as txn:
            raw = txn.get(b"seq_ceiling")
            return 1 if raw is None else int.from_bytes(raw, "little")

    def set_seq_ceiling(self, value: int) -> None:
        with self.env.begin(write=True, db=self.meta) as txn:
            txn.put(b"seq_ceiling", value.to_bytes(8, "little"))

    def mark_corrupt(self, shard_id: str) -> None:
        with self.env.begin(write=True, db=self.corrupt) as txn:
            txn.put(shard_id.encode(), b"")

    def drop_corrupt(self, shard_id: str) -> None:
        with self.env.begin(write=True, db=self.corrupt) as txn:
            txn.delete(shard_id.encode())
