"""From an HTTP request to one S3 operation: addressing, dispatch, errors, request ids, logs.

`resolve_address` finds bucket and key (path style `/bucket/key`, or virtual-host style
`bucket.DOMAIN/key`), `select_operation` picks the operation from method, address and
subresource query parameters (pure functions, unit-tested), and `handle` runs it with
authentication, error mapping and the one log line per request.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from blob import DataUnavailable, UnsupportedChecksum, WriteFailed
from config.serving import BodyTimeout
from coordinator import client as coordinator_client
from coordinator.records import CoordinatorError, is_drive_bucket
from gateway.s3 import cors, public, tiering
from gateway.s3 import handlers_bucket as hb
from gateway.s3 import handlers_listing as hl
from gateway.s3 import handlers_multipart as hm
from gateway.s3 import handlers_objects as ho
from gateway.s3 import handlers_versions as hv
from gateway.s3.context import STATE_KEY, S3Context, s3_error_from
from gateway.s3.errors import S3Error, error_response
from gateway.s3.post_object import post_object
from gateway.s3.sigv4 import authenticate

log = logging.getLogger("gateway.s3")
Handler = Callable[[S3Context], Awaitable[web.StreamResponse]]
MAX_KEY_BYTES = 1024
REQUEST_ID_KEY = web.RequestKey("s3_request_id", str) if hasattr(web, "RequestKey") else "s3_request_id"
CORS_KEY = web.RequestKey("s3_cors_headers", dict) if hasattr(web, "RequestKey") else "s3_cors_headers"
SIGNED, PUBLIC, UNSIGNED = "signed", "public", "unsigned"


@dataclass(frozen=True)
class Address:
    bucket: str | None
    key: str | None


@dataclass(frozen=True)
class Operation:
    """An S3 operation. `auth`: SIGNED (every request must verify), PUBLIC (may also run
    unsigned, as gateway/s3/public.py allows), UNSIGNED (the handler checks what the request
    carries itself: a CORS preflight, a browser POST form with its signed policy)."""

    name: str
    handler: Handler
    auth: str = SIGNED


def resolve_address(host: str | None, raw_path: str, domain: str | None) -> Address:
    """Bucket and key of a request; InvalidURI for a path that is not valid percent-encoded UTF-8."""
    path = raw_path.partition("?")[0] or "/"
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", status=400) from None
    if not decoded.startswith("/"):
        decoded = "/" + decoded
    vhost_bucket = None
    if domain and host:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower().rstrip(".")
        suffix = "." + domain.lower()
        if name.endswith(suffix) and len(name) > len(suffix):
            vhost_bucket = name[: -len(suffix)]
    if vhost_bucket is not None:
        key = decoded[1:]
        return Address(vhost_bucket, key or None)
    bucket, _, key = decoded[1:].partition("/")
    return Address(bucket or None, key or None)


# GET subresources of a bucket (and those that answer a fixed "nothing configured" document or error)
_BUCKET_GET: dict[str, tuple[str, Handler]] = {
    "location": ("GetBucketLocation", hb.get_bucket_location),
    "versioning": ("GetBucketVersioning", hv.get_bucket_versioning),
    "versions": ("ListObjectVersions", hv.list_object_versions),
    "acl": ("GetBucketAcl", hb.get_acl),
    "cors": ("GetBucketCors", cors.get_bucket_cors),
    "uploads": ("ListMultipartUploads", hm.list_uploads),
    "logging": ("GetBucketLogging", hb.get_bucket_logging),
    "requestPayment": ("GetBucketRequestPayment", hb.get_request_payment),
    "lifecycle": ("GetBucketLifecycleConfiguration", tiering.get_lifecycle),
    **{sub: (f"GetBucket{sub[0].upper()}{sub[1:]}", hb.not_configured(sub)) for sub in hb.NOT_CONFIGURED},
}
_BUCKET_PUT: dict[str, tuple[str, Handler]] = {
    "versioning": ("PutBucketVersioning", hv.put_bucket_versioning),
    "acl": ("PutBucketAcl", hb.put_acl),
    "cors": ("PutBucketCors", cors.put_bucket_cors),
    "lifecycle": ("PutBucketLifecycleConfiguration", tiering.put_lifecycle),
}
_OBJECT_SUB: dict[tuple[str, str], tuple[str, Handler]] = {
    ("GET", "acl"): ("GetObjectAcl", hb.get_acl),
    ("PUT", "acl"): ("PutObjectAcl", hb.put_acl),
    ("GET", "tagging"): ("GetObjectTagging", hb.get_object_tagging),
    ("PUT", "tagging"): ("PutObjectTagging", hb.put_object_tagging),
    ("DELETE", "tagging"): ("DeleteObjectTagging", hb.delete_object_tagging),
    ("GET", "attributes"): ("GetObjectAttributes", ho.get_object_attributes),
}
# subresources handled above (for some methods), then those recognised but not offered
_HANDLED = {"acl", "tagging", "versioning", "versions", "cors", "attributes"}
_UNSUPPORTED = {"analytics", "metrics", "inventory", "intelligent-tiering", "accelerate",
                "notification", "restore", "select", "torrent", "retention", "legal-hold",
                "object-lock", "website", "replication", "policyStatus", "lifecycle", "policy",
                "encryption", "ownershipControls", "publicAccessBlock",
                "logging", "requestPayment", "session", "metadataTable"}


def _not_implemented(what: str) -> Handler:
    async def handler(ctx: S3Context) -> web.StreamResponse:
        raise S3Error("NotImplemented", f"{what} is not implemented by shardbox", status=501)
    return handler


def _delete_nothing(ctx_name: str) -> Handler:
    """DELETE of a bucket configuration shardbox never stores: done, as AWS answers."""
    async def handler(ctx: S3Context) -> web.StreamResponse:
        await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
        return web.Response(status=204)
    return handler


def _method_not_allowed(ctx: S3Context) -> Awaitable[web.StreamResponse]:
    async def fail() -> web.StreamResponse:
        raise S3Error("MethodNotAllowed", Method=ctx.request.method, ResourceType=(
            "OBJECT" if ctx.key else "BUCKET" if ctx.bucket else "SERVICE"))
    return fail()


def _subresource(query: Mapping[str, str]) -> str | None:
    for name in query:
        if (name in _UNSUPPORTED or name in _HANDLED or name in _BUCKET_GET
                or name in ("delete", "uploadId", "uploads")):
            return name
    return None


def select_operation(method: str, address: Address, query: Mapping[str, str],
                     headers: Mapping[str, str]) -> Operation:
    """The S3 operation a request names (no I/O). Unknown methods -> MethodNotAllowed."""
    method = method.upper()
    bucket, key = address.bucket, address.key
    sub = _subresource(query)
    if method == "OPTIONS" and bucket is not None:
        return Operation("PreflightRequest", cors.preflight, UNSIGNED)
    if bucket is None:
        if method in ("GET", "HEAD"):
            return Operation("ListBuckets", hb.list_buckets)
        return Operation("MethodNotAllowed", _method_not_allowed)
    if key is None:
        if method == "GET":
            if sub in _BUCKET_GET:
                return Operation(*_BUCKET_GET[sub])
            if sub is not None:
                return Operation(f"GetBucket:{sub}", _not_implemented(f"GET ?{sub}"))
            list_type = query.get("list-type")
            if list_type == "2":
                return Operation("ListObjectsV2", hl.list_objects_v2, PUBLIC)
            if list_type not in (None, "1"):
                return Operation("ListObjects", _invalid_list_type(list_type))
            return Operation("ListObjects", hl.list_objects_v1, PUBLIC)
        if method == "HEAD":
            return Operation("HeadBucket", hb.head_bucket, PUBLIC)
        if method == "PUT":
            if sub is None:
                return Operation("CreateBucket", hb.create_bucket)
            if sub in _BUCKET_PUT:
                return Operation(*_BUCKET_PUT[sub])
            return Operation(f"PutBucket:{sub}", _not_implemented(f"PUT ?{sub}"))
        if method == "DELETE":
            if sub is None:
                return Operation("DeleteBucket", hb.delete_bucket)
            if sub == "lifecycle":
                return Operation("DeleteBucketLifecycle", tiering.delete_lifecycle)
            if sub == "cors":
                return Operation("DeleteBucketCors", cors.delete_bucket_cors)
            if sub in hb.NOT_CONFIGURED:
                return Operation(f"DeleteBucket:{sub}", _delete_nothing(sub))
            return Operation(f"DeleteBucket:{sub}", _not_implemented(f"DELETE ?{sub}"))
        if method == "POST":
            if sub == "delete":
                return Operation("DeleteObjects", ho.delete_objects)
            if sub is None and headers.get("Content-Type", "").lower().startswith("multipart/form-data"):
                return Operation("PostObject", post_object, UNSIGNED)
            return Operation("PostBucket", _not_implemented("POST on a bucket"))
        return Operation("MethodNotAllowed", _method_not_allowed)
    # object level
    if (method, sub) in _OBJECT_SUB and "uploadId" not in query:
        return Operation(*_OBJECT_SUB[(method, sub)])
    if method == "GET":
        if "uploadId" in query:
            return Operation("ListParts", hm.list_parts)
        if sub is not None and (sub in _UNSUPPORTED or sub in _HANDLED):
            return Operation(f"GetObject:{sub}", _not_implemented(f"GET ?{sub}"))
        return Operation("GetObject", ho.get_object, PUBLIC)
    if method == "HEAD":
        return Operation("HeadObject", ho.head_object, PUBLIC)
    if method == "PUT":
        if "uploadId" in query or "partNumber" in query:
            if "x-amz-copy-source" in headers:
                return Operation("UploadPartCopy", hm.upload_part_copy)
            return Operation("UploadPart", hm.upload_part)
        if sub is not None and (sub in _UNSUPPORTED or sub in _HANDLED):
            return Operation(f"PutObject:{sub}", _not_implemented(f"PUT ?{sub}"))
        if "x-amz-copy-source" in headers:
            return Operation("CopyObject", ho.copy_object)
        return Operation("PutObject", ho.put_object)
    if method == "POST":
        if "uploads" in query:
            return Operation("CreateMultipartUpload", hm.create_upload)
        if "uploadId" in query:
            return Operation("CompleteMultipartUpload", hm.complete_upload)
        if sub == "restore":
            return Operation("RestoreObject", tiering.restore_object)
        return Operation("PostObject", _not_implemented(f"POST ?{sub}" if sub else "POST on an object"))
    if method == "DELETE":
        if "uploadId" in query:
            return Operation("AbortMultipartUpload", hm.abort_upload)
        if sub is not None and (sub in _UNSUPPORTED or sub in _HANDLED):
            return Operation(f"DeleteObject:{sub}", _not_implemented(f"DELETE ?{sub}"))
        return Operation("DeleteObject", ho.delete_object)
    return Operation("MethodNotAllowed", _method_not_allowed)


def _invalid_list_type(value: str) -> Handler:
    async def handler(ctx: S3Context) -> web.StreamResponse:
        raise S3Error("InvalidArgument", "Invalid List Type specified in Request",
                      ArgumentName="list-type", ArgumentValue=value)
    return handler


def new_request_id() -> str:
    """16 upper-case hex characters, the shape of an AWS request id."""
    return os.urandom(8).hex().upper()


def _id2(request_id: str) -> str:
    return base64.b64encode(request_id.encode() + os.urandom(24)).decode()


def _as_s3_error(exc: BaseException) -> S3Error | None:
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, CoordinatorError):
        return s3_error_from(exc)
    if isinstance(exc, WriteFailed):
        return S3Error("ServiceUnavailable", f"could not store the data durably: {exc}")
    if isinstance(exc, DataUnavailable):
        return S3Error("ServiceUnavailable", "too many shards unavailable to read the object")
    if isinstance(exc, UnsupportedChecksum):
        return S3Error("InvalidRequest", str(exc))
    if isinstance(exc, BodyTimeout):      # the client stopped sending the body (any reader of it)
        return S3Error("RequestTimeout")
    return None


def _set_request_context(request_id: str, remote: str | None) -> None:
    """Hand the id and client address to the coordinator client (they travel as headers)."""
    coordinator_client.request_id.set(request_id)
    coordinator_client.client_addr.set(remote)


async def expect_handler(request: web.Request) -> None:
    """Send nothing yet: `S3Context.send_continue` answers 100 once headers were judged acceptable."""
    return None


async def handle(request: web.Request) -> web.StreamResponse:
    """The one aiohttp handler behind every S3 URL."""
    started = time.monotonic()
    state = request.app[STATE_KEY]
    request_id = new_request_id()
    request[REQUEST_ID_KEY] = request_id
    _set_request_context(request_id, request.remote)
    ctx = S3Context(request=request, state=state, request_id=request_id)
    op_name = "-"
    error_code = None
    try:
        address = resolve_address(request.headers.get("Host"), request.raw_path, state.cfg.domain)
        ctx.bucket, ctx.key = address.bucket, address.key
        if is_drive_bucket(ctx.bucket):  # users' drives are the product API's, never S3's
            raise S3Error("NoSuchBucket", "The specified bucket does not exist")
        if ctx.key is not None and len(ctx.key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", MaxSizeAllowed=str(MAX_KEY_BYTES),
                          Size=str(len(ctx.key.encode("utf-8", "surrogateescape"))))
        operation = select_operation(request.method, address, request.query, request.headers)
        op_name = operation.name
        if ctx.bucket is not None and operation.handler is not cors.preflight and "Origin" in request.headers:
            request[CORS_KEY] = await cors.actual_request_headers(state, ctx.bucket, request)
        if operation.auth == PUBLIC and not public.has_credentials(request):
            ctx.auth = await public.authenticate_anonymous(ctx, op_name)
        elif operation.auth != UNSIGNED:
            ctx.auth = await authenticate(request, state.keys.lookup, state.cfg.region, state.cfg.max_skew_s)
        resp = await operation.handler(ctx)
    except Exception as exc:
        err = _as_s3_error(exc)
        if err is None:
            log.error("request.failed", exc_info=exc, extra={"fields": {
                "request_id": request_id, "method": request.method, "path": request.path, "op": op_name}})
            err = S3Error("InternalError")
        err = public.hide(ctx, err)
        error_code = err.code
        ctx.log_fields["error_message"] = err.message
        _add_context(err, ctx)
        resp = error_response(err, request_id, request.method)
        for name, value in (getattr(err, "headers", None) or {}).items():
            resp.headers[name] = value
        if request.body_exists and not request.content.at_eof():
            # The body was refused unread: close rather than drain (or wait for) it.
            resp.force_close()
    _log(ctx, op_name, resp, error_code, started)
    return resp


def _add_context(err: S3Error, ctx: S3Context) -> None:
    """Name the resource in the error document, as S3 does (`<Resource>`, `<Key>`, `<BucketName>`)."""
    if err.resource is None and ctx.bucket is not None:
        err.resource = ctx.resource
    if err.code == "NoSuchKey" and ctx.key is not None:
        err.extra.setdefault("Key", ctx.key)
    elif err.code in ("NoSuchBucket", "BucketNotEmpty", "BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
        err.extra.setdefault("BucketName", ctx.bucket or "")
    elif err.code == "NoSuchUpload" and "uploadId" in ctx.request.query:
        err.extra.setdefault("UploadId", ctx.request.query["uploadId"])


def _log(ctx: S3Context, op: str, resp: web.StreamResponse, error_code: str | None, started: float) -> None:
    request = ctx.request
    fields = {
        "request_id": ctx.request_id, "op": op, "method": request.method, "path": request.path,
        "bucket": ctx.bucket, "status": resp.status,
        "bytes_in": request.content_length or 0,
        "bytes_out": ctx.log_fields.pop("bytes_out", None) or resp.content_length or 0,
        "duration_ms": round((time.monotonic() - started) * 1000, 2),
        "access_key": getattr(ctx.auth, "access_key", None), "error_code": error_code,
        "remote": request.remote, **ctx.log_fields,
    }
    if ctx.read_stats.shard_gets:
        fields.update(ctx.read_stats.log_fields())
    level = logging.WARNING if resp.status >= 500 and resp.status != 501 else logging.INFO
    log.log(level, "s3.request", extra={"fields": fields})
    if ctx.auth is not None and ctx.state.usage is not None:
        ctx.state.usage.count(ctx.tenant_id, fields["bytes_in"], fields["bytes_out"])


async def add_id_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer (streamed or not) carries the request ids."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is None:
        return
    response.headers["x-amz-request-id"] = request_id
    response.headers["x-amz-id-2"] = _id2(request_id)
    response.headers["Server"] = "shardbox"
    for name, value in request.get(CORS_KEY, {}).items():
        response.headers.setdefault(name, value)
