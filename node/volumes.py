"""Append-only volume files and space reservation.

Writers never share a file position: `VolumeSet.reserve` hands each record its own
region at the end of the active volume and writes the record header there under a
lock, then the writer streams its data into the region with `pwrite` from a worker
thread. Concurrent PUTs therefore write in parallel, and because every region starts
with a header written before any later region exists, one `fdatasync` of the file
covers every region reserved before it (the basis of group commit).

A Volume closes its descriptor only when the last reference goes away, so a reader
that looked a shard up just before compaction unlinked the volume still reads the
old (identical) bytes.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node.records import HEADER_SIZE, encode_header

SUFFIX = ".vol"
IOV_BATCH = 512         # iovecs per pwritev call (Linux IOV_MAX is 1024)


class StorageFull(Exception):
    """The write would exceed capacity or eat into the reserved free space (HTTP 507)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Volume:
    """One volume file; `end` is the reserved end (>= bytes actually written)."""

    def __init__(self, number: int, path: Path, create: bool = False) -> None:
        self.number = number
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(path, flags, 0o644)
        self.end = os.fstat(self.fd).st_size
        # Offsets of regions reserved by writers that have not finished: how many are busy
        # here (compaction waits for none) and where recovery must scan from (the lowest).
        self.pending: set[int] = set()

    @property
    def inflight(self) -> int:
        return len(self.pending)

    def __del__(self) -> None:
        fd = getattr(self, "fd", -1)
        if fd >= 0:
            os.close(fd)
            self.fd = -1

    def file_size(self) -> int:
        return os.fstat(self.fd).st_size

    def pread(self, offset: int, size: int) -> bytes:
        """Read `size` bytes (fewer only at end of file) with as few syscalls as possible."""
        data = os.pread(self.fd, size, offset)
        if len(data) == size or not data:
            return data
        parts = [data]
        got = len(data)
        while got < size:
            more = os.pread(self.fd, size - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def pwrite(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            offset += n
            view = view[n:]

    def pwritev(self, offset: int, pieces: list[bytes]) -> None:
        """Write `pieces` back to back at `offset`, IOV_MAX at a time, retrying short writes."""
        views = [memoryview(p) for p in pieces if p]
        while views:
            batch = views[:IOV_BATCH]
            n = os.pwritev(self.fd, batch, offset)
            if n <= 0:
                raise OSError(errno.EIO, f"pwritev wrote nothing at offset {offset} of {self.path}")
            offset += n
            done = 0
            for v in batch:
                if n < len(v):
                    break
                n -= len(v)
                done += 1
            rest = views[done:]
            if n:
                rest[0] = rest[0][n:]
            views = rest

    def datasync(self) -> None:
        os.fdatasync(self.fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)
        self.end = size


@dataclass
class Reservation:
    """A region of a volume owned by one writer until it commits or gives up."""

    volume: Volume
    offset: int
    seq: int
    header_size: int      # header + id bytes; data starts at offset + header_size
    length: int

    @property
    def data_offset(self) -> int:
        return self.offset + self.header_size

    @property
    def end(self) -> int:
        return self.offset + self.header_size + self.length


class VolumeSet:
    """All volume files of one node plus the write sequence counter."""

    SEQ_BLOCK = 1 << 20

    def __init__(self, directory: Path, volume_size: int,
                 persist_ceiling: Callable[[int], None] | None = None) -> None:
        self.directory = directory
        self.volume_size = volume_size
        self.lock = threading.Lock()
        self.volumes: dict[int, Volume] = {}
        self.next_seq = 1
        # Sequences are handed out below `seq_ceiling`, which is persisted (synced) before
        # use, so after a crash no new record can reuse the seq of an unindexed one.
        self.seq_ceiling = 1
        self.persist_ceiling = persist_ceiling
        directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(directory.glob("*" + SUFFIX)):
            stem = path.name[: -len(SUFFIX)]
            if stem.isdigit():
                self.volumes[int(stem)] = Volume(int(stem), path)

    # -- queries -------------------------------------------------------------------

    def get(self, number: int) -> Volume | None:
        return self.volumes.get(number)

    def numbers(self) -> list[int]:
        return sorted(self.volumes)

    def active_number(self) -> int | None:
        return max(self.volumes) if self.volumes else None

    def used_bytes(self) -> int:
        return sum(v.end for v in list(self.volumes.values()))

    def path_for(self, number: int) -> Path:
        return self.directory / f"{number:08d}{SUFFIX}"

    # -- writing -------------------------------------------------------------------

    def _new_volume(self) -> Volume:
        number = (max(self.volumes) + 1) if self.volumes else 1
        vol = Volume(number, self.path_for(number), create=True)
        _fsync_dir(self.directory)
        self.volumes[number] = vol
        return vol

    def reserve(self, shard_id: str, length: int, checksum: bytes, flags: int = 0,
                check_space: Callable[[int], None] | None = None, seq: int | None = None) -> Reservation:
        """Claim a region for one record and write its header; raise StorageFull if it does not fit.

        `check_space(record_size)` runs under the lock so concurrent reservations cannot
        overcommit. `seq` is given only by compaction, which copies records unchanged.
        """
        size = HEADER_SIZE + len(shard_id) + length
        with self.lock:
            if check_space is not None:
                check_space(size)
            vol = self.volumes[max(self.volumes)] if self.volumes else self._new_volume()
            if vol.end > 0 and vol.end + size > self.volume_size:
                vol = self._new_volume()
            if seq is None:
                if self.next_seq >= self.seq_ceiling:
                    ceiling = self.next_seq + self.SEQ_BLOCK
                    if self.persist_ceiling is not None:
                        self.persist_ceiling(ceiling)
                    self.seq_ceiling = ceiling
                seq = self.next_seq
                self.next_seq += 1
            header = encode_header(shard_id, seq, length, checksum, flags)
            offset = vol.end
            try:
                vol.pwrite(offset, header)
            except OSError as exc:
                try:
                    os.ftruncate(vol.fd, offset)
                except OSError:
                    pass
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StorageFull("no space left on the data disk") from exc
                raise
            vol.end = offset + size
            vol.pending.add(offset)
            return Reservation(vol, offset, seq, len(header), length)

    def release(self, res: Reservation) -> None:
        with self.lock:
            res.volume.pending.discard(res.offset)

    def recovery_floors(self) -> dict[int, int]:
        """Per volume, the lowest offset of a region reserved and not yet released.

        Regions are committed out of order (a delete's tombstones are reserved before the
        PUTs that overtake them), so a record below the last indexed one may still be
        unindexed; the committer persists these floors with every batch and recovery scans
        from them.
        """
        with self.lock:
            return {n: min(v.pending) for n, v in self.volumes.items() if v.pending}

    def seal(self, number: int) -> None:
        """Stop appending to volume `number` if it is the active one (before compacting it)."""
        with self.lock:
            if self.volumes and max(self.volumes) == number:
                self._new_volume()

    def remove(self, number: int) -> None:
        """Forget and unlink a volume (compaction moved everything live out of it)."""
        with self.lock:
            vol = self.volumes.pop(number)
        os.unlink(vol.path)
        _fsync_dir(self.directory)
