"""Convergent chunk encryption (AES-256-GCM), as docs/internals.md "Chunks, keys and shard ids" fixes it.

Why convergent: the data key and nonce derive only from the master key and the chunk key,
so the same plaintext in the same dedup scope always yields the same ciphertext. Two
gateways writing the same chunk at the same time therefore produce identical shards on
the same nodes (placement is deterministic in the chunk key) and dedup costs nothing.
Reusing a nonce is safe here because a (key, nonce) pair only ever encrypts one plaintext:
the key is derived from the plaintext's own hash.

    chunk_key = hex SHA-256 of f"{scope}:{sha256}"      (scope = tenant id or "global")
    data_key  = HKDF-SHA256(master_key, salt=None, info=b"shardbox-chunk:" + chunk_key (ASCII hex))
    nonce     = HMAC-SHA256(data_key, b"nonce")[:12]
    ciphertext = AES-256-GCM(plaintext) || 16-byte tag   ->  enc_size = size + 16
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from erasure.buffers import FreshBytes

TAG_SIZE = 16
NONCE_SIZE = 12
KEY_INFO_PREFIX = b"shardbox-chunk:"

Buffer = bytes | bytearray | memoryview


class ChunkCorrupt(Exception):
    """The ciphertext failed GCM authentication: the bytes are not what was written."""


def chunk_key(scope: str, sha256_hex: str) -> str:
    """Primary key of a chunk: hex SHA-256 of `scope:sha256` (scope = tenant id or "global")."""
    return hashlib.sha256(f"{scope}:{sha256_hex}".encode()).hexdigest()


def enc_size(size: int) -> int:
    """Bytes that get erasure coded for a chunk of `size` plaintext bytes."""
    return size + TAG_SIZE


class ChunkCipher:
    """Encrypts and decrypts chunks under one master key (named by `key_id`)."""

    def __init__(self, master_key: bytes, key_id: str = "m1") -> None:
        if len(master_key) != 32:
            raise ValueError(f"master key must be 32 bytes, got {len(master_key)}")
        self._master_key = bytes(master_key)
        self.key_id = key_id

    def _key_and_nonce(self, chunk_key_hex: str) -> tuple[AESGCM, bytes]:
        data_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None,
            info=KEY_INFO_PREFIX + chunk_key_hex.encode("ascii"),
        ).derive(self._master_key)
        nonce = hmac.new(data_key, b"nonce", hashlib.sha256).digest()[:NONCE_SIZE]
        return AESGCM(data_key), nonce

    def encrypt(self, chunk_key_hex: str, plaintext: Buffer) -> bytes:
        aead, nonce = self._key_and_nonce(chunk_key_hex)
        return aead.encrypt(nonce, plaintext, None)

    def encrypt_into(self, chunk_key_hex: str, plaintext: Buffer, out: bytearray | memoryview) -> memoryview:
        """Encrypt into a caller-owned buffer (reused across chunks); returns the used view."""
        n = len(plaintext) + TAG_SIZE
        view = memoryview(out)[:n]
        aead, nonce = self._key_and_nonce(chunk_key_hex)
        aead.encrypt_into(nonce, plaintext, None, view)
        return view

    def decrypt(self, chunk_key_hex: str, ciphertext: Buffer) -> bytes:
        """Plaintext, or ChunkCorrupt when the tag does not verify (never wrong bytes)."""
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
