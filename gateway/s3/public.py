"""Requests without credentials, and the little a `public-read` canned ACL lets them do.

An unsigned request may list or HEAD a bucket whose ACL is public-read, and GET or HEAD an
object version whose ACL is public-read (gateway/s3/acl.py); nothing else. The router names
the operations that may run unsigned (`ANONYMOUS_READS`), resolves the bucket by name and runs
the handler as the bucket's tenant with `ctx.anonymous_bucket` set; the object handlers call
`check_object_readable` before they answer anything about the object.

No existence oracle: a bucket that does not exist, or exists but is private, answers the same
403 AccessDenied; a missing key answers 404 only in a bucket anyone may list anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from coordinator.records import BucketInfo, KeyInfo, ObjectInfo
from gateway.s3.acl import PUBLIC_READ
from gateway.s3.context import S3Context
from gateway.s3.cors import bucket_by_name
from gateway.s3.errors import S3Error
from gateway.s3.sigv4 import AuthContext

ANONYMOUS = "anonymous"
# Operations an unsigned request may run, and whether the bucket's own ACL must allow them
# (listing) or the object's (reads, checked by the handler once it has the version).
ANONYMOUS_READS = {"ListObjects": True, "ListObjectsV2": True, "HeadBucket": True,
                   "GetObject": False, "HeadObject": False}
_QUERY_CREDENTIALS = ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Algorithm", "AWSAccessKeyId", "Signature")
# Answers that would tell an anonymous client more than a public-read ACL allows.
_HIDDEN = ("NoSuchKey", "NoSuchVersion", "MethodNotAllowed", "NoSuchBucket")


def denied() -> S3Error:
    return S3Error("AccessDenied", "Access Denied")


def has_credentials(request: web.Request) -> bool:
    """Whether the request claims to be signed (then it must verify, whatever its operation)."""
    query: Mapping[str, str] = request.query
    return "Authorization" in request.headers or any(name in query for name in _QUERY_CREDENTIALS)


async def authenticate_anonymous(ctx: S3Context, operation: str) -> AuthContext:
    """The identity an unsigned request runs under: nobody, in the bucket's tenant."""
    if operation not in ANONYMOUS_READS or ctx.bucket is None:
        raise S3Error("AccessDenied", "Anonymous access is not allowed for this operation; sign the request "
                      "with AWS Signature Version 4.")
    info = await bucket_by_name(ctx.state, ctx.bucket)
    if info is None or (ANONYMOUS_READS[operation] and info.acl != PUBLIC_READ):
        raise denied()
    ctx.anonymous_bucket = info
    key = KeyInfo(access_key="", secret_key="", user_id=ANONYMOUS, user_name=ANONYMOUS,
                  tenant_id=info.tenant_id)
    return AuthContext(access_key="", key=key, payload_mode="unsigned", payload_sha256=None, signing_key=b"",
                       scope="", amz_date="", seed_signature="", presigned=False, region=ctx.state.cfg.region,
                       version="anonymous")


def check_object_readable(ctx: S3Context, obj: ObjectInfo) -> None:
    """An anonymous read needs a public-read version."""
    if ctx.anonymous_bucket is not None and obj.acl != PUBLIC_READ:
        raise denied()


def hide(ctx: S3Context, err: S3Error) -> S3Error:
    """The error an anonymous client may see: a missing key only in a bucket it may list."""
    bucket: BucketInfo | None = ctx.anonymous_bucket
    if bucket is None or err.code not in _HIDDEN:
        return err
    if err.code in ("NoSuchKey", "NoSuchVersion") and bucket.acl == PUBLIC_READ:
        return err
    return denied()
