"""`CoordinatorClient`: the only way other processes talk to the coordinator.

Its call methods are derived from the declarations in coordinator/api.py (one per call, same
signature and docstring): each sends its arguments as JSON to the call's endpoint and turns
the answer into the declared return type (pydantic). They raise
`CoordinatorError(code, message, status)` for error answers (and
`CoordinatorError("ServiceUnavailable", ..., 503)` when the coordinator cannot be reached).
Calls go over `config.internal_http` keep-alive connections (~50 us of client CPU a call
where aiohttp's client took ~150: a small S3 GET is one call). Set
`request_id` (and `client_addr`) in the caller's context to have them travel with every
call as X-Request-Id / X-Shardbox-Client.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import TypeAdapter

from config.cluster_auth import COORDINATOR, body_hash, sign_headers
from config.internal_http import InternalHttp, ProtocolError
from coordinator.api import PREFIX, AdminAPI, Call, CoordinatorAPI, ProductAPI, calls
from coordinator.records import CoordinatorError, NodeInfo

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coordinator_request_id", default=None
)
client_addr: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coordinator_client_addr", default=None
)

MAX_ANSWER = 1 << 30  # a manifest of a multi-TiB object is a few hundred MB of JSON


_NODE_INFO = TypeAdapter(NodeInfo)


class CoordinatorClient(CoordinatorAPI, AdminAPI, ProductAPI):
    """Every call of coordinator/api.py over HTTP (methods attached below the class)."""

    def __init__(self, base_url: str, secret: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        url = urlsplit(self.base_url)
        self._origin = f"{url.scheme}://{url.netloc}"
        self._base_path = url.path
        self._secret = secret
        self._timeout_s = timeout_s
        self._http = InternalHttp(max_idle_per_server=100)

    async def close(self) -> None:
        self._http.close()

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        headers = sign_headers(
            self._secret, method, self._base_path + path, body_hash(body), target=COORDINATOR
        )
        headers["Content-Type"] = "application/json"
        rid = request_id.get()
        if rid:
            headers["X-Request-Id"] = rid
        addr = client_addr.get()
        if addr:
            headers["X-Shardbox-Client"] = addr
        return headers

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        headers = self._headers(method, path, body)
        try:
            async with asyncio.timeout(self._timeout_s):
                resp = await self._http.request(
                    self._origin, method, self._base_path + path, headers, body, max_body=MAX_ANSWER
                )
        except (TimeoutError, OSError, ProtocolError) as exc:
            raise CoordinatorError("ServiceUnavailable", f"coordinator unreachable: {exc!r}", 503) from exc
        return resp.status, resp.body

    async def _call(self, path: str, params: dict[str, Any]) -> Any:
        try:  # orjson serialises the record dataclasses directly
            body = orjson.dumps(params)
        except TypeError:  # e.g. an integer beyond 64 bits: let the server refuse it precisely
            body = json.dumps(_plain(params), separators=(",", ":")).encode()
        status, raw = await self._exchange("POST", path, body)
        try:
            return _document(status, raw).get("result")
        except ValueError:
            raise CoordinatorError(
                "InternalError", f"coordinator answered {status} without JSON", status
            ) from None

    async def heartbeat(self, health: dict[str, Any]) -> NodeInfo:
        """What a node sends: its /health document plus `address` (the node posts it itself,
        without this client: see node/heartbeat.py; this is for tools and tests)."""
        return _NODE_INFO.validate_python(await self._call(f"{PREFIX}/nodes/heartbeat", health))

    async def health(self) -> dict[str, Any]:
        status, raw = await self._exchange("GET", "/health", b"")
        try:
            return _document(status, raw)
        except ValueError as exc:
            message = f"coordinator answered {status} without JSON"
            raise CoordinatorError("ServiceUnavailable", message, 503) from exc


def _document(status: int, raw: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The coordinator's JSON answer; CoordinatorError for an error answer, ValueError if not JSON."""
    data = orjson.loads(raw)
    if status >= 400 or "error" in data:
        err = data.get("error") or {}
        raise CoordinatorError(err.get("code", "InternalError"), err.get("message", ""), status)
    return data


def _plain(value: Any) -> Any:
    """JSON-ready copy of records (for the stdlib encoder, which knows no dataclasses)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _client_method(call: Call) -> Any:
    async def method(self: CoordinatorClient, /, *args: Any, **kwargs: Any) -> Any:
        return call.result.validate_python(await self._call(call.path, call.arguments(*args, **kwargs)))

    method.__name__ = method.__qualname__ = call.name
    method.__doc__ = call.doc
    method.__signature__ = call.signature  # type: ignore[attr-defined]
    return method


for _c in calls().values():
    setattr(CoordinatorClient, _c.name, _client_method(_c))
