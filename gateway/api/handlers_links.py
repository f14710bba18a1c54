"""Share links, the owner's side: create (the URL is shown once), list, revoke one."""

from __future__ import annotations

import secrets

from aiohttp import web

from gateway.api import shapes
from gateway.api.context import ApiContext, answer, parse_time, token_hash
from gateway.api.errors import ApiError
from gateway.api.passwords import check_password_text

TOKEN_BYTES = 24  # 192 bits


async def create_link(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    permission = body.get("permission")
    if permission not in ("view", "download"):
        raise ApiError("InvalidArgument", "permission must be view or download")
    max_downloads = body.get("max_downloads")
    if max_downloads is not None and (isinstance(max_downloads, bool) or not isinstance(max_downloads, int)):
        raise ApiError("InvalidArgument", "max_downloads must be a positive integer")
    password = body.get("password")
    password_hash = None
    if password is not None:
        try:
            check_password_text(password)
        except ValueError as exc:
            raise ApiError("InvalidArgument", str(exc)) from None
        password_hash = await ctx.state.passwords.hash(password)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    info = await ctx.state.coordinator.link_create(
        ctx.user.user_id, ctx.param("file_id"), token_hash(token), permission,
        parse_time(body.get("expires_at"), "expires_at"), password_hash, max_downloads)
    url = f"{ctx.state.base_url(ctx.request)}/share/{token}"
    return answer({**shapes.link(info), "url": url}, status=201)


async def list_links(ctx: ApiContext) -> web.StreamResponse:
    links = await ctx.state.coordinator.link_list(ctx.user.user_id)
    return answer({"links": [shapes.link(i) for i in links]})


async def revoke_link(ctx: ApiContext) -> web.StreamResponse:
    await ctx.state.coordinator.link_revoke(ctx.user.user_id, ctx.param("link_id"))
    return web.Response(status=204)
