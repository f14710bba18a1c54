"""The node's HTTP API (docs/internals.md "node/ HTTP API") on aiohttp.

Two middlewares wrap every handler: the outer one logs one JSON line per request
(with X-Request-Id) and turns any exception into a JSON error; the inner one checks
the cluster credential (401 missing, 403 wrong) before a handler sees the request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

import xxhash
from aiohttp import web

from config.cluster_auth import EMPTY_HASH, ClusterAuthError, body_hash, verify_headers
from config.serving import BodyTimeout
from config.values import BadValue, parse_uint
from node.compaction import Compactor
from node.records import valid_shard_id
from node.scrub import Scrubber
from node.store import ShardStore, StoreError

log = logging.getLogger("node.api")

STORE = web.AppKey("store", ShardStore)
SCRUBBER = web.AppKey("scrubber", Scrubber)
COMPACTOR = web.AppKey("compactor", Compactor)
SECRET = web.AppKey("secret", str)

_HEX128 = re.compile(r"^[0-9a-f]{32}$")
_RANGE = re.compile(r"bytes=(\d{1,19})-(\d{0,19})")
MAX_LIST = 10_000
MAX_BATCH_DELETE = 10_000
# GET bodies from this size skip aiohttp's header+body join (below it the copy costs less than a send)
STREAM_FROM = 256 << 10

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    rid = request.headers.get("X-Request-Id")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = error(exc.status, exc.reason.replace(" ", ""), exc.text or exc.reason)
    except BodyTimeout as exc:
        response = error(408, "RequestTimeout", str(exc))
    except StoreError as exc:
        response = error(exc.status, exc.code, exc.message, getattr(exc, "headers", None))
    except Exception:
        log.exception("request.crashed", extra={"fields": {"request_id": rid, "path": request.path}})
        response = error(500, "InternalError", "internal error on the storage node")
    store = request.app[STORE]
    store.metrics.response(request.method, response.status)
    fields = {"method": request.method, "path": request.path, "status": response.status,
              "ms": round((time.monotonic() - started) * 1000, 2), "request_id": rid,
              "remote": request.remote}
    if response.status >= 400 and isinstance(response, web.Response) and response.body:
        try:
            fields["error"] = json.loads(response.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            pass
    log.log(logging.WARNING if response.status >= 500 else logging.INFO, "request", extra={"fields": fields})
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        claimed = verify_headers(request.app[SECRET], request.method, request.raw_path, request.headers,
                                 target=request.app[STORE].cfg.id)
    except ClusterAuthError as exc:
        code = "MissingCredential" if exc.status == 401 else "AccessDenied"
        return error(exc.status, code, exc.message)
    request["content_hash"] = claimed
    if request.method not in ("PUT", "POST") and claimed != EMPTY_HASH:
        return error(400, "BadDigest", "X-Shardbox-Content-Hash must be the hash of an empty body")
    return await handler(request)


def _shard_id(request: web.Request) -> str:
    shard_id = request.match_info["id"]
    if not valid_shard_id(shard_id):
        raise _Refused(400, "InvalidShardId", "shard id must match ^[A-Za-z0-9_.-]{1,200}$")
    return shard_id


class _Refused(StoreError):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code
        self.headers = headers


async def put_shard(request: web.Request) -> web.Response:
    store = request.app[STORE]
    shard_id = _shard_id(request)
    length = request.content_length
    if length is None:
        raise _Refused(411, "MissingContentLength", "PUT needs a Content-Length header")
    if length > store.cfg.max_shard_size:
        raise _Refused(413, "EntityTooLarge", f"shard of {length} bytes is over max_shard_size="
                       f"{store.cfg.max_shard_size}")
    claimed = request["content_hash"]
    if not _HEX128.fullmatch(claimed):
        raise _Refused(400, "InvalidDigest", "X-Shardbox-Content-Hash must be 32 lowercase hex digits")
    content = request.content

    timed_out: list[BodyTimeout] = []

    async def next_piece() -> bytes:
        # readchunk hands over the parser's buffers one at a time, never joining them
        # (readexactly/read(n) would join them into a new bytes object: a full copy)
        try:
            piece, _ = await content.readchunk()
        except BodyTimeout as exc:
            timed_out.append(exc)
            raise
        return piece

    try:
        result = await store.put(shard_id, length, claimed, next_piece)
    except StoreError:
        if timed_out:        # the store reports a body that stopped; say why it stopped
            raise timed_out[0] from None
        raise
    return web.json_response({"id": result.shard_id, "length": result.length, "checksum": result.checksum},
                             status=201)


def _byte_range(header: str) -> tuple[int, int | None]:
    """(first, last or None) of `bytes=first-last` / `bytes=first-`: the only forms readers send."""
    m = _RANGE.fullmatch(header.strip())
    if m is None:
        raise _Refused(400, "InvalidRange", "Range must be bytes=first-last or bytes=first- (one range)")
    first, last = int(m.group(1)), None if m.group(2) == "" else int(m.group(2))
    if last is not None and last < first:
        raise _Refused(400, "InvalidRange", f"Range {header!r} ends before it starts")
    return first, last


async def get_shard(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    shard_id = _shard_id(request)
    range_header = request.headers.get("Range")
    if range_header is not None:
        return await _get_shard_range(request, store, shard_id, range_header)
    found = await store.get(shard_id)
    if found is None:
        raise _Refused(404, "NoSuchShard", f"no shard {shard_id} on this node")
    info, data = found
    return await _send(request, 200, {"X-Shardbox-Checksum": info.checksum}, data)


async def _get_shard_range(request: web.Request, store: ShardStore, shard_id: str,
                           range_header: str) -> web.StreamResponse:
    """206 with bytes first..last of the shard, every 64 KiB block they touch verified first."""
    first, last = _byte_range(range_header)
    info = store.lookup(shard_id)
    if info is None:
        raise _Refused(404, "NoSuchShard", f"no shard {shard_id} on this node")
    if first >= info.length:
        raise _Refused(416, "InvalidRange", f"shard {shard_id} has {info.length} bytes; the range "
                       f"starts at {first}", headers={"Content-Range": f"bytes */{info.length}"})
    end = info.length if last is None else min(last + 1, info.length)
    found = await store.get_range(shard_id, first, end)
    if found is None:
        raise _Refused(404, "NoSuchShard", f"no shard {shard_id} on this node")
    info, data = found
    headers = {"X-Shardbox-Checksum": info.checksum,
               "X-Shardbox-Range-Checksum": xxhash.xxh3_128_hexdigest(data),
               "Content-Range": f"bytes {first}-{end - 1}/{info.length}"}
    return await _send(request, 206, headers, data)


async def _send(request: web.Request, status: int, headers: dict[str, str],
                data: bytes | memoryview) -> web.StreamResponse:
    if len(data) < STREAM_FROM:
        return web.Response(status=status, body=data, headers=headers,
                            content_type="application/octet-stream")
    # web.Response would join headers and body into one new bytes object before sending (aiohttp
    # does that on Python < 3.12.9): a full extra copy of every shard. Sending the headers
    # first and then the verified buffer itself hands the very bytes we read to the socket.
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = "application/octet-stream"
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data)
    await response.write_eof()
    return response


async def head_shard(request: web.Request) -> web.Response:
    store = request.app[STORE]
    shard_id = _shard_id(request)
    info = store.lookup(shard_id)
    if info is None:
        return web.Response(status=404)
    if shard_id in store.corrupt:
        return web.Response(status=500, headers={"X-Shardbox-Error": "ShardCorrupt"})
    return web.Response(headers={"X-Shardbox-Checksum": info.checksum, "Content-Length": str(info.length),
                                 "Content-Type": "application/octet-stream"})


async def delete_shard(request: web.Request) -> web.Response:
    store = request.app[STORE]
    shard_id = _shard_id(request)
    deleted, _ = await store.delete([shard_id])
    if not deleted:
        raise _Refused(404, "NoSuchShard", f"no shard {shard_id} on this node")
    return web.Response(status=204)


async def _json_body(request: web.Request) -> dict:
    body = await request.read()
    if body_hash(body) != request["content_hash"]:
        raise _Refused(400, "BadDigest", "body does not match X-Shardbox-Content-Hash")
    try:
        doc = json.loads(body)
    except ValueError:
        raise _Refused(400, "InvalidRequest", "body must be JSON") from None
    if not isinstance(doc, dict):
        raise _Refused(400, "InvalidRequest", "body must be a JSON object")
    return doc


async def batch_delete(request: web.Request) -> web.Response:
    store = request.app[STORE]
    doc = await _json_body(request)
    ids = doc.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _Refused(400, "InvalidRequest", 'body must be {"ids": [shard ids]}')
    if len(ids) > MAX_BATCH_DELETE:
        raise _Refused(400, "InvalidRequest", f"at most {MAX_BATCH_DELETE} ids per request")
    bad = [i for i in ids if not valid_shard_id(i)]
    if bad:
        raise _Refused(400, "InvalidShardId", f"invalid shard id {bad[0][:210]!r}")
    deleted, missing = await store.delete(ids)
    return web.json_response({"deleted": deleted, "missing": missing})


async def list_shards(request: web.Request) -> web.Response:
    store = request.app[STORE]
    after = request.query.get("after") or None
    if after is not None and not valid_shard_id(after):
        raise _Refused(400, "InvalidRequest", "after must be a shard id")
    try:
        limit = parse_uint(request.query.get("limit", "1000"), MAX_LIST)
    except BadValue:
        limit = 0
    if limit < 1:
        raise _Refused(400, "InvalidRequest", f"limit must be an integer 1..{MAX_LIST}")
    rows, nxt = await store.run_io(store.list_shards, after, limit)
    return web.json_response({"shards": [{"id": r.shard_id, "length": r.length, "checksum": r.checksum}
                                         for r in rows], "next": nxt})


async def health(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response(store.health(request.app[SCRUBBER].last))


async def metrics(request: web.Request) -> web.Response:
    store = request.app[STORE]
    gauges = {
        "shardbox_node_capacity_bytes": store.capacity_bytes(),
        "shardbox_node_used_bytes": store.volumes.used_bytes(),
        "shardbox_node_free_bytes": store.free_bytes(),
        "shardbox_node_garbage_bytes": store.garbage_bytes(),
        "shardbox_node_shards": store.shard_count,
        "shardbox_node_volumes": len(store.volumes.numbers()),
        "shardbox_node_corrupt_shards": len(store.corrupt),
    }
    return web.Response(text=store.metrics.render(gauges), content_type="text/plain",
                        headers={"X-Prometheus-Format": "0.0.4"})


async def scrub(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SCRUBBER].run())


async def compact(request: web.Request) -> web.Response:
    result = await request.app[COMPACTOR].run()
    return web.json_response(result.to_json())


def build_app(store: ShardStore, secret: str) -> web.Application:
    app = web.Application(middlewares=[log_middleware, auth_middleware], client_max_size=16 << 20)
    app[STORE] = store
    app[SECRET] = secret
    app[SCRUBBER] = Scrubber(store)
    app[COMPACTOR] = Compactor(store)
    app.router.add_put("/shards/{id}", put_shard)
    app.router.add_get("/shards/{id}", get_shard, allow_head=False)
    app.router.add_head("/shards/{id}", head_shard)
    app.router.add_delete("/shards/{id}", delete_shard)
    app.router.add_post("/shards/delete", batch_delete)
    app.router.add_get("/shards", list_shards)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/scrub", scrub)
    app.router.add_post("/compact", compact)
    return app
