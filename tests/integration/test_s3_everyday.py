"""The S3 surface everyday tools rely on, through boto3, the aws cli and curl against a real
`shardbox up` (SQLite and PostgreSQL): safe retries, CreateBucket's legacy answer, ListBuckets
paging, URL encoding, non-ASCII metadata, presigned URL expiry, canned ACLs with anonymous
reads, tagging, CORS with preflights, browser POST uploads, checksums and object attributes,
and the seeds' operational aws cli commands."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from email.header import Header, decode_header

import boto3
import pytest
import urllib3
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.integration.ops import wait_for

MiB = 1 << 20
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def code_status(info) -> tuple[str, int]:
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def raw(method: str, url: str, headers: dict | None = None, body: bytes | None = None):
    return urllib3.PoolManager(retries=False).request(
        method, url, headers=headers or {}, body=body, redirect=False
    )


def signed(cluster, method: str, target: str):
    """A SigV4-signed request exactly as given (no parameters added by an SDK)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        method=method, url=cluster.endpoint + target, headers={"X-Amz-Content-SHA256": EMPTY_SHA}
    )
    SigV4Auth(
        Credentials(cluster.info["access_key"], cluster.info["secret_key"]), "s3", "us-east-1"
    ).add_auth(req)
    prepared = req.prepare()
    return raw(method, prepared.url, headers=dict(prepared.headers))


def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """curl as a browser's stand-in: status, lower-cased headers, body."""
    out = subprocess.run(
        ["curl", "-s", "-i", "--max-time", "60", *args], capture_output=True, timeout=90, check=True
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def retrying_client(cluster):
    """A client whose every write is sent twice, as when the first answer is lost on the way:
    botocore retries with the same amz-sdk-invocation-id and `attempt=2`."""
    s3 = cluster.s3(retries={"max_attempts": 3, "mode": "standard"})

    def lose_first_answer(attempts, caught_exception, operation, **kwargs):
        if attempts > 1 or caught_exception is not None or operation.name.startswith(("Get", "Head", "List")):
            return None
        return 0  # retry at once, as if the first answer never arrived

    s3.meta.events.register("needs-retry.s3", lose_first_answer)
    return s3


def new_user(cluster, name: str):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "shardbox",
            "admin",
            "--data",
            str(cluster.data_dir),
            "user",
            "add",
            name,
            "--tenant",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    fields = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    return boto3.client(
        "s3",
        endpoint_url=cluster.endpoint,
        region_name="us-east-1",
        aws_access_key_id=fields["access key"],
        aws_secret_access_key=fields["secret key"],
        config=BotoConfig(s3={"addressing_style": "path"}),
    )


def test_retried_writes_neither_fail_nor_duplicate(cluster, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    twice = retrying_client(cluster)
    put = twice.put_object(Bucket=bucket, Key="k", Body=b"once")
    big = twice.put_object(Bucket=bucket, Key="big", Body=os.urandom(9 * MiB))  # session path
    copy = twice.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "k"})
    up = twice.create_multipart_upload(Bucket=bucket, Key="mp")
    part = twice.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 100)
    done = twice.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    # CompleteMultipartUpload retried by hand after it succeeded: the same success.
    again = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert (again["ETag"], again["VersionId"]) == (done["ETag"], done["VersionId"])
    marker = twice.delete_object(Bucket=bucket, Key="k")
    twice.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "copy"}]})
    gone = twice.create_multipart_upload(Bucket=bucket, Key="aborted")
    twice.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=gone["UploadId"])
    assert twice.create_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    versions = s3.list_object_versions(Bucket=bucket)
    counted: dict[str, int] = {}
    for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
        counted[v["Key"]] = counted.get(v["Key"], 0) + 1
    assert counted == {"k": 2, "big": 1, "copy": 2, "mp": 1}  # k and copy: the version and one marker
    ids = {v["VersionId"] for v in versions["Versions"]}
    assert {put["VersionId"], big["VersionId"], copy["VersionId"], done["VersionId"]} <= ids
    assert marker["VersionId"] in {m["VersionId"] for m in versions["DeleteMarkers"]}
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    twice.create_bucket(Bucket=scratch)
    twice.delete_bucket(Bucket=scratch)


