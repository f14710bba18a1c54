"""AWS Signature Version 4 verification for S3 requests (header and presigned-URL forms).

The gateway recomputes the signature the client must have made and compares in constant
time. The canonical request follows the AWS rules for S3: the path is not normalised (no
dot-segment or double-slash removal), each query parameter is URI-encoded with the AWS
unreserved set and sorted, signed header values are trimmed with inner whitespace runs
collapsed. Clients differ in how they percent-encode what they send (lowercase hex,
characters such as `!` or `'` left bare, `+` for a space in a query), and AWS canonicalises
from the decoded value; we do the same and, when that does not match, also try the form
exactly as sent, so a correct signature from any common client is accepted.

`authenticate` also returns what the body decoder (`payload.PayloadStream`) needs to check
aws-chunked chunk signatures: the signing key, scope, request date and seed signature.
Signature Version 2 (header and presigned) is accepted too, because boto3's
`generate_presigned_url` and some older tools still produce it; see `sigv2.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

from aiohttp import web

from config.values import BadValue, parse_amz_date, parse_http_date, parse_uint, secrets_equal
from coordinator.records import CoordinatorError, KeyInfo
from gateway.s3 import sigv2
from gateway.s3.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGN_EXPIRES = 604800          # seven days, the AWS limit

# x-amz-content-sha256 value -> payload mode
STREAMING_MODES = {
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": "streaming-signed",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": "streaming-signed-trailer",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER": "streaming-unsigned-trailer",
}
_SIGV4A = ("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
# Access keys are printable ASCII words; anything else cannot exist, so it is not looked up.
_ACCESS_KEY = re.compile(r"[A-Za-z0-9+/=._-]{1,128}", re.ASCII)
MAX_UNIX_TIME = 253402300799          # 9999-12-31T23:59:59Z, the last time a date can name

_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                   "X-Amz-SignedHeaders", "X-Amz-Expires")
_PRESIGN_MISSING = ("Query-string authentication version 4 requires the X-Amz-Algorithm, "
                    "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                    "X-Amz-Expires parameters.")


@dataclass
class AuthContext:
    """Who signed the request and how its body is to be checked."""

    access_key: str
    key: KeyInfo
    payload_mode: str          # unsigned | signed | streaming-signed | streaming-signed-trailer
    #                            | streaming-unsigned-trailer
    payload_sha256: str | None  # expected lowercase hex when payload_mode == "signed"
    signing_key: bytes
    scope: str                 # 20261121/us-east-1/s3/aws4_request
    amz_date: str              # 20261121T061412Z
    seed_signature: str        # the request signature; first link of an aws-chunked chain
    presigned: bool
    region: str
    version: str = "v4"        # "v2" for Signature Version 2 (no payload or chunk signing)


@dataclass
class _Credential:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


@dataclass
class _Claim:
    """What the request says about its signature, before any checking."""

    credential: _Credential
    signed_headers: list[str]
    signature: str
    amz_date: str
    timestamp: float
    presigned: bool
    content_sha256: str        # the value that goes last in the canonical request
    expires: int = 0


# ---------------------------------------------------------------- signing primitives

_KEY_CACHE: dict[tuple[str, str, str, str], bytes] = {}
_KEY_CACHE_MAX = 1024


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """kSigning = HMAC chain over date, region, service, "aws4_request"; cached per day."""
    cache_key = (secret, date, region, service)
    key = _KEY_CACHE.get(cache_key)
    if key is None:
        k_date = _hmac(f"AWS4{secret}".encode(), date)
        key = _hmac(_hmac(_hmac(k_date, region), service), TERMINATOR)
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = key
    return key


def sign_hex(key: bytes, string_to_sign: str) -> str:
    return hmac.new(key, string_to_sign.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    # aiohttp keeps undecodable request bytes as surrogates; hash them as the bytes they were.
    digest = hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


# ---------------------------------------------------------------- canonical request


def aws_uri_encode(value: str, safe: str = "") -> str:
    """URI-encode as AWS does: everything but A-Z a-z 0-9 - _ . ~ (plus `safe`), uppercase hex."""
    return quote(value, safe="-_.~" + safe, encoding="utf-8", errors="surrogateescape")


def canonical_uri_candidates(raw_path: str) -> list[str]:
    """Canonical URIs to try: re-encoded from the decoded path (as AWS does), then as sent.

    S3 neither removes dot segments nor merges slash runs, and encodes each segment once.
    """
    raw = raw_path or "/"
    return _unique([aws_uri_encode(unquote(raw), safe="/"), raw])


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        pairs.append((key, value))
    return pairs


def canonical_query_candidates(raw_query: str, exclude_signature: bool) -> list[str]:
    """Canonical query strings to try, most standard first.

    1. every key and value percent-decoded (a `+` stays a `+`) and AWS-encoded, sorted;
    2. the same with `+` read as a space (form encoding, used by some clients);
    3. the pairs exactly as sent, sorted (what botocore itself signs).
    """
    pairs = _split_query(raw_query)
    if exclude_signature:
        pairs = [(k, v) for k, v in pairs if unquote(k) != "X-Amz-Signature"]

    def build(decode: Callable[[str], str] | None) -> str:
        if decode is None:
            items = pairs
        else:
            items = [(aws_uri_encode(decode(k)), aws_uri_encode(decode(v))) for k, v in pairs]
        return "&".join(f"{k}={v}" for k, v in sorted(items))

    candidates = [build(unquote)]
    if "+" in raw_query:
        candidates.append(build(unquote_plus))
    candidates.append(build(None))
    return _unique(candidates)


def canonical_headers(request: web.Request, signed_headers: list[str]) -> str:
    """`name:value\\n` for each signed header; repeated headers joined by commas."""
    lines = []
    for name in signed_headers:
        values = request.headers.getall(name, [])
        value = ",".join(" ".join(v.split()) for v in values)
        lines.append(f"{name}:{value}\n")
    return "".join(lines)


def canonical_request(method: str, uri: str, query: str, headers: str, signed_headers: list[str],
                      content_sha256: str) -> str:
    return "\n".join([method, uri, query, headers, ";".join(signed_headers), content_sha256])


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- parsing the claim


def _parse_credential(value: str, presigned: bool) -> _Credential:
    parts = value.split("/")
    if len(parts) != 5 or not parts[0]:
        if presigned:
            raise S3Error("AuthorizationQueryParametersError",
                          "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
                          "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
        raise S3Error("AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the Credential is mal-formed; "
                      "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
    return _Credential(*parts)


def _parse_signed_headers(value: str, presigned: bool) -> list[str]:
    names = [n.strip().lower() for n in value.split(";")] if value else []
    if not names or any(not n for n in names) or "host" not in names:
        code = "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
        raise S3Error(code, "The SignedHeaders must be a non-empty, semicolon-separated list that "
                            "includes host.")
    return sorted(set(names))


def parse_authorization(header: str) -> tuple[str, str, str]:
    """`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` -> the three values."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm in ("AWS", "AWS4-ECDSA-P256-SHA256"):
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not "
                                            "supported. Please use AWS4-HMAC-SHA256.")
        raise S3Error("AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the authorization header requires "
                      "three components: Credential, SignedHeaders, and Signature.")
    fields: dict[str, str] = {}
    for component in rest.split(","):
        name, sep, value = component.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if missing:
        raise S3Error("AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the authorization component "
                      f"\"{missing[0]}\" is missing or malformed.")
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"]


