"""Convergent AES-256-GCM: round trip, convergence, scope separation, tamper detection."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from blob import ChunkCipher, ChunkCorrupt, chunk_key
from blob.crypto import TAG_SIZE, enc_size

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
