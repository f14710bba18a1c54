"""Multipart uploads: create, upload part (and part copy), complete, abort, list parts, list uploads."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import web

from config.values import BadValue, parse_uint
from coordinator.records import UploadInfo
from gateway.s3 import acl, objmeta, retries, tagging, upload_body
from gateway.s3.conditions import manifest_narrowing, parse_copy_source_range
from gateway.s3.context import S3_MAX_PUT, S3Context
from gateway.s3.copy_source import load_source
from gateway.s3.errors import S3Error
from gateway.s3.handlers_listing import encoding_of, url_encode
from gateway.s3.responses import INT32_MAX, int_param, owner, parse_part_number, xml_response
from gateway.s3.write_conditions import write_condition
from gateway.s3.xmlio import find_all, find_text, iso8601, parse_xml


def _upload_id(ctx: S3Context) -> str:
    upload_id = ctx.query.get("uploadId", "")
    if not upload_id:
        raise S3Error("NoSuchUpload", resource=ctx.resource)
    return upload_id


async def create_upload(ctx: S3Context) -> web.StreamResponse:
    """POST /bucket/key?uploads"""
    meta = objmeta.from_request(ctx.headers)
    algorithm = upload_body.checksum_algorithm(ctx.headers.get("x-amz-checksum-algorithm"))
    tags = tagging.from_header(ctx.headers.get("x-amz-tagging"))
    write_id, retried = retries.attempt(ctx.headers)
    upload = await ctx.state.coordinator.begin_upload(
        ctx.tenant_id, ctx.user_id, ctx.bucket, ctx.key, "multipart", 0, meta.content_type,
        meta.metadata, meta.headers, meta.storage_class, algorithm, tags, acl.from_headers(ctx.headers),
        write_id, retried)
    headers = {"x-amz-checksum-algorithm": algorithm.upper()} if algorithm else {}
    return xml_response("InitiateMultipartUploadResult", [
        ("Bucket", ctx.bucket), ("Key", ctx.key), ("UploadId", upload.upload_id)], headers=headers)


async def upload_part(ctx: S3Context) -> web.StreamResponse:
    """PUT /bucket/key?partNumber=N&uploadId=U (body = the part)."""
    part_number = parse_part_number(ctx.query.get("partNumber", ""))
    upload_id = _upload_id(ctx)
    stream, requested = await upload_body.prepare(ctx)
    upload = await ctx.state.coordinator.get_upload(ctx.tenant_id, ctx.bucket, ctx.key, upload_id)
    got = await upload_body.receive(ctx, stream, requested, _upload_algorithms(upload))
    await ctx.state.coordinator.put_part(ctx.tenant_id, ctx.bucket, ctx.key, upload_id, part_number,
                                         got.result.size, got.etag, got.result.chunks, got.checksums)
    return web.Response(status=200, headers={"ETag": got.etag,
                                             **objmeta.checksum_headers(_echo(got.checksums, requested))})


def _upload_algorithms(upload: UploadInfo) -> set[str]:
    return {upload.checksum_algorithm.lower()} if upload.checksum_algorithm else set()


def _echo(checksums: dict[str, str], requested: dict[str, str | None]) -> dict[str, str]:
    return {a: v for a, v in checksums.items() if a in requested}


async def upload_part_copy(ctx: S3Context) -> web.StreamResponse:
    """PUT ?partNumber&uploadId with x-amz-copy-source[-range]: the part is read from a stored object."""
    part_number = parse_part_number(ctx.query.get("partNumber", ""))
    upload_id = _upload_id(ctx)
    upload = await ctx.state.coordinator.get_upload(ctx.tenant_id, ctx.bucket, ctx.key, upload_id)
    range_header = ctx.headers.get("x-amz-copy-source-range")
    # Only the chunks the range overlaps are loaded (it is checked against the size below).
    src, source = await load_source(ctx, with_chunks=True, narrowing=manifest_narrowing(range_header, None))
    if range_header:
        rng = parse_copy_source_range(range_header, source.size)
        start, end = rng.start, rng.end
    else:
        if source.size > S3_MAX_PUT:
            raise S3Error("InvalidRequest", "The specified copy source is larger than the maximum "
                          "allowable size for a copy source: 5368709120")
        start, end = 0, source.size - 1
    store = ctx.state.store

    async def pieces() -> AsyncIterator[bytes]:
        if end < start:
            return
        reading = store.read(source, start, end, request_id=ctx.request_id, stats=ctx.read_stats)
        async with contextlib.aclosing(reading) as it:
            async for piece in it:
                yield piece

    got = await upload_body.store_iterator(ctx, pieces(), _upload_algorithms(upload))
    part = await ctx.state.coordinator.put_part(ctx.tenant_id, ctx.bucket, ctx.key, upload_id, part_number,
                                                got.result.size, got.etag, got.result.chunks, got.checksums)
    headers = {}
    if source.versioning is not None or src.version_id is not None:
        headers["x-amz-copy-source-version-id"] = source.s3_version_id
    return xml_response("CopyPartResult", [
        ("LastModified", iso8601(part.last_modified or source.last_modified)), ("ETag", got.etag),
        *objmeta.checksum_xml(got.checksums)], headers=headers)


async def complete_upload(ctx: S3Context) -> web.StreamResponse:
    """POST /bucket/key?uploadId=U with the part list."""
    upload_id = _upload_id(ctx)
    body = await ctx.read_small_body()
    doc = parse_xml(body, "CompleteMultipartUpload")
    parts: list[tuple[int, str]] = []
    for el in find_all(doc, "Part"):
        number, etag = find_text(el, "PartNumber"), find_text(el, "ETag")
        if number is None or etag is None:
            raise S3Error("MalformedXML")
        try:
            parts.append((parse_uint(number.strip(), INT32_MAX), etag.strip()))
        except BadValue:
            raise S3Error("MalformedXML", "PartNumber must be a positive integer") from None
    if not parts:
        raise S3Error("MalformedXML", "You must specify at least one part")
    condition = await write_condition(ctx, early=False)
    obj = await ctx.state.coordinator.complete_upload(ctx.tenant_id, ctx.bucket, ctx.key, upload_id, parts,
                                                      condition)
    host = ctx.headers.get("Host", "localhost")
    location = f"{ctx.request.scheme}://{host}/{ctx.bucket}/{quote(ctx.key, safe='/')}"
    checksums, kind = objmeta.object_checksums(obj)
    return xml_response("CompleteMultipartUploadResult", [
        ("Location", location), ("Bucket", ctx.bucket), ("Key", ctx.key), ("ETag", obj.etag),
        *objmeta.checksum_xml(checksums), ("ChecksumType", kind)], headers=objmeta.version_headers(obj))


async def abort_upload(ctx: S3Context) -> web.StreamResponse:
    await retries.tolerating_done(ctx, "NoSuchUpload", ctx.state.coordinator.abort_upload(
        ctx.tenant_id, ctx.bucket, _upload_id(ctx)))
    return web.Response(status=204)


async def list_parts(ctx: S3Context) -> web.StreamResponse:
    """GET /bucket/key?uploadId=U"""
    upload_id = _upload_id(ctx)
    max_parts = int_param(ctx.query, "max-parts", 1000, cap=1000)
    marker = int_param(ctx.query, "part-number-marker", 0)
    upload = await ctx.state.coordinator.get_upload(ctx.tenant_id, ctx.bucket, ctx.key, upload_id)
    result = await ctx.state.coordinator.list_parts(ctx.tenant_id, ctx.bucket, ctx.key, upload_id,
                                                    max_parts, marker)
    who = owner(upload.owner_id, ctx.auth.key.user_name if upload.owner_id == ctx.user_id else None)
    children: list[tuple[str, object]] = [
        ("Bucket", ctx.bucket), ("Key", ctx.key), ("UploadId", upload_id),
        ("Initiator", who), ("Owner", who), ("StorageClass", upload.storage_class or "STANDARD"),
        ("PartNumberMarker", marker)]
    if result.next_part_number_marker is not None:
        children.append(("NextPartNumberMarker", result.next_part_number_marker))
    children += [("MaxParts", max_parts), ("IsTruncated", bool(result.is_truncated))]
    if upload.checksum_algorithm:
        children.append(("ChecksumAlgorithm", upload.checksum_algorithm.upper()))
    for p in result.parts:
        children.append(("Part", [("PartNumber", p.part_number), ("LastModified", iso8601(p.last_modified)),
                                  ("ETag", p.etag), ("Size", p.size), *objmeta.checksum_xml(p.checksums)]))
    return xml_response("ListPartsResult", children)


async def list_uploads(ctx: S3Context) -> web.StreamResponse:
    """GET /bucket?uploads"""
    q = ctx.query
    encoding = encoding_of(ctx)

    def enc(v: str) -> str:
        return url_encode(v) if encoding else v

    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    key_marker = q.get("key-marker") or None
    upload_id_marker = q.get("upload-id-marker") or None
    max_uploads = int_param(q, "max-uploads", 1000, cap=1000)
    result = await ctx.state.coordinator.list_uploads(ctx.tenant_id, ctx.bucket, prefix, delimiter,
                                                      key_marker, upload_id_marker, max_uploads)
    children: list[tuple[str, object]] = [
        ("Bucket", ctx.bucket), ("KeyMarker", enc(key_marker or "")),
        ("UploadIdMarker", upload_id_marker or "")]
    if result.is_truncated:
        children += [("NextKeyMarker", enc(result.next_key_marker or "")),
                     ("NextUploadIdMarker", result.next_upload_id_marker or "")]
    if delimiter is not None:
        children.append(("Delimiter", enc(delimiter)))
    children += [("Prefix", enc(prefix)), ("MaxUploads", max_uploads)]
    if encoding:
        children.append(("EncodingType", "url"))
    children.append(("IsTruncated", bool(result.is_truncated)))
    for u in result.uploads:
        who = owner(u.owner_id, ctx.auth.key.user_name if u.owner_id == ctx.user_id else None)
        item: list[tuple[str, object]] = [("Key", enc(u.key)), ("UploadId", u.upload_id), ("Initiator", who),
                                          ("Owner", who), ("StorageClass", u.storage_class or "STANDARD"),
                                          ("Initiated", iso8601(u.initiated))]
        if u.checksum_algorithm:
            item.append(("ChecksumAlgorithm", u.checksum_algorithm.upper()))
        children.append(("Upload", item))
    children += [("CommonPrefixes", [("Prefix", enc(p))]) for p in result.common_prefixes]
    return xml_response("ListMultipartUploadsResult", children)
