"""Errors of the product API: `{"error": {"code", "message", ...}}` with the right status."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from coordinator.records import CoordinatorError

# Coordinator codes as the product API names them (S3-style names stay S3's).
_RENAMED = {
    "NoSuchUpload": "NotFound",
    "NoSuchKey": "NotFound",
    "NoSuchVersion": "NotFound",
    "NoSuchBucket": "NotFound",
    "NoSuchUser": "NotFound",
}
# The product answers a full quota with 413, as the clients expect (S3 says 403).
_STATUS = {"QuotaExceeded": 413}


class ApiError(Exception):
    """An error answer; `extra` goes into the error object, `headers` onto the response."""

    def __init__(self, code: str, message: str, status: int = 400, *,
                 extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


def from_coordinator(exc: CoordinatorError) -> ApiError:
    code = _RENAMED.get(exc.code, exc.code)
    status = _STATUS.get(exc.code, exc.status)
    if status >= 500 and exc.code not in ("ServiceUnavailable",):
        return ApiError("InternalError", "internal error; see the gateway and coordinator logs", 500)
    return ApiError(code, exc.message, status)


def not_found(what: str = "no such file or folder") -> ApiError:
    return ApiError("NotFound", what, 404)


def bad_request(message: str) -> ApiError:
    return ApiError("InvalidArgument", message, 400)


def error_response(err: ApiError, request_id: str) -> web.Response:
    body = {"error": {"code": err.code, "message": err.message, **err.extra}}
    headers = {"X-Request-Id": request_id, **err.headers}
    return web.Response(body=orjson.dumps(body), status=err.status, content_type="application/json",
                        headers=headers)
