"""Can a read be served whole? Checked before a GET commits to a status line.

A GET answers 200 (or 206) before it has fetched the later chunks of what it sends; a
chunk found unreadable then can only be signalled by cutting the body short, which
clients notice late or not at all. So before the status line the gateway checks every
chunk it will serve against what is known: a chunk needs 10 shards (erasure.DATA) on
nodes believed up. A node is believed up when the coordinator's registry says so
(heartbeat within its `node_down_after_s`) and it has not failed this gateway since its
last heartbeat (a node that just stopped answering is `suspect` here before the
coordinator notices; one that heartbeats again after that is trusted again). Shards
recorded missing at write time do not count. A chunk short of 10 answers 503 before any
byte. What nobody knows yet (a node that died a second ago) can still cut a body: this
narrows the window, it cannot close it.

The registry view is one `list_nodes` call shared by all reads for `NODE_VIEW_S`, read
again before a refusal if it is older than FRESH_S (a node may just have come back); when
the coordinator cannot answer, the check is skipped (the read itself still fails cleanly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import erasure
from blob.context import DatapathContext
from blob.errors import DataUnavailable
from blob.reader import chunks_for_range
from coordinator.records import ChunkRef, ObjectInfo

log = logging.getLogger("blob.availability")
NODE_VIEW_S = 2.0
FRESH_S = 0.5


class NodeView:
    """The nodes the coordinator lists as up (id -> last heartbeat, unix time), refreshed at
    most every NODE_VIEW_S unless asked for a fresher one."""

    def __init__(self, ctx: DatapathContext, ttl_s: float = NODE_VIEW_S) -> None:
        self._ctx = ctx
        self._ttl_s = ttl_s
        self._up: dict[str, float] | None = None
        self._at = 0.0
        self._loading: asyncio.Task[dict[str, float] | None] | None = None

    async def up(self, max_age_s: float | None = None) -> Mapping[str, float] | None:
        """Up nodes; None when the coordinator cannot say (then nothing is judged)."""
        age = time.monotonic() - self._at
        if self._up is not None and age < (self._ttl_s if max_age_s is None else max_age_s):
            return self._up
        if self._loading is None or self._loading.done():
            self._loading = asyncio.get_running_loop().create_task(self._load())
        return await asyncio.shield(self._loading)

    async def _load(self) -> dict[str, float] | None:
        try:
            nodes = await self._ctx.coordinator.list_nodes()
        except Exception as exc:
            log.warning("node_view.unavailable", extra={"fields": {"error": str(exc)[:200]}})
            return None
        self._up = {n.node_id: n.last_seen for n in nodes if n.state == "up"}
        self._at = time.monotonic()
        return self._up


def _believed_up(ctx: DatapathContext, up: Mapping[str, float], node_id: str) -> bool:
    last_seen = up.get(node_id)
    if last_seen is None:
        return False
    until = ctx.suspects.get(node_id)
    if until is None:
        return True
    failed_at = time.time() - (time.monotonic() - (until - ctx.suspect_s))
    return last_seen > failed_at         # it heartbeated since it failed us


def _short_chunk(ctx: DatapathContext, refs: list[ChunkRef],
                 up: Mapping[str, float]) -> tuple[ChunkRef, int] | None:
    """The first chunk with fewer than 10 shards on nodes believed up, and how many it has."""
    for ref in refs:
        missing = set(ref.missing)
        usable = sum(1 for p in ref.shards if p.index not in missing and _believed_up(ctx, up, p.node_id))
        if usable < erasure.DATA:
            return ref, usable
    return None


async def check_readable(ctx: DatapathContext, view: NodeView, obj: ObjectInfo, start: int, end: int) -> None:
    """Raise DataUnavailable if a chunk holding bytes start..end (inclusive) lacks 10 shards
    on nodes believed up; inline chunks need no node."""
    if obj.size == 0 or end < start:
        return
    refs = [ref for ref, _, _ in chunks_for_range(obj.chunks, start, end) if ref.inline is None]
    if not refs:
        return
    up = await view.up()
    short = _short_chunk(ctx, refs, up) if up is not None else None
    if short is not None:                   # before refusing, make sure the view is recent
        up = await view.up(max_age_s=FRESH_S)
        short = _short_chunk(ctx, refs, up) if up is not None else None
    if short is not None:
        ref, usable = short
        raise DataUnavailable(f"chunk {ref.chunk_key}: only {usable} of its shards are on nodes believed "
                              f"up, {erasure.DATA} needed", chunk_key=ref.chunk_key)
