"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, CopyObject, DeleteObjects.

Every one of them takes S3's `versionId` where S3 does; a delete marker reads as S3 shows it
(404 with `x-amz-delete-marker: true` when it is the latest, 405 when named by version id).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging

from aiohttp import web

from blob import UnsupportedChecksum, checksum_b64
from coordinator.records import DeleteResult, ObjectId, ObjectInfo
from gateway.s3 import acl, objmeta, public, retries, tagging, upload_body
from gateway.s3.conditions import ByteRange, Conditions, Outcome, manifest_narrowing, parse_range
from gateway.s3.context import S3Context
from gateway.s3.copy_source import check_readable, load_source
from gateway.s3.errors import S3Error
from gateway.s3.responses import int_param, parse_part_number, xml_response
from gateway.s3.tiering import check_restored
from gateway.s3.write_conditions import write_condition
from gateway.s3.xmlio import find_all, find_text, http_date, iso8601, parse_xml

log = logging.getLogger("gateway.s3")
MAX_DELETE_KEYS = 1000
_SSE_OK = {"AES256"}


def _check_sse(ctx: S3Context) -> None:
    """Everything is encrypted at rest already; SSE-S3 is accepted, SSE-KMS / SSE-C are not offered."""
    sse = ctx.headers.get("x-amz-server-side-encryption")
    if sse is not None and sse not in _SSE_OK:
        raise S3Error("NotImplemented", f"Server-side encryption {sse} is not supported", status=501)
    if "x-amz-server-side-encryption-customer-algorithm" in ctx.headers:
        raise S3Error("NotImplemented", "SSE-C is not supported", status=501)


def _marker_error(ctx: S3Context, obj: ObjectInfo) -> S3Error:
    """What S3 answers for a delete marker: 405 when named by version id, else 404 NoSuchKey."""
    if ctx.version_id is not None:
        err = S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.",
                      Method=ctx.request.method, ResourceType="DeleteMarker")
        err.headers = {"Last-Modified": http_date(obj.last_modified)}  # type: ignore[attr-defined]
    else:
        err = S3Error("NoSuchKey")
        err.headers = {}  # type: ignore[attr-defined]
    err.headers.update({"x-amz-delete-marker": "true", **objmeta.version_headers(obj)})  # type: ignore
    return err


async def abort_quietly(ctx: S3Context, upload_id: str) -> None:
    """Release a reservation after a failed PUT; never masks the original error."""
    try:
        await asyncio.shield(ctx.state.coordinator.abort_upload(ctx.tenant_id, ctx.bucket, upload_id))
    except BaseException as exc:  # the GC expires the session anyway
        log.warning("upload.abort_failed", extra={"fields": {
            "request_id": ctx.request_id, "upload_id": upload_id, "error": repr(exc)}})


async def put_object(ctx: S3Context) -> web.StreamResponse:
    _check_sse(ctx)
    meta = objmeta.from_request(ctx.headers)
    tags = tagging.from_header(ctx.headers.get("x-amz-tagging"))
    canned = acl.from_headers(ctx.headers)
    stream, requested = await upload_body.prepare(ctx)
    condition = await write_condition(ctx)
    write_id, retried = retries.attempt(ctx.headers)
    coordinator = ctx.state.coordinator
    length = stream.decoded_length
    if length is not None and length <= ctx.state.store.chunk_size:
        # One chunk: no upload session. The bucket check only gates `100 Continue`; the
        # commit checks bucket and quota again in its own transaction.
        await ctx.state.buckets.lookup((ctx.tenant_id, ctx.bucket))
        got = await upload_body.receive(ctx, stream, requested)
        obj = await coordinator.put_object(
            ctx.tenant_id, ctx.user_id, ctx.bucket, ctx.key, got.result.size, got.etag, meta.content_type,
            meta.metadata, meta.headers, meta.storage_class, got.result.chunks, got.checksums, condition,
            tags, canned, write_id, retried)
    else:
        algorithm = sorted(requested)[0] if requested else None
        upload = await coordinator.begin_upload(
            ctx.tenant_id, ctx.user_id, ctx.bucket, ctx.key, "put", length or 0,
            meta.content_type, meta.metadata, meta.headers, meta.storage_class, algorithm, tags, canned)
        try:
            got = await upload_body.receive(ctx, stream, requested)
            obj = await coordinator.finalize_put(upload.upload_id, got.result.size, got.etag,
                                                 got.result.chunks, got.checksums, condition, write_id,
                                                 retried)
        except BaseException:
            await abort_quietly(ctx, upload.upload_id)
            raise
    headers = {"ETag": obj.etag, **objmeta.checksum_headers(got.checksums), **objmeta.version_headers(obj)}
    if ctx.headers.get("x-amz-server-side-encryption"):
        headers["x-amz-server-side-encryption"] = "AES256"
    return web.Response(status=200, headers=headers)


