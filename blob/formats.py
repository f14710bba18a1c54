"""Storage formats of a chunk's bytes, by the id every ChunkRef carries (ChunkRef.format).

    1  the first release: one AES-256-GCM message over the chunk, shards column-interleaved
       (shard i = byte i of every 10-byte column). Read only: a read of any byte fetches,
       transposes and decrypts the whole chunk.
    2  what is written now: 64 KiB AES-256-GCM segments (blob/crypto.py), contiguous shards
       (data shard i = sealed bytes [iL, (i+1)L), erasure/stripe.py). A read of a few bytes
       fetches the sealed bytes of the segments holding them from the one or two data
       shards that hold those, and opens only those segments.

Everything that differs between the formats is decided here, so writer and reader only ask.
Chunks are never rewritten on read: a v1 chunk stays v1 until it is written again
(dedup-revived at refcount 0) or a future rewrite tool moves it. Writing format 1 is kept
for rolling upgrades (`[gateway] storage_format = 1` while gateways of the first release,
which cannot read format 2, still serve reads) and for the tests that prove v1 chunks
read back.
"""

from __future__ import annotations

import base64

import erasure
from blob.crypto import ChunkCipher, ChunkCorrupt, segmented_size
from blob.crypto import enc_size as v1_enc_size
from coordinator.records import CHUNK_FORMATS, ChunkRef

V1 = 1
V2 = 2
WRITE_FORMAT = V2       # the default of [gateway] storage_format
assert set(CHUNK_FORMATS) == {V1, V2}, "blob/formats.py must know every format the coordinator accepts"

Buffer = bytes | bytearray | memoryview


class UnknownFormat(ValueError):
    """A chunk in a storage format this release cannot read."""


def enc_size(size: int, fmt: int = WRITE_FORMAT) -> int:
    """Bytes that get erasure coded (or kept inline) for `size` plaintext bytes."""
    if fmt == V2:
        return segmented_size(size)
    if fmt == V1:
        return v1_enc_size(size)
    raise UnknownFormat(f"storage format {fmt} is unknown to this release")


def buffer_size(size: int, fmt: int = WRITE_FORMAT) -> int:
    """The writer's buffer for a chunk of `size` plaintext bytes: in format 2 its ten data
    shards (the ciphertext zero-padded to 10 L), in format 1 the ciphertext."""
    return erasure.stripe_size(segmented_size(size)) if fmt == V2 else enc_size(size, fmt)


def seal_inline(cipher: ChunkCipher, chunk_key: str, plaintext: Buffer, fmt: int = WRITE_FORMAT) -> str:
    """base64 of a small chunk's ciphertext (ChunkRef.inline)."""
    if fmt == V1:
        return base64.b64encode(cipher.encrypt(chunk_key, plaintext)).decode("ascii")
    sealing = cipher.segments(chunk_key, len(plaintext))
    out = bytearray(sealing.enc_size)
    sealing.seal_into(plaintext, out)
    return base64.b64encode(out).decode("ascii")


def encode_chunk(cipher: ChunkCipher, chunk_key: str, plaintext: Buffer, buf: bytearray,
                 fmt: int = WRITE_FORMAT) -> tuple[list[erasure.Shard], bool]:
    """Encrypt a chunk into `buf` (buffer_size bytes) and erasure code it: (14 shards,
    whether the shards are views of `buf`, which must then stay unchanged until they are sent).

    Format 2: the data shards are `buf` itself (only parity is computed); format 1: all 14
    are new (the interleave copies), so `buf` is free again at once.
    """
    if fmt == V2:
        sealed = cipher.segments(chunk_key, len(plaintext)).seal_into(plaintext, buf)
        buf[len(sealed):] = bytes(len(buf) - len(sealed))
        return erasure.encode(buf), True
    if fmt == V1:
        return erasure.encode_interleaved(cipher.encrypt_into(chunk_key, plaintext, buf)), False
    raise UnknownFormat(f"storage format {fmt} is unknown to this release")


def open_whole(cipher: ChunkCipher, ref: ChunkRef, ciphertext: Buffer) -> bytes:
    """The plaintext of a whole chunk from its `enc_size` bytes of ciphertext (a longer buffer
    is cut there: the stripe's padding), checked against the manifest's size; ChunkCorrupt
    rather than ever wrong bytes."""
    view = memoryview(ciphertext)
    if len(view) < ref.enc_size:
        raise ChunkCorrupt(f"chunk {ref.chunk_key}: {len(view)} bytes of ciphertext, "
                           f"enc_size is {ref.enc_size}")
    view = view[: ref.enc_size]
    if ref.format == V2:
        sealing = cipher.segments(ref.chunk_key, ref.size)
        if sealing.enc_size != ref.enc_size:
            raise ChunkCorrupt(f"chunk {ref.chunk_key}: enc_size {ref.enc_size} does not fit size {ref.size}")
        try:
            return sealing.open(view)
        except ValueError as exc:
            raise ChunkCorrupt(str(exc)) from None
    if ref.format == V1:
        plaintext = cipher.decrypt(ref.chunk_key, view)
        if len(plaintext) != ref.size:
            raise ChunkCorrupt(f"chunk {ref.chunk_key} decrypted to {len(plaintext)} bytes, "
                               f"manifest says {ref.size}")
        return plaintext
    raise UnknownFormat(f"chunk {ref.chunk_key} is in storage format {ref.format}, unknown to this release")


def shard_spans(shard_len: int, start: int, end: int) -> list[tuple[int, int, int]]:
    """The pieces of stripe bytes [start, end) as (data shard index, start, end) within each
    shard, in order (contiguous layout: data shard i holds stripe bytes [iL, (i+1)L))."""
    spans = []
    pos = start
    while pos < end:
        i = pos // shard_len
        hi = min(end, (i + 1) * shard_len)
        spans.append((i, pos - i * shard_len, hi - i * shard_len))
        pos = hi
    return spans
