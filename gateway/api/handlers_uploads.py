"""Resumable uploads: init (with dedup), chunk PUTs to signed URLs, status, finalize, abort."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from blob.errors import ChunkMismatch
from coordinator.product_records import UploadStatus, UploadTarget
from coordinator.records import CoordinatorError
from gateway.api import shapes
from gateway.api.context import ApiContext, answer
from gateway.api.errors import ApiError, from_coordinator
from gateway.api.signing import SignatureError

CHUNK_PATH = "/api/v1/uploads/{upload_id}/chunks/{index}"


def _str(body: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError("InvalidArgument", f"{name} must be a non-empty string")
    return value


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 1 << 62:
        raise ApiError("InvalidArgument", f"{name} must be a non-negative integer")
    return value


def _urls(ctx: ApiContext, status: UploadStatus) -> dict[str, str]:
    """Fresh signed PUT URLs for the missing chunks (valid until the session expires at most)."""
    state = ctx.state
    ttl = min(state.cfg.upload_url_ttl_s, max(1.0, status.expires_at - time.time()))
    base = state.base_url(ctx.request)
    urls = {}
    for i in status.missing:
        path = CHUNK_PATH.format(upload_id=status.upload_id, index=i)
        urls[str(i)] = f"{base}{path}?{state.signer.sign('PUT', path, ttl)}"
    return urls


def _if_match(ctx: ApiContext) -> str | None:
    value = ctx.request.headers.get("If-Match")
    return value.strip().strip('"') if value else None


async def init(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json(limit=32 << 20)
    chunk_size = _int(body, "chunk_size", ctx.state.store.chunk_size)
    if chunk_size != ctx.state.store.chunk_size:
        raise ApiError("InvalidArgument", f"this server takes chunks of {ctx.state.store.chunk_size} bytes "
                       "(GET /api/v1/info); hash the file in chunks of that size",
                       extra={"chunk_size": ctx.state.store.chunk_size})
    chunks = body.get("chunks")
    if not isinstance(chunks, list) or not all(isinstance(c, str) for c in chunks):
        raise ApiError("InvalidArgument", "chunks must be a list of SHA-256 hex digests, one per chunk")
    target = UploadTarget(path=_str(body, "path"), parent_id=_str(body, "parent"), name=_str(body, "name"),
                          file_id=_str(body, "file_id"))
    status = await ctx.state.coordinator.upload_init(
        ctx.user.user_id, target, _int(body, "size"), chunk_size, [c.lower() for c in chunks],
        (_str(body, "content_hash", required=True) or "").lower(), _str(body, "content_type"), _if_match(ctx))
    ctx.log_fields.update(upload_id=status.upload_id, missing=len(status.missing))
    return answer(shapes.upload(status, _urls(ctx, status)), status=201)


async def status(ctx: ApiContext) -> web.StreamResponse:
    s = await ctx.state.coordinator.upload_status(ctx.user.user_id, ctx.param("upload_id"))
    return answer(shapes.upload(s, _urls(ctx, s)))


async def abort(ctx: ApiContext) -> web.StreamResponse:
    await ctx.state.coordinator.upload_abort(ctx.user.user_id, ctx.param("upload_id"))
    return web.Response(status=204)


async def finalize(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    upload_id = _str(body, "upload_id", required=True) or ""
    coordinator = ctx.state.coordinator
    try:
        entry = await coordinator.upload_finalize(ctx.user.user_id, upload_id, _if_match(ctx))
    except CoordinatorError as exc:
        err = from_coordinator(exc)
        if exc.code in ("EditConflict", "UploadIncomplete"):
            s = await coordinator.upload_status(ctx.user.user_id, upload_id)
            if exc.code == "UploadIncomplete":
                err.extra["missing"] = s.missing
            elif s.file_id is not None:
                err.extra["current"] = shapes.entry(await coordinator.get_entry(ctx.user.user_id, s.file_id))
            else:
                err.extra["current"] = None
        raise err from None
    return answer({"file": shapes.entry(entry)})


async def put_chunk_body(ctx: ApiContext) -> web.StreamResponse:
    """PUT to a signed chunk URL: no other credential; the body's SHA-256 must be the one
    announced for that index (400 BadDigest otherwise, nothing stored)."""
    request, state = ctx.request, ctx.state
    try:
        state.signer.verify("PUT", request.path, request.query)
    except SignatureError as exc:
        raise ApiError("ExpiredUrl" if exc.expired else "SignatureDoesNotMatch",
                       f"{exc}; ask GET /api/v1/uploads/{{id}} for fresh URLs", 403) from None
    try:
        index = int(ctx.param("index"))
    except ValueError:
        raise ApiError("InvalidArgument", "the chunk index must be a number") from None
    upload_id = ctx.param("upload_id")
    target = await state.coordinator.upload_chunk_target(upload_id, index)
    length = request.content_length
    if length is None:
        raise ApiError("MissingContentLength", "a chunk PUT needs Content-Length", 411)
    if length != target.size:
        raise ApiError("InvalidArgument", f"chunk {index} is {target.size} bytes, the body has {length}")
    async with state.chunk_puts:
        data = bytearray(length)
        view = memoryview(data)
        got = 0
        async for piece in request.content.iter_chunked(1 << 18):
            if got + len(piece) > length:
                raise ApiError("InvalidArgument", f"the body is longer than its Content-Length {length}")
            view[got:got + len(piece)] = piece
            got += len(piece)
        if got != length:
            raise ApiError("IncompleteBody", f"the body ended after {got} of {length} bytes")
        try:
            if target.landed:  # stored already (a retry, or the same chunk at another index)
                await state.store.verify_chunk(view, target.sha256)
            else:
                ref = await state.store.write_chunk(target.tenant_id, view, target.sha256,
                                                    request_id=ctx.request_id)
                await state.coordinator.upload_chunk_landed(upload_id, index, ref)
        except ChunkMismatch as exc:
            raise ApiError("BadDigest", str(exc)) from None
        finally:
            del view
    ctx.log_fields.update(upload_id=upload_id, index=index, bytes_in=length, deduplicated=target.landed)
    return answer({"index": index, "sha256": target.sha256, "size": target.size})