def _bad_date() -> S3Error:
    return S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")


def _request_date(request: web.Request) -> tuple[str, float]:
    """The signing time from x-amz-date (preferred) or Date, as (YYYYMMDDTHHMMSSZ, unix time)."""
    amz = request.headers.get("x-amz-date")
    try:
        if amz is not None:
            return amz.strip(), parse_amz_date(amz.strip())
        ts = parse_http_date(request.headers.get("Date") or "")
    except BadValue:
        raise _bad_date() from None
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts)), ts


def _query_params(raw_query: str) -> dict[str, str]:
    """Decoded query parameters (first occurrence wins); `+` stays literal, as S3 reads it."""
    out: dict[str, str] = {}
    for key, value in _split_query(raw_query):
        out.setdefault(unquote(key), unquote(value))
    return out


def _header_claim(request: web.Request) -> _Claim:
    credential, signed, signature = parse_authorization(request.headers["Authorization"])
    cred = _parse_credential(credential, presigned=False)
    content_sha256 = request.headers.get("x-amz-content-sha256")
    if content_sha256 is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    amz_date, ts = _request_date(request)
    return _Claim(cred, _parse_signed_headers(signed, False), signature.lower(), amz_date, ts,
                  presigned=False, content_sha256=content_sha256.strip())