def test_create_bucket_answers_and_list_buckets_pages(cluster, s3):
    names = [f"pg-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    for name in names:
        assert s3.create_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.create_bucket(Bucket=names[0])["ResponseMetadata"]["HTTPStatusCode"] == 200  # already yours
    other = new_user(cluster, f"u{uuid.uuid4().hex[:8]}")
    with pytest.raises(ClientError) as info:
        other.create_bucket(Bucket=names[0])
    assert code_status(info) == ("BucketAlreadyExists", 409)
    assert "Owner" not in info.value.response["Error"] and s3.list_buckets()["Owner"]["ID"] not in str(
        info.value.response
    )
    seen, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_buckets(MaxBuckets=2, Prefix="pg-", **kw)
        pages += 1
        seen += [b["Name"] for b in page["Buckets"]]
        assert page["Prefix"] == "pg-"
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == sorted(names) and pages == 3
    paged = [
        b["Name"]
        for p in s3.get_paginator("list_buckets").paginate(Prefix="pg-", PaginationConfig={"PageSize": 3})
        for b in p["Buckets"]
    ]
    assert paged == sorted(names)


def test_url_encoding_only_when_asked(cluster, s3, bucket):
    keys = ["a b+c.txt", "100%.csv", "ünï/x y", "plain"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    # boto3 asks for encoding-type=url itself and decodes the answer.
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted(
        keys, key=lambda k: k.encode()
    )
    asked = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Delimiter="/")
    assert [o["Key"] for o in asked["Contents"]] == ["100%25.csv", "a%20b%2Bc.txt", "plain"]
    assert [p["Prefix"] for p in asked["CommonPrefixes"]] == ["%C3%BCn%C3%AF/"]
    versions = s3.list_object_versions(Bucket=bucket, EncodingType="url", Prefix="a b")
    assert [v["Key"] for v in versions["Versions"]] == ["a%20b%2Bc.txt"]
    # Without encoding-type (a plain signed GET, not through boto3's list call), keys come as they are.
    answer = signed(cluster, "GET", f"/{bucket}?list-type=2&prefix=a")
    assert (
        answer.status == 200 and b"<Key>a b+c.txt</Key>" in answer.data and b"EncodingType" not in answer.data
    )


def test_non_ascii_metadata_round_trips(s3, bucket):
    value = "Grüße, 世界 ✓"
    for encoded in (
        Header(value, "utf-8").encode(),
        "=?utf-8?q?" + "".join(f"={b:02X}" for b in value.encode()) + "?=",
    ):
        s3.put_object(Bucket=bucket, Key="meta", Body=b"x", Metadata={"title": encoded, "plain": "as is"})
        head = s3.head_object(Bucket=bucket, Key="meta")["Metadata"]
        assert head["plain"] == "as is"
        assert head["title"] == "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
        ((data, charset),) = decode_header(head["title"])
        assert data == value.encode("utf-8") and charset.lower() == "utf-8"


def test_expired_presigned_url_and_missing_length(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    v4 = cluster.s3(signature_version="s3v4")
    for client in (v4, s3):  # SigV4 and SigV2 query signing
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
        deadline = time.monotonic() + 15
        answer = raw("GET", url)
        while answer.status == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
            answer = raw("GET", url)
        assert answer.status == 403 and b"<Code>AccessDenied</Code>" in answer.data
        assert b"Request has expired" in answer.data
    url = urllib.parse.urlsplit(
        v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "nolen"})
    )
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 411") and b"<Code>MissingContentLength</Code>" in reply


