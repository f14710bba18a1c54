"""AWS Signature Version 2 (HMAC-SHA1) string-to-sign, for clients that still use it.

boto3's `generate_presigned_url` signs with V2 unless the client is configured with
`signature_version="s3v4"`, and some older tools (s3cmd, s3fs) default to V2 headers, so
the gateway accepts both V2 forms (`Authorization: AWS AKID:sig` and
`?AWSAccessKeyId=..&Expires=..&Signature=..`). `sigv4.authenticate` does the key lookup,
time checks and comparison; this module only builds what V2 signs.

StringToSign = VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
               CanonicalizedAmzHeaders CanonicalizedResource
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import quote, unquote

from aiohttp import web

from gateway.s3.errors import S3Error

# Query parameters that are part of the canonical resource (the list botocore signs with).
SUBRESOURCES = frozenset({
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
    "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads",
    "uploadId", "response-content-type", "response-content-language", "response-expires",
    "response-cache-control", "response-content-disposition", "response-content-encoding", "delete",
    "lifecycle", "tagging", "restore", "storageClass", "notification", "replication", "analytics",
    "metrics", "inventory", "select", "select-type", "object-lock",
})
_HEADER = re.compile(r"^AWS ([^:\s]+):(\S+)$")


def parse_header(value: str) -> tuple[str, str]:
    """`AWS AKID:base64sig` -> (access key, signature as sent)."""
    m = _HEADER.match(value.strip())
    if not m:
        raise S3Error("AccessDenied",
                      "The V2 Authorization header must look like \"AWS AccessKeyId:Signature\".")
    return m.group(1), m.group(2)


def decode_signature(value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 20:
        raise S3Error("SignatureDoesNotMatch", "The V2 signature is not a base64 HMAC-SHA1 value.")
    return raw


def sign(secret: str, string_to_sign: str) -> bytes:
    data = string_to_sign.encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha1).digest()


def _amz_headers(request: web.Request, query: dict[str, str]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        lname = name.lower()
        if lname.startswith("x-amz-"):
            values.setdefault(lname, []).append(value.strip())
    for name, value in query.items():     # a presigned URL carries its x-amz-* headers in the query
        lname = name.lower()
        if lname.startswith("x-amz-") and lname not in values:
            values[lname] = [value.strip()]
    return "".join(f"{n}:{','.join(values[n])}\n" for n in sorted(values))


def _subresources(raw_query: str) -> str:
    items = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        if name in SUBRESOURCES:
            items.append((name, f"{name}={unquote(value)}" if sep else name))
    items.sort(key=lambda item: item[0])
    return "?" + "&".join(text for _, text in items) if items else ""


def string_to_sign_candidates(request: web.Request, raw_path: str, raw_query: str, query: dict[str, str],
                              date_value: str, vhost_bucket: str | None) -> list[str]:
    """The V2 strings to sign for this request, most standard first.

    `date_value` is the Date header (header form) or the Expires parameter (query form).
    With `vhost_bucket` (a virtual-hosted request as the router resolved it) the resource
    is prefixed with `/bucket`, as V2 requires.
    """
    method = request.method.upper()
    md5 = request.headers.get("Content-MD5", query.get("Content-MD5", query.get("content-md5", ""))).strip()
    ctype = request.headers.get("Content-Type", query.get("content-type", "")).strip()
    amz = _amz_headers(request, query)
    paths = [raw_path or "/", quote(unquote(raw_path or "/"), safe="/~", errors="surrogateescape")]
    if vhost_bucket:
        paths = [f"/{vhost_bucket}{p}" for p in paths]
    elif paths[0].count("/") == 1 and len(paths[0]) > 1:
        # botocore signs a path-style bucket URL (`/bucket`) as the resource `/bucket/`.
        paths += [p + "/" for p in paths]
    subresources = _subresources(raw_query)
    dates = [date_value]
    if "x-amz-date" in request.headers:
        dates.insert(0, "")      # AWS: with x-amz-date the Date line is empty
    out: list[str] = []
    for date in dates:
        for path in paths:
            sts = f"{method}\n{md5}\n{ctype}\n{date}\n{amz}{path}{subresources}"
            if sts not in out:
                out.append(sts)
    return out
