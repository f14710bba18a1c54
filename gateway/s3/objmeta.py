"""Object metadata on the wire: which request headers are stored and how they come back.

S3 keeps `x-amz-meta-*` (names lower-cased, values byte-exact), Content-Type and five
representation headers with an object; GET/HEAD return them, optionally overridden by the
`response-*` query parameters. Handlers for PUT, copy, multipart and GET all need the same
rules, so they live here once.

Metadata values are kept as text, as AWS keeps them: RFC 2047 encoded words a client sent
(boto3 refuses non-ASCII values, so that is how SDK users send them) are decoded before
storing, and a value that is not ASCII goes out as one RFC 2047 encoded word (UTF-8,
base64), so decoding the answer gives back exactly the bytes that were sent.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header

from blob import checksum_b64
from config.tiers import STORAGE_CLASSES
from config.values import header_safe
from coordinator.records import ObjectInfo
from gateway.s3.errors import S3Error
from gateway.s3.tiering import restore_header
from gateway.s3.xmlio import http_date

META_PREFIX = "x-amz-meta-"
MAX_USER_METADATA = 2048          # bytes of names + values, as S3 counts them
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")

_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=")
# Algorithms S3 computes a composite (checksum of the parts' checksums) for.
_COMPOSITE = ("crc32", "crc32c", "sha1", "sha256")

# response-* query parameter -> response header it overrides
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


@dataclass
class RequestMetadata:
    """What a PUT / CreateMultipartUpload / CopyObject(REPLACE) asks to store."""

    content_type: str | None
    metadata: dict[str, str]
    headers: dict[str, str]
    storage_class: str


def _strip_aws_chunked(value: str) -> str | None:
    """`Content-Encoding: aws-chunked[, gzip]`: aws-chunked is transport framing, never stored."""
    codings = [c.strip() for c in value.split(",") if c.strip() and c.strip().lower() != "aws-chunked"]
    return ", ".join(codings) or None


def from_request(headers: Mapping[str, str]) -> RequestMetadata:
    """Collect the storable metadata of a write request; MetadataTooLarge beyond 2 KiB."""
    metadata: dict[str, str] = {}
    size = 0
    for name, value in headers.items():
        lname = name.lower()
        if lname.startswith(META_PREFIX) and len(lname) > len(META_PREFIX):
            short = lname[len(META_PREFIX):]
            value = decode_value(value)
            if short in metadata:                 # repeated header: S3 joins with commas
                metadata[short] = f"{metadata[short]},{value}"
            else:
                metadata[short] = value
            size += len(short.encode()) + len(value.encode("utf-8", "surrogateescape"))
    if size > MAX_USER_METADATA:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.",
                      status=400, Size=str(size), MaxSizeAllowed=str(MAX_USER_METADATA))
    stored: dict[str, str] = {}
    for name in STORED_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "content-encoding":
            value = _strip_aws_chunked(value)
            if value is None:
                continue
        stored[name] = value
    storage_class = headers.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", ArgumentName="x-amz-storage-class",
                      ArgumentValue=storage_class)
    return RequestMetadata(content_type=headers.get("Content-Type"), metadata=metadata, headers=stored,
                           storage_class=storage_class)


def decode_value(value: str) -> str:
    """A metadata value as stored: RFC 2047 encoded words decoded; InvalidArgument for bytes
    that are not UTF-8 (HTTP hands them over as surrogate escapes)."""
    if _ENCODED_WORD.search(value):
        try:
            value = str(make_header(decode_header(value)))
        except (HeaderParseError, UnicodeError, LookupError, binascii.Error, ValueError):
            raise S3Error("InvalidArgument", "A metadata value has a malformed RFC 2047 encoded word",
                          ArgumentName="x-amz-meta-*", ArgumentValue=value) from None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise S3Error("InvalidArgument", "Metadata values must be UTF-8 (or RFC 2047 encoded)",
                      ArgumentName="x-amz-meta-*") from None
    return value


def encode_value(value: str) -> str:
    """How a stored metadata value goes out in a header: as is if ASCII, else RFC 2047 (as AWS)."""
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def version_headers(obj: ObjectInfo) -> dict[str, str]:
    """`x-amz-version-id` for a bucket that has (ever had) versioning; nothing otherwise, as S3
    (rclone then asks `?versionId=null` of an unversioned bucket)."""
    return {} if obj.versioning is None else {"x-amz-version-id": obj.s3_version_id}


def object_checksums(obj: ObjectInfo) -> tuple[dict[str, str], str | None]:
    """The whole-object checksums S3 shows for `obj` and their type: those stored at upload
    (FULL_OBJECT), or for a multipart object the composite of its parts' checksums for every
    algorithm all parts have (the checksum of their concatenated binary values, then `-N`)."""
    if obj.checksums:
        return {a: v for a, v in obj.checksums.items() if not a.lower().endswith("hex")}, "FULL_OBJECT"
    if not obj.parts:
        return {}, None
    out = {}
    for algo in _COMPOSITE:
        values = [p.checksums.get(algo) for p in obj.parts]
        if all(values):
            raw = b"".join(base64.b64decode(v) for v in values if v)
            out[algo] = f"{checksum_b64(algo, raw)}-{len(values)}"
    return out, "COMPOSITE" if out else None


def whole_object_checksum_headers(obj: ObjectInfo) -> dict[str, str]:
    """`x-amz-checksum-*` and `x-amz-checksum-type` of a whole-object read with checksum mode."""
    values, kind = object_checksums(obj)
    out = checksum_headers(values)
    if kind:
        out["x-amz-checksum-type"] = kind
    return out


def response_headers(obj: ObjectInfo, query: Mapping[str, str] | None = None,
                     checksums: bool = False) -> dict[str, str]:
    """Headers describing `obj` on GET / HEAD (without Content-Length / Content-Range)."""
    out: dict[str, str] = {
        "Content-Type": obj.content_type or DEFAULT_CONTENT_TYPE,
        "ETag": obj.etag,
        "Last-Modified": http_date(obj.last_modified),
        "Accept-Ranges": "bytes",
    }
    canonical = {
        "cache-control": "Cache-Control", "content-disposition": "Content-Disposition",
        "content-encoding": "Content-Encoding", "content-language": "Content-Language", "expires": "Expires",
    }
    for name, value in obj.headers.items():
        out[canonical.get(name.lower(), name)] = value
    for name, value in obj.metadata.items():
        out[META_PREFIX + name] = encode_value(value)
    if obj.storage_class and obj.storage_class != "STANDARD":
        out["x-amz-storage-class"] = obj.storage_class
    out.update(restore_header(obj))
    if checksums:
        out.update(whole_object_checksum_headers(obj))
    if obj.tags:
        out["x-amz-tagging-count"] = str(len(obj.tags))
    out.update(version_headers(obj))
    if query:
        out.update(response_overrides(query))
    return out


def response_overrides(query: Mapping[str, str]) -> dict[str, str]:
    """The headers `response-*` query parameters ask for; InvalidArgument for a value that
    cannot be a header (control characters would split or break the response)."""
    out = {}
    for param, header in RESPONSE_OVERRIDES.items():
        value = query.get(param)
        if value is None:
            continue
        if not header_safe(value):
            raise S3Error("InvalidArgument", f"{param} must not contain control characters",
                          ArgumentName=param, ArgumentValue=value)
        out[header] = value
    return out


def checksum_headers(checksums: Mapping[str, str]) -> dict[str, str]:
    """`{"crc32": b64}` -> `{"x-amz-checksum-crc32": b64}` (hex-only internal entries skipped)."""
    return {f"x-amz-checksum-{algo.lower()}": value for algo, value in checksums.items()
            if not algo.lower().endswith("hex")}


def checksum_xml(checksums: Mapping[str, str]) -> list[tuple[str, str]]:
    """`{"crc32c": b64}` -> `[("ChecksumCRC32C", b64)]` for CopyObjectResult / CompleteMultipartUpload."""
    names = {"crc32": "ChecksumCRC32", "crc32c": "ChecksumCRC32C", "sha1": "ChecksumSHA1",
             "sha256": "ChecksumSHA256", "crc64nvme": "ChecksumCRC64NVME"}
    return [(names[a.lower()], v) for a, v in checksums.items() if a.lower() in names]
