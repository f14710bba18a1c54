"""Identity-related behaviour against the real cluster: tenants, quotas, metadata bytes, vhost addressing."""

from __future__ import annotations

import base64
import os
import uuid
from email.header import decode_header

import pytest
from botocore.exceptions import ClientError

from tests.gateway import rawhttp
from tests.gateway.conftest import VHOST_DOMAIN


def _raw(cluster, s3, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    return rawhttp.request(cluster.gateway_port, s3, method, url, headers, body)


def test_utf8_metadata_is_byte_exact(cluster, s3, bucket: str) -> None:
    """Raw UTF-8 in a header comes back RFC 2047 encoded (as AWS answers non-ASCII values),
    decoding to exactly the bytes sent; ASCII values come back as they are."""
    value = "h\u00e9llo \u20ac \U0001f600"
    url = f"{cluster.endpoint}/{bucket}/meta"
    status, resp = _raw(cluster, s3, "PUT", url, {"x-amz-meta-greeting": value, "x-amz-meta-plain": "a b"},
                        b"body")
    assert status == 200, resp
    status, resp = _raw(cluster, s3, "HEAD", url, {})
    assert status == 200, resp
    encoded = "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode() + "?="
    assert b"x-amz-meta-greeting: " + encoded.encode() + b"\r\n" in resp
    assert b"x-amz-meta-plain: a b\r\n" in resp
    ((raw, charset),) = decode_header(encoded)
    assert raw.decode(charset) == value


def test_virtual_host_style(cluster, s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="v/key", Body=b"vhost")
    url = f"http://{bucket}.{VHOST_DOMAIN}:{cluster.gateway_port}/v/key"
    status, resp = _raw(cluster, s3, "GET", url, {})
    assert status == 200, resp
    assert resp.endswith(b"\r\n\r\nvhost")
    status, resp = _raw(cluster, s3, "GET", f"http://{bucket}.{VHOST_DOMAIN}:{cluster.gateway_port}/"
                                            "?list-type=2", {})
    assert status == 200 and b"<Key>v/key</Key>" in resp


def _answer(call) -> tuple[int, str, str]:
    """(status, error code, message) of a boto3 call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    err, meta = info.value.response.get("Error", {}), info.value.response["ResponseMetadata"]
    return meta["HTTPStatusCode"], err.get("Code", ""), err.get("Message", "")


# Every bucket-addressed operation, as (name, call(client, bucket)).
_BUCKET_OPS = [
    ("HeadBucket", lambda c, b: c.head_bucket(Bucket=b)),
    ("GetBucketLocation", lambda c, b: c.get_bucket_location(Bucket=b)),
    ("GetBucketVersioning", lambda c, b: c.get_bucket_versioning(Bucket=b)),
    ("GetBucketAcl", lambda c, b: c.get_bucket_acl(Bucket=b)),
    ("GetBucketPolicy", lambda c, b: c.get_bucket_policy(Bucket=b)),
    ("ListObjectsV2", lambda c, b: c.list_objects_v2(Bucket=b)),
    ("ListObjectsV2 max-keys=0", lambda c, b: c.list_objects_v2(Bucket=b, MaxKeys=0)),
    ("ListObjects", lambda c, b: c.list_objects(Bucket=b)),
    ("ListMultipartUploads", lambda c, b: c.list_multipart_uploads(Bucket=b)),
    ("GetObject", lambda c, b: c.get_object(Bucket=b, Key="secret")),
    ("GetObject missing key", lambda c, b: c.get_object(Bucket=b, Key="nothing-here")),
    ("GetObject versionId", lambda c, b: c.get_object(Bucket=b, Key="secret", VersionId="null")),
    ("GetObject range", lambda c, b: c.get_object(Bucket=b, Key="secret", Range="bytes=0-1")),
    ("HeadObject", lambda c, b: c.head_object(Bucket=b, Key="secret")),
    ("GetObjectAcl", lambda c, b: c.get_object_acl(Bucket=b, Key="secret")),
    ("PutObject", lambda c, b: c.put_object(Bucket=b, Key="new", Body=b"x")),
    ("PutObject big", lambda c, b: c.put_object(Bucket=b, Key="new", Body=b"x" * (2 << 20))),
    ("CopyObject into", lambda c, b: c.copy_object(Bucket=b, Key="c", CopySource="nosuch-src-bucket/k")),
    ("CopyObject from", lambda c, b: c.copy_object(Bucket="nosuch-dst-bucket", Key="c",
                                                   CopySource=f"{b}/secret")),
    ("DeleteObject", lambda c, b: c.delete_object(Bucket=b, Key="secret")),
    ("DeleteObjects", lambda c, b: c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "secret"}]})),
    ("CreateMultipartUpload", lambda c, b: c.create_multipart_upload(Bucket=b, Key="mp")),
    ("ListParts", lambda c, b: c.list_parts(Bucket=b, Key="mp", UploadId="nope")),
    ("DeleteBucket", lambda c, b: c.delete_bucket(Bucket=b)),
]


def test_another_tenants_bucket_answers_as_a_missing_one(cluster, s3, bucket: str) -> None:
    """No bucket-name oracle: every operation on another tenant's bucket gets exactly the
    answer it gets on a name nobody has (404 NoSuchBucket); only CreateBucket says 409."""
    suffix = uuid.uuid4().hex[:8]
    other = cluster.boto3_client(cluster.new_user(f"iso{suffix}", f"iso{suffix}"))
    s3.put_object(Bucket=bucket, Key="secret", Body=b"mine")
    missing = f"nobody-has-{suffix}"
    assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    for name, call in _BUCKET_OPS:
        theirs = _answer(lambda call=call: call(other, bucket))
        nobodys = _answer(lambda call=call: call(other, missing))
        assert theirs[:2] == nobodys[:2], name
        assert theirs[2].replace(bucket, "B") == nobodys[2].replace(missing, "B"), name
        if name.startswith("HeadBucket") or name.startswith("HeadObject"):
            assert theirs[0] == 404, name
        elif name not in ("CopyObject into", "ListParts"):
            assert theirs[:2] == (404, "NoSuchBucket"), name
    assert s3.get_object(Bucket=bucket, Key="secret")["Body"].read() == b"mine"
    with pytest.raises(ClientError) as info:
        other.create_bucket(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "BucketAlreadyExists"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_quota_and_released_reservations(cluster) -> None:
    suffix = uuid.uuid4().hex[:8]
    tenant = f"quota{suffix}"
    s3 = cluster.boto3_client(cluster.new_user(tenant, f"quota{suffix}", quota_bytes=1_000_000))
    name = f"quota-{suffix}"
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=name, Key="big", Body=os.urandom(1_500_000))
    assert (info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("QuotaExceeded", 403)
    # A PUT that fails verification after its reservation must release it and leave nothing.
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=name, Key="bad", Body=b"x" * 1000, ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert info.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=name, Key="bad")
    t = cluster.admin_call(lambda c: c.get_tenant(tenant))
    assert t["reserved_bytes"] == 0
    assert t["used_bytes"] == 0
    s3.put_object(Bucket=name, Key="ok", Body=os.urandom(600_000))
    t = cluster.admin_call(lambda c: c.get_tenant(tenant))
    assert (t["used_bytes"], t["reserved_bytes"]) == (600_000, 0)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=name, Key="ok2", Body=os.urandom(600_000))
    assert info.value.response["Error"]["Code"] == "QuotaExceeded"
    s3.delete_object(Bucket=name, Key="ok")
    s3.delete_bucket(Bucket=name)
