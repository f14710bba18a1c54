"""Wire-level behaviour boto3 hides: Expect: 100-continue, request ids, unsupported subresources."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tests.gateway import rawhttp


def _signed_headers(cluster, s3, method: str, path: str, extra: dict[str, str]) -> dict[str, str]:
    url = cluster.endpoint + path
    request = AWSRequest(method=method, url=url,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **extra})
    SigV4Auth(s3._request_signer._credentials, "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _send_headers(cluster, method: str, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", cluster.gateway_port), timeout=10)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{cluster.gateway_port}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _read_head(sock: socket.socket) -> tuple[int, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    status = int(buf.split(b" ", 2)[1])
    return status, buf


def test_expect_continue_refused_before_body_on_bad_auth(cluster) -> None:
    headers = {"Content-Length": "1000000", "Expect": "100-continue",
               "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": "20260101T000000Z",
               "Authorization": "AWS4-HMAC-SHA256 Credential=NOSUCHKEY/20260101/us-east-1/s3/aws4_request, "
                                "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64}
    with _send_headers(cluster, "PUT", "/somebucket/key", headers) as sock:
        status, head = _read_head(sock)
    assert status == 403, head


def test_expect_continue_refused_before_body_on_missing_bucket(cluster, s3) -> None:
    path = "/no-such-bucket-here/key"
    headers = _signed_headers(cluster, s3, "PUT", path, {"Content-Length": "1000000",
                                                          "Expect": "100-continue"})
    with _send_headers(cluster, "PUT", path, headers) as sock:
        status, head = _read_head(sock)
    assert status == 404, head
    assert b"NoSuchBucket" in head or b"content-length" in head.lower()


def test_expect_continue_accepted(cluster, s3, bucket: str) -> None:
    path = f"/{bucket}/continued"
    body = b"x" * 5000
    headers = _signed_headers(cluster, s3, "PUT", path, {"Content-Length": str(len(body)),
                                                          "Expect": "100-continue"})
    with _send_headers(cluster, "PUT", path, headers) as sock:
        status, head = _read_head(sock)
        assert status == 100, head
        sock.sendall(body)
        rest = head.split(b"\r\n\r\n", 1)[1]
        if not rest:
            status, head = _read_head(sock)
        else:
            status = int(rest.split(b" ", 2)[1])
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="continued")["Body"].read() == body


def test_request_ids_and_error_document(s3, bucket: str) -> None:
    try:
        s3.get_object(Bucket=bucket, Key="missing")
    except Exception as exc:  # botocore ClientError
        meta = exc.response["ResponseMetadata"]
        assert meta["RequestId"] and len(meta["RequestId"]) == 16
        assert meta["HTTPHeaders"]["x-amz-id-2"]
        assert exc.response["Error"]["Code"] == "NoSuchKey"
    ok = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]
    assert ok["HTTPHeaders"]["x-amz-request-id"] == ok["RequestId"]


def test_unconfigured_subresources(s3, bucket: str) -> None:
    from botocore.exceptions import ClientError

    for call, code in [(s3.get_bucket_policy, "NoSuchBucketPolicy"), (s3.get_bucket_tagging, "NoSuchTagSet"),
                       (s3.get_bucket_cors, "NoSuchCORSConfiguration"),
                       (s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration")]:
        try:
            call(Bucket=bucket)
            raise AssertionError(f"{call} should fail")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == code
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]


def test_list_buckets_paging(s3, bucket: str) -> None:
    res = s3.list_buckets(MaxBuckets=1)
    assert len(res["Buckets"]) == 1
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket in names
    assert names == sorted(names)


def test_xml_error_body_is_s3_shaped(cluster, s3, bucket: str) -> None:
    path = f"/{bucket}/nothing"
    headers = _signed_headers(cluster, s3, "GET", path, {})
    with _send_headers(cluster, "GET", path, headers) as sock:
        buf = b""
        while True:
            data = sock.recv(65536)
            buf += data
            if not data or buf.endswith(b"</Error>"):
                break
    doc = ET.fromstring(buf.split(b"\r\n\r\n", 1)[1])
    assert doc.tag == "Error"
    assert doc.findtext("Code") == "NoSuchKey"
    assert doc.findtext("RequestId")


def test_delete_objects_verifies_md5_or_crc32(cluster, s3, bucket: str) -> None:
    import base64
    import hashlib
    import zlib

    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    body = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    url = f"{cluster.endpoint}/{bucket}?delete"
    status, resp = rawhttp.request(cluster.gateway_port, s3, "POST", url,
                                   {"Content-MD5": base64.b64encode(b"0" * 16).decode()}, body)
    assert status == 400 and b"<Code>BadDigest</Code>" in resp
    status, resp = rawhttp.request(cluster.gateway_port, s3, "POST", url,
                                   {"x-amz-checksum-crc32": base64.b64encode(b"\0\0\0\0").decode()}, body)
    assert status == 400 and b"<Code>BadDigest</Code>" in resp
    assert s3.head_object(Bucket=bucket, Key="keep")["ContentLength"] == 1
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    status, resp = rawhttp.request(cluster.gateway_port, s3, "POST", url, {"x-amz-checksum-crc32": crc}, body)
    assert status == 200 and b"<Deleted><Key>keep</Key></Deleted>" in resp
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    status, resp = rawhttp.request(cluster.gateway_port, s3, "POST", url, {"Content-MD5": md5}, body)
    assert status == 200 and b"<Deleted><Key>keep</Key></Deleted>" in resp


def test_oversized_xml_body_refused_before_reading(cluster, s3, bucket: str) -> None:
    path = f"/{bucket}?delete"
    headers = _signed_headers(cluster, s3, "POST", path, {"Content-Length": str(3 << 20),
                                                           "Expect": "100-continue"})
    with _send_headers(cluster, "POST", path, headers) as sock:
        status, head = _read_head(sock)
    assert status == 400, head
