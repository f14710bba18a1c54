"""The coordinator's internal HTTP API: one POST endpoint per call declared in coordinator/api.py.

Every request must carry the cluster credential (missing 401, wrong 403) and a body whose
xxh3-128 equals X-Shardbox-Content-Hash. Request bodies are JSON objects of the call's
parameters, validated against its declaration (pydantic), so bad input answers 400
InvalidRequest with the offending field named, never a 500; `Metadata` implements the
call. Answers are `{"result": ...}` or `{"error": {"code", "message"}}` with the S3 status
of the code.

    POST /internal/v1/<call>            every call of api.CoordinatorAPI (get_key, place_chunks, ...)
    POST /internal/v1/admin/<call>      every call of api.AdminAPI (create_tenant, ...)
    POST /internal/v1/nodes/heartbeat   a node's /health document plus "address"
    GET  /health                        {"status","db","backend","nodes_up","nodes_down"}

Optional headers: X-Request-Id (echoed, logged), X-Shardbox-Client (the end client's
address, recorded in audit rows).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import sqlalchemy as sa
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from config.cluster_auth import COORDINATOR, ClusterAuthError, body_hash, verify_headers
from config.serving import BodyTimeout
from coordinator import events
from coordinator.api import PREFIX, Call, calls
from coordinator.records import CoordinatorError
from coordinator.service import Metadata

log = logging.getLogger(__name__)

MAX_BODY = 64 << 20
REQUEST_ID_HEADER = "X-Request-Id"
CLIENT_HEADER = "X-Shardbox-Client"
# Bodies that may hold values no backend can store (NUL or surrogate escapes, integers of
# 19+ digits, which orjson would turn into floats) take the careful path: stdlib json and a
# walk over every value. Anything else parses with orjson as is.
_CAREFUL = re.compile(rb"\d{19}|\\u0000|\\u[dD][89a-fA-F]")

SLOW_MS = 100.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(doc: Any, status: int = 200) -> web.Response:
    """orjson serialises the result dataclasses directly (no to_json walk)."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def _error(code: str, message: str, status: int) -> web.Response:
    response = _json({"error": {"code": code, "message": message}}, status=status)
    response["error"] = (code, message)  # for the request log line
    return response


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "invalid request: " + "; ".join(parts)


def _endpoint(call: Call, fn: Callable[..., Awaitable[Any]]) -> Handler:
    """The handler of one declared call: the body validated against its declared parameters."""
    model = call.params
    names = tuple(model.model_fields)

    async def handle(request: web.Request) -> web.Response:
        payload = request["json"]
        try:
            params = model.model_validate(payload)
        except ValidationError as exc:
            return _error("InvalidRequest", _describe(exc), 400)
        result = await fn(**{name: getattr(params, name) for name in names})
        return _json({"result": result})

    return handle


class _Heartbeat(BaseModel):
    """What a node posts: its /health document plus its address (unknown fields are kept)."""

    model_config = ConfigDict(extra="allow")
    node_id: str
    address: str
    pool: str = "standard"
    storage_class: str = "STANDARD"
    host: str | None = None
    rack: str | None = None
    capacity_bytes: int = 0
    used_bytes: int = 0
    free_bytes: int = 0
    shard_count: int = 0


def build_app(meta: Metadata, secret: str) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        events.client_addr.set(request.headers.get(CLIENT_HEADER) or None)
        response = await _guarded(request, handler, secret)
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        }
        if request_id:
            fields["request_id"] = request_id
        level = logging.INFO
        if "error" in response:
            fields["error_code"], fields["error_message"] = response["error"]
        elif fields["ms"] < SLOW_MS and request.path in quiet_paths:
            level = logging.DEBUG
        log.log(level, "request", extra={"fields": fields})
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    quiet_paths = frozenset(call.path for call in calls().values() if call.quiet)
    for call in calls().values():
        app.router.add_post(call.path, _endpoint(call, getattr(meta, call.name)))

    async def heartbeat(request: web.Request) -> web.Response:
        try:
            hb = _Heartbeat.model_validate(request["json"])
        except ValidationError as exc:
            return _error("InvalidRequest", _describe(exc), 400)
        node = await meta.heartbeat(
            node_id=hb.node_id,
            address=hb.address,
            pool=hb.pool,
            storage_class=hb.storage_class,
            host=hb.host,
            rack=hb.rack,
            capacity_bytes=hb.capacity_bytes,
            used_bytes=hb.used_bytes,
            free_bytes=hb.free_bytes,
            shard_count=hb.shard_count,
            health=hb.model_dump(mode="json"),
        )
        return _json({"result": node})

    async def health(_request: web.Request) -> web.Response:
        return _json(await meta.health())

    app.router.add_post(f"{PREFIX}/nodes/heartbeat", heartbeat)
    app.router.add_get("/health", health)
    return app


_INT64 = 1 << 63


def _unstorable(value: Any, where: str = "body") -> str | None:
    """Values no backend can store: NUL or lone surrogates in strings, integers beyond 64 bits."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where}: NUL characters are not allowed"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where}: string is not valid UTF-8"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            return f"{where}: integer out of range"
    elif isinstance(value, dict):
        for k, v in value.items():
            problem = _unstorable(k, where) or _unstorable(v, f"{where}.{k}")
            if problem:
                return problem
    elif isinstance(value, list):
        for i, v in enumerate(value):
            problem = _unstorable(v, f"{where}[{i}]")
            if problem:
                return problem
    return None


async def _guarded(request: web.Request, handler: Handler, secret: str) -> web.StreamResponse:
    try:
        claimed = verify_headers(
            secret, request.method, request.raw_path, request.headers, target=COORDINATOR
        )
    except ClusterAuthError as exc:
        return _error("AccessDenied" if exc.status == 403 else "Unauthorized", exc.message, exc.status)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error("InvalidRequest", f"request body over {MAX_BODY} bytes", 413)
    except BodyTimeout as exc:
        return _error("RequestTimeout", str(exc), 408)
    if body_hash(body) != claimed:
        return _error("BadDigest", "the request body does not match X-Shardbox-Content-Hash", 400)
    if request.method == "POST":
        careful = _CAREFUL.search(body) is not None
        try:
            payload = (json.loads(body) if careful else orjson.loads(body)) if body else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return _error("InvalidRequest", f"request body is not valid JSON: {exc}", 400)
        if not isinstance(payload, dict):
            return _error("InvalidRequest", "request body must be a JSON object", 400)
        problem = _unstorable(payload) if careful else None
        if problem:
            return _error("InvalidRequest", problem, 400)
        request["json"] = payload
    try:
        return await handler(request)
    except web.HTTPException as exc:  # unknown path, wrong method
        return _error(
            exc.reason.replace(" ", ""), f"{request.method} {request.path}: {exc.reason}", exc.status
        )
    except CoordinatorError as exc:
        return _error(exc.code, exc.message, exc.status)
    except sa.exc.DataError as exc:  # a value the database cannot store that validation missed
        log.warning("db.data_error", extra={"fields": {"path": request.path, "error": str(exc.orig)[:300]}})
        return _error("InvalidRequest", "a value in the request cannot be stored", 400)
    except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
        log.error("db.unavailable", exc_info=True, extra={"fields": {"path": request.path}})
        return _error("ServiceUnavailable", f"metadata database unavailable: {type(exc).__name__}", 503)
    except Exception:
        log.exception("request.failed", extra={"fields": {"path": request.path}})
        return _error("InternalError", "internal error; see the coordinator log", 500)
