"""Which request headers become stored object metadata, and how they come back (gateway/s3/objmeta.py)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from coordinator.records import ObjectInfo
from gateway.s3 import objmeta
from gateway.s3.errors import S3Error
from gateway.s3.responses import decode_token, encode_token, int_param


def test_from_request_collects_metadata_and_headers() -> None:
    headers = CIMultiDict({
        "Content-Type": "text/plain", "X-Amz-Meta-Color": "Blue", "x-amz-meta-\u00e9": "\u20ac",
        "Cache-Control": "no-cache", "Content-Encoding": "aws-chunked, gzip", "Expires": "soon",
        "x-amz-storage-class": "STANDARD_IA", "Authorization": "not stored"})
    meta = objmeta.from_request(headers)
    assert meta.content_type == "text/plain"
    assert meta.metadata == {"color": "Blue", "\u00e9": "\u20ac"}
    assert meta.headers == {"cache-control": "no-cache", "content-encoding": "gzip", "expires": "soon"}
    assert meta.storage_class == "STANDARD_IA"


def test_aws_chunked_alone_is_not_stored() -> None:
    meta = objmeta.from_request(CIMultiDict({"Content-Encoding": "aws-chunked"}))
    assert "content-encoding" not in meta.headers


def test_metadata_limits() -> None:
    with pytest.raises(S3Error) as info:
        objmeta.from_request(CIMultiDict({"x-amz-meta-big": "x" * 2100}))
    assert info.value.code == "MetadataTooLarge"
    with pytest.raises(S3Error) as info:
        objmeta.from_request(CIMultiDict({"x-amz-storage-class": "FAST"}))
    assert info.value.code == "InvalidStorageClass"


def test_response_headers_and_overrides() -> None:
    obj = ObjectInfo(bucket="b", key="k", version_id="v", tenant_id="t", size=3, etag='"abc"',
                     last_modified=1_700_000_000.5, content_type=None, metadata={"color": "Blue"},
                     headers={"cache-control": "max-age=1"},
                     checksums={"crc32": "AAAAAA==", "sha256hex": "00"})
    out = objmeta.response_headers(obj, {"response-content-type": "text/csv"})
    assert out["Content-Type"] == "text/csv"
    assert out["ETag"] == '"abc"'
    assert out["Last-Modified"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert out["Cache-Control"] == "max-age=1"
    assert out["x-amz-meta-color"] == "Blue"
    assert "x-amz-checksum-crc32" not in out
    assert objmeta.response_headers(obj)["Content-Type"] == objmeta.DEFAULT_CONTENT_TYPE
    assert objmeta.checksum_headers(obj.checksums) == {"x-amz-checksum-crc32": "AAAAAA=="}
    assert objmeta.checksum_xml(obj.checksums) == [("ChecksumCRC32", "AAAAAA==")]


def test_tokens_roundtrip_and_reject_garbage() -> None:
    for marker in ("a", "dir/\u20ac \U0001f600", "x" * 1024):
        assert decode_token(encode_token(marker)) == marker
    for bad in ("%%", "", "!!!!", "YQ"):
        with pytest.raises(S3Error):
            decode_token(bad)


def test_int_param() -> None:
    assert int_param({}, "max-keys", 1000) == 1000
    assert int_param({"max-keys": "5000"}, "max-keys", 1000, cap=1000) == 1000
    for bad in ("-1", "abc", "1.5"):
        with pytest.raises(S3Error) as info:
            int_param({"max-keys": bad}, "max-keys", 1000)
        assert info.value.code == "InvalidArgument"
