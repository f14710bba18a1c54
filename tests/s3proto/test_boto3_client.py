"""The real boto3 client against the echo server: what it signs and sends is accepted."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.s3proto.client import send
from tests.s3proto.echo_server import ACCESS_KEY, SECRET_KEY, EchoServer


@pytest.fixture
def s3(server: EchoServer) -> Iterator[object]:
    client = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    yield client
    client.close()


@pytest.mark.parametrize("key", ["simple", "dir/sub dir/ünïcode+plus~tilde%pct", "a//b///c", "x?y#z&=;"])
def test_put_object(server: EchoServer, s3, key: str) -> None:
    body = b"boto3 body for " + key.encode()
    s3.put_object(Bucket="bucket", Key=key, Body=body, Metadata={"origin": "test  suite"})
    outcome = server.outcomes[-1]
    assert outcome.status == 200, outcome
    assert outcome.body["body_sha256"] == hashlib.sha256(body).hexdigest()
    # botocore >= 1.36 sends a CRC32 by default; the echo server verified it
    assert "crc32" in outcome.body["checksums"]


def test_get_object_and_head(server: EchoServer, s3) -> None:
    got = json.loads(s3.get_object(Bucket="bucket", Key="k", Range="bytes=0-9")["Body"].read())
    assert got["access_key"] == ACCESS_KEY
    s3.head_object(Bucket="bucket", Key="k")
    assert server.outcomes[-1].status == 200


def test_list_with_params_is_signed_correctly(server: EchoServer, s3) -> None:
    # The echo answer is not a ListBucketResult, so boto3 fails to parse it, but only after
    # the server accepted the signature of a query with many parameters.
    with pytest.raises(Exception):  # noqa: B017 - parse error type is botocore-internal
        s3.list_objects_v2(Bucket="bucket", Prefix="a b/ü+", Delimiter="/", StartAfter="a b/ü+~x",
                           MaxKeys=7)
    assert server.outcomes[-1].status == 200


def test_multipart_part_upload(server: EchoServer, s3) -> None:
    body = b"p" * 100_000
    s3.upload_part(Bucket="bucket", Key="mp", UploadId="abc/def+ghi=", PartNumber=3, Body=body)
    assert server.outcomes[-1].body["body_len"] == len(body)


def test_errors_parsed_by_boto3(server: EchoServer) -> None:
    bad = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
                       aws_access_key_id=ACCESS_KEY, aws_secret_access_key="wrong",
                       config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        bad.put_object(Bucket="bucket", Key="k", Body=b"x")
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["ResponseMetadata"]["RequestId"] == "test-request-id"
    unknown = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
                           aws_access_key_id="AKIDUNKNOWN", aws_secret_access_key="x",
                           config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        unknown.get_object(Bucket="bucket", Key="k")
    assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    bad.close()
    unknown.close()


@pytest.mark.parametrize("signature_version", [None, "s3v4"])   # boto3's default presigns with V2
def test_boto3_presigned_urls(server: EchoServer, signature_version: str | None) -> None:
    client = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"}))
    url = client.generate_presigned_url("get_object", Params={
        "Bucket": "bucket", "Key": "a b/c+d ü.txt", "ResponseContentDisposition": "attachment; filename=x"},
        ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert json.loads(resp.read())["presigned"] is True
    put_url = client.generate_presigned_url("put_object", Params={
        "Bucket": "bucket", "Key": "up.bin", "ContentType": "text/plain"}, ExpiresIn=300)
    target = put_url.split(f":{server.port}", 1)[1]
    reply = send(server.port, "PUT", target, [("Content-Type", "text/plain")], b"presigned body")
    assert reply.json()["body_len"] == len(b"presigned body")
    assert send(server.port, "PUT", target, [("Content-Type", "text/html")], b"x").code \
        == "SignatureDoesNotMatch"
    server.now_offset = 301
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=10)
    assert info.value.code == 403
    assert b"<Code>AccessDenied</Code>" in info.value.read()
    client.close()


def test_sigv2_header_auth(server: EchoServer) -> None:
    """Older tools sign headers with V2 (HMAC-SHA1); boto3 still can when asked to."""
    client = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    client.put_object(Bucket="bucket", Key="v2 key+plus", Body=b"v2 body", ContentType="text/plain",
                      Metadata={"a": "b"})
    assert server.outcomes[-1].body["body_len"] == 7
    client.head_object(Bucket="bucket", Key="v2 key+plus", VersionId="v1")
    assert server.outcomes[-1].status == 200
    wrong = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key="wrong",
        config=Config(signature_version="s3", retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        wrong.put_object(Bucket="bucket", Key="k", Body=b"x")
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    client.close()
    wrong.close()
