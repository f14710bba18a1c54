"""Convergent chunk encryption (AES-256-GCM), as docs/internals.md "Chunks, keys and shard ids" fixes it.

Why convergent: the data key and nonces derive only from the master key and the chunk key,
so the same plaintext in the same dedup scope always yields the same ciphertext. Two
gateways writing the same chunk at the same time therefore produce identical shards on
the same nodes (placement is deterministic in the chunk key) and dedup costs nothing.
Reusing nonces across writes is safe here because a (key, nonce) pair only ever encrypts one
plaintext: the key is derived from the plaintext's own hash.

    chunk_key = hex SHA-256 of f"{scope}:{sha256}"      (scope = tenant id or "global")

Format 2 (what is written): the chunk is sealed in independent segments of SEGMENT_SIZE
plaintext bytes (the last one shorter; an empty chunk is one empty segment), so a read of a
few bytes decrypts and authenticates one segment, not the chunk (as MinIO's DARE format):

    data_key  = HKDF-SHA256(master_key, salt=None, info=b"shardbox-chunk-v2:" + chunk_key)
    nonce_k   = HMAC-SHA256(data_key, b"segment-nonce")[:8] || k as 4 bytes big endian
    aad_k     = b"shardbox-v2" || k as 4 bytes big endian || (1 if k is the last segment else 0)
    segment_k = AES-256-GCM(plaintext bytes [k S, (k+1) S)) || 16-byte tag
    ciphertext = segment_0 || segment_1 || ...   ->  enc_size = size + 16 x segment_count(size)

The index in nonce and AAD pins every segment to its place (segments swapped on disk fail),
the final flag pins the end (a ciphertext cut after a whole segment fails: the reader knows
from the manifest's size which segment must carry the flag).

Format 1 (chunks of the first release, read only): one GCM message.

    data_key  = HKDF-SHA256(master_key, salt=None, info=b"shardbox-chunk:" + chunk_key)
    nonce     = HMAC-SHA256(data_key, b"nonce")[:12]
    ciphertext = AES-256-GCM(plaintext) || 16-byte tag   ->  enc_size = size + 16
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from erasure.buffers import FreshBytes

TAG_SIZE = 16
NONCE_SIZE = 12
KEY_INFO_PREFIX = b"shardbox-chunk:"
SEGMENT_KEY_INFO_PREFIX = b"shardbox-chunk-v2:"
SEGMENT_SIZE = 64 << 10                      # plaintext bytes per segment
SEALED_SEGMENT = SEGMENT_SIZE + TAG_SIZE     # ciphertext bytes per (full) segment
_AAD = struct.Struct(">11sIB")

Buffer = bytes | bytearray | memoryview


class ChunkCorrupt(Exception):
    """The ciphertext failed GCM authentication: the bytes are not what was written."""


def chunk_key(scope: str, sha256_hex: str) -> str:
    """Primary key of a chunk: hex SHA-256 of `scope:sha256` (scope = tenant id or "global")."""
    return hashlib.sha256(f"{scope}:{sha256_hex}".encode()).hexdigest()


def enc_size(size: int) -> int:
    """Format 1: bytes that get erasure coded for a chunk of `size` plaintext bytes."""
    return size + TAG_SIZE


def segment_count(size: int) -> int:
    """Format 2: segments of a chunk of `size` plaintext bytes (an empty chunk has one)."""
    return max(1, -(-size // SEGMENT_SIZE))


def segmented_size(size: int) -> int:
    """Format 2: bytes that get erasure coded for a chunk of `size` plaintext bytes."""
    return size + TAG_SIZE * segment_count(size)


def _view(data: Buffer) -> memoryview:
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class ChunkCipher:
    """Encrypts and decrypts chunks under one master key (named by `key_id`)."""

    def __init__(self, master_key: bytes, key_id: str = "m1") -> None:
        if len(master_key) != 32:
            raise ValueError(f"master key must be 32 bytes, got {len(master_key)}")
        self._master_key = bytes(master_key)
        self.key_id = key_id

    def _data_key(self, prefix: bytes, chunk_key_hex: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None,
            info=prefix + chunk_key_hex.encode("ascii"),
        ).derive(self._master_key)

    # -- format 2 --------------------------------------------------------------------------

    def segments(self, chunk_key_hex: str, size: int) -> SegmentedChunk:
        """The format-2 sealing of one chunk of `size` plaintext bytes."""
        data_key = self._data_key(SEGMENT_KEY_INFO_PREFIX, chunk_key_hex)
        prefix = hmac.new(data_key, b"segment-nonce", hashlib.sha256).digest()[:8]
        return SegmentedChunk(chunk_key_hex, AESGCM(data_key), prefix, size)

    # -- format 1 --------------------------------------------------------------------------

    def _key_and_nonce(self, chunk_key_hex: str) -> tuple[AESGCM, bytes]:
        data_key = self._data_key(KEY_INFO_PREFIX, chunk_key_hex)
        nonce = hmac.new(data_key, b"nonce", hashlib.sha256).digest()[:NONCE_SIZE]
        return AESGCM(data_key), nonce

    def encrypt(self, chunk_key_hex: str, plaintext: Buffer) -> bytes:
        """Format 1 (kept for tests and tools that write v1 chunks)."""
        aead, nonce = self._key_and_nonce(chunk_key_hex)
        return aead.encrypt(nonce, plaintext, None)

    def encrypt_into(self, chunk_key_hex: str, plaintext: Buffer, out: bytearray | memoryview) -> memoryview:
        """Format 1 into a caller-owned buffer; returns the used view."""
        n = len(plaintext) + TAG_SIZE
        view = memoryview(out)[:n]
        aead, nonce = self._key_and_nonce(chunk_key_hex)
        aead.encrypt_into(nonce, plaintext, None, view)
        return view

    def decrypt(self, chunk_key_hex: str, ciphertext: Buffer) -> bytes:
        """Format 1: plaintext, or ChunkCorrupt when the tag does not verify (never wrong bytes)."""
        if len(ciphertext) < TAG_SIZE:
            raise ChunkCorrupt(f"ciphertext of {len(ciphertext)} bytes is shorter than the GCM tag")
        aead, nonce = self._key_and_nonce(chunk_key_hex)
        # Into a fresh bytes object: `aead.decrypt` zero-fills its result before decrypting
        # into it, a needless extra pass over every chunk read.
        out = FreshBytes(len(ciphertext) - TAG_SIZE)
        try:
            aead.decrypt_into(nonce, ciphertext, None, out.view)
        except InvalidTag:
            raise ChunkCorrupt(f"chunk {chunk_key_hex} failed authentication") from None
        return out.value


class SegmentedChunk:
    """Key, nonces and segment geometry of one format-2 chunk; see the module docstring."""

    def __init__(self, chunk_key_hex: str, aead: AESGCM, prefix: bytes, size: int) -> None:
        self.chunk_key = chunk_key_hex
        self.size = size
        self.count = segment_count(size)
        self.enc_size = segmented_size(size)
        self._aead = aead
        self._prefix = prefix

    def plain_length(self, k: int) -> int:
        return min(SEGMENT_SIZE, self.size - k * SEGMENT_SIZE)

    def segments_of(self, first_byte: int, last_byte: int) -> tuple[int, int]:
        """(first, last) segment holding plaintext bytes first_byte..last_byte (inclusive)."""
        if not 0 <= first_byte <= last_byte < max(1, self.size):
            raise ValueError(f"bytes {first_byte}-{last_byte} are not inside a chunk of {self.size}")
        return first_byte // SEGMENT_SIZE, last_byte // SEGMENT_SIZE

    def sealed_span(self, first: int, last: int) -> tuple[int, int]:
        """Ciphertext bytes [start, end) of segments first..last."""
        return first * SEALED_SEGMENT, min(self.enc_size, (last + 1) * SEALED_SEGMENT)

    def _nonce_aad(self, k: int) -> tuple[bytes, bytes]:
        return self._prefix + k.to_bytes(4, "big"), _AAD.pack(b"shardbox-v2", k, k == self.count - 1)

    def seal_into(self, plaintext: Buffer, out: bytearray | memoryview) -> memoryview:
        """Seal the whole chunk into `out` (at least enc_size bytes); returns the used view."""
        src, dst = _view(plaintext), memoryview(out)
        if len(src) != self.size:
            raise ValueError(f"plaintext is {len(src)} bytes, the chunk {self.size}")
        for k in range(self.count):
            lo = k * SEGMENT_SIZE
            n = self.plain_length(k)
            nonce, aad = self._nonce_aad(k)
            at = k * SEALED_SEGMENT
            self._aead.encrypt_into(nonce, src[lo : lo + n], aad, dst[at : at + n + TAG_SIZE])
        return dst[: self.enc_size]

    def open_into(self, sealed: Buffer, first: int, out: bytearray | memoryview) -> int:
        """Open the whole segments first, first + 1, ... that `sealed` holds, in order, into
        `out`; returns the plaintext bytes written. ChunkCorrupt if any segment fails
        authentication (never wrong bytes); ValueError if `sealed` is not whole segments."""
        src, dst = _view(sealed), memoryview(out)
        k, at, written = first, 0, 0
        while at < len(src) or k == first:
            n = self.plain_length(k) if 0 <= k < self.count else -1
            if n < 0 or at + n + TAG_SIZE > len(src):
                raise ValueError(f"{len(src)} sealed bytes from segment {first} are not whole segments "
                                 f"of a chunk of {self.size} bytes")
            nonce, aad = self._nonce_aad(k)
            try:
                self._aead.decrypt_into(nonce, src[at : at + n + TAG_SIZE], aad, dst[written : written + n])
            except InvalidTag:
                raise ChunkCorrupt(f"chunk {self.chunk_key}: segment {k} failed authentication") from None
            at += n + TAG_SIZE
            written += n
            k += 1
        return written

    def open(self, sealed: Buffer, first: int = 0) -> bytes:
        """The plaintext of the whole segments `sealed` holds, from segment `first` on."""
        src = _view(sealed)
        whole = len(src) // SEALED_SEGMENT
        plain = len(src) - TAG_SIZE * (whole + (len(src) % SEALED_SEGMENT > 0))
        out = FreshBytes(max(0, plain))
        written = self.open_into(src, first, out.view)
        assert written == plain
        return out.value
