"""On-disk record format and index entries.

Every shard (and every delete) is appended to a volume file as one self-describing
record, so the LMDB index is only a cache of what the volumes say: `rebuild-index`
and crash recovery read records back with nothing but the volume bytes.

    header (48 bytes, little endian)
      magic     4s   b"SBX\\x01"
      flags     B    bit 0 = tombstone (a delete; no data follows)
      id_len    B    length of the shard id (1..200)
      reserved  H    0
      seq       Q    store-wide write sequence; the highest seq of an id wins
      length    Q    data length in bytes
      checksum  16s  xxh3-128 digest of the data (what the PUT claimed)
      hcheck    Q    xxh3-64 of the 40 bytes above plus the id bytes
    id        id_len bytes (ASCII)
    data      length bytes

The header is written when space is reserved, before the data streams in, so the
extent of every reserved region is known even if its writer dies half way: a region
whose data does not match its checksum is garbage, a header that does not check out
marks a torn tail.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import xxhash

from node.blocksums import BLOCK_SHIFT

MAGIC = b"SBX\x01"
FLAG_TOMBSTONE = 1

_HEAD = struct.Struct("<4sBBHQQ16s")
_HCHECK = struct.Struct("<Q")
HEADER_SIZE = _HEAD.size + _HCHECK.size  # 48

SHARD_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
EMPTY_CHECKSUM = xxhash.xxh3_128_digest(b"")


def valid_shard_id(shard_id: str) -> bool:
    return SHARD_ID_RE.fullmatch(shard_id) is not None


@dataclass(frozen=True)
class RecordHeader:
    """A decoded record header plus the id that follows it."""

    shard_id: str
    seq: int
    length: int
    checksum: bytes
    flags: int = 0

    @property
    def tombstone(self) -> bool:
        return bool(self.flags & FLAG_TOMBSTONE)

    @property
    def data_offset(self) -> int:
        """Offset of the data relative to the record start."""
        return HEADER_SIZE + len(self.shard_id)

    @property
    def record_size(self) -> int:
        return HEADER_SIZE + len(self.shard_id) + self.length


def encode_header(shard_id: str, seq: int, length: int, checksum: bytes, flags: int = 0) -> bytes:
    """Header plus id bytes, ready to be written at the start of a record."""
    raw_id = shard_id.encode("ascii")
    head = _HEAD.pack(MAGIC, flags, len(raw_id), 0, seq, length, checksum)
    return head + _HCHECK.pack(xxhash.xxh3_64_intdigest(head + raw_id)) + raw_id


def decode_header(buf: bytes | memoryview) -> RecordHeader | None:
    """Decode a header + id from the start of `buf`; None if it is not a valid header.

    `buf` must hold at least HEADER_SIZE + 200 bytes unless the file ends sooner.
    """
    if len(buf) < HEADER_SIZE:
        return None
    magic, flags, id_len, reserved, seq, length, checksum = _HEAD.unpack_from(buf, 0)
    if magic != MAGIC or reserved != 0 or not 1 <= id_len <= 200 or len(buf) < HEADER_SIZE + id_len:
        return None
    raw_id = bytes(buf[HEADER_SIZE:HEADER_SIZE + id_len])
    (hcheck,) = _HCHECK.unpack_from(buf, _HEAD.size)
    if hcheck != xxhash.xxh3_64_intdigest(bytes(buf[:_HEAD.size]) + raw_id):
        return None
    try:
        shard_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not valid_shard_id(shard_id):
        return None
    return RecordHeader(shard_id, seq, length, checksum, flags)


_ENTRY = struct.Struct("<IQQ16sBQ")
_LOC = struct.Struct(">IQ")


@dataclass(frozen=True)
class IndexEntry:
    """Where the current record of one shard id lives (value of the LMDB `shards` db).

    Packed: the fixed fields, then, for entries written since block sums exist, one byte
    log2(block size) and the xxh3-64 of every block of the data (node/blocksums.py).
    Entries written before have none (block_sums None): read whole and checked as before.
    """

    volume: int
    offset: int          # record start in the volume file
    length: int          # data length
    checksum: bytes      # xxh3-128 digest (16 bytes)
    flags: int
    seq: int
    id_len: int = 0      # not stored; filled from the key so data_offset can be computed
    block_sums: bytes | None = None   # 8 bytes per 64 KiB block of the data, in order

    @property
    def tombstone(self) -> bool:
        return bool(self.flags & FLAG_TOMBSTONE)

    @property
    def data_offset(self) -> int:
        return self.offset + HEADER_SIZE + self.id_len

    @property
    def record_size(self) -> int:
        return HEADER_SIZE + self.id_len + self.length

    @property
    def end(self) -> int:
        return self.offset + self.record_size

    @property
    def checksum_hex(self) -> str:
        return self.checksum.hex()

    def pack(self) -> bytes:
        fixed = _ENTRY.pack(self.volume, self.offset, self.length, self.checksum, self.flags, self.seq)
        if self.block_sums is None:
            return fixed
        return fixed + bytes((BLOCK_SHIFT,)) + self.block_sums

    @classmethod
    def unpack(cls, raw: bytes | memoryview, id_len: int) -> IndexEntry:
        raw = bytes(raw)
        volume, offset, length, checksum, flags, seq = _ENTRY.unpack_from(raw)
        sums = None
        if len(raw) > _ENTRY.size and raw[_ENTRY.size] == BLOCK_SHIFT:
            sums = raw[_ENTRY.size + 1 :]
        return cls(volume, offset, length, checksum, flags, seq, id_len, sums)


def loc_key(volume: int, offset: int) -> bytes:
    """Key of the `locs` db (volume, offset) -> id; big endian so keys sort by position."""
    return _LOC.pack(volume, offset)


def unpack_loc(key: bytes | memoryview) -> tuple[int, int]:
    return _LOC.unpack(bytes(key))
