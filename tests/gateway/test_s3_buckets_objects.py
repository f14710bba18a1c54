"""boto3 against a real mini cluster: buckets, single-PUT objects, ranges, conditions, copies, deletes."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from botocore.exceptions import ClientError


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    resp = exc.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(s3) -> None:
    name = f"life-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "")
    versioning = s3.get_bucket_versioning(Bucket=name)
    assert "Status" not in versioning
    # AWS's legacy us-east-1 behaviour: creating a bucket you already own there succeeds.
    again = s3.create_bucket(Bucket=name)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.put_object(Bucket=name, Key="x", Body=b"1")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=name)
    assert code_of(info) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="x")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as info:
        s3.head_bucket(Bucket=name)
    assert code_of(info)[1] == 404
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket=name)
    assert code_of(info) == ("NoSuchBucket", 404)


def test_invalid_bucket_name(s3) -> None:
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket="Bad_Name")
    assert code_of(info) == ("InvalidBucketName", 400)


def test_put_get_head_roundtrip_with_metadata(s3, bucket: str) -> None:
    body = os.urandom(3 * 1024 * 1024 + 123)     # several 1 MiB chunks plus a tail
    put = s3.put_object(Bucket=bucket, Key="dir/file.bin", Body=body, ContentType="application/x-test",
                        Metadata={"color": "Blue", "n": "42"}, CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="f.bin"', ContentLanguage="en",
                        ContentEncoding="identity")
    etag = '"' + hashlib.md5(body).hexdigest() + '"'
    assert put["ETag"] == etag
    assert "VersionId" not in put
    got = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "Blue", "n": "42"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="f.bin"'
    assert got["ContentLanguage"] == "en"
    assert got["ContentEncoding"] == "identity"
    head = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == etag
    assert head["ResponseMetadata"]["HTTPHeaders"]["last-modified"].endswith("GMT")
    assert "x-amz-version-id" not in head["ResponseMetadata"]["HTTPHeaders"]
    # rclone's probe
    assert s3.head_object(Bucket=bucket, Key="dir/file.bin", VersionId="null")["ETag"] == etag


def test_empty_object_and_default_content_type(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert got["ContentType"] == "binary/octet-stream"


def test_keys_are_independent_and_utf8(s3, bucket: str) -> None:
    keys = ["foo", "foo/bar", "foo/bar/", "sp ace+plus", "\u20ac/\U0001f600 \u00e9", "a%2Fb", "q?x=1&y"]
    for i, key in enumerate(keys):
        s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode())
    for i, key in enumerate(keys):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == str(i).encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_key_too_long(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert code_of(info) == ("KeyTooLongError", 400)
    s3.put_object(Bucket=bucket, Key="k" * 1024, Body=b"x")


def test_missing_key(s3, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code_of(info) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="nope")
    assert code_of(info)[1] == 404
    # deleting what is not there still answers 204
    assert s3.delete_object(Bucket=bucket, Key="nope")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_ranges(s3, bucket: str) -> None:
    body = os.urandom(2_500_000)
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    for header, start, end in [("bytes=0-0", 0, 0), ("bytes=1048570-1048590", 1048570, 1048590),
                               ("bytes=2000000-", 2000000, len(body) - 1), ("bytes=-100", len(body) - 100,
                                                                            len(body) - 1),
                               ("bytes=10-99999999", 10, len(body) - 1)]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {start}-{end}/{len(body)}"
        assert got["Body"].read() == body[start:end + 1]
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code_of(info) == ("InvalidRange", 416)
    assert info.value.response["ResponseMetadata"]["HTTPHeaders"]["content-range"] == f"bytes */{len(body)}"


def test_conditional_get(s3, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    etag = put["ETag"]
    lm = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert code_of(info) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert code_of(info)[1] == 304
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=lm)
    assert code_of(info)[1] == 304
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=lm.replace(year=2000))
    assert code_of(info)[1] == 412


def test_response_overrides(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="application/json",
                        ResponseContentDisposition="attachment; filename=o.json",
                        ResponseCacheControl="no-cache")
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "attachment; filename=o.json"
    assert got["CacheControl"] == "no-cache"


def test_presigned_get(cluster, s3, bucket: str) -> None:
    import urllib.request

    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned body")
    signer = cluster.boto3_client(signature_version="s3v4")   # boto3 presigns SigV2 by default
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"presigned body"


def test_copy_object(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"})
    res = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert res["CopyObjectResult"]["ETag"] == s3.head_object(Bucket=bucket, Key="src")["ETag"]
    dst = s3.get_object(Bucket=bucket, Key="dst")
    assert dst["Body"].read() == b"copy me"
    assert dst["Metadata"] == {"a": "1"}
    assert dst["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
                   Metadata={"b": "2"}, ContentType="application/x-new")
    head = s3.head_object(Bucket=bucket, Key="dst2")
    assert head["Metadata"] == {"b": "2"}
    assert head["ContentType"] == "application/x-new"
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert code_of(info) == ("InvalidRequest", 400)
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"c": "3"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"c": "3"}
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="d3", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceIfMatch='"nope"')
    assert code_of(info) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as info:
        s3.copy_object(Bucket=bucket, Key="d3", CopySource={"Bucket": bucket, "Key": "missing"})
    assert code_of(info) == ("NoSuchKey", 404)


def test_delete_objects(s3, bucket: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(3)]
                                                   + [{"Key": "d/absent"}]})
    assert sorted(d["Key"] for d in res["Deleted"]) == ["d/0", "d/1", "d/2", "d/absent"]
    assert not res.get("Errors")
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/3"}, {"Key": "d/4"}],
                                                   "Quiet": True})
    assert not res.get("Deleted") and not res.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    with pytest.raises(ClientError) as info:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": str(i)} for i in range(1001)]})
    assert code_of(info) == ("MalformedXML", 400)


def test_checksums(s3, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="ck", Body=b"checksum body", ChecksumAlgorithm="CRC32")
    assert put.get("ChecksumCRC32")
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert "ContentEncoding" not in head          # aws-chunked framing is never stored
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key="ck")
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"checksum body"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"abc", ChecksumSHA256="A" * 43 + "=")
    assert code_of(info)[0] in ("BadDigest", "InvalidRequest")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad")