def _requested_part(ctx: S3Context) -> int | None:
    """GET/HEAD ?partNumber=N, checked before the object is looked up (the answer is an error
    whatever the object)."""
    raw = ctx.query.get("partNumber")
    if raw is None:
        return None
    if "Range" in ctx.headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter")
    return parse_part_number(raw)


def _part_range(n: int, obj: ObjectInfo, headers: dict[str, str]) -> ByteRange | None:
    """The bytes of the n-th part (a non-multipart object has one part)."""
    if not obj.parts:
        if n != 1:
            raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416)
        return None
    if n > len(obj.parts):
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable", status=416)
    part = obj.parts[n - 1]
    headers["x-amz-mp-parts-count"] = str(len(obj.parts))
    if part.size == 0:
        return ByteRange(part.offset, part.offset - 1, obj.size)
    return ByteRange(part.offset, part.offset + part.size - 1, obj.size)


# A body this small that arrives in one piece goes out in one write with its headers.
ONE_WRITE_MAX = 64 << 10


async def get_object(ctx: S3Context, head: bool = False) -> web.StreamResponse:
    coordinator = ctx.state.coordinator
    part = _requested_part(ctx)
    narrowing = {} if head else manifest_narrowing(ctx.headers.get("Range"), part)
    version = ctx.version_id
    obj = await coordinator.get_object(ctx.tenant_id, ctx.bucket, ctx.key, version_id=version,
                                       with_chunks=not head, delete_markers=True, **narrowing)
    if obj.delete_marker:
        raise _marker_error(ctx, obj)
    public.check_object_readable(ctx, obj)
    await check_readable(ctx, obj)
    if not head:
        check_restored(obj)
    outcome = Conditions.from_headers(ctx.headers).evaluate(obj.etag, obj.last_modified)
    if outcome is Outcome.PRECONDITION_FAILED:
        raise S3Error("PreconditionFailed", Condition="If-Match / If-Unmodified-Since")
    if outcome is Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers={"ETag": obj.etag,
                                                 "Last-Modified": http_date(obj.last_modified)})
    headers = objmeta.response_headers(obj, ctx.query)
    headers["x-shardbox-status"] = obj.status  # scanning | ready (see README "Malware scanning")
    if obj.scan_result:
        headers["x-shardbox-scan-result"] = obj.scan_result
    if part is not None:
        rng = _part_range(part, obj, headers)
    else:
        rng = parse_range(ctx.headers.get("Range"), obj.size)
    status = 200
    start, end = 0, obj.size - 1
    if rng is not None:
        status = 206
        start, end = rng.start, rng.end
        headers["Content-Range"] = rng.content_range() if rng.length > 0 else f"bytes */{obj.size}"
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if rng is None and ctx.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
        # Whole-object checksums only describe the whole object; a range gets none (as S3).
        headers.update(objmeta.whole_object_checksum_headers(obj))
    if head:
        return web.Response(status=status, headers=headers)
    if length == 0:
        ctx.state.served(ctx, obj)
        return web.Response(status=status, headers=headers, body=b"")
    # Every chunk it will send must be readable as far as anyone knows: else 503 now, not a
    # 200 whose body is cut short later.
    await ctx.state.store.check_available(obj, start, end)
    pieces = ctx.state.store.read(obj, start, end, request_id=ctx.request_id, stats=ctx.read_stats)
    try:
        first = await anext(pieces)       # DataUnavailable here still becomes a clean 503
    except BaseException:
        await pieces.aclose()
        raise
    if len(first) == length <= ONE_WRITE_MAX:
        # The whole (small) body is at hand: one write for headers and body, not two. Not for
        # big bodies: aiohttp joins headers and body into a new bytes object to do that.
        await pieces.aclose()
        del headers["Content-Length"]
        ctx.log_fields["bytes_out"] = length
        ctx.state.served(ctx, obj)
        return web.Response(status=status, headers=headers, body=first)
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = length
    sent = 0
    async with contextlib.aclosing(pieces):
        await resp.prepare(ctx.request)
        try:
            await resp.write(first)
            sent = len(first)
            # Each piece is a chunk-sized buffer: dropped once written, not held while the
            # next one is fetched (the read budget no longer counts it by then).
            del first
            async for piece in pieces:
                await resp.write(piece)
                sent += len(piece)
                del piece
        except ConnectionError as exc:
            # The client went away mid-body; nothing to answer, just account for it.
            resp.force_close()
            ctx.log_fields.update(client_gone=True, detail=str(exc), bytes_out=sent)
            return resp
        except Exception as exc:
            # Headers are out: the only honest signal left is a short body on a closed connection.
            resp.force_close()
            ctx.log_fields.update(error=type(exc).__name__, detail=str(exc), truncated_at=sent)
            log.error("get.stream_failed", extra={"fields": {
                "request_id": ctx.request_id, "bucket": ctx.bucket, "key": ctx.key, "sent": sent,
                "error": repr(exc)}})
            return resp
    ctx.log_fields["bytes_out"] = sent
    ctx.state.served(ctx, obj)
    return resp


