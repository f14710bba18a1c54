"""The read path: a byte range of an object out of its erasure-coded chunks.

Only the chunks overlapping the range are read, and of a chunk in storage format 2 only
the 64 KiB segments holding the range when that is less than the whole chunk (a 100-byte
read of a big object costs one segment from one or two nodes, ~64 KiB, not 8 MiB); any
failure there falls back to the whole stripe with parity. How a chunk's bytes are fetched
and checked is blob/fetch.py; here are the order, the read-ahead and the memory bounds.

While one chunk is being sent, the next `read_ahead` chunks are already being fetched,
so the network to the nodes and the client overlap. A chunk holds its share of the
store-wide read budget (the plaintext it decrypts) from the start of its fetch until the
caller has taken the next piece (it has written this one to its client), so the plaintext
held for all reads together is bounded, however many run at once and however slowly their
clients read (measured before: 32 concurrent 32 MiB GETs peaked at 677 MiB); the fetch
itself (shard buffers, decoding) is capped apart, by the smaller fetch budget.

`read_range` is an async generator: the caller pulls the first piece before it commits to
a 200/206 (a 503 can still be answered), and must `aclose()` it (or use
`contextlib.aclosing`) if it stops early, which cancels the prefetches. Pieces are `bytes`
for whole chunks and memoryviews of the decrypted segments for parts of chunks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from blob import formats
from blob.context import DatapathContext
from blob.crypto import SEGMENT_SIZE, ChunkCorrupt
from blob.errors import DataUnavailable
from blob.fetch import fetch_segments, fetch_stripe
from blob.stats import ReadStats
from coordinator.records import ChunkRef, ObjectInfo

Piece = bytes | memoryview


def chunks_for_range(chunks: list[ChunkRef], start: int, end: int) -> list[tuple[ChunkRef, int, int]]:
    """(chunk, first byte, last byte inclusive) within each chunk overlapping [start, end].

    Offsets are recomputed from the chunk sizes (the manifest order is authoritative),
    starting at the first chunk's offset: a ranged get_object returns only the chunks
    overlapping the range, so the list may begin mid-object.
    """
    selected = []
    offset = chunks[0].offset if chunks else 0
    for ref in chunks:
        lo, hi = offset, offset + ref.size - 1
        offset += ref.size
        if ref.size == 0 or hi < start:
            continue
        if lo > end:
            break
        selected.append((ref, max(start, lo) - lo, min(end, hi) - lo))
    return selected


def _piece(plaintext: bytes, lo: int, hi: int) -> Piece:
    """Bytes lo..hi of a decrypted run, without copying when that is all of it."""
    return plaintext if lo == 0 and hi == len(plaintext) - 1 else memoryview(plaintext)[lo : hi + 1]


async def fetch_chunk(ctx: DatapathContext, ref: ChunkRef, lo: int, hi: int, request_id: str | None = None,
                      stats: ReadStats | None = None) -> tuple[Piece, int]:
    """Verified plaintext bytes lo..hi (inclusive) of one chunk (or DataUnavailable), and
    the read-budget bytes they hold, which the caller releases once they have been sent."""
    if ref.inline is not None:
        return _piece(_open_inline(ctx, ref), lo, hi), 0
    sealing = segments = None
    if ref.format == formats.V2:
        sealing = ctx.cipher.segments(ref.chunk_key, ref.size)
        first, last = sealing.segments_of(lo, hi)
        if (first, last) != (0, sealing.count - 1):
            segments = (first, last)
    # What this read holds: the plaintext it decrypts and, while fetching, the sealed bytes.
    if segments is not None and sealing is not None:
        first, last = segments
        held = min(ref.size, (last + 1) * SEGMENT_SIZE) - first * SEGMENT_SIZE
        start, end = sealing.sealed_span(first, last)
        fetching = end - start
    else:
        held = fetching = ref.size
    granted = await ctx.read_budget.acquire(held)
    try:
        fetch_grant = await ctx.fetch_budget.acquire(fetching)
        try:
            if segments is not None and sealing is not None:
                plain = await fetch_segments(ctx, ref, sealing, *segments, request_id, stats)
                if plain is not None:
                    if stats is not None:
                        stats.ranged_chunks += 1
                    base = segments[0] * SEGMENT_SIZE
                    return _piece(plain, lo - base, hi - base), granted
            return _piece(await fetch_stripe(ctx, ref, request_id, stats), lo, hi), granted
        finally:
            ctx.fetch_budget.release(fetch_grant)
    except BaseException:
        ctx.read_budget.release(granted)
        raise


def _discard(ctx: DatapathContext, task: asyncio.Task[tuple[Piece, int]]) -> None:
    """A prefetch nobody will send: cancel it, and give its budget back if it still completes."""

    def settle(done: asyncio.Task[tuple[Piece, int]]) -> None:
        if not done.cancelled() and done.exception() is None:
            ctx.read_budget.release(done.result()[1])

    task.cancel()
    task.add_done_callback(settle)


def _open_inline(ctx: DatapathContext, ref: ChunkRef) -> bytes:
    """A small chunk kept in the metadata: opening it also authenticates it (GCM tags)."""
    try:
        return formats.open_whole(ctx.cipher, ref, base64.b64decode(ref.inline or ""))
    except (ChunkCorrupt, ValueError) as exc:
        raise DataUnavailable(f"chunk {ref.chunk_key}: {exc}", chunk_key=ref.chunk_key, failures={}) from None


async def read_range(ctx: DatapathContext, obj: ObjectInfo, start: int, end: int,
                     request_id: str | None = None, stats: ReadStats | None = None) -> AsyncIterator[Piece]:
    """Yield the bytes start..end (inclusive) of `obj`, chunk by chunk; count node traffic in `stats`."""
    if obj.size == 0 or end < start:
        return
    if start < 0 or end >= obj.size:
        raise ValueError(f"range {start}-{end} outside object of {obj.size} bytes")
    selected = chunks_for_range(obj.chunks, start, end)
    covered = sum(hi - lo + 1 for _, lo, hi in selected)
    if covered != end - start + 1:
        raise DataUnavailable(f"manifest of {obj.key!r} covers {covered} of the "
                              f"{end - start + 1} bytes asked")
    loop = asyncio.get_running_loop()
    pending: deque[asyncio.Task[tuple[Piece, int]]] = deque()
    next_index = 0
    try:
        for _ in selected:
            while next_index < len(selected) and len(pending) <= ctx.read_ahead:
                ref, lo, hi = selected[next_index]
                pending.append(loop.create_task(fetch_chunk(ctx, ref, lo, hi, request_id, stats)))
                next_index += 1
            # Left in `pending` while awaited: if this generator is cancelled meanwhile, the
            # finally below still gives back a grant the fetch may already hold.
            piece, granted = await pending[0]
            pending.popleft()
            # Only `piece` refers to the chunk now, and it is dropped before the next fetch
            # is awaited: a chunk whose budget is given back must not stay alive.
            try:
                yield piece
            finally:
                del piece
                ctx.read_budget.release(granted)
    finally:
        for task in pending:
            _discard(ctx, task)
        if pending:
            with contextlib.suppress(BaseException):
                await asyncio.gather(*pending, return_exceptions=True)