def _query_claim(request: web.Request, params: dict[str, str]) -> _Claim:
    if any(p not in params for p in _PRESIGN_PARAMS):
        raise S3Error("AuthorizationQueryParametersError", _PRESIGN_MISSING)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Error("AuthorizationQueryParametersError",
                      "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
    cred = _parse_credential(params["X-Amz-Credential"], presigned=True)
    raw_expires = params["X-Amz-Expires"]
    negative = raw_expires.startswith("-")
    try:
        expires = parse_uint(raw_expires[1:] if negative else raw_expires, MAX_PRESIGN_EXPIRES + 1,
                             saturate=True)
    except BadValue:
        raise S3Error("AuthorizationQueryParametersError",
                      "X-Amz-Expires should be a number") from None
    if negative and expires:
        raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise S3Error("AuthorizationQueryParametersError",
                      "X-Amz-Expires must be less than a week (in seconds) that is 604800")
    try:
        ts = parse_amz_date(params["X-Amz-Date"])
    except BadValue:
        raise S3Error("AuthorizationQueryParametersError",
                      "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None
    # A presigned URL signs UNSIGNED-PAYLOAD unless the client also sent (and signed) a hash.
    content_sha256 = (request.headers.get("x-amz-content-sha256")
                      or params.get("X-Amz-Content-Sha256") or UNSIGNED_PAYLOAD).strip()
    return _Claim(cred, _parse_signed_headers(params["X-Amz-SignedHeaders"], True),
                  params["X-Amz-Signature"].lower(), params["X-Amz-Date"], ts, presigned=True,
                  content_sha256=content_sha256, expires=expires)


def _payload_mode(content_sha256: str) -> tuple[str, str | None]:
    if content_sha256 == UNSIGNED_PAYLOAD:
        return "unsigned", None
    if content_sha256 in STREAMING_MODES:
        return STREAMING_MODES[content_sha256], None
    if _HEX64.match(content_sha256):
        return "signed", content_sha256.lower()
    if content_sha256 in _SIGV4A:
        raise S3Error("NotImplemented", "SigV4A (ECDSA) streaming signatures are not supported.")
    raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
                                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
                  ArgumentName="x-amz-content-sha256", ArgumentValue=content_sha256)


def _check_scope(claim: _Claim, region: str) -> None:
    cred = claim.credential
    presigned = claim.presigned
    code = "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
    prefix = ("Error parsing the X-Amz-Credential parameter" if presigned
              else "The authorization header is malformed")
    if cred.date != claim.amz_date[:8]:
        raise S3Error(code, f"{prefix}; Invalid credential date \"{cred.date}\". This date is not the "
                            f"same as X-Amz-Date: \"{claim.amz_date[:8]}\".")
    if cred.region != region:
        raise S3Error(code, f"{prefix}; the region '{cred.region}' is wrong; expecting '{region}'",
                      Region=region)
    if cred.service != SERVICE:
        raise S3Error(code, f"{prefix}; incorrect service \"{cred.service}\". This endpoint belongs "
                            f"to \"{SERVICE}\".")
    if cred.terminator != TERMINATOR:
        raise S3Error(code, f"{prefix}; incorrect terminal \"{cred.terminator}\". This endpoint uses "
                            f"\"{TERMINATOR}\".")


def _check_time(claim: _Claim, now: float, max_skew_s: int) -> None:
    server_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    if claim.presigned:
        if claim.timestamp - now > max_skew_s:
            raise S3Error("AccessDenied", "Request is not valid yet")
        if now > claim.timestamp + claim.expires:
            raise S3Error("AccessDenied", "Request has expired", **{
                "X-Amz-Expires": str(claim.expires),
                "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime(claim.timestamp + claim.expires)),
                "ServerTime": server_time})
        return
    if abs(claim.timestamp - now) > max_skew_s:
        raise S3Error("RequestTimeTooSkewed", RequestTime=claim.amz_date, ServerTime=server_time,
                      MaxAllowedSkewMilliseconds=str(max_skew_s * 1000))


# ---------------------------------------------------------------- entry point


def _origin_form(target: str) -> str:
    """`http://host/path?q` (absolute-form, sent to proxies) -> `/path?q`; other targets unchanged."""
    lowered = target[:8].lower()
    if lowered.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        query = rest.find("?")
        if slash < 0 or (0 <= query < slash):
            return "/" + rest[query:] if query >= 0 else "/"
        return rest[slash:]
    return target


async def _lookup(lookup_key: Callable[[str], Awaitable[KeyInfo]], access_key: str) -> KeyInfo:
    if not _ACCESS_KEY.fullmatch(access_key):
        raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    try:
        return await lookup_key(access_key)
    except CoordinatorError as exc:
        if exc.code == "InvalidAccessKeyId":
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=access_key) from None
        raise S3Error(exc.code, exc.message, status=exc.status) from None


