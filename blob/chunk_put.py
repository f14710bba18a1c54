"""One chunk with a known SHA-256 onto the nodes: the product API's chunk PUT.

The client announced each chunk's SHA-256 before sending it (the upload's plan), so the bytes
are checked before anything is written: a body that does not match costs nothing but the
hashing, and no shard of it reaches a node. A matching chunk goes through the ordinary write
path (`ChunkStore.write`: placement or dedup, encryption, erasure coding, shard PUTs, or the
inline form for a small one), so it is stored exactly like an S3 object's chunk.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from blob.store import ChunkStore
from coordinator.records import ChunkRef


class ChunkMismatch(ValueError):
    """The bytes are not the chunk that was announced (their SHA-256 or length differs)."""


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


async def put_chunk(store: ChunkStore, tenant_id: str, data: bytes | bytearray | memoryview, sha256: str,
                    *, request_id: str | None = None) -> ChunkRef:
    """Store `data` as one chunk if its SHA-256 is `sha256`; ChunkMismatch otherwise (nothing
    written). len(data) must not exceed the store's chunk size."""
    if len(data) > store.chunk_size:
        raise ChunkMismatch(f"a chunk is at most {store.chunk_size} bytes, got {len(data)}")
    actual = await asyncio.to_thread(sha256_hex, data)
    if actual != sha256:
        raise ChunkMismatch(f"the body's SHA-256 is {actual}, the upload announced {sha256}")

    async def one_piece() -> AsyncIterator[memoryview]:
        yield memoryview(data)

    result = await store.write(tenant_id, one_piece(), set(), request_id=request_id, payload_sha256=False)
    if len(result.chunks) != 1 or result.chunks[0].sha256 != sha256:  # the writer hashed it too
        raise ChunkMismatch("the stored chunk is not the announced one")
    return result.chunks[0]
