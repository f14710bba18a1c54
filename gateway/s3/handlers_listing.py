"""ListObjects (V1) and ListObjectsV2.

The coordinator lists keys strictly after a marker in UTF-8 byte order, folding keys
under a delimiter into common prefixes. This module turns S3's paging vocabulary
(continuation tokens, start-after, markers) into that marker and renders both result
documents, including `encoding-type=url`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from coordinator.records import ListEntry, ListResult
from gateway.s3.context import S3Context
from gateway.s3.errors import S3Error
from gateway.s3.responses import decode_token, encode_token, int_param, owner, xml_response
from gateway.s3.xmlio import iso8601

MAX_KEYS = 1000
# The largest code point; in UTF-8 byte order it sorts after every key continuing a prefix.
_PAST_PREFIX = "\U0010ffff"


def url_encode(value: str) -> str:
    """S3's `encoding-type=url`: percent-encoding of everything but unreserved characters and
    slashes, so a space is `%20` and a `+` is `%2B` (SDKs decode it with unquote_plus)."""
    return quote(value, safe="/")


def effective_marker(marker: str | None, prefix: str, delimiter: str | None) -> str | None:
    """The coordinator marker for a client marker.

    When the marker is a common prefix (it ends with the delimiter right after `prefix`),
    the next page must continue after every key under it, not just after the prefix itself.
    """
    if not marker or not delimiter or not marker.startswith(prefix):
        return marker
    rest = marker[len(prefix):]
    if rest.endswith(delimiter) and rest.find(delimiter) == len(rest) - len(delimiter):
        return marker + _PAST_PREFIX
    return marker


def encoding_of(ctx: S3Context) -> str | None:
    """The `encoding-type` asked for (only `url` exists), InvalidArgument for anything else."""
    encoding = ctx.query.get("encoding-type")
    if encoding is not None and encoding.lower() != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request",
                      ArgumentName="encoding-type", ArgumentValue=encoding)
    return "url" if encoding is not None else None


async def _list(ctx: S3Context, prefix: str, delimiter: str | None, marker: str | None,
                max_keys: int) -> ListResult:
    if max_keys == 0:
        await ctx.state.coordinator.get_bucket(ctx.tenant_id, ctx.bucket)
        return ListResult()
    return await ctx.state.coordinator.list_objects(
        ctx.tenant_id, ctx.bucket, prefix, delimiter, effective_marker(marker, prefix, delimiter), max_keys)


def _contents(ctx: S3Context, entries: list[ListEntry], enc, with_owner: bool) -> list:
    out = []
    for e in entries:
        item: list[tuple[str, object]] = [
            ("Key", enc(e.key)), ("LastModified", iso8601(e.last_modified)), ("ETag", e.etag),
            ("Size", e.size)]
        if with_owner:
            oid = e.owner_id or ctx.user_id
            item.append(("Owner", owner(oid, ctx.auth.key.user_name if oid == ctx.user_id else oid)))
        item.append(("StorageClass", e.storage_class or "STANDARD"))
        out.append(("Contents", item))
    return out


def _common(result: ListResult, enc) -> list:
    return [("CommonPrefixes", [("Prefix", enc(p))]) for p in result.common_prefixes]


@dataclass
class _ListParams:
    """What ListObjects V1 and V2 read the same way from the query string."""

    encoding: str | None
    prefix: str
    delimiter: str | None
    max_keys: int

    @classmethod
    def parse(cls, ctx: S3Context) -> _ListParams:
        q = ctx.query
        return cls(encoding_of(ctx), q.get("prefix", ""), q.get("delimiter") or None,
                   int_param(q, "max-keys", MAX_KEYS, cap=MAX_KEYS))

    def enc(self, value: str) -> str:
        return url_encode(value) if self.encoding else value

    def closing(self, ctx: S3Context, result: ListResult, fetch_owner: bool) -> list:
        """The elements both versions end their answer with, in S3's order."""
        out: list[tuple[str, object]] = []
        if self.delimiter is not None:
            out.append(("Delimiter", self.enc(self.delimiter)))
        if self.encoding:
            out.append(("EncodingType", self.encoding))
        out.append(("IsTruncated", bool(result.is_truncated)))
        return out + _contents(ctx, result.contents, self.enc, fetch_owner) + _common(result, self.enc)


async def list_objects_v2(ctx: S3Context) -> web.StreamResponse:
    q = ctx.query
    p = _ListParams.parse(ctx)
    token = q.get("continuation-token")
    start_after = q.get("start-after")
    if token is not None:
        if token == "":
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                          ArgumentName="continuation-token", ArgumentValue="")
        marker: str | None = decode_token(token)
    else:
        marker = start_after or None
    fetch_owner = q.get("fetch-owner", "").lower() == "true"
    result = await _list(ctx, p.prefix, p.delimiter, marker, p.max_keys)
    children: list[tuple[str, object]] = [("Name", ctx.bucket), ("Prefix", p.enc(p.prefix))]
    if token is not None:
        children.append(("ContinuationToken", token))
    if result.is_truncated and result.next_marker is not None:
        children.append(("NextContinuationToken", encode_token(result.next_marker)))
    if start_after is not None:
        children.append(("StartAfter", p.enc(start_after)))
    children += [("KeyCount", len(result.contents) + len(result.common_prefixes)), ("MaxKeys", p.max_keys)]
    children += p.closing(ctx, result, fetch_owner)
    return xml_response("ListBucketResult", children)


async def list_objects_v1(ctx: S3Context) -> web.StreamResponse:
    p = _ListParams.parse(ctx)
    marker = ctx.query.get("marker", "")
    result = await _list(ctx, p.prefix, p.delimiter, marker or None, p.max_keys)
    children: list[tuple[str, object]] = [
        ("Name", ctx.bucket), ("Prefix", p.enc(p.prefix)), ("Marker", p.enc(marker))]
    if p.delimiter is not None and result.is_truncated and result.next_marker is not None:
        children.append(("NextMarker", p.enc(result.next_marker)))
    children.append(("MaxKeys", p.max_keys))
    children += p.closing(ctx, result, True)
    return xml_response("ListBucketResult", children)