def _server_time(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


async def authenticate(request: web.Request, lookup_key: Callable[[str], Awaitable[KeyInfo]],
                       region: str, max_skew_s: int = 900, now: float | None = None, *,
                       vhost_bucket: str | None = None, allow_sigv2: bool = True) -> AuthContext:
    """Verify the request's signature; raise S3Error with the code S3 would answer.

    SigV4 (header or presigned) is the normal case. SigV2 (header or presigned) is accepted
    too unless `allow_sigv2` is False; pass `vhost_bucket` for virtual-hosted requests so
    the V2 resource can name the bucket (V4 signs the Host header and needs nothing).
    """
    now = time.time() if now is None else now
    raw_path, _, raw_query = _origin_form(request.raw_path).partition("?")
    params = _query_params(raw_query) if raw_query else {}
    header = request.headers.get("Authorization")
    v4_query = "X-Amz-Signature" in params or "X-Amz-Credential" in params or "X-Amz-Algorithm" in params
    v2_query = "Signature" in params and "AWSAccessKeyId" in params
    if header is not None and (v4_query or v2_query):
        raise S3Error("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                                         "query parameter, Signature query string parameter or the "
                                         "Authorization header should be specified",
                      ArgumentName="Authorization", ArgumentValue=header)
    is_v2 = (header is not None and header.strip().startswith("AWS ")) or (header is None and v2_query
                                                                           and not v4_query)
    if is_v2:
        if not allow_sigv2:
            raise S3Error("InvalidRequest", "The authorization mechanism you have provided is not "
                                            "supported. Please use AWS4-HMAC-SHA256.")
        return await _authenticate_v2(request, lookup_key, region, max_skew_s, now, raw_path, raw_query,
                                      params, vhost_bucket)
    if header is not None:
        claim = _header_claim(request)
    elif v4_query:
        claim = _query_claim(request, params)
    else:
        raise S3Error("AccessDenied", "Anonymous access is not supported; sign the request with "
                                      "AWS Signature Version 4.")

    payload_mode, payload_sha256 = _payload_mode(claim.content_sha256)
    _check_scope(claim, region)
    key = await _lookup(lookup_key, claim.credential.access_key)
    _check_time(claim, now, max_skew_s)

    scope = claim.credential.scope
    key_bytes = signing_key(key.secret_key, claim.credential.date, claim.credential.region)
    headers = canonical_headers(request, claim.signed_headers)
    first_canonical = None
    first_sts = None
    for uri in canonical_uri_candidates(raw_path):
        for query in canonical_query_candidates(raw_query, exclude_signature=claim.presigned):
            creq = canonical_request(request.method, uri, query, headers, claim.signed_headers,
                                     claim.content_sha256)
            sts = string_to_sign(claim.amz_date, scope, creq)
            if secrets_equal(sign_hex(key_bytes, sts), claim.signature):
                return AuthContext(
                    access_key=claim.credential.access_key, key=key, payload_mode=payload_mode,
                    payload_sha256=payload_sha256, signing_key=key_bytes, scope=scope,
                    amz_date=claim.amz_date, seed_signature=claim.signature,
                    presigned=claim.presigned, region=claim.credential.region)
            if first_canonical is None:
                first_canonical, first_sts = creq, sts
    raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=claim.credential.access_key,
                  StringToSign=first_sts or "", SignatureProvided=claim.signature,
                  CanonicalRequest=first_canonical or "")