def test_canned_acls_and_anonymous_reads(cluster, s3):
    public, private = f"pub-{uuid.uuid4().hex[:8]}", f"priv-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=public, ACL="public-read")
    s3.create_bucket(Bucket=private)
    anon = boto3.client(
        "s3",
        endpoint_url=cluster.endpoint,
        region_name="us-east-1",
        config=BotoConfig(signature_version=UNSIGNED, s3={"addressing_style": "path"}),
    )
    # While the malware scan has not run (the worker frozen), anonymous reads wait (425 with
    # Retry-After) and the owner reads what it just wrote (S3's read-after-write).
    worker = json.loads((cluster.data_dir / "up.json").read_text())["worker"]["pid"]
    os.kill(worker, signal.SIGSTOP)
    try:
        s3.put_object(Bucket=public, Key="open", Body=b"for everyone", ACL="public-read")
        with pytest.raises(ClientError) as info:
            anon.get_object(Bucket=public, Key="open")
        assert code_status(info) == ("ObjectScanning", 425)
        assert info.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "5"
        assert s3.get_object(Bucket=public, Key="open")["Body"].read() == b"for everyone"
    finally:
        os.kill(worker, signal.SIGCONT)
    s3.put_object(Bucket=public, Key="closed", Body=b"mine")
    s3.put_object(Bucket=private, Key="open", Body=b"listed nowhere", ACL="public-read")
    for bucket in (public, private):
        wait_for(f"the scan of {bucket}/open to end", lambda b=bucket: s3.head_object(Bucket=b, Key="open")[
            "ResponseMetadata"]["HTTPHeaders"]["x-shardbox-status"] == "ready", timeout=120, every=0.2)
    assert anon.get_object(Bucket=public, Key="open")["Body"].read() == b"for everyone"
    assert anon.head_object(Bucket=public, Key="open")["ContentLength"] == 12
    assert sorted(o["Key"] for o in anon.list_objects_v2(Bucket=public)["Contents"]) == ["closed", "open"]
    assert anon.get_object(Bucket=private, Key="open")["Body"].read() == b"listed nowhere"
    for call, kw in (
        (anon.get_object, {"Bucket": public, "Key": "closed"}),
        (anon.list_objects_v2, {"Bucket": private}),
        (anon.get_object, {"Bucket": private, "Key": "missing"}),
        (anon.list_objects_v2, {"Bucket": f"none-{uuid.uuid4().hex[:8]}"}),  # no oracle
        (anon.put_object, {"Bucket": public, "Key": "x", "Body": b"no"}),
        (anon.delete_object, {"Bucket": public, "Key": "open"}),
    ):
        with pytest.raises(ClientError) as info:
            call(**kw)
        assert code_status(info) == ("AccessDenied", 403), (call, kw)
    with pytest.raises(ClientError) as info:
        anon.get_object(Bucket=public, Key="missing")  # a bucket anyone may list: 404
    assert code_status(info) == ("NoSuchKey", 404)
    grants = s3.get_object_acl(Bucket=public, Key="open")["Grants"]
    assert {(g["Grantee"]["Type"], g["Grantee"].get("URI"), g["Permission"]) for g in grants} == {
        ("CanonicalUser", None, "FULL_CONTROL"),
        ("Group", "http://acs.amazonaws.com/groups/global/AllUsers", "READ"),
    }
    assert [g["Permission"] for g in s3.get_object_acl(Bucket=public, Key="closed")["Grants"]] == [
        "FULL_CONTROL"
    ]
    assert len(s3.get_bucket_acl(Bucket=public)["Grants"]) == 2
    s3.put_object_acl(Bucket=public, Key="open", ACL="private")
    s3.put_bucket_acl(Bucket=public, ACL="private")
    for call, kw in (
        (anon.get_object, {"Bucket": public, "Key": "open"}),
        (anon.list_objects_v2, {"Bucket": public}),
    ):
        with pytest.raises(ClientError) as info:
            call(**kw)
        assert code_status(info) == ("AccessDenied", 403)
    cluster.aws("s3api", "put-object-acl", "--bucket", public, "--key", "closed", "--acl", "public-read")
    assert raw("GET", f"{cluster.endpoint}/{public}/closed").data == b"mine"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=public, Key="x", Body=b"x", ACL="authenticated-read")
    assert code_status(info) == ("NotImplemented", 501)


