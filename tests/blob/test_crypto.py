"""Convergent AES-256-GCM, both formats: round trip, convergence, scope separation, tamper,
reordering and truncation detection."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from blob import ChunkCipher, ChunkCorrupt, chunk_key
from blob.crypto import SEALED_SEGMENT, SEGMENT_SIZE, TAG_SIZE, enc_size, segment_count, segmented_size

MASTER = bytes(range(32))


def test_chunk_key_is_sha256_of_scope_and_hash():
    sha = hashlib.sha256(b"hello").hexdigest()
    assert chunk_key("tenant-1", sha) == hashlib.sha256(f"tenant-1:{sha}".encode()).hexdigest()
    assert chunk_key("tenant-1", sha) != chunk_key("tenant-2", sha)
    assert chunk_key("global", sha) != chunk_key("tenant-1", sha)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, 1 << 20])
def test_round_trip(size):
    cipher = ChunkCipher(MASTER)
    data = os.urandom(size)
    key = chunk_key("t", hashlib.sha256(data).hexdigest())
    ct = cipher.encrypt(key, data)
    assert len(ct) == enc_size(size) == size + TAG_SIZE
    assert cipher.decrypt(key, ct) == data


def test_matches_documented_derivation():
    """The on-disk format is fixed by docs/internals.md; recompute it independently."""
    data = b"shardbox convergent encryption"
    key = chunk_key("t1", hashlib.sha256(data).hexdigest())
    data_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"shardbox-chunk:" + key.encode()).derive(MASTER)
    import hmac
    nonce = hmac.new(data_key, b"nonce", hashlib.sha256).digest()[:12]
    assert ChunkCipher(MASTER).encrypt(key, data) == AESGCM(data_key).encrypt(nonce, data, None)


def test_convergent_same_scope_same_ciphertext():
    data = os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    a = ChunkCipher(MASTER).encrypt(chunk_key("t1", sha), data)
    b = ChunkCipher(MASTER).encrypt(chunk_key("t1", sha), data)
    assert a == b


def test_other_scope_or_master_key_gives_other_ciphertext():
    data = os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    base = ChunkCipher(MASTER).encrypt(chunk_key("t1", sha), data)
    assert ChunkCipher(MASTER).encrypt(chunk_key("t2", sha), data) != base
    assert ChunkCipher(bytes(32)).encrypt(chunk_key("t1", sha), data) != base


def test_encrypt_into_reused_buffer_matches_encrypt():
    cipher = ChunkCipher(MASTER)
    buf = bytearray(4096 + TAG_SIZE)
    for size in (4096, 100, 0):
        data = os.urandom(size)
        key = chunk_key("t", hashlib.sha256(data).hexdigest())
        view = cipher.encrypt_into(key, memoryview(data), buf)
        assert bytes(view) == cipher.encrypt(key, data)


def test_tampered_or_misfiled_ciphertext_is_refused():
    cipher = ChunkCipher(MASTER)
    data = os.urandom(5000)
    key = chunk_key("t", hashlib.sha256(data).hexdigest())
    ct = bytearray(cipher.encrypt(key, data))
    ct[1234] ^= 0x01
    with pytest.raises(ChunkCorrupt):
        cipher.decrypt(key, bytes(ct))
    ct[1234] ^= 0x01
    with pytest.raises(ChunkCorrupt):
        cipher.decrypt(chunk_key("other", hashlib.sha256(data).hexdigest()), bytes(ct))
    with pytest.raises(ChunkCorrupt):
        cipher.decrypt(key, b"short")


def test_master_key_must_be_32_bytes():
    with pytest.raises(ValueError):
        ChunkCipher(b"too short")


# -- format 2: segments ---------------------------------------------------------------------------

SEG_SIZES = [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 17, 8 << 20]


def _sealed(size: int, scope: str = "t") -> tuple[bytes, str, bytes]:
    data = os.urandom(size)
    key = chunk_key(scope, hashlib.sha256(data).hexdigest())
    sealing = ChunkCipher(MASTER).segments(key, size)
    out = bytearray(sealing.enc_size)
    sealing.seal_into(data, out)
    return data, key, bytes(out)


@pytest.mark.parametrize("size", SEG_SIZES)
def test_segments_round_trip_whole_and_in_parts(size):
    data, key, sealed = _sealed(size)
    sealing = ChunkCipher(MASTER).segments(key, size)
    assert len(sealed) == segmented_size(size) == size + TAG_SIZE * segment_count(size)
    assert sealing.open(sealed) == data
    for first in range(sealing.count):
        for last in range(first, min(sealing.count, first + 3)):
            start, end = sealing.sealed_span(first, last)
            expected = data[first * SEGMENT_SIZE : (last + 1) * SEGMENT_SIZE]
            assert sealing.open(sealed[start:end], first) == expected


def test_segments_match_documented_derivation():
    """Format 2 as docs and blob/crypto.py fix it, recomputed independently."""
    import hmac
    import struct

    data = os.urandom(SEGMENT_SIZE + 10)
    key = chunk_key("t1", hashlib.sha256(data).hexdigest())
    data_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"shardbox-chunk-v2:" + key.encode()).derive(MASTER)
    prefix = hmac.new(data_key, b"segment-nonce", hashlib.sha256).digest()[:8]
    aead = AESGCM(data_key)
    expected = b"".join(
        aead.encrypt(prefix + struct.pack(">I", k), data[k * SEGMENT_SIZE : (k + 1) * SEGMENT_SIZE],
                     b"shardbox-v2" + struct.pack(">IB", k, k == 1))
        for k in range(2))
    sealing = ChunkCipher(MASTER).segments(key, len(data))
    out = bytearray(sealing.enc_size)
    assert bytes(sealing.seal_into(data, out)) == expected


def test_segments_are_convergent_and_scoped():
    data = os.urandom(3 * SEGMENT_SIZE)
    sha = hashlib.sha256(data).hexdigest()

    def seal(master: bytes, scope: str) -> bytes:
        sealing = ChunkCipher(master).segments(chunk_key(scope, sha), len(data))
        out = bytearray(sealing.enc_size)
        return bytes(sealing.seal_into(data, out))

    assert seal(MASTER, "t1") == seal(MASTER, "t1")
    assert seal(MASTER, "t2") != seal(MASTER, "t1") != seal(bytes(32), "t1")
    # format 2 never reuses format 1's key: its first segment is not format 1's first bytes
    assert seal(MASTER, "t1")[:64] != ChunkCipher(MASTER).encrypt(chunk_key("t1", sha), data)[:64]


def test_reordered_segments_are_refused():
    data, key, sealed = _sealed(3 * SEGMENT_SIZE + 5)
    sealing = ChunkCipher(MASTER).segments(key, len(data))
    one, two = sealed[:SEALED_SEGMENT], sealed[SEALED_SEGMENT : 2 * SEALED_SEGMENT]
    with pytest.raises(ChunkCorrupt, match="segment 0"):
        sealing.open(two + one + sealed[2 * SEALED_SEGMENT :])
    with pytest.raises(ChunkCorrupt, match="segment 1"):   # a segment read as another one
        sealing.open(one, 1)


def test_truncated_chunks_are_refused():
    """Cut after a whole segment, the chunk lacks its final one: the last segment left was
    sealed as not final, so read as the end of a shorter chunk it fails."""
    data, key, sealed = _sealed(3 * SEGMENT_SIZE)
    shorter = ChunkCipher(MASTER).segments(key, 2 * SEGMENT_SIZE)
    with pytest.raises(ChunkCorrupt, match="segment 1"):
        shorter.open(sealed[: 2 * SEALED_SEGMENT])
    sealing = ChunkCipher(MASTER).segments(key, len(data))
    with pytest.raises(ValueError, match="not whole segments"):
        sealing.open(sealed[:-1])
    with pytest.raises(ValueError, match="not whole segments"):
        sealing.open(sealed + sealed[:SEALED_SEGMENT])


def test_tampered_or_misfiled_segments_are_refused():
    data, key, sealed = _sealed(2 * SEGMENT_SIZE + 100)
    cipher = ChunkCipher(MASTER)
    for at in (0, SEGMENT_SIZE, SEALED_SEGMENT + 5, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[at] ^= 0x80
        with pytest.raises(ChunkCorrupt):
            cipher.segments(key, len(data)).open(bytes(bad))
    with pytest.raises(ChunkCorrupt):
        cipher.segments(chunk_key("other", hashlib.sha256(data).hexdigest()), len(data)).open(sealed)