def _v2_date(request: web.Request) -> tuple[str, float]:
    """(the Date header as signed, its unix time); x-amz-date, when present, gives the time
    (either as an HTTP date or in the ISO 8601 basic form)."""
    date_header = (request.headers.get("Date") or "").strip()
    source = (request.headers.get("x-amz-date") or date_header).strip()
    try:
        ts = parse_amz_date(source) if source[8:9] == "T" else parse_http_date(source)
    except BadValue:
        raise _bad_date() from None
    return date_header, ts


async def _authenticate_v2(request: web.Request, lookup_key: Callable[[str], Awaitable[KeyInfo]],
                           region: str, max_skew_s: int, now: float, raw_path: str, raw_query: str,
                           params: dict[str, str], vhost_bucket: str | None) -> AuthContext:
    header = request.headers.get("Authorization")
    if header is not None:
        access_key, signature_text = sigv2.parse_header(header)
        date_value, ts = _v2_date(request)
        key = await _lookup(lookup_key, access_key)
        signature = sigv2.decode_signature(signature_text)
        if abs(ts - now) > max_skew_s:
            raise S3Error("RequestTimeTooSkewed", RequestTime=date_value, ServerTime=_server_time(now),
                          MaxAllowedSkewMilliseconds=str(max_skew_s * 1000))
        presigned = False
    else:
        access_key = params["AWSAccessKeyId"]
        date_value = params.get("Expires", "")
        try:
            expires_at = parse_uint(date_value, MAX_UNIX_TIME, saturate=True)
        except BadValue:
            raise S3Error("AccessDenied", "Query-string authentication requires the Signature, Expires "
                                          "and AWSAccessKeyId parameters") from None
        key = await _lookup(lookup_key, access_key)
        signature = sigv2.decode_signature(params["Signature"])
        if now > expires_at:
            raise S3Error("AccessDenied", "Request has expired", Expires=_server_time(expires_at),
                          ServerTime=_server_time(now))
        presigned = True
    query = {k: v for k, v in params.items() if k not in ("Signature", "AWSAccessKeyId", "Expires")}
    candidates = sigv2.string_to_sign_candidates(request, raw_path, raw_query, query, date_value,
                                                 vhost_bucket)
    for sts in candidates:
        if secrets_equal(sigv2.sign(key.secret_key, sts), signature):
            return AuthContext(access_key=access_key, key=key, payload_mode="unsigned", payload_sha256=None,
                               signing_key=b"", scope="", amz_date="", seed_signature="",
                               presigned=presigned, region=region, version="v2")
    raise S3Error("SignatureDoesNotMatch", AWSAccessKeyId=access_key, StringToSign=candidates[0],
                  SignatureProvided=base64.b64encode(signature).decode("ascii"))
