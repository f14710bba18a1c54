"""Bucket versioning: Get/PutBucketVersioning and ListObjectVersions.

How versions behave (null versions, delete markers, ordering) is the coordinator's version
model (coordinator/versions.py); this module speaks S3's XML for it. Every bucket can be
listed by version: a never-versioned one shows each object as its `null` version.
"""

from __future__ import annotations

from aiohttp import web

from coordinator.records import VersionEntry
from gateway.s3.context import S3Context
from gateway.s3.errors import S3Error
from gateway.s3.handlers_listing import MAX_KEYS, effective_marker, encoding_of, url_encode
from gateway.s3.responses import int_param, owner, xml_response
from gateway.s3.xmlio import find_text, iso8601, parse_xml

_STATES = ("Enabled", "Suspended")


async def get_bucket_versioning(ctx: S3Context) -> web.StreamResponse:
    """A never-versioned bucket answers an empty configuration, as AWS does."""
    info = await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
    return xml_response("VersioningConfiguration", [("Status", info.versioning)] if info.versioning else None)


async def put_bucket_versioning(ctx: S3Context) -> web.StreamResponse:
    doc = parse_xml(await ctx.read_small_body(), "VersioningConfiguration")
    status = (find_text(doc, "Status") or "").strip()
    mfa = (find_text(doc, "MfaDelete") or "").strip()
    if mfa == "Enabled":
        raise S3Error("NotImplemented", "MFA delete is not supported", status=501)
    if status not in _STATES:
        raise S3Error("MalformedXML")
    await ctx.state.coordinator.set_bucket_versioning(ctx.tenant_id, ctx.bucket, status)
    ctx.state.forget_bucket(ctx.tenant_id, ctx.bucket)
    return web.Response(status=200)


def _entry(ctx: S3Context, v: VersionEntry, enc) -> tuple[str, list]:
    oid = v.owner_id or ctx.user_id
    who = owner(oid, ctx.auth.key.user_name if oid == ctx.user_id else oid)
    head: list[tuple[str, object]] = [("Key", enc(v.key)), ("VersionId", v.version_id),
                                      ("IsLatest", v.is_latest), ("LastModified", iso8601(v.last_modified))]
    if v.delete_marker:
        return "DeleteMarker", [*head, ("Owner", who)]
    return "Version", [*head, ("ETag", v.etag), ("Size", v.size), ("Owner", who),
                       ("StorageClass", v.storage_class or "STANDARD"),
                       *[("ChecksumAlgorithm", a.upper()) for a in v.checksum_algorithms]]


async def list_object_versions(ctx: S3Context) -> web.StreamResponse:
    """GET /bucket?versions: keys in byte order, each key's versions newest first."""
    q = ctx.query
    encoding = encoding_of(ctx)

    def enc(value: str) -> str:
        return url_encode(value) if encoding else value

    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    key_marker = q.get("key-marker") or None
    version_marker = q.get("version-id-marker") or None
    if version_marker is not None and key_marker is None:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker.",
                      ArgumentName="version-id-marker", ArgumentValue=version_marker)
    max_keys = int_param(q, "max-keys", MAX_KEYS, cap=MAX_KEYS)
    after = key_marker if version_marker else effective_marker(key_marker, prefix, delimiter)
    result = await ctx.state.coordinator.list_object_versions(
        ctx.tenant_id, ctx.bucket, prefix, delimiter, after, version_marker, max_keys)
    children: list[tuple[str, object]] = [
        ("Name", ctx.bucket), ("Prefix", enc(prefix)), ("KeyMarker", enc(key_marker or "")),
        ("VersionIdMarker", version_marker or "")]
    if result.is_truncated:
        children.append(("NextKeyMarker", enc(result.next_key_marker or "")))
        if result.next_version_id_marker:
            children.append(("NextVersionIdMarker", result.next_version_id_marker))
    children.append(("MaxKeys", max_keys))
    if delimiter is not None:
        children.append(("Delimiter", enc(delimiter)))
    if encoding:
        children.append(("EncodingType", encoding))
    children.append(("IsTruncated", bool(result.is_truncated)))
    children += [_entry(ctx, v, enc) for v in result.versions]
    children += [("CommonPrefixes", [("Prefix", enc(p))]) for p in result.common_prefixes]
    return xml_response("ListVersionsResult", children)
