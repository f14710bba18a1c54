"""Browser form uploads: POST /bucket with a signed policy document (S3's presigned POST).

An application signs a policy (an expiry and conditions on the form's fields) and hands the
browser a form to post straight to the bucket: `multipart/form-data` with `key`, `policy`
(base64 JSON) and its signature (SigV4: `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
`x-amz-signature`; or SigV2: `AWSAccessKeyId`, `signature`), any other fields the policy
allows (Content-Type, `x-amz-meta-*`, acl, tagging, success_action_status or _redirect), and
the file last. As S3 does, every field but the signature's own, `file`, `policy` and
`x-ignore-*` must be allowed by a condition, and `content-length-range` bounds the file,
counted while it streams into the blob layer (never held whole): a file out of range stores
nothing. `${filename}` in the key becomes the file's name.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from config.values import BadValue, header_safe, parse_iso_utc, secrets_equal
from gateway.s3 import acl, objmeta, sigv2, tagging, upload_body
from gateway.s3.context import S3_MAX_PUT, S3Context
from gateway.s3.errors import S3Error
from gateway.s3.handlers_objects import abort_quietly
from gateway.s3.responses import xml_response
from gateway.s3.sigv4 import ALGORITHM, SERVICE, TERMINATOR, AuthContext, sign_hex, signing_key

MAX_FIELDS_BYTES = 64 << 10       # every field but the file, together
_PIECE = 256 << 10
# Fields no condition needs to name (the signature's own, the file, the policy).
_EXEMPT = {"x-amz-signature", "signature", "awsaccesskeyid", "file", "policy"}


def _policy_failed(what: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {what}")


async def _fields(reader: MultipartReader) -> tuple[dict[str, str], BodyPartReader]:
    """The form fields before the file (names lower-cased), and the file part."""
    fields: dict[str, str] = {}
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            raise S3Error("InvalidArgument", "POST requires exactly one file upload per request.",
                          ArgumentName="file", ArgumentValue="0")
        if not isinstance(part, BodyPartReader) or not part.name:
            raise S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                          "multipart/form-data.", status=400)
        if part.name.lower() == "file":
            return fields, part
        value = bytearray()
        while chunk := await part.read_chunk(8192):
            value += chunk
            total += len(chunk)
            if total > MAX_FIELDS_BYTES:
                raise S3Error("MaxPostPreDataLengthExceeded", "Your POST request fields preceding the "
                              "upload file were too large.", status=400)
        try:
            fields[part.name.lower()] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error("InvalidArgument", f"Form field {part.name} is not UTF-8") from None


async def _authenticate(ctx: S3Context, fields: dict[str, str]) -> tuple[AuthContext, bytes]:
    """Check the policy's signature; the policy JSON and who signed it."""
    policy = fields.get("policy")
    if not policy:
        raise S3Error("AccessDenied", "Anonymous POST uploads are not allowed; sign a policy.")
    if "x-amz-signature" in fields:
        if fields.get("x-amz-algorithm") != ALGORITHM:
            raise S3Error("InvalidArgument", "POST form x-amz-algorithm must be AWS4-HMAC-SHA256",
                          ArgumentName="x-amz-algorithm", ArgumentValue=fields.get("x-amz-algorithm", ""))
        parts = fields.get("x-amz-credential", "").split("/")
        if len(parts) != 5 or parts[3] != SERVICE or parts[4] != TERMINATOR:
            raise S3Error("InvalidArgument", "POST form x-amz-credential is malformed",
                          ArgumentName="x-amz-credential", ArgumentValue=fields.get("x-amz-credential", ""))
        access_key, date, region = parts[0], parts[1], parts[2]
        if region != ctx.state.cfg.region:
            raise S3Error("AuthorizationQueryParametersError", f"the region '{region}' is wrong; "
                          f"expecting '{ctx.state.cfg.region}'", Region=ctx.state.cfg.region)
        key = await ctx.state.keys.lookup(access_key)
        expected = sign_hex(signing_key(key.secret_key, date, region), policy)
        signed = secrets_equal(expected, fields["x-amz-signature"].strip().lower())
    elif "signature" in fields and "awsaccesskeyid" in fields:
        access_key = fields["awsaccesskeyid"]
        key = await ctx.state.keys.lookup(access_key)
        try:
            given = base64.b64decode(fields["signature"], validate=True)
        except (binascii.Error, ValueError):
            given = b""
        signed = secrets_equal(sigv2.sign(key.secret_key, policy), given)
    else:
        raise S3Error("InvalidArgument", "Bucket POST must contain x-amz-signature (or signature and "
                      "AWSAccessKeyId) along with policy")
    if not signed:
        raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=access_key)
    try:
        document = base64.b64decode(policy, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid base64", status=400) from None
    auth = AuthContext(access_key=access_key, key=key, payload_mode="unsigned", payload_sha256=None,
                       signing_key=b"", scope="", amz_date="", seed_signature="", presigned=True,
                       region=ctx.state.cfg.region, version="post-policy")
    return auth, document


def _conditions(document: bytes, now: float) -> list[Any]:
    try:
        policy = json.loads(document)
        expiration = policy["expiration"]
        conditions = policy.get("conditions", [])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: the policy is not a JSON object with an "
                      "expiration and conditions", status=400) from None
    try:
        expires_at = parse_iso_utc(expiration) if isinstance(expiration, str) else None
    except BadValue:
        expires_at = None
    if expires_at is None or not isinstance(conditions, list):
        raise S3Error("InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value or conditions",
                      status=400)
    if expires_at < now:
        raise _policy_failed("Policy expired.")
    return conditions


