"""Files and folders: listing, one entry, folders, rename/move, trash, versions, content,
grants and "shared with me". Every call names the asking user; the coordinator's one
permission resolver decides (coordinator/drive.py `access`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from blob import ReadStats
from coordinator.product_records import FileContent
from gateway.api import content, shapes
from gateway.api.context import ApiContext, answer
from gateway.api.errors import ApiError
from gateway.api.handlers_uploads import _str


def _limit(ctx: ApiContext) -> int:
    raw = ctx.request.query.get("limit", "1000")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise ApiError("InvalidArgument", "limit must be a number from 1 to 1000")
    return value


async def list_folder(ctx: ApiContext) -> web.StreamResponse:
    q = ctx.request.query
    parent, path = q.get("parent"), q.get("path")
    if parent is None and path is None:
        path = "/"
    page = await ctx.state.coordinator.list_folder(ctx.user.user_id, parent, path if parent is None else None,
                                                   q.get("cursor"), _limit(ctx))
    return answer({"folder": shapes.entry(page.folder), "items": [shapes.entry(e) for e in page.items],
                   "next": page.next})


async def get_file(ctx: ApiContext) -> web.StreamResponse:
    e = await ctx.state.coordinator.get_entry(ctx.user.user_id, ctx.param("file_id"))
    return answer({"entry": shapes.entry(e)})


async def stat(ctx: ApiContext) -> web.StreamResponse:
    path = ctx.request.query.get("path")
    if path is None:
        raise ApiError("InvalidArgument", "give ?path=")
    e = await ctx.state.coordinator.stat_path(ctx.user.user_id, path)
    return answer({"entry": shapes.entry(e)})


async def create_folder(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    e = await ctx.state.coordinator.create_folder(ctx.user.user_id, _str(body, "path"), _str(body, "parent"),
                                                  _str(body, "name"))
    return answer({"entry": shapes.entry(e)}, status=201)


async def update_file(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    e = await ctx.state.coordinator.update_file(ctx.user.user_id, ctx.param("file_id"), _str(body, "name"),
                                                _str(body, "parent"), _str(body, "path"))
    return answer({"entry": shapes.entry(e)})


async def trash_file(ctx: ApiContext) -> web.StreamResponse:
    await ctx.state.coordinator.trash_file(ctx.user.user_id, ctx.param("file_id"))
    return web.Response(status=204)


async def list_trash(ctx: ApiContext) -> web.StreamResponse:
    items = await ctx.state.coordinator.list_trash(ctx.user.user_id)
    return answer({"items": [shapes.entry(e) for e in items]})


async def restore_file(ctx: ApiContext) -> web.StreamResponse:
    e = await ctx.state.coordinator.restore_file(ctx.user.user_id, ctx.param("file_id"))
    return answer({"entry": shapes.entry(e)})


async def list_versions(ctx: ApiContext) -> web.StreamResponse:
    versions = await ctx.state.coordinator.list_versions(ctx.user.user_id, ctx.param("file_id"))
    return answer({"versions": [shapes.version(v) for v in versions]})


async def restore_version(ctx: ApiContext) -> web.StreamResponse:
    e = await ctx.state.coordinator.restore_version(ctx.user.user_id, ctx.param("file_id"),
                                                    ctx.param("version"))
    return answer({"entry": shapes.entry(e)})


async def file_content(ctx: ApiContext) -> web.StreamResponse:
    """The file's bytes for its owner or a grantee: attachment, or `?disposition=inline` for a
    preview (still sandboxed); `?version=` for an older version."""
    q = ctx.request.query
    inline = q.get("disposition", "attachment") == "inline"
    user, file_id, version = ctx.user.user_id, ctx.param("file_id"), q.get("version")
    coordinator, store = ctx.state.coordinator, ctx.state.store

    async def load(start: int | None, end: int | None) -> FileContent:
        return await coordinator.file_content(user, file_id, version, start, end)

    stats = ReadStats()

    def read(c: FileContent, start: int, end: int) -> AsyncIterator[bytes]:
        return store.read(c.object, start, end, request_id=ctx.request_id, stats=stats)

    try:
        return await content.serve(ctx, load, read, inline=lambda: inline, cache_control="private, no-cache")
    finally:
        ctx.log_fields.update(stats.log_fields())


async def create_grant(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    g = await ctx.state.coordinator.grant_create(ctx.user.user_id, ctx.param("file_id"),
                                                 _str(body, "user", required=True) or "",
                                                 _str(body, "permission", required=True) or "")
    return answer({"grant": shapes.grant(g)}, status=201)


async def list_grants(ctx: ApiContext) -> web.StreamResponse:
    grants = await ctx.state.coordinator.grant_list(ctx.user.user_id, ctx.param("file_id"))
    return answer({"grants": [shapes.grant(g) for g in grants]})


async def revoke_grant(ctx: ApiContext) -> web.StreamResponse:
    await ctx.state.coordinator.grant_revoke(ctx.user.user_id, ctx.param("file_id"), ctx.param("grant_id"))
    return web.Response(status=204)


async def shared_with_me(ctx: ApiContext) -> web.StreamResponse:
    items = await ctx.state.coordinator.shared_with_me(ctx.user.user_id)
    return answer({"items": [shapes.entry(e) for e in items]})
