"""Accounts: password login and logout, who am I, API tokens, usage, and what clients need
to know before an upload (`GET /api/v1/info`)."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from coordinator.product_records import Principal, QuotaFigures, TokenInfo
from gateway.api.context import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    ApiContext,
    answer,
    csrf_token,
    iso,
    parse_time,
    token_hash,
)
from gateway.api.errors import ApiError
from gateway.api.passwords import check_password_text

SESSION_PREFIX = "sbx_s_"
API_TOKEN_PREFIX = "sbx_t_"


def user_doc(p: Principal) -> dict[str, Any]:
    return {"id": p.user_id, "name": p.user_name, "tenant": p.tenant_name, "is_admin": p.is_admin}


def _token_doc(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "kind": t.kind, "created_at": iso(t.created_at),
            "expires_at": iso(t.expires_at)}


def _quota_doc(q: QuotaFigures) -> dict[str, Any]:
    return {"quota_bytes": q.quota_bytes, "used_bytes": q.used_bytes, "reserved_bytes": q.reserved_bytes}


def _set_cookies(ctx: ApiContext, resp: web.StreamResponse, token: str, max_age: int) -> None:
    secure = ctx.state.cfg.cookie_secure or ctx.request.secure
    resp.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="Strict",
                    secure=secure)
    resp.set_cookie(CSRF_COOKIE, csrf_token(ctx.state.csrf_key, token), max_age=max_age, path="/",
                    samesite="Strict", secure=secure)


async def login(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not name or len(name) > 128:
        raise ApiError("InvalidArgument", "username must be a non-empty string")
    try:
        check_password_text(password)
    except ValueError as exc:
        raise ApiError("InvalidArgument", str(exc)) from None
    coordinator = ctx.state.coordinator
    candidate = await coordinator.login_begin(name, ctx.client_addr)
    if not candidate.allowed:
        wait = max(1, int(candidate.retry_after_s + 0.999))
        raise ApiError("TooManyRequests", f"too many login attempts; try again in {wait} s", 429,
                       headers={"Retry-After": str(wait)})
    ok = await ctx.state.passwords.verify(candidate.password_hash, password)
    if not ok or candidate.user_id is None:
        await coordinator.login_failed(name, ctx.client_addr)
        raise ApiError("InvalidCredentials", "wrong user name or password", 401)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    ttl = ctx.state.cfg.session_ttl_s
    principal = await coordinator.login_succeeded(candidate.user_id, name, ctx.client_addr, token_hash(token),
                                                  ttl)
    ctx.log_fields["user"] = name
    resp = answer({"token": token, "user": user_doc(principal), "expires_at": iso(principal.expires_at),
                   "csrf_token": csrf_token(ctx.state.csrf_key, token)})
    _set_cookies(ctx, resp, token, int(ttl))
    return resp


async def logout(ctx: ApiContext) -> web.StreamResponse:
    await ctx.state.coordinator.revoke_token(ctx.user.user_id, ctx.user.token_id)
    resp = web.Response(status=204)
    resp.del_cookie(SESSION_COOKIE, path="/")
    resp.del_cookie(CSRF_COOKIE, path="/")
    return resp


async def me(ctx: ApiContext) -> web.StreamResponse:
    return answer({"user": user_doc(ctx.user), "auth": ctx.auth, "expires_at": iso(ctx.user.expires_at)})


async def create_token(ctx: ApiContext) -> web.StreamResponse:
    body = await ctx.json()
    name = body.get("name", "api token")
    if not isinstance(name, str):
        raise ApiError("InvalidArgument", "name must be a string")
    expires_at = parse_time(body.get("expires_at"), "expires_at")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    info = await ctx.state.coordinator.create_api_token(ctx.user.user_id, token_hash(token), name, expires_at)
    return answer({**_token_doc(info), "token": token}, status=201)


async def list_tokens(ctx: ApiContext) -> web.StreamResponse:
    tokens = await ctx.state.coordinator.list_tokens(ctx.user.user_id)
    return answer({"tokens": [_token_doc(t) for t in tokens]})


async def revoke_token(ctx: ApiContext) -> web.StreamResponse:
    await ctx.state.coordinator.revoke_token(ctx.user.user_id, ctx.param("token_id"))
    return web.Response(status=204)


async def usage(ctx: ApiContext) -> web.StreamResponse:
    figures = await ctx.state.coordinator.get_usage(ctx.user.user_id)
    return answer({"user": _quota_doc(figures.user), "tenant": _quota_doc(figures.tenant)})


async def info(ctx: ApiContext) -> web.StreamResponse:
    return answer({"api": "v1", "chunk_size": ctx.state.store.chunk_size})
