"""Errors the data path raises to the S3 / product API layers (they map them to 503s)."""

from __future__ import annotations


class WriteFailed(Exception):
    """A chunk could not be made durable: fewer than `min_acks` shards were acknowledged.

    The S3 layer answers 503 (SlowDown / ServiceUnavailable); nothing was finalized, and
    the shards that did land are orphans the GC collects.
    """

    def __init__(self, message: str, chunk_key: str | None = None, acks: int = 0, needed: int = 0) -> None:
        super().__init__(message)
        self.chunk_key = chunk_key
        self.acks = acks
        self.needed = needed


class DataUnavailable(Exception):
    """A chunk cannot be read back exactly (more than 4 shards lost or corrupt).

    Raised instead of ever returning wrong bytes; the S3 layer answers 503.
    """

    def __init__(self, message: str, chunk_key: str | None = None,
                 failures: dict[int, str] | None = None) -> None:
        super().__init__(message)
        self.chunk_key = chunk_key
        self.failures = failures or {}


class ChunkMismatch(ValueError):
    """The bytes are not the chunk that was announced (their SHA-256 or length differs);
    nothing of them was written. The product API answers 400 BadDigest."""
