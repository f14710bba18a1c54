"""The integrity checks an S3 client asks for: Content-MD5 and `x-amz-checksum-*`.

A client states an expected value in a header (`x-amz-checksum-crc32: <base64>`) or
announces it will send one after the body (`x-amz-trailer: x-amz-checksum-crc32`, with an
aws-chunked body). The handler learns here which algorithms to compute while the body
streams (`requested_checksums`), lets the data path compute them, and calls `verify` before
it commits anything; S3 answers BadDigest when a value differs.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from gateway.s3.errors import S3Error

# algorithm -> digest size in bytes
CHECKSUM_SIZES: dict[str, int] = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
HEADER_PREFIX = "x-amz-checksum-"
# x-amz-checksum-* headers that carry something other than a value.
_NOT_VALUES = {"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"}


def header_name(algorithm: str) -> str:
    """`crc32` -> `x-amz-checksum-crc32`."""
    return HEADER_PREFIX + algorithm


def _algorithm_of(name: str, where: str) -> str:
    algorithm = name.lower()[len(HEADER_PREFIX):] if name.lower().startswith(HEADER_PREFIX) else ""
    if algorithm not in CHECKSUM_SIZES:
        raise S3Error("InvalidRequest", f"The {where} {name!r} names an unsupported checksum algorithm; "
                                        f"use one of {', '.join(sorted(CHECKSUM_SIZES))}.")
    return algorithm


def decode_checksum(algorithm: str, value: str) -> bytes:
    """Base64 checksum value -> digest bytes; InvalidRequest when malformed or the wrong size."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != CHECKSUM_SIZES[algorithm]:
        raise S3Error("InvalidRequest", f"Value for {header_name(algorithm)} header is invalid.")
    return raw


def trailer_names(request: web.Request) -> list[str]:
    """Names announced by `x-amz-trailer` (comma-separated), lowercased."""
    value = request.headers.get("x-amz-trailer", "")
    return [n.strip().lower() for n in value.split(",") if n.strip()]


def requested_checksums(request: web.Request, trailer_names: list[str]) -> dict[str, str | None]:
    """algorithm -> expected base64 value from its header, or None when it comes as a trailer.

    S3 accepts a single checksum per request; more than one (headers and trailers together)
    is InvalidRequest, as is an unknown algorithm or a malformed value.
    """
    expected: dict[str, str | None] = {}
    for name in trailer_names:
        expected[_algorithm_of(name, "trailer")] = None
    for name, value in request.headers.items():
        lname = name.lower()
        if not lname.startswith(HEADER_PREFIX) or lname in _NOT_VALUES:
            continue
        algorithm = _algorithm_of(lname, "header")
        decode_checksum(algorithm, value)
        if algorithm in expected:
            raise S3Error("InvalidRequest", f"{header_name(algorithm)} was sent both as a header and as a "
                                            "trailer.")
        expected[algorithm] = value.strip()
    if len(expected) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum "
                                        "Types are not allowed.")
    declared = request.headers.get("x-amz-sdk-checksum-algorithm")
    if declared and expected and declared.strip().lower() not in expected:
        raise S3Error("InvalidRequest", f"x-amz-sdk-checksum-algorithm is {declared!r} but the checksum "
                                        f"sent is {header_name(next(iter(expected)))}.")
    return expected


def content_md5(request: web.Request) -> bytes | None:
    """The 16-byte digest from Content-MD5, None without one; InvalidDigest when malformed."""
    value = request.headers.get("Content-MD5")
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise S3Error("InvalidDigest")
    return raw


def verify(expected: dict[str, str | None], trailers: dict[str, str], actual: dict[str, str],
           md5_hex: str, content_md5: bytes | None) -> None:
    """Raise BadDigest if what was received differs from what the client said it sent.

    `expected` comes from `requested_checksums`, `trailers` from `PayloadStream.trailers`,
    `actual` maps algorithm -> base64 as computed over the received bytes, `md5_hex` is the
    MD5 of the body and `content_md5` the value of `content_md5(request)`.
    """
    if content_md5 is not None and not hmac.compare_digest(content_md5, bytes.fromhex(md5_hex)):
        raise S3Error("BadDigest", ExpectedDigest=content_md5.hex(), CalculatedDigest=md5_hex)
    for algorithm, value in expected.items():
        name = header_name(algorithm)
        if value is None:
            value = trailers.get(name)
            if value is None:
                raise S3Error("InvalidRequest", f"x-amz-trailer announced {name} but the body had no such "
                                                "trailer.")
        claimed = decode_checksum(algorithm, value)
        if algorithm not in actual:
            raise ValueError(f"checksum {algorithm} was requested but not computed")
        computed = base64.b64decode(actual[algorithm])
        if not hmac.compare_digest(claimed, computed):
            raise S3Error("BadDigest", f"The {algorithm.upper()} you specified did not match the calculated "
                                       "checksum.")
