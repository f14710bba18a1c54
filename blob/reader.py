"""The read path: a byte range of an object out of its erasure-coded chunks.

Only the chunks overlapping the range are fetched. Per chunk the data shards 0..9 are
requested in parallel (each with `shard_timeout_s`); every shard a node returns is
checked against the xxh3-128 recorded at write time. A shard that errors, times out, is
missing or fails its checksum is reported to the coordinator for repair (fire and
forget) and replaced by the next parity shard, until 10 verified shards are in hand or
none are left (-> `DataUnavailable`). Then RS decode and AES-GCM decrypt on a worker
thread; a tag that does not verify also means `DataUnavailable`: wrong bytes are never
returned.

While one chunk is being sent, the next `read_ahead` chunks are already being fetched,
so the network to the nodes and the client overlap. A chunk holds its share of the
store-wide read budget from the start of its fetch until the caller has taken the next
piece (it has written this one to its client), so the plaintext held for all reads
together is bounded, however many run at once and however slowly their clients read
(measured before: 32 concurrent 32 MiB GETs peaked at 677 MiB); the fetch itself (shard
buffers, decoding) is capped apart, by the smaller fetch budget.

`read_range` is an async generator: the caller pulls the first piece before it commits to
a 200/206 (a 503 can still be answered), and must `aclose()` it (or use
`contextlib.aclosing`) if it stops early, which cancels the prefetches.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

import erasure
from blob.context import DatapathContext
from blob.crypto import ChunkCorrupt
from blob.errors import DataUnavailable
from blob.node_client import ShardError, shard_id
from blob.stats import ReadStats
from coordinator.records import ChunkRef, ObjectInfo

log = logging.getLogger("blob.reader")


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


def _fetch_order(ctx: DatapathContext, ref: ChunkRef) -> list[int]:
    """Data shards first (no decoding needed), parity next; shards known missing at write
    time and shards on nodes that recently did not answer come last."""
    placements = {p.index: p for p in ref.shards}
    missing = set(ref.missing)

    def doubtful(i: int) -> bool:
        return i in missing or ctx.is_suspect(placements[i].node_id)

    present = [i for i in range(erasure.TOTAL) if i in placements]
    return [i for i in present if not doubtful(i)] + [i for i in present if doubtful(i)]


async def fetch_chunk(ctx: DatapathContext, ref: ChunkRef, request_id: str | None = None,
                      stats: ReadStats | None = None) -> tuple[bytes, int]:
    """The verified plaintext of one chunk (or DataUnavailable) and the read-budget bytes it
    holds, which the caller releases once the plaintext has been sent."""
    if ref.inline is not None:
        return _decrypt_inline(ctx, ref), 0
    granted = await ctx.read_budget.acquire(ref.size)
    try:
        fetching = await ctx.fetch_budget.acquire(ref.size)
        try:
            return await _fetch_chunk(ctx, ref, request_id, stats), granted
        finally:
            ctx.fetch_budget.release(fetching)
    except BaseException:
        ctx.read_budget.release(granted)
        raise


def _discard(ctx: DatapathContext, task: asyncio.Task[tuple[bytes, int]]) -> None:
    """A prefetch nobody will send: cancel it, and give its budget back if it still completes."""

    def settle(done: asyncio.Task[tuple[bytes, int]]) -> None:
        if not done.cancelled() and done.exception() is None:
            ctx.read_budget.release(done.result()[1])

    task.cancel()
    task.add_done_callback(settle)


async def _fetch_chunk(ctx: DatapathContext, ref: ChunkRef, request_id: str | None,
                       stats: ReadStats | None) -> bytes:
    placements = {p.index: p for p in ref.shards}
    candidates = deque(_fetch_order(ctx, ref))
    got: dict[int, bytes] = {}
    failures: dict[int, str] = {}
    inflight: dict[asyncio.Task[bytes], int] = {}
    spares = 0     # shards requested beyond the 10 needed, because some are slow

    def launch() -> None:
        while candidates and len(got) + len(inflight) < erasure.DATA + spares:
            i = candidates.popleft()
            p = placements[i]
            task = asyncio.get_running_loop().create_task(ctx.nodes.get_shard(
                p.address, shard_id(ref.chunk_key, i), p.checksum, timeout_s=ctx.shard_timeout_s,
                request_id=request_id, stats=stats))
            inflight[task] = i

    try:
        launch()
        while len(got) < erasure.DATA and inflight:
            done, _ = await asyncio.wait(inflight, timeout=ctx.hedge_s, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                # Nothing for hedge_s: a node may be hung. Ask for spare shards rather than
                # wait for the slow ones to time out; the first 10 verified ones win.
                spares = len(inflight)
            for task in done:
                i = inflight.pop(task)
                node_id = placements[i].node_id
                try:
                    got[i] = task.result()
                    ctx.clear_suspect(node_id)
                except ShardError as exc:
                    failures[i] = exc.reason
                    if exc.unreachable:
                        ctx.mark_suspect(node_id)
                    ctx.report_shard_failure(ref.chunk_key, i, node_id, exc.reason, request_id)
            launch()
    finally:
        for task in inflight:
            task.cancel()
    if len(got) < erasure.DATA:
        raise DataUnavailable(
            f"chunk {ref.chunk_key}: only {len(got)} of {erasure.TOTAL} shards readable, "
            f"{erasure.DATA} needed",
            chunk_key=ref.chunk_key, failures=failures)
    shards: list[bytes | None] = [got.get(i) for i in range(erasure.TOTAL)]
    try:
        return await ctx.run(_decode_decrypt, ctx, ref, shards)
    except (ChunkCorrupt, erasure.TooManyErasures, ValueError) as exc:
        log.error("chunk.undecodable", extra={"fields": {
            "chunk_key": ref.chunk_key, "error": str(exc), "request_id": request_id}})
        raise DataUnavailable(f"chunk {ref.chunk_key}: {exc}", chunk_key=ref.chunk_key,
                              failures=failures) from None


def _decrypt_inline(ctx: DatapathContext, ref: ChunkRef) -> bytes:
    """A small chunk kept in the metadata: decrypting it also authenticates it (GCM tag)."""
    try:
        return _checked_plaintext(ctx, ref, base64.b64decode(ref.inline or ""))
    except (ChunkCorrupt, ValueError) as exc:
        raise DataUnavailable(f"chunk {ref.chunk_key}: {exc}", chunk_key=ref.chunk_key, failures={}) from None


def _decode_decrypt(ctx: DatapathContext, ref: ChunkRef, shards: list[bytes | None]) -> bytes:
    return _checked_plaintext(ctx, ref, erasure.decode_interleaved(shards, ref.enc_size))


def _checked_plaintext(ctx: DatapathContext, ref: ChunkRef, ciphertext: bytes) -> bytes:
    plaintext = ctx.cipher.decrypt(ref.chunk_key, ciphertext)
    if len(plaintext) != ref.size:
        raise ChunkCorrupt(f"chunk {ref.chunk_key} decrypted to {len(plaintext)} bytes, "
                           f"manifest says {ref.size}")
    return plaintext


async def read_range(ctx: DatapathContext, obj: ObjectInfo, start: int, end: int,
                     request_id: str | None = None, stats: ReadStats | None = None) -> AsyncIterator[bytes]:
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
    pending: deque[asyncio.Task[tuple[bytes, int]]] = deque()
    next_index = 0
    try:
        for _ref, lo, hi in selected:
            while next_index < len(selected) and len(pending) <= ctx.read_ahead:
                pending.append(loop.create_task(fetch_chunk(ctx, selected[next_index][0], request_id, stats)))
                next_index += 1
            # Left in `pending` while awaited: if this generator is cancelled meanwhile, the
            # finally below still gives back a grant the fetch may already hold.
            plaintext, granted = await pending[0]
            pending.popleft()
            piece = plaintext if lo == 0 and hi == len(plaintext) - 1 else plaintext[lo:hi + 1]
            # Only `piece` refers to the chunk now, and it is dropped before the next fetch
            # is awaited: a chunk whose budget is given back must not stay alive.
            del plaintext
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