def check_policy(conditions: list[Any], fields: dict[str, str], bucket: str) -> tuple[int, int]:
    """Every condition holds and every field is allowed by one; the content-length range."""
    values = {**fields, "bucket": bucket}
    covered = {"bucket"}
    low, high = 0, S3_MAX_PUT
    for cond in conditions:
        if isinstance(cond, dict) and len(cond) == 1:
            ((name, wanted),) = cond.items()
            op, name = "eq", name.lower()
        elif isinstance(cond, list) and len(cond) == 3 and str(cond[0]).lower() == "content-length-range":
            try:
                low, high = int(cond[1]), int(cond[2])
            except (TypeError, ValueError, OverflowError):
                raise S3Error("InvalidPolicyDocument", "Invalid Policy: content-length-range",
                              status=400) from None
            continue
        elif isinstance(cond, list) and len(cond) == 3 and str(cond[1]).startswith("$"):
            op, name, wanted = str(cond[0]).lower(), cond[1][1:].lower(), cond[2]
        else:
            raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {cond!r}", status=400)
        if op not in ("eq", "starts-with") or not isinstance(wanted, str):
            raise S3Error("InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {cond!r}", status=400)
        value = values.get(name, "")
        if (op == "eq" and value != wanted) or (op == "starts-with" and not value.startswith(wanted)):
            raise _policy_failed(f'Policy Condition failed: ["{op}", "${name}", "{wanted}"]')
        covered.add(name)
    extra = sorted(n for n in fields
                   if n not in covered and n not in _EXEMPT and not n.startswith("x-ignore-"))
    if extra:
        raise _policy_failed(f"Extra input fields: {extra[0]}")
    return low, high


def _malformed() -> S3Error:
    return S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                   "multipart/form-data.", status=400)


# What aiohttp's multipart reader raises on a body that is not well-formed multipart/form-data.
_MULTIPART_ERRORS = (ValueError, RuntimeError, AssertionError, TypeError, HttpProcessingError)


async def _read_chunk(part: BodyPartReader) -> bytes:
    try:
        return await part.read_chunk(_PIECE)
    except S3Error:
        raise
    except _MULTIPART_ERRORS:
        raise _malformed() from None
    except ConnectionError:
        raise S3Error("IncompleteBody") from None


async def _file_pieces(part: BodyPartReader, low: int, high: int) -> AsyncIterator[bytes]:
    """The file's bytes as they arrive, refused the moment they pass the policy's maximum."""
    size = 0
    while piece := await _read_chunk(part):
        size += len(piece)
        if size > high:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                          MaxSizeAllowed=str(high), ProposedSize=str(size))
        yield piece
    if size < low:
        raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                      MinSizeAllowed=str(low), ProposedSize=str(size))


async def post_object(ctx: S3Context) -> web.StreamResponse:
    """POST /bucket (multipart/form-data)."""
    await ctx.send_continue()
    try:
        reader = await ctx.request.multipart()
        fields, file_part = await _fields(reader)
    except _MULTIPART_ERRORS:
        raise _malformed() from None
    except ConnectionError:
        raise S3Error("IncompleteBody") from None
    ctx.auth, document = await _authenticate(ctx, fields)
    key_template = fields.get("key")
    if not key_template:
        raise S3Error("InvalidArgument", "Bucket POST must contain a field named 'key'.  If it is specified, "
                      "please check the order of the fields.", ArgumentName="key", ArgumentValue="")
    conditions = _conditions(document, time.time())
    low, high = check_policy(conditions, fields, ctx.bucket or "")
    ctx.key = key_template.replace("${filename}", file_part.filename or "")
    if len(ctx.key.encode("utf-8", "surrogateescape")) > 1024:
        raise S3Error("KeyTooLongError", MaxSizeAllowed="1024")
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and not header_safe(redirect):   # it becomes the Location header
        raise S3Error("InvalidArgument", "success_action_redirect must not contain control characters",
                      ArgumentName="success_action_redirect", ArgumentValue=redirect)
    headers = CIMultiDict((name, value) for name, value in fields.items())
    meta = objmeta.from_request(headers)
    tags = tagging.from_xml(fields["tagging"].encode()) if fields.get("tagging") else None
    canned = acl.canned(fields["acl"]) if "acl" in fields else None
    coordinator = ctx.state.coordinator
    upload = await coordinator.begin_upload(ctx.tenant_id, ctx.user_id, ctx.bucket, ctx.key, "put", 0,
                                            meta.content_type, meta.metadata, meta.headers,
                                            meta.storage_class, None, tags, canned)
    try:
        got = await upload_body.store_iterator(ctx, _file_pieces(file_part, low, high), set())
        obj = await coordinator.finalize_put(upload.upload_id, got.result.size, got.etag,
                                             got.result.chunks, {})
    except BaseException:
        await abort_quietly(ctx, upload.upload_id)
        raise
    location = (f"{ctx.request.scheme}://{ctx.headers.get('Host', 'localhost')}/{ctx.bucket}/"
                f"{quote(ctx.key, safe='/', errors='surrogateescape')}")
    answer = {"ETag": obj.etag, "Location": location, **objmeta.version_headers(obj)}
    if redirect:
        query = urlencode({"bucket": ctx.bucket, "key": ctx.key, "etag": obj.etag})
        answer["Location"] = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return web.Response(status=303, headers=answer)
    status = fields.get("success_action_status", "204")
    if status == "201":
        return xml_response("PostResponse", [("Location", location), ("Bucket", ctx.bucket), ("Key", ctx.key),
                                             ("ETag", obj.etag)], status=201, headers=answer)
    return web.Response(status=200 if status == "200" else 204, headers=answer)