async def head_object(ctx: S3Context) -> web.StreamResponse:
    return await get_object(ctx, head=True)


_ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")


async def get_object_attributes(ctx: S3Context) -> web.StreamResponse:
    """GET ?attributes: what `x-amz-object-attributes` names, without the body (the seeds'
    integrity checks read ETag, size, checksum and parts this way)."""
    wanted = {a.strip() for a in ",".join(ctx.headers.getall("x-amz-object-attributes", [])).split(",")
              if a.strip()}
    if not wanted or wanted - set(_ATTRIBUTES):
        raise S3Error("InvalidArgument", "Invalid attribute name specified.",
                      ArgumentName="x-amz-object-attributes", ArgumentValue=",".join(sorted(wanted)))
    max_parts = int_param(ctx.headers, "x-amz-max-parts", 1000, cap=1000)
    marker = int_param(ctx.headers, "x-amz-part-number-marker", 0)
    version = ctx.version_id
    obj = await ctx.state.coordinator.get_object(ctx.tenant_id, ctx.bucket, ctx.key, version_id=version,
                                                 delete_markers=True)
    if obj.delete_marker:
        raise _marker_error(ctx, obj)
    await check_readable(ctx, obj)
    children: list[tuple[str, object]] = []
    if "ETag" in wanted:
        children.append(("ETag", obj.etag.strip('"')))
    checksums, kind = objmeta.object_checksums(obj)
    if "Checksum" in wanted and checksums:
        children.append(("Checksum", [*objmeta.checksum_xml(checksums), ("ChecksumType", kind)]))
    if "ObjectParts" in wanted and obj.parts:
        page = [p for p in obj.parts if p.part_number > marker][:max_parts]
        truncated = bool(page) and page[-1].part_number < obj.parts[-1].part_number
        parts: list[tuple[str, object]] = [("PartsCount", len(obj.parts)), ("PartNumberMarker", marker)]
        if truncated:
            parts.append(("NextPartNumberMarker", page[-1].part_number))
        parts += [("MaxParts", max_parts), ("IsTruncated", truncated)]
        parts += [("Part", [("PartNumber", p.part_number), ("Size", p.size),
                            *objmeta.checksum_xml(p.checksums)]) for p in page]
        children.append(("ObjectParts", parts))
    if "StorageClass" in wanted:
        children.append(("StorageClass", obj.storage_class or "STANDARD"))
    if "ObjectSize" in wanted:
        children.append(("ObjectSize", obj.size))
    headers = {"Last-Modified": http_date(obj.last_modified), **objmeta.version_headers(obj)}
    return xml_response("GetObjectAttributesResponse", children, headers=headers)


async def delete_object(ctx: S3Context) -> web.StreamResponse:
    write_id, retried = retries.attempt(ctx.headers)
    result = await ctx.state.coordinator.delete_object(ctx.tenant_id, ctx.bucket, ctx.key, ctx.version_id,
                                                       ctx.user_id, write_id, retried)
    headers = {}
    if result.version_id is not None:
        headers["x-amz-version-id"] = result.version_id
    if result.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return web.Response(status=204, headers=headers)


async def copy_object(ctx: S3Context) -> web.StreamResponse:
    _check_sse(ctx)
    directive = ctx.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.",
                      ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
    tag_directive = ctx.headers.get("x-amz-tagging-directive", "COPY").upper()
    if tag_directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown tagging directive.",
                      ArgumentName="x-amz-tagging-directive", ArgumentValue=tag_directive)
    tags = tagging.from_header(ctx.headers.get("x-amz-tagging")) if tag_directive == "REPLACE" else None
    canned = acl.from_headers(ctx.headers)
    write_id, retried = retries.attempt(ctx.headers)
    src, source = await load_source(ctx, with_chunks=False)
    replace = directive == "REPLACE"
    meta = objmeta.from_request(ctx.headers)
    same = (src.bucket, src.key) == (ctx.bucket, ctx.key) and src.version_id is None
    if same and not replace and "x-amz-storage-class" not in ctx.headers:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an "
                      "object to itself without changing the object's metadata, storage class, website "
                      "redirect location or encryption attributes.")
    obj = await ctx.state.coordinator.copy_object(
        ctx.tenant_id, ctx.user_id, src.bucket, src.key, ctx.bucket, ctx.key, replace,
        meta.content_type if replace else None, meta.metadata if replace else {},
        meta.headers if replace else {}, src_version_id=source.version_id if src.version_id else None,
        tags=tags if tag_directive == "REPLACE" else None, acl=canned, write_id=write_id, retried=retried)
    headers = objmeta.version_headers(obj)
    if source.versioning is not None or src.version_id is not None:
        headers["x-amz-copy-source-version-id"] = source.s3_version_id
    children = [("LastModified", iso8601(obj.last_modified)), ("ETag", obj.etag),
                *objmeta.checksum_xml(obj.checksums)]
    return xml_response("CopyObjectResult", children, headers=headers)


