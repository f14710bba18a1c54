"""Getting one chunk's bytes back from the nodes: the whole stripe, or only some segments.

Whole stripe (`fetch_stripe`): the data shards 0..9 are requested in parallel (each with
`shard_timeout_s`); every shard a node returns is checked against the xxh3-128 recorded
at write time. A shard that errors, times out, is missing or fails its checksum is
reported to the coordinator for repair (fire and forget) and replaced by the next parity
shard, until 10 verified shards are in hand or none are left (-> `DataUnavailable`). When
nothing arrives for `hedge_s`, spare shards are asked for at once. In format 2 the data
shards are received straight into one stripe buffer at their offsets, so with all ten
there is nothing to decode; lost ones are computed in place from parity
(`erasure.decode_into`). Format 1 shards are joined by the interleaved decode. Then
AES-GCM opening on a worker thread; a tag that does not verify also means
`DataUnavailable`: wrong bytes are never returned.

Some segments (`fetch_segments`, format 2 only): the sealed bytes of segments first..last
lie in one or two data shards (a segment is 64 KiB, a shard of an 8 MiB chunk 820 KiB);
only those byte ranges are requested (ranged shard GETs). The manifest's whole-shard
checksum cannot vouch for part of a shard, so the checks are the node's (it verifies
every 64 KiB block it reads against its block sums before answering), the range checksum
it sends (bytes unchanged on the way) and the GCM tag of every segment opened. Anything
else than all of that within `hedge_s` (an error, a timeout, a checksum or a tag that
fails) gives None, and the caller reads the whole stripe instead, with parity.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

import erasure
from blob import formats
from blob.context import DatapathContext
from blob.crypto import ChunkCorrupt, SegmentedChunk
from blob.errors import DataUnavailable
from blob.node_client import Buffer, ShardError, shard_id
from blob.stats import ReadStats
from coordinator.records import ChunkRef
from erasure.buffers import FreshBytes

log = logging.getLogger("blob.fetch")

# Segments this small are opened on the event loop: a hop to a worker thread costs more.
INLINE_OPEN_MAX = 256 << 10


def fetch_order(ctx: DatapathContext, ref: ChunkRef) -> list[int]:
    """Data shards first (no decoding needed), parity next; shards known missing at write
    time and shards on nodes that recently did not answer come last."""
    placements = {p.index: p for p in ref.shards}
    missing = set(ref.missing)

    def doubtful(i: int) -> bool:
        return i in missing or ctx.is_suspect(placements[i].node_id)

    present = [i for i in range(erasure.TOTAL) if i in placements]
    return [i for i in present if not doubtful(i)] + [i for i in present if doubtful(i)]


async def _settle(tasks: Iterable[asyncio.Task]) -> None:
    """Cancel requests still running and wait until they are gone: none may write into a
    buffer (stripe or segments) after this returns."""
    tasks = [t for t in tasks if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def fetch_stripe(ctx: DatapathContext, ref: ChunkRef, request_id: str | None,
                       stats: ReadStats | None) -> bytes:
    """The verified plaintext of a whole chunk, from any 10 of its 14 shards."""
    placements = {p.index: p for p in ref.shards}
    candidates = deque(fetch_order(ctx, ref))
    n = erasure.shard_size(ref.enc_size)
    contiguous = ref.format == formats.V2
    stripe = FreshBytes(erasure.DATA * n) if contiguous else None
    got: dict[int, Buffer] = {}
    failures: dict[int, str] = {}
    inflight: dict[asyncio.Task[Buffer], int] = {}
    spares = 0     # shards requested beyond the 10 needed, because some are slow

    def launch() -> None:
        while candidates and len(got) + len(inflight) < erasure.DATA + spares:
            i = candidates.popleft()
            p = placements[i]
            into = None
            if stripe is not None and i < erasure.DATA:
                into = memoryview(stripe.view[i * n : (i + 1) * n])
            task = asyncio.get_running_loop().create_task(ctx.nodes.get_shard(
                p.address, shard_id(ref.chunk_key, i), p.checksum, node_id=p.node_id,
                timeout_s=ctx.shard_timeout_s, request_id=request_id, stats=stats, into=into))
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
        await _settle(inflight)
    if len(got) < erasure.DATA:
        raise DataUnavailable(
            f"chunk {ref.chunk_key}: only {len(got)} of {erasure.TOTAL} shards readable, "
            f"{erasure.DATA} needed",
            chunk_key=ref.chunk_key, failures=failures)
    try:
        return await ctx.run(_decode_open, ctx, ref, stripe, got)
    except (ChunkCorrupt, erasure.TooManyErasures, ValueError) as exc:
        log.error("chunk.undecodable", extra={"fields": {
            "chunk_key": ref.chunk_key, "error": str(exc), "request_id": request_id}})
        raise DataUnavailable(f"chunk {ref.chunk_key}: {exc}", chunk_key=ref.chunk_key,
                              failures=failures) from None


def _decode_open(ctx: DatapathContext, ref: ChunkRef, stripe: FreshBytes | None,
                 got: dict[int, Buffer]) -> bytes:
    if stripe is not None:
        lost = [i for i in range(erasure.DATA) if i not in got]
        if lost:
            erasure.decode_into(stripe.view, lost, {i: s for i, s in got.items() if i >= erasure.DATA})
        return formats.open_whole(ctx.cipher, ref, stripe.view)
    shards = [got.get(i) for i in range(erasure.TOTAL)]
    return formats.open_whole(ctx.cipher, ref, erasure.decode_interleaved(shards, ref.enc_size))


async def fetch_segments(ctx: DatapathContext, ref: ChunkRef, sealing: SegmentedChunk, first: int, last: int,
                         request_id: str | None, stats: ReadStats | None) -> bytes | None:
    """The plaintext of segments first..last of a format-2 chunk, fetched as byte ranges of
    the data shards holding them; None when that did not work out (read the whole stripe)."""
    placements = {p.index: p for p in ref.shards}
    start, end = sealing.sealed_span(first, last)
    spans = formats.shard_spans(erasure.shard_size(ref.enc_size), start, end)
    missing = set(ref.missing)
    if any(i not in placements or i in missing or ctx.is_suspect(placements[i].node_id) for i, _, _ in spans):
        return None      # a data shard we need is known to be away: the stripe read uses parity
    sealed = FreshBytes(end - start)
    loop = asyncio.get_running_loop()
    tasks: dict[asyncio.Task[memoryview], int] = {}
    at = 0
    for i, lo, hi in spans:
        p = placements[i]
        tasks[loop.create_task(ctx.nodes.get_shard_range(
            p.address, shard_id(ref.chunk_key, i), lo, hi, into=memoryview(sealed.view[at : at + hi - lo]),
            node_id=p.node_id, timeout_s=ctx.shard_timeout_s, request_id=request_id, stats=stats))] = i
        at += hi - lo
    try:
        done, slow = await asyncio.wait(tasks, timeout=ctx.hedge_s)
    finally:
        await _settle(tasks)
    ok = not slow
    for task in done:
        exc = task.exception()
        if exc is None:
            continue
        ok = False
        i = tasks[task]
        node_id = placements[i].node_id
        reason = exc.reason if isinstance(exc, ShardError) else f"error ({type(exc).__name__})"
        if isinstance(exc, ShardError) and exc.unreachable:
            ctx.mark_suspect(node_id)
        ctx.report_shard_failure(ref.chunk_key, i, node_id, f"ranged read: {reason}", request_id)
    if ok:
        try:
            if end - start <= INLINE_OPEN_MAX:
                return sealing.open(sealed.view, first)
            return await ctx.run(sealing.open, sealed.view, first)
        except (ChunkCorrupt, ValueError) as exc:
            # Verified by the node block by block, yet not what was sealed: the whole-stripe
            # read checks every shard against the manifest and finds which one it is.
            log.error("chunk.segments_unauthentic", extra={"fields": {
                "chunk_key": ref.chunk_key, "segments": [first, last], "error": str(exc),
                "request_id": request_id}})
    if stats is not None:
        stats.fallbacks += 1
    return None