def test_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="project=alpha&team=core")
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("project", "alpha"), ("team", "core")]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "state", "Value": "done"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "state", "Value": "done"}]
    s3.copy_object(Bucket=bucket, Key="t2", CopySource={"Bucket": bucket, "Key": "t"})
    assert s3.get_object_tagging(Bucket=bucket, Key="t2")["TagSet"] == [{"Key": "state", "Value": "done"}]
    s3.copy_object(
        Bucket=bucket,
        Key="t3",
        CopySource={"Bucket": bucket, "Key": "t"},
        TaggingDirective="REPLACE",
        Tagging="new=1",
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="t3")["TagSet"] == [{"Key": "new", "Value": "1"}]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="from=multipart")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="mp")["TagSet"] == [{"Key": "from", "Value": "multipart"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="t")
    for bad in ("a=1&a=2", "&".join(f"k{i}=v" for i in range(11)), "k=" + "v" * 257):
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket=bucket, Key="bad", Body=b"x", Tagging=bad)
        assert code_status(info) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as info:
        s3.get_object_tagging(Bucket=bucket, Key="bad")
    assert code_status(info) == ("NoSuchKey", 404)


def test_cors_preflight_and_browser_uploads(cluster, s3, bucket):
    app = "https://app.example.com"
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [app],
                    "AllowedMethods": ["PUT", "POST", "GET"],
                    "AllowedHeaders": ["content-type", "x-amz-*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 600,
                }
            ]
        },
    )
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == [app] and rules[0]["MaxAgeSeconds"] == 600
    status, headers, _ = curl(
        "-X",
        "OPTIONS",
        f"{cluster.endpoint}/{bucket}/photo.jpg",
        "-H",
        f"Origin: {app}",
        "-H",
        "Access-Control-Request-Method: PUT",
        "-H",
        "Access-Control-Request-Headers: content-type, x-amz-meta-owner",
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == app
    assert headers["access-control-allow-methods"] == "PUT, POST, GET"
    assert headers["access-control-allow-headers"] == "content-type, x-amz-meta-owner"
    assert headers["access-control-max-age"] == "600" and headers["access-control-expose-headers"] == "ETag"
    for origin, method in (("https://evil.example", "PUT"), (app, "DELETE")):
        status, headers, body = curl(
            "-X",
            "OPTIONS",
            f"{cluster.endpoint}/{bucket}/photo.jpg",
            "-H",
            f"Origin: {origin}",
            "-H",
            f"Access-Control-Request-Method: {method}",
        )
        assert status == 403 and "access-control-allow-origin" not in headers and b"AccessForbidden" in body
    # The upload itself: a presigned PUT from the application's origin.
    url = cluster.s3(signature_version="s3v4").generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "photo.jpg", "ContentType": "image/jpeg"}
    )
    status, headers, _ = curl(
        "-X",
        "PUT",
        url,
        "-H",
        f"Origin: {app}",
        "-H",
        "Content-Type: image/jpeg",
        "--data-binary",
        "jpeg bytes",
    )
    assert status == 200 and headers["access-control-allow-origin"] == app and headers["etag"]
    assert s3.get_object(Bucket=bucket, Key="photo.jpg")["Body"].read() == b"jpeg bytes"
    s3.delete_bucket_cors(Bucket=bucket)
    status, _, _ = curl(
        "-X",
        "OPTIONS",
        f"{cluster.endpoint}/{bucket}/photo.jpg",
        "-H",
        f"Origin: {app}",
        "-H",
        "Access-Control-Request-Method: PUT",
    )
    assert status == 403
    status, _, _ = curl(
        "-X",
        "OPTIONS",
        f"{cluster.endpoint}/no-such-{uuid.uuid4().hex[:6]}/x",
        "-H",
        f"Origin: {app}",
        "-H",
        "Access-Control-Request-Method: PUT",
    )
    assert status == 403


