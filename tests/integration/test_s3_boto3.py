"""boto3 against a real `shardbox up`: the S3 operations and their error cases."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import urllib3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

MiB = 1 << 20
CHUNK = 8 * MiB


def error_code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def status(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="life-cycle-1")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "life-cycle-1" in names
    s3.head_bucket(Bucket="life-cycle-1")
    loc = s3.get_bucket_location(Bucket="life-cycle-1")
    assert loc["LocationConstraint"] in (None, "us-east-1")
    assert s3.create_bucket(Bucket="life-cycle-1")["ResponseMetadata"]["HTTPStatusCode"] == 200
    s3.put_object(Bucket="life-cycle-1", Key="x", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="life-cycle-1")
    assert error_code(e) == "BucketNotEmpty" and status(e) == 409
    s3.delete_object(Bucket="life-cycle-1", Key="x")
    s3.delete_bucket(Bucket="life-cycle-1")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="life-cycle-1")
    assert status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert error_code(e) == "InvalidBucketName"


def test_single_put_roundtrip_with_metadata(s3, bucket):
    body = os.urandom(3 * MiB + 17)
    put = s3.put_object(Bucket=bucket, Key="dir/file.bin", Body=body, ContentType="application/x-test",
                        Metadata={"color": "blue", "note": "two words"}, CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="f.bin"')
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert "VersionId" not in put
    got = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "application/x-test"
    assert got["ContentLength"] == len(body)
    assert got["Metadata"] == {"color": "blue", "note": "two words"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="f.bin"'
    head = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert head["Metadata"]["note"] == "two words"


def test_empty_object_and_overwrite(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b"" and got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    s3.put_object(Bucket=bucket, Key="empty", Body=b"now full")
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b"now full"


def test_foo_and_foo_slash_bar_coexist(s3, bucket):
    s3.put_object(Bucket=bucket, Key="foo", Body=b"file")
    s3.put_object(Bucket=bucket, Key="foo/bar", Body=b"nested")
    assert s3.get_object(Bucket=bucket, Key="foo")["Body"].read() == b"file"
    assert s3.get_object(Bucket=bucket, Key="foo/bar")["Body"].read() == b"nested"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["foo", "foo/bar"]


def test_odd_keys(s3, bucket):
    keys = ["a b+c%20d", "ünï/cødé ✓", "tilde~and=eq&amp", "x//double//slash", "q?mark#hash"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_ranged_gets_at_chunk_boundaries(s3, bucket):
    body = os.urandom(2 * CHUNK + 5 * MiB)
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    cases = [(0, 0), (0, CHUNK - 1), (CHUNK - 1, CHUNK), (CHUNK - 3, CHUNK + 3), (CHUNK, 2 * CHUNK - 1),
             (2 * CHUNK - 1, 2 * CHUNK), (len(body) - 1, len(body) - 1), (5, len(body) - 1)]
    for a, b in cases:
        got = s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={a}-{b}")
        assert got["Body"].read() == body[a:b + 1], (a, b)
        assert got["ContentRange"] == f"bytes {a}-{b}/{len(body)}"
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-100")["Body"].read() == body[-100:]
    assert s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={CHUNK}-")["Body"].read() == body[CHUNK:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert error_code(e) == "InvalidRange" and status(e) == 416


def test_conditional_get(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    etag = put["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status(e) == 412
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(e) == 304
    last = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=last)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=last.replace(year=2001))
    assert status(e) == 412
    got = s3.get_object(Bucket=bucket, Key="c", ResponseContentType="text/plain",
                        ResponseContentDisposition="attachment; filename=x.txt")
    assert got["ContentType"] == "text/plain"
    assert got["ContentDisposition"] == "attachment; filename=x.txt"


def test_conditional_writes(s3, bucket):
    """If-None-Match: * and If-Match on PutObject and CompleteMultipartUpload. Racing create-only
    PUTs of a two-chunk body all pass the early check; the commit lets exactly one win."""
    bodies = [bytes([i]) * (CHUNK + MiB) for i in range(6)]

    def create(body: bytes):
        try:
            return s3.put_object(Bucket=bucket, Key="lock", Body=body, IfNoneMatch="*")["ETag"]
        except ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        results = list(pool.map(create, bodies))
    winners = [i for i, r in enumerate(results) if isinstance(r, str)]
    assert len(winners) == 1, results
    assert sorted(r for r in results if not isinstance(r, str)) == [("PreconditionFailed", 412)] * 5
    got = s3.get_object(Bucket=bucket, Key="lock")
    assert got["ETag"] == results[winners[0]]
    assert got["Body"].read() == bodies[winners[0]]

    etag = s3.put_object(Bucket=bucket, Key="doc", Body=b"v1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="doc", Body=b"v2", IfMatch='"00000000000000000000000000000000"')
    assert (error_code(e), status(e)) == ("PreconditionFailed", 412)
    etag2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"v2", IfMatch=etag)["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="never-written", Body=b"x", IfMatch=etag)
    assert status(e) == 404

    upload = s3.create_multipart_upload(Bucket=bucket, Key="doc")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="doc", UploadId=upload, PartNumber=1, Body=b"p" * MiB)["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": part}]}
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="doc", UploadId=upload, MultipartUpload=parts,
                                     IfNoneMatch="*")
    assert (error_code(e), status(e)) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"v2"
    done = s3.complete_multipart_upload(Bucket=bucket, Key="doc", UploadId=upload, MultipartUpload=parts,
                                        IfMatch=etag2)
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"p" * MiB


def test_list_objects_v2_pagination_with_delimiters(s3, bucket):
    keys = [f"p{i % 5}/sub{i % 7}/k{i:05d}" for i in range(2400)] + [f"top{i:03d}" for i in range(100)]

    def put(k: str) -> None:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))

    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000, **kw)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert page["KeyCount"] == len(page.get("Contents", []))
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert pages == 3
    assert seen == sorted(keys)

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == [f"p{i}/" for i in range(5)]
    assert [o["Key"] for o in top["Contents"]] == [f"top{i:03d}" for i in range(100)]

    # a common prefix counts once against MaxKeys, and pagination walks over prefixes
    got_prefixes, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix="p3/", Delimiter="/", MaxKeys=2, **kw)
        got_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert got_prefixes == [f"p3/sub{i}/" for i in range(7)]

    after = s3.list_objects_v2(Bucket=bucket, StartAfter="top097")
    assert [o["Key"] for o in after["Contents"]] == ["top098", "top099"]
    assert after["StartAfter"] == "top097"

    paginator = s3.get_paginator("list_objects")
    pages_v1 = paginator.paginate(Bucket=bucket, Prefix="p1/", PaginationConfig={"PageSize": 300})
    v1 = [o["Key"] for page in pages_v1 for o in page.get("Contents", [])]
    assert v1 == sorted(k for k in keys if k.startswith("p1/"))


def test_list_encoding_type_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key="enc dir/ä b", Body=b"x")
    # asked for explicitly, botocore hands back the encoded text as S3 sends it
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", EncodingType="url")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["enc%20dir/"]
    page = s3.list_objects_v2(Bucket=bucket, Prefix="enc dir/", EncodingType="url")
    assert [urllib.parse.unquote_plus(o["Key"]) for o in page["Contents"]] == ["enc dir/ä b"]
    assert page["Contents"][0]["Key"] == "enc%20dir/%C3%A4%20b"


def test_delete_objects(s3, bucket):
    for i in range(30):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"d/{i}"} for i in range(20)]
                                                   + [{"Key": "never-existed"}]})
    assert len(res["Deleted"]) == 21 and not res.get("Errors")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert left == sorted(f"d/{i}" for i in range(20, 30))
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/25"}], "Quiet": True})
    assert not quiet.get("Deleted")
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert error_code(e) == "MalformedXML"


def test_copy_object(s3, bucket):
    body = os.urandom(9 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=body, Metadata={"a": "1"}, ContentType="image/png")
    s3.create_bucket(Bucket=f"{bucket}-dst")
    res = s3.copy_object(Bucket=f"{bucket}-dst", Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert res["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=f"{bucket}-dst", Key="copy")
    assert got["Body"].read() == body and got["Metadata"] == {"a": "1"} and got["ContentType"] == "image/png"
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/plain")
    head = s3.head_object(Bucket=bucket, Key="src")
    assert head["Metadata"] == {"b": "2"} and head["ContentType"] == "text/plain"
    # deleting the source keeps the copy readable: they share chunks by reference
    s3.delete_object(Bucket=bucket, Key="src")
    assert s3.get_object(Bucket=f"{bucket}-dst", Key="copy")["Body"].read() == body
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(e) == "NoSuchKey"


def test_multipart_errors_and_part_get(s3, bucket):
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB + 3), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="application/zip")
    uid = up["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i + 1, Body=d)["ETag"]
             for i, d in enumerate(parts_data)]
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [len(d) for d in parts_data]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [uid]

    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]})
    assert error_code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]})
    assert error_code(e) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId="nope", MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": etags[0]}]})
    assert error_code(e) == "NoSuchUpload" and status(e) == 404

    small = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=1, Body=b"a" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=2, Body=b"b" * 100)["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=small, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert error_code(e) == "EntityTooSmall" and status(e) == 400
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="small", UploadId=small)
    assert error_code(e) == "NoSuchUpload"

    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": i + 1, "ETag": t} for i, t in enumerate(etags)]})
    md5s = b"".join(hashlib.md5(d).digest() for d in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    whole = b"".join(parts_data)
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == whole and got["ContentType"] == "application/zip"
    part2 = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert part2["Body"].read() == parts_data[1]
    assert part2["PartsCount"] == 3
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_upload_part_copy(s3, bucket):
    src = os.urandom(12 * MiB)
    s3.put_object(Bucket=bucket, Key="big-src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "big-src"},
                             CopySourceRange=f"bytes=0-{6 * MiB - 1}")["CopyPartResult"]["ETag"]
    p2 = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2, Body=b"tail")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src[:6 * MiB] + b"tail"


def test_missing_things(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(e) == "NoSuchKey" and status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert error_code(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert error_code(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(e) == 404
    s3.delete_object(Bucket=bucket, Key="nope")  # S3 answers 204 for a missing key


def test_auth_errors(cluster, bucket):
    bad_secret = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                              aws_access_key_id=cluster.info["access_key"], aws_secret_access_key="x" * 40,
                              config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        bad_secret.list_objects_v2(Bucket=bucket)
    assert error_code(e) == "SignatureDoesNotMatch" and status(e) == 403
    with pytest.raises(ClientError) as e:
        bad_secret.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert error_code(e) == "SignatureDoesNotMatch"
    unknown = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                           aws_access_key_id="AKIANOTAREALKEY00000", aws_secret_access_key="x" * 40,
                           config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        unknown.list_buckets()
    assert error_code(e) == "InvalidAccessKeyId" and status(e) == 403

    # anonymous request
    pool = urllib3.PoolManager()
    r = pool.request("GET", f"{cluster.endpoint}/{bucket}")
    assert r.status == 403 and b"<Code>AccessDenied</Code>" in r.data


def test_request_time_too_skewed(cluster, bucket, monkeypatch):
    import datetime

    import botocore.auth

    real = botocore.auth.get_current_datetime

    def twenty_minutes_slow(*a, **k):
        return real(*a, **k) - datetime.timedelta(minutes=20)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", twenty_minutes_slow)
    try:  # botocore signs with awscrt when it is installed
        import botocore.crt.auth
        monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", twenty_minutes_slow)
    except ImportError:
        pass
    s3 = cluster.s3(retries={"max_attempts": 1})  # botocore would correct its clock and retry
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket)
    assert error_code(e) == "RequestTimeTooSkewed" and status(e) == 403


def test_bad_digest_leaves_nothing(s3, bucket):
    body = b"some bytes"
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bd", Body=body, ContentMD5=wrong)
    assert error_code(e) == "BadDigest"
    wrong_crc = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bd", Body=body, ChecksumCRC32=wrong_crc)
    assert error_code(e) in ("BadDigest", "InvalidRequest")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bd")


def test_checksums_are_verified_and_returned(s3, bucket):
    body = os.urandom(100_000)
    for algo in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"):
        try:
            put = s3.put_object(Bucket=bucket, Key=f"ck-{algo}", Body=body, ChecksumAlgorithm=algo)
        except Exception as exc:  # CRC64NVME needs awscrt on the client side
            if algo == "CRC64NVME" and "awscrt" in str(exc).lower():
                continue
            raise
        assert put.get(f"Checksum{algo}")
        head = s3.head_object(Bucket=bucket, Key=f"ck-{algo}", ChecksumMode="ENABLED")
        assert head.get(f"Checksum{algo}") == put[f"Checksum{algo}"]


def test_presigned_get_and_put_with_plain_http(s3, bucket):
    pool = urllib3.PoolManager()
    body = os.urandom(2 * MiB)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/signed"},
                                        ExpiresIn=300)
    r = pool.request("PUT", put_url, body=body)
    assert r.status == 200, r.data
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/signed"},
                                        ExpiresIn=300)
    r = pool.request("GET", get_url)
    assert r.status == 200 and r.data == body
    # tampering with the URL breaks the signature
    r = pool.request("GET", get_url.replace("pre/signed", "pre/signeX"))
    assert r.status == 403 and b"SignatureDoesNotMatch" in r.data
    # expiry
    short = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/signed"},
                                      ExpiresIn=1)
    time.sleep(2.1)
    r = pool.request("GET", short)
    assert r.status == 403 and b"AccessDenied" in r.data and b"expired" in r.data.lower()


def test_expect_100_continue_refused_early(cluster, bucket):
    """A PUT with Expect: 100-continue to a missing bucket is refused before the body is sent."""
    s3 = cluster.s3()
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "no-such-bucket-zz", "Key": "k"},
                                    ExpiresIn=300)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(50 * MiB))
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    resp = conn.getresponse()  # answered without any body bytes sent
    assert resp.status == 404
    assert b"NoSuchBucket" in resp.read()
    conn.close()

    ok_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k100"}, ExpiresIn=300)
    parts = urllib.parse.urlsplit(ok_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", "5")
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    sock = conn.sock
    sock.settimeout(10)
    interim = sock.recv(100)
    assert interim.startswith(b"HTTP/1.1 100")
    sock.sendall(b"hello")
    resp = conn.getresponse()
    assert resp.status == 200
    conn.close()
    assert s3.get_object(Bucket=bucket, Key="k100")["Body"].read() == b"hello"


def test_truncated_body_leaves_nothing(cluster, bucket):
    s3 = cluster.s3()
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "trunc"}, ExpiresIn=300)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(10 * MiB))
    conn.endheaders()
    conn.send(os.urandom(3 * MiB))
    conn.sock.shutdown(2)
    conn.close()
    time.sleep(0.5)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="trunc")
    assert status(e) == 404
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_signed_payload_hash_mismatch_is_refused(cluster, s3, bucket):
    """A body that does not match its signed x-amz-content-sha256 is refused and not stored."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = os.urandom(3 * MiB)
    url = f"{cluster.endpoint}/{bucket}/tampered"
    req = AWSRequest(method="PUT", url=url, data=body,
                     headers={"X-Amz-Content-SHA256": hashlib.sha256(b"something else").hexdigest()})
    SigV4Auth(Credentials(cluster.info["access_key"], cluster.info["secret_key"]), "s3",
              "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib3.PoolManager().request("PUT", prepared.url, body=body, headers=dict(prepared.headers))
    assert r.status == 400 and b"XAmzContentSHA256Mismatch" in r.data
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="tampered")
    assert status(e) == 404


def test_reads_are_recorded_as_last_access_in_batches(cluster, s3, bucket):
    """GETs report last access for lifecycle: not per request, but within about a second."""
    from tests.integration.metadata import query

    for name in ("read-a", "read-b", "unread"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    for _ in range(3):
        for name in ("read-a", "read-b"):
            assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == name.encode()

    def last_access() -> dict[str, float | None]:
        rows = query(cluster, f"SELECT key, last_access FROM object_versions WHERE bucket = '{bucket}'")
        return dict(rows)

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = last_access()
        if seen["read-a"] is not None and seen["read-b"] is not None:
            break
        time.sleep(0.2)
    assert seen["read-a"] is not None and seen["read-b"] is not None
    assert abs(seen["read-a"] - time.time()) < 60
    assert seen["unread"] is None
