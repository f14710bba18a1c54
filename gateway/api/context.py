"""One product API request: identity, body parsing, JSON answers, and the wrapper every
handler runs in (authentication, CSRF, error answers, the one log line per request)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from blob import DataUnavailable, WriteFailed
from config.values import secrets_equal
from coordinator import client as coordinator_client
from coordinator.product_records import Principal
from coordinator.records import CoordinatorError
from gateway.api.errors import ApiError, error_response, from_coordinator
from gateway.api.signing import b64url
from gateway.api.state import API_STATE, ApiState

log = logging.getLogger("gateway.api")

SESSION_COOKIE = "sbx_session"
CSRF_COOKIE = "sbx_csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_JSON = 1 << 20
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_FIRST = "log in first (POST /api/v1/auth/login) or send a bearer token"

Handler = Callable[["ApiContext"], Awaitable[web.StreamResponse]]


def token_hash(token: str) -> str:
    """What the coordinator stores and looks up for a bearer token: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_token(key: bytes, session_token: str) -> str:
    """The CSRF token of a session: readable by the page (cookie), derivable by any gateway."""
    return b64url(hmac.new(key, session_token.encode(), hashlib.sha256).digest())[:32]


def iso(ts: float | None) -> str | None:
    """Times in answers: ISO 8601, UTC, whole seconds."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, name: str) -> float | None:
    """An ISO 8601 time (UTC if no offset is given) from a request body, as unix seconds."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ApiError("InvalidArgument", f"{name} must be an ISO 8601 time, e.g. 2030-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ApiError("InvalidArgument", f"{name} must be an ISO 8601 time, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class ApiContext:
    request: web.Request
    state: ApiState
    request_id: str
    principal: Principal | None = None
    auth: str | None = None             # "bearer" | "cookie"
    session_token: str | None = None
    log_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> Principal:
        if self.principal is None:
            raise ApiError("Unauthorized", LOGIN_FIRST, 401)
        return self.principal

    @property
    def client_addr(self) -> str:
        return self.request.remote or "-"

    def param(self, name: str) -> str:
        return self.request.match_info[name]

    async def json(self, limit: int = MAX_JSON) -> dict[str, Any]:
        """The request body as a JSON object; 400 for anything else, 413 over `limit` bytes."""
        length = self.request.content_length
        if length is not None and length > limit:
            raise ApiError("RequestTooLarge", f"request body over {limit} bytes", 413)
        body = bytearray()
        async for piece in self.request.content.iter_chunked(1 << 16):
            body += piece
            if len(body) > limit:
                raise ApiError("RequestTooLarge", f"request body over {limit} bytes", 413)
        if not body:
            return {}
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError("InvalidJSON", f"the request body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ApiError("InvalidJSON", "the request body must be a JSON object")
        return doc


def answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json",
                        headers=headers)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError("Unauthorized", "the Authorization header must be 'Bearer <token>'", 401)
    return value.strip()


def _check_origin(ctx: ApiContext) -> None:
    """A cookie-authenticated write must come from this site: its CSRF token (double submit,
    derived from the session, so a cookie planted by another site cannot match) and, when
    the browser says where the request comes from, the same origin."""
    request = ctx.request
    expected = csrf_token(ctx.state.csrf_key, ctx.session_token or "")
    if not secrets_equal(expected, request.headers.get(CSRF_HEADER, "")):
        raise ApiError("CsrfFailed", f"cookie-authenticated writes need the {CSRF_HEADER} header "
                       f"(the value of the {CSRF_COOKIE} cookie)", 403)
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        host = urlsplit(origin).netloc
        allowed = {request.host}
        if ctx.state.cfg.public_url:
            allowed.add(urlsplit(ctx.state.cfg.public_url).netloc)
        if host not in allowed:
            raise ApiError("CsrfFailed", f"cross-origin write from {origin} refused", 403)


async def authenticate(ctx: ApiContext, required: bool) -> None:
    request = ctx.request
    token = _bearer(request)
    if token is not None:
        ctx.auth = "bearer"
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if token is None:
            if required:
                raise ApiError("Unauthorized", LOGIN_FIRST, 401)
            return
        ctx.auth = "cookie"
        ctx.session_token = token
    try:
        ctx.principal = await ctx.state.coordinator.authenticate(token_hash(token))
    except CoordinatorError as exc:
        if exc.code in ("Unauthorized", "InvalidArgument"):
            if not required and ctx.auth == "cookie":  # a stale cookie on a public page
                ctx.auth = ctx.session_token = None
                return
            raise ApiError("Unauthorized", "the token is unknown, expired or revoked; log in again",
                           401) from None
        raise
    ctx.log_fields["user"] = ctx.principal.user_name
    if ctx.auth == "cookie" and request.method not in SAFE_METHODS:
        _check_origin(ctx)


def new_request_id() -> str:
    return os.urandom(8).hex().upper()


def endpoint(handler: Handler, *, auth: str = "user") -> Callable[[web.Request],
                                                                   Awaitable[web.StreamResponse]]:
    """An aiohttp handler around `handler`: auth is "user" (required), "optional" or "none"."""

    async def run(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        state = request.app[API_STATE]
        ctx = ApiContext(request=request, state=state, request_id=new_request_id())
        coordinator_client.request_id.set(ctx.request_id)
        coordinator_client.client_addr.set(request.remote)
        error_code = None
        try:
            if auth != "none":
                await authenticate(ctx, required=auth == "user")
            resp = await handler(ctx)
        except Exception as exc:
            err = _as_api_error(exc)
            if err is None:
                log.error("request.failed", exc_info=exc, extra={"fields": {
                    "request_id": ctx.request_id, "method": request.method}})
                err = ApiError("InternalError", "internal error; see the gateway log", 500)
            error_code = err.code
            ctx.log_fields["error_message"] = err.message
            resp = error_response(err, ctx.request_id)
            if request.body_exists and not request.content.at_eof():
                resp.force_close()  # the body was refused unread: close rather than drain it
        else:
            if not resp.prepared:
                resp.headers["X-Request-Id"] = ctx.request_id
        _log(ctx, resp, error_code, started)
        return resp

    return run


def _as_api_error(exc: BaseException) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, CoordinatorError):
        return from_coordinator(exc)
    if isinstance(exc, WriteFailed):
        return ApiError("ServiceUnavailable", f"could not store the data durably: {exc}", 503)
    if isinstance(exc, DataUnavailable):
        return ApiError("ServiceUnavailable", "too many shards unavailable to read the file", 503)
    if isinstance(exc, web.HTTPException):
        return ApiError(exc.reason.replace(" ", ""), exc.reason, exc.status)
    return None


def _log(ctx: ApiContext, resp: web.StreamResponse, error_code: str | None, started: float) -> None:
    request = ctx.request
    # The route's pattern, not the path: share tokens and signed references stay out of logs.
    route = request.match_info.route.resource
    fields = {
        "request_id": ctx.request_id, "method": request.method,
        "route": route.canonical if route is not None else request.path,
        "status": resp.status, "duration_ms": round((time.monotonic() - started) * 1000, 2),
        "remote": request.remote, "error_code": error_code, **ctx.log_fields,
    }
    level = logging.WARNING if resp.status >= 500 else logging.INFO
    log.log(level, "api.request", extra={"fields": fields})