@pytest.mark.parametrize("signature", ["s3v4", "default"])
def test_presigned_post_form_upload(cluster, s3, bucket, tmp_path, signature):
    """boto3 signs the policy with SigV4 when told to, else with SigV2 (for custom endpoints)."""
    signer = cluster.s3(signature_version="s3v4") if signature == "s3v4" else s3
    post = signer.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"Content-Type": "text/plain", "success_action_status": "201", "x-amz-meta-by": "form"},
        Conditions=[
            ["starts-with", "$Content-Type", "text/"],
            ["content-length-range", 1, 1000],
            {"success_action_status": "201"},
            {"x-amz-meta-by": "form"},
        ],
        ExpiresIn=300,
    )
    form = [arg for name, value in post["fields"].items() for arg in ("-F", f"{name}={value}")]
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["POST"]}]
        },
    )
    note = tmp_path / "note.txt"
    note.write_bytes(b"hello from a form")
    status, headers, body = curl(
        *form, "-F", f"file=@{note}", "-H", "Origin: https://app.example.com", post["url"]
    )
    assert status == 201, body
    assert headers["access-control-allow-origin"] == "https://app.example.com"  # the page can read it
    assert (
        b"<Key>uploads/note.txt</Key>" in body
        and headers["etag"] == f'"{hashlib.md5(b"hello from a form").hexdigest()}"'
    )
    got = s3.get_object(Bucket=bucket, Key="uploads/note.txt")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        b"hello from a form",
        "text/plain",
        {"by": "form"},
    )
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 1001)
    status, _, body = curl(*form, "-F", f"file=@{big}", post["url"])
    assert status == 400 and b"EntityTooLarge" in body
    tampered = [a.replace("text/plain", "image/png") for a in form]
    status, _, body = curl(*tampered, "-F", f"file=@{note}", post["url"])
    assert status == 403 and b"Policy Condition failed" in body
    status, _, body = curl(*form, "-F", "extra=field", "-F", f"file=@{note}", post["url"])
    assert status == 403 and b"Extra input fields: extra" in body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="uploads/")["Contents"]]
    assert keys == ["uploads/note.txt"]  # the refused forms stored nothing


def test_checksums_attributes_and_the_seeds_commands(cluster, s3, bucket, tmp_path):
    body = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="chunks/small", Body=body, ChecksumAlgorithm="SHA256")
    head = s3.head_object(Bucket=bucket, Key="chunks/small", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="chunks/small")
    got = s3.get_object(Bucket=bucket, Key="chunks/small", ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got["ChecksumSHA256"] == head["ChecksumSHA256"]
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MiB))  # the aws cli uploads it in two parts, with CRC32s
    cluster.aws("s3", "cp", str(big), f"s3://{bucket}/chunks/big")
    # The seeds' operational commands, as written.
    out = json.loads(
        cluster.aws(
            "s3api", "head-object", "--bucket", bucket, "--key", "chunks/big", "--checksum-mode", "ENABLED"
        ).stdout
    )
    assert out["ContentLength"] == 9 * MiB and out["ChecksumCRC32"].endswith("-2")
    assert out["ChecksumType"] == "COMPOSITE"
    total = cluster.aws(
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--prefix",
        "chunks/",
        "--query",
        "sum(Contents[].Size)",
        "--output",
        "text",
    ).stdout
    assert int(total.strip()) == 100_000 + 9 * MiB
    s3.create_multipart_upload(Bucket=bucket, Key="chunks/unfinished")
    uploads = json.loads(cluster.aws("s3api", "list-multipart-uploads", "--bucket", bucket).stdout)
    assert [u["Key"] for u in uploads["Uploads"]] == ["chunks/unfinished"]
    attrs = s3.get_object_attributes(
        Bucket=bucket,
        Key="chunks/big",
        MaxParts=1,
        ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"],
    )
    assert attrs["ObjectSize"] == 9 * MiB and attrs["StorageClass"] == "STANDARD"
    assert attrs["ETag"] == out["ETag"].strip('"') and attrs["ETag"].endswith("-2")
    assert attrs["Checksum"]["ChecksumCRC32"] == out["ChecksumCRC32"]
    parts = attrs["ObjectParts"]
    assert (parts["TotalPartsCount"], parts["IsTruncated"], parts["NextPartNumberMarker"]) == (2, True, 1)
    assert parts["Parts"][0]["PartNumber"] == 1 and parts["Parts"][0]["Size"] == 8 * MiB
    assert parts["Parts"][0]["ChecksumCRC32"]
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="chunks/big", PartNumberMarker=1, ObjectAttributes=["ObjectParts"]
    )["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [2] and not rest["IsTruncated"]
