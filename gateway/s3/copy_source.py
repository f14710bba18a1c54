"""`x-amz-copy-source` parsing and the source checks shared by CopyObject and UploadPartCopy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from coordinator.records import CoordinatorError, ObjectInfo
from coordinator.scan_gate import RETRY_AFTER_S, Reader, refusal
from gateway.s3.conditions import Conditions, Outcome
from gateway.s3.context import S3Context
from gateway.s3.errors import S3Error
from gateway.s3.tiering import check_restored

MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None


def parse_copy_source(value: str) -> CopySource:
    """`[/]bucket/key[?versionId=V]`, URL-encoded; `versionId=null` names the null version."""
    raw, sep, query = value.partition("?")
    version_id = None
    if sep:
        name, _, version = query.partition("=")
        if name != "versionId" or not version:
            raise S3Error("InvalidArgument", "Invalid copy source: only ?versionId= is allowed",
                          ArgumentName="x-amz-copy-source", ArgumentValue=value)
        version_id = unquote(version)
    decoded = unquote(raw)
    if decoded.startswith("/"):
        decoded = decoded[1:]
    bucket, slash, key = decoded.partition("/")
    if not bucket or not slash or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey", ArgumentName="x-amz-copy-source", ArgumentValue=value)
    if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", MaxSizeAllowed=str(MAX_KEY_BYTES))
    return CopySource(bucket, key, version_id)


async def check_readable(ctx: S3Context, obj: ObjectInfo) -> None:
    """The scan's rule on reading the bytes (coordinator/scan_gate.py): a quarantined object only
    for admins (AccessDenied otherwise), one still being scanned 425 where the rule says so."""
    if obj.status == "ready":
        return
    assert ctx.auth is not None
    if ctx.anonymous_bucket is not None:  # unsigned, on a public-read object (gateway/s3/public.py)
        reader = Reader.PUBLIC
    else:
        reader = Reader.ADMIN if ctx.auth.key.is_admin else Reader.USER
    gate = False
    if obj.status == "scanning" and reader is Reader.USER:
        gate = (await ctx.state.buckets.lookup((ctx.tenant_id, obj.bucket))).scan_gate
    refused = refusal(obj.status, reader, bucket_gate=gate)
    if refused is None:
        return
    if refused.reason == "quarantined":
        raise S3Error("AccessDenied", f"{refused.message} ({obj.scan_result})")
    err = S3Error("ObjectScanning", refused.message, status=refused.status)
    err.headers["Retry-After"] = str(RETRY_AFTER_S)
    raise err


async def load_source(ctx: S3Context, with_chunks: bool,
                      narrowing: Mapping[str, int] | None = None) -> tuple[CopySource, ObjectInfo]:
    """Resolve the copy source, check it is readable and its x-amz-copy-source-if-* conditions.

    With a `narrowing` (conditions.manifest_narrowing) the manifest holds only the
    chunks it selects."""
    src = parse_copy_source(ctx.headers["x-amz-copy-source"])
    coordinator = ctx.state.coordinator
    try:
        obj = await coordinator.get_object(ctx.tenant_id, src.bucket, src.key, version_id=src.version_id,
                                           with_chunks=with_chunks, **(narrowing or {}))
    except CoordinatorError as exc:
        if exc.code == "MethodNotAllowed":  # a delete marker named by version id
            raise S3Error("InvalidRequest", "The source of a copy request may not specifically refer to "
                          "a delete marker by version id.") from None
        raise
    await check_readable(ctx, obj)
    check_restored(obj)
    outcome = Conditions.from_headers(ctx.headers, "x-amz-copy-source-").evaluate(obj.etag, obj.last_modified)
    if outcome is not Outcome.PROCEED:
        raise S3Error("PreconditionFailed", Condition="x-amz-copy-source-If-*")
    return src, obj
