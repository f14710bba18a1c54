"""The upload protocol's fingerprint of a file: SHA-256 of each fixed-size chunk.

`content_hash` is the SHA-256 over the chunks' raw 32-byte digests, in order (the same
rule the gateway applies at init, and the web page's worker computes). Hashing reads the
file once in chunk-sized pieces; hashlib releases the GIL on buffers this large, so it
runs in a worker thread without stalling the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CHUNK_SIZE = 8 << 20


@dataclass(frozen=True)
class ChunkPlan:
    size: int
    chunk_size: int
    digests: tuple[str, ...]      # sha256 hex of each chunk, in order
    content_hash: str             # sha256 hex over the raw digests

    @property
    def count(self) -> int:
        return len(self.digests)

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk `index` in the file."""
        offset = index * self.chunk_size
        return offset, min(self.chunk_size, self.size - offset)


def content_hash(digests: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()


def chunk_count(size: int, chunk_size: int) -> int:
    """An empty file has no chunk (its content_hash is the SHA-256 of nothing)."""
    return -(-size // chunk_size)


def hash_file(path: Path, chunk_size: int = DEFAULT_CHUNK_SIZE,
              progress: Callable[[int], None] | None = None) -> ChunkPlan:
    """Blocking; memory stays at one chunk whatever the file size."""
    size = os.path.getsize(path)
    digests: list[str] = []
    total = 0
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        for _ in range(chunk_count(size, chunk_size)):
            filled = 0
            while filled < chunk_size:
                n = fh.readinto(view[filled:])
                if not n:
                    break
                filled += n
            digests.append(hashlib.sha256(view[:filled]).hexdigest())
            total += filled
            if progress is not None:
                progress(filled)
        if total != size or fh.read(1):
            raise FileChanged(f"{path} changed size while it was being read; try again when it is "
                              "complete")
    return ChunkPlan(size=size, chunk_size=chunk_size, digests=tuple(digests),
                     content_hash=content_hash(digests))


async def hash_file_async(path: Path, chunk_size: int = DEFAULT_CHUNK_SIZE,
                          progress: Callable[[int], None] | None = None) -> ChunkPlan:
    return await asyncio.to_thread(hash_file, path, chunk_size, progress)


def read_chunk(path: Path, plan: ChunkPlan, index: int) -> bytes:
    """Blocking read of one chunk, checked against its digest so a file edited since hashing
    is reported instead of uploaded under the wrong hash (the server would refuse it anyway)."""
    offset, length = plan.span(index)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        data = fh.read(length)
    if len(data) != length or hashlib.sha256(data).hexdigest() != plan.digests[index]:
        raise FileChanged(f"{path} changed since it was hashed (chunk {index}); upload it again")
    return data


class FileChanged(OSError):
    pass
