"""Reading records back from a volume file: crash recovery, rebuild-index, verification.

A region is classified as
  valid    header checks out and the data matches its checksum;
  garbage  header checks out but the data does not (a refused or abandoned PUT);
  torn     the header is damaged or the record runs past the end of the file.
On a damaged header the scanner looks for the next valid header (resync): if one
exists the damaged bytes are garbage, otherwise everything from the damage on is a
torn tail that the caller truncates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import xxhash

from node.blocksums import BlockHasher
from node.records import HEADER_SIZE, MAGIC, RecordHeader, decode_header
from node.volumes import Volume

_HEADER_READ = HEADER_SIZE + 200
_HASH_BLOCK = 4 << 20   # a multiple of the block-sum block
_RESYNC_BLOCK = 1 << 20


@dataclass
class ScanStats:
    records: int = 0          # valid records
    garbage: int = 0          # regions with a good header and bad data
    garbage_bytes: int = 0
    skipped_bytes: int = 0    # damaged bytes skipped by resync
    bytes_scanned: int = 0
    torn_at: int | None = None   # truncate the file here (None: no torn tail)
    max_seq: int = 0


def verified_block_sums(vol: Volume, data_offset: int, length: int, checksum: bytes) -> bytes | None:
    """Hash a record's data in bounded blocks: its block sums if it matches its checksum, else None."""
    hasher = xxhash.xxh3_128()
    blocks = BlockHasher()
    pos = 0
    while pos < length:
        n = min(_HASH_BLOCK, length - pos)
        block = vol.pread(data_offset + pos, n)
        if len(block) != n:
            return None
        hasher.update(block)
        blocks.update(block)
        pos += n
    return blocks.digest() if hasher.digest() == checksum else None


def _resync(vol: Volume, start: int, size: int) -> int | None:
    """Offset of the next valid header after `start`, or None."""
    pos = start + 1
    while pos < size:
        block = vol.pread(pos, _RESYNC_BLOCK + len(MAGIC))
        idx = block.find(MAGIC)
        while idx >= 0:
            if decode_header(vol.pread(pos + idx, _HEADER_READ)) is not None:
                return pos + idx
            idx = block.find(MAGIC, idx + 1)
        pos += _RESYNC_BLOCK
    return None


def scan_volume(vol: Volume, start: int, stats: ScanStats) -> Iterator[tuple[int, RecordHeader, bytes]]:
    """Yield (offset, header, block sums of the data) of every valid record from `start` on; fill `stats`."""
    size = vol.file_size()
    pos = start
    while pos < size:
        header = decode_header(vol.pread(pos, _HEADER_READ))
        if header is None:
            nxt = _resync(vol, pos, size)
            if nxt is None:
                stats.torn_at = pos
                return
            stats.skipped_bytes += nxt - pos
            pos = nxt
            continue
        end = pos + header.record_size
        if end > size:
            stats.torn_at = pos
            return
        stats.max_seq = max(stats.max_seq, header.seq)
        stats.bytes_scanned += header.record_size
        sums = verified_block_sums(vol, pos + header.data_offset, header.length, header.checksum)
        if sums is not None:
            stats.records += 1
            yield pos, header, sums
        else:
            stats.garbage += 1
            stats.garbage_bytes += header.record_size
        pos = end
