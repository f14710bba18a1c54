"""Addressing and operation dispatch (gateway/s3/router.py): which handler a request reaches."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.s3 import handlers_listing
from gateway.s3.copy_source import parse_copy_source
from gateway.s3.errors import S3Error
from gateway.s3.router import Address, resolve_address, select_operation


@pytest.mark.parametrize(("host", "path", "domain", "expected"), [
    ("localhost:9000", "/", None, Address(None, None)),
    ("localhost:9000", "/b", None, Address("b", None)),
    ("localhost:9000", "/b/", None, Address("b", None)),
    ("localhost:9000", "/b/k", None, Address("b", "k")),
    ("localhost:9000", "/b/dir/sub/file.txt?x=1", None, Address("b", "dir/sub/file.txt")),
    ("localhost:9000", "/b/a%20b%2Bc+d", None, Address("b", "a b+c+d")),
    ("localhost:9000", "/b/%E2%82%AC/%F0%9F%98%80", None, Address("b", "\u20ac/\U0001f600")),
    ("localhost:9000", "/b//leading", None, Address("b", "/leading")),
    ("localhost:9000", "/b/a/../c", None, Address("b", "a/../c")),
    ("b.s3.example.com:9000", "/k/x", "s3.example.com", Address("b", "k/x")),
    ("my.dotted.bucket.s3.example.com", "/", "s3.example.com", Address("my.dotted.bucket", None)),
    ("s3.example.com", "/b/k", "s3.example.com", Address("b", "k")),
    ("other.host", "/b/k", "s3.example.com", Address("b", "k")),
])
def test_resolve_address(host: str, path: str, domain: str | None, expected: Address) -> None:
    assert resolve_address(host, path, domain) == expected


def test_invalid_utf8_path() -> None:
    with pytest.raises(S3Error) as info:
        resolve_address("h", "/b/%FF%FE", None)
    assert info.value.code == "InvalidURI"


def op(method: str, path: str, query: str = "", **headers: str) -> str:
    from yarl import URL
    address = resolve_address("h", path, None)
    q = URL("/?" + query).query if query else {}
    return select_operation(method, address, q, CIMultiDict(headers)).name


@pytest.mark.parametrize(("method", "path", "query", "headers", "name"), [
    ("GET", "/", "", {}, "ListBuckets"),
    ("GET", "/", "max-buckets=10", {}, "ListBuckets"),
    ("PUT", "/", "", {}, "MethodNotAllowed"),
    ("PUT", "/b", "", {}, "CreateBucket"),
    ("HEAD", "/b", "", {}, "HeadBucket"),
    ("DELETE", "/b", "", {}, "DeleteBucket"),
    ("GET", "/b", "", {}, "ListObjects"),
    ("GET", "/b", "list-type=2&prefix=a", {}, "ListObjectsV2"),
    ("GET", "/b", "location", {}, "GetBucketLocation"),
    ("GET", "/b", "versioning", {}, "GetBucketVersioning"),
    ("GET", "/b", "uploads", {}, "ListMultipartUploads"),
    ("GET", "/b", "acl", {}, "GetBucketAcl"),
    ("GET", "/b", "policy", {}, "GetBucketPolicy"),
    ("GET", "/b", "versions", {}, "ListObjectVersions"),
    ("GET", "/b", "versions&prefix=a&key-marker=k", {}, "ListObjectVersions"),
    ("PUT", "/b", "versioning", {}, "PutBucketVersioning"),
    ("PUT", "/b", "acl", {}, "PutBucketAcl"),
    ("PUT", "/b", "cors", {}, "PutBucketCors"),
    ("GET", "/b", "cors", {}, "GetBucketCors"),
    ("DELETE", "/b", "cors", {}, "DeleteBucketCors"),
    ("DELETE", "/b", "policy", {}, "DeleteBucket:policy"),
    ("PUT", "/b", "lifecycle", {}, "PutBucketLifecycleConfiguration"),
    ("POST", "/b", "delete", {}, "DeleteObjects"),
    ("POST", "/b", "", {"Content-Type": "multipart/form-data; boundary=x"}, "PostObject"),
    ("POST", "/b", "", {}, "PostBucket"),
    ("OPTIONS", "/b", "", {}, "PreflightRequest"),
    ("OPTIONS", "/b/k", "", {}, "PreflightRequest"),
    ("OPTIONS", "/", "", {}, "MethodNotAllowed"),
    ("GET", "/b/k", "", {}, "GetObject"),
    ("GET", "/b/k", "versionId=null", {}, "GetObject"),
    ("GET", "/b/k", "x-id=GetObject", {}, "GetObject"),
    ("GET", "/b/k", "partNumber=2", {}, "GetObject"),
    ("GET", "/b/k", "response-content-type=text/plain", {}, "GetObject"),
    ("HEAD", "/b/k", "versionId=null", {}, "HeadObject"),
    ("PUT", "/b/k", "", {}, "PutObject"),
    ("PUT", "/b/k", "x-id=PutObject", {}, "PutObject"),
    ("PUT", "/b/k", "", {"x-amz-copy-source": "/a/b"}, "CopyObject"),
    ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, "UploadPart"),
    ("PUT", "/b/k", "partNumber=1&uploadId=u", {"x-amz-copy-source": "a/b"}, "UploadPartCopy"),
    ("PUT", "/b/k", "tagging", {}, "PutObjectTagging"),
    ("PUT", "/b/k", "tagging&versionId=v", {}, "PutObjectTagging"),
    ("DELETE", "/b/k", "tagging", {}, "DeleteObjectTagging"),
    ("PUT", "/b/k", "acl", {}, "PutObjectAcl"),
    ("GET", "/b/k", "attributes", {}, "GetObjectAttributes"),
    ("PUT", "/b/k", "retention", {}, "PutObject:retention"),
    ("GET", "/b/k", "versioning", {}, "GetObject:versioning"),
    ("DELETE", "/b/k", "versionId=v", {}, "DeleteObject"),
    ("POST", "/b/k", "uploads", {}, "CreateMultipartUpload"),
    ("POST", "/b/k", "uploadId=u", {}, "CompleteMultipartUpload"),
    ("GET", "/b/k", "uploadId=u", {}, "ListParts"),
    ("DELETE", "/b/k", "uploadId=u", {}, "AbortMultipartUpload"),
    ("DELETE", "/b/k", "", {}, "DeleteObject"),
    ("GET", "/b/k", "tagging", {}, "GetObjectTagging"),
    ("GET", "/b/k", "acl", {}, "GetObjectAcl"),
    ("PATCH", "/b/k", "", {}, "MethodNotAllowed"),
    # `foo` and `foo/bar` are different objects; a key may look like a subresource-free path
    ("GET", "/b/uploads", "", {}, "GetObject"),
])
def test_select_operation(method: str, path: str, query: str, headers: dict, name: str) -> None:
    assert op(method, path, query, **headers) == name


@pytest.mark.parametrize(("value", "bucket", "key", "version"), [
    ("/src/key", "src", "key", None),
    ("src/dir/key", "src", "dir/key", None),
    ("src/a%20b%3Fc", "src", "a b?c", None),
    ("/src/%E2%82%AC?versionId=null", "src", "\u20ac", "null"),
    ("src/k?versionId=abc", "src", "k", "abc"),
])
def test_copy_source(value: str, bucket: str, key: str, version: str | None) -> None:
    src = parse_copy_source(value)
    assert (src.bucket, src.key, src.version_id) == (bucket, key, version)


@pytest.mark.parametrize("value", ["src", "/src/", "src?versionId=x", "src/k?other=1"])
def test_bad_copy_source(value: str) -> None:
    with pytest.raises(S3Error) as info:
        parse_copy_source(value)
    assert info.value.code == "InvalidArgument"


def test_listing_url_encoding_and_markers() -> None:
    assert handlers_listing.url_encode("a b+c/d\u20ac&$~") == "a%20b%2Bc/d%E2%82%AC%26%24~"
    # a marker that is a common prefix skips everything under it
    assert handlers_listing.effective_marker("p/dir/", "p/", "/") == "p/dir/\U0010ffff"
    assert handlers_listing.effective_marker("p/dir/file", "p/", "/") == "p/dir/file"
    assert handlers_listing.effective_marker("p/dir/", "p/", None) == "p/dir/"
    assert handlers_listing.effective_marker("p/", "p/", "/") == "p/"
    assert handlers_listing.effective_marker(None, "", "/") is None