def _verify_small_body(ctx: S3Context, body: bytes) -> None:
    """Check Content-MD5 and/or an `x-amz-checksum-*` header against a body read whole."""
    md5_b64 = ctx.headers.get("Content-MD5")
    if md5_b64 is not None:
        try:
            expected = base64.b64decode(md5_b64, validate=True)
        except (binascii.Error, ValueError):
            raise S3Error("InvalidDigest", ContentMD5=md5_b64) from None
        if len(expected) != 16:
            raise S3Error("InvalidDigest", ContentMD5=md5_b64)
        if hashlib.md5(body, usedforsecurity=False).digest() != expected:
            raise S3Error("BadDigest", ExpectedDigest=md5_b64)
    for name, value in ctx.headers.items():
        lname = name.lower()
        if not lname.startswith("x-amz-checksum-") or lname in ("x-amz-checksum-algorithm",
                                                                "x-amz-checksum-mode", "x-amz-checksum-type"):
            continue
        algo = lname[len("x-amz-checksum-"):]
        try:
            actual = checksum_b64(algo, body)
        except UnsupportedChecksum:
            raise S3Error("InvalidRequest", f"Checksum algorithm {algo} is not supported") from None
        if actual != value.strip():
            raise S3Error("BadDigest", f"The {algo.upper()} you specified did not match the calculated "
                          "checksum.")
    trailer_values = {k.lower(): v for k, v in ctx.trailers.items()}
    for name, value in trailer_values.items():
        if name.startswith("x-amz-checksum-"):
            algo = name[len("x-amz-checksum-"):]
            with contextlib.suppress(UnsupportedChecksum):
                if checksum_b64(algo, body) != value.strip():
                    raise S3Error("BadDigest", f"The {algo.upper()} you specified did not match the "
                                  "calculated checksum.")


def _deleted(r: DeleteResult) -> tuple[str, list]:
    """A <Deleted> entry: S3 names the version removed, or the delete marker made."""
    item: list[tuple[str, object]] = [("Key", r.key)]
    if r.version_id is not None and not r.delete_marker:
        item.append(("VersionId", r.version_id))
    elif r.delete_marker:
        item += [("DeleteMarker", True), ("DeleteMarkerVersionId", r.version_id)]
    return "Deleted", item


async def delete_objects(ctx: S3Context) -> web.StreamResponse:
    """POST /bucket?delete: up to 1000 keys or versions; Quiet mode reports only failures."""
    body = await ctx.read_small_body()
    _verify_small_body(ctx, body)
    doc = parse_xml(body, "Delete")
    quiet = (find_text(doc, "Quiet") or "").strip().lower() == "true"
    objects: list[ObjectId] = []
    for el in find_all(doc, "Object"):
        key = find_text(el, "Key")
        if key is None:
            raise S3Error("MalformedXML")
        objects.append(ObjectId(key, find_text(el, "VersionId") or None))
    if not objects or len(objects) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML")
    # Keys S3 itself would refuse get a per-key error, the rest go to the coordinator in one call.
    valid = [o for o in objects if o.key and len(o.key.encode("utf-8", "surrogateescape")) <= 1024]
    write_id, retried = retries.attempt(ctx.headers)
    answers = iter(await ctx.state.coordinator.delete_objects(ctx.tenant_id, ctx.bucket, valid, ctx.user_id,
                                                              write_id, retried) if valid else [])
    results = []
    for o in objects:
        if not (o.key and len(o.key.encode("utf-8", "surrogateescape")) <= 1024):
            code, message = ("KeyTooLongError", "Your key is too long") if o.key else ("InvalidArgument",
                                                                                       "Empty key")
            results.append(("Error", [("Key", o.key), ("Code", code), ("Message", message)]))
            continue
        r = next(answers)
        if r.error_code:
            error = [("Key", o.key)]
            if o.version_id is not None:
                error.append(("VersionId", o.version_id))
            results.append(("Error", [*error, ("Code", r.error_code),
                                      ("Message", r.error_message or r.error_code)]))
        elif not quiet:
            results.append(_deleted(r))
    return xml_response("DeleteResult", results or None)
