"""Content-MD5 and x-amz-checksum-* headers: parsing and verification."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from gateway.s3.checksum_headers import content_md5, requested_checksums, trailer_names, verify
from gateway.s3.errors import S3Error

DATA = b"The quick brown fox jumps over the lazy dog"
CRC32 = base64.b64encode(zlib.crc32(DATA).to_bytes(4, "big")).decode()
SHA256 = base64.b64encode(hashlib.sha256(DATA).digest()).decode()
MD5 = hashlib.md5(DATA)


def req(**headers: str):
    return make_mocked_request("PUT", "/b/k", headers=CIMultiDict(
        {k.replace("_", "-"): v for k, v in headers.items()}))


def test_header_checksum() -> None:
    r = req(**{"x_amz_checksum_crc32": CRC32, "x_amz_sdk_checksum_algorithm": "CRC32"})
    assert requested_checksums(r, trailer_names(r)) == {"crc32": CRC32}


def test_trailer_checksum() -> None:
    r = req(x_amz_trailer="x-amz-checksum-crc64nvme")
    assert trailer_names(r) == ["x-amz-checksum-crc64nvme"]
    assert requested_checksums(r, trailer_names(r)) == {"crc64nvme": None}


def test_none_requested() -> None:
    r = req(x_amz_checksum_algorithm="CRC32", x_amz_checksum_type="FULL_OBJECT")
    assert requested_checksums(r, []) == {}


@pytest.mark.parametrize("headers, trailers", [
    ({"x-amz-checksum-md4": "AAAA"}, []),                         # unknown algorithm
    ({}, ["x-amz-checksum-whirlpool"]),
    ({}, ["content-md5"]),
    ({"x-amz-checksum-crc32": "not base64!"}, []),
    ({"x-amz-checksum-crc32": base64.b64encode(b"12345").decode()}, []),   # wrong size
    ({"x-amz-checksum-sha256": CRC32}, []),
    ({"x-amz-checksum-crc32": CRC32, "x-amz-checksum-sha256": SHA256}, []),  # two algorithms
    ({"x-amz-checksum-crc32": CRC32}, ["x-amz-checksum-crc32"]),
    ({"x-amz-checksum-crc32": CRC32, "x-amz-sdk-checksum-algorithm": "SHA256"}, []),
])
def test_invalid_requests(headers: dict[str, str], trailers: list[str]) -> None:
    r = make_mocked_request("PUT", "/b/k", headers=CIMultiDict(headers))
    with pytest.raises(S3Error) as info:
        requested_checksums(r, trailers)
    assert info.value.code == "InvalidRequest"
    assert info.value.status == 400


def test_content_md5() -> None:
    assert content_md5(req()) is None
    assert content_md5(req(Content_MD5=base64.b64encode(MD5.digest()).decode())) == MD5.digest()
    for bad in ("", "abc", base64.b64encode(b"short").decode(), MD5.hexdigest()):
        with pytest.raises(S3Error) as info:
            content_md5(req(Content_MD5=bad))
        assert info.value.code == "InvalidDigest"


def test_verify_ok() -> None:
    verify({"crc32": CRC32}, {}, {"crc32": CRC32}, MD5.hexdigest(), MD5.digest())
    verify({"sha256": None}, {"x-amz-checksum-sha256": SHA256}, {"sha256": SHA256}, MD5.hexdigest(), None)
    verify({}, {}, {}, MD5.hexdigest(), None)


def test_verify_md5_mismatch() -> None:
    with pytest.raises(S3Error) as info:
        verify({}, {}, {}, hashlib.md5(b"other").hexdigest(), MD5.digest())
    assert info.value.code == "BadDigest"
    assert "Content-MD5" in info.value.message


def test_verify_checksum_mismatch() -> None:
    other = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    with pytest.raises(S3Error) as info:
        verify({"crc32": other}, {}, {"crc32": CRC32}, MD5.hexdigest(), None)
    assert info.value.code == "BadDigest"
    assert "CRC32" in info.value.message
    with pytest.raises(S3Error) as info:
        verify({"crc32": None}, {"x-amz-checksum-crc32": other}, {"crc32": CRC32}, MD5.hexdigest(), None)
    assert info.value.code == "BadDigest"


def test_verify_missing_or_malformed_trailer() -> None:
    with pytest.raises(S3Error) as info:
        verify({"crc32": None}, {}, {"crc32": CRC32}, MD5.hexdigest(), None)
    assert info.value.code == "InvalidRequest"
    with pytest.raises(S3Error) as info:
        verify({"crc32": None}, {"x-amz-checksum-crc32": "%%%"}, {"crc32": CRC32}, MD5.hexdigest(), None)
    assert info.value.code == "InvalidRequest"
