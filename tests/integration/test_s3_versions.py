"""Object versions through boto3 and the aws cli against a real `shardbox up` (SQLite and
PostgreSQL): versioning states, delete markers, version ids on every operation that takes
them, listing every version page by page, racing writers, emptying buckets the portable way."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from tests.integration.metadata import query

MiB = 1 << 20


def enable(s3, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def all_versions(s3, bucket: str, page_size: int = 1000, **kw) -> tuple[list[dict], list[dict], int]:
    """(versions, delete markers, pages) walking every page with the paginator."""
    versions, markers, pages = [], [], 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": page_size}, **kw):
        pages += 1
        versions += page.get("Versions", [])
        markers += page.get("DeleteMarkers", [])
    return versions, markers, pages


def empty_the_portable_way(s3, bucket: str) -> int:
    """What tools and test harnesses do: list versions page by page, delete what each shows."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 15}
    ):
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if objects:
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            assert answer.get("Errors", []) == []
            deleted += len(objects)
    return deleted


def code_status(info) -> tuple[str, int]:
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_never_versioned_bucket_shows_null_versions(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    assert "VersionId" not in put  # no x-amz-version-id from a bucket that never had versioning
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    versions, markers, _ = all_versions(s3, bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [("k", "null", True)]
    assert markers == []
    assert s3.head_object(Bucket=bucket, Key="k", VersionId="null")["ContentLength"] == 3
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"two"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId="0" * 32)
    assert code_status(info) == ("NoSuchVersion", 404)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert code_status(info) == ("InvalidArgument", 400)
    assert "DeleteMarker" not in s3.delete_object(Bucket=bucket, Key="k")
    assert all_versions(s3, bucket)[0] == []


def test_version_ids_on_every_operation(s3, bucket):
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"first")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"second", Tagging="rev=2")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    assert s3.get_object(Bucket=bucket, Key="doc")["VersionId"] == v2
    got = s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)
    assert (got["Body"].read(), got["VersionId"]) == (b"first", v1)
    assert s3.head_object(Bucket=bucket, Key="doc", VersionId=v1)["ContentLength"] == 5
    # Tagging and attributes of one version.
    assert s3.get_object_tagging(Bucket=bucket, Key="doc")["TagSet"] == [{"Key": "rev", "Value": "2"}]
    tagged = s3.put_object_tagging(
        Bucket=bucket, Key="doc", VersionId=v1, Tagging={"TagSet": [{"Key": "rev", "Value": "1"}]}
    )
    assert tagged["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=bucket, Key="doc", VersionId=v1)["TagSet"] == [
        {"Key": "rev", "Value": "1"}
    ]
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="doc", VersionId=v1, ObjectAttributes=["ETag", "ObjectSize"]
    )
    assert (attrs["ETag"], attrs["ObjectSize"], attrs["VersionId"]) == (
        hashlib.md5(b"first").hexdigest(),
        5,
        v1,
    )
    # CopyObject from an old version: restoring it makes it the newest.
    copied = s3.copy_object(
        Bucket=bucket, Key="doc", CopySource={"Bucket": bucket, "Key": "doc", "VersionId": v1}
    )
    assert copied["CopySourceVersionId"] == v1 and copied["VersionId"] not in (v1, v2)
    assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"first"
    # UploadPartCopy from an old version.
    up = s3.create_multipart_upload(Bucket=bucket, Key="assembled")
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=up["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "doc", "VersionId": v2},
    )
    assert part["CopySourceVersionId"] == v2
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert done["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == b"second"
    # DeleteObject of one version, DeleteObjects entries with versions.
    gone = s3.delete_object(Bucket=bucket, Key="doc", VersionId=v2)
    assert gone["VersionId"] == v2 and "DeleteMarker" not in gone
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "doc", "VersionId": v1}]})
    assert answer["Deleted"] == [{"Key": "doc", "VersionId": v1}]
    assert [v["VersionId"] for v in all_versions(s3, bucket, Prefix="doc")[0]] == [copied["VersionId"]]


def test_delete_marker_round_trip(s3, bucket):
    enable(s3, bucket)
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"keep me")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] not in (version, "null")
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as info:
            call(Bucket=bucket, Key="k")
        headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert headers["x-amz-delete-marker"] == "true"
        assert headers["x-amz-version-id"] == marker["VersionId"]
        with pytest.raises(ClientError) as info:
            call(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
        assert info.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    versions, markers, _ = all_versions(s3, bucket)
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker["VersionId"], True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(version, False)]
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket=bucket)
    assert code_status(info) == ("BucketNotEmpty", 409)
    # Deleting the marker brings the object back.
    back = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert back["DeleteMarker"] is True and back["VersionId"] == marker["VersionId"]
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"keep me", version)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_suspended_versioning_writes_null_versions(s3, bucket):
    enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"null one")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"null two")["VersionId"] == "null"
    versions, _, _ = all_versions(s3, bucket)
    assert [(v["VersionId"], v["Size"]) for v in versions] == [("null", 8), (kept, 4)]
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert (marker["DeleteMarker"], marker["VersionId"]) == (True, "null")
    versions, markers, _ = all_versions(s3, bucket)
    assert [v["VersionId"] for v in versions] == [kept] and [m["VersionId"] for m in markers] == ["null"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=kept)["Body"].read() == b"kept"


def test_thousand_versions_listed_page_by_page(cluster, s3, bucket):
    enable(s3, bucket)
    clients = [cluster.s3() for _ in range(8)]

    def put(i: int) -> str:
        return clients[i % 8].put_object(Bucket=bucket, Key="hot", Body=b"%d" % i)["VersionId"]

    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(put, range(1000)))
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    assert len(set(made)) == 1000
    versions, markers, pages = all_versions(s3, bucket, page_size=90, Prefix="hot")
    ids = [v["VersionId"] for v in versions]
    assert pages == 12 and markers == [] and len(ids) == 1000
    assert set(ids) == set(made)  # every version exactly once
    assert [v["IsLatest"] for v in versions] == [True] + [False] * 999
    times = [v["LastModified"] for v in versions]
    assert times == sorted(times, reverse=True)  # newest first
    latest = s3.get_object(Bucket=bucket, Key="hot")
    assert latest["VersionId"] == ids[0]
    # The same walk through the aws cli's own paginator.
    out = cluster.aws(
        "s3api",
        "list-object-versions",
        "--bucket",
        bucket,
        "--prefix",
        "hot",
        "--page-size",
        "250",
        "--query",
        "Versions[].VersionId",
        "--output",
        "json",
    ).stdout
    assert sorted(json.loads(out)) == sorted(made)


def test_concurrent_puts_of_one_key_each_make_a_version(cluster, s3, bucket):
    enable(s3, bucket)
    clients = [cluster.s3() for _ in range(20)]
    gate = threading.Barrier(20)
    bodies = [os.urandom(100_000) for _ in range(20)]  # past the inline size: chunks on the nodes

    def put(i: int) -> str:
        gate.wait(timeout=30)
        return clients[i].put_object(Bucket=bucket, Key="race", Body=bodies[i])["VersionId"]

    with ThreadPoolExecutor(20) as pool:
        made = list(pool.map(put, range(20)))
    versions, _, _ = all_versions(s3, bucket)
    assert sorted(v["VersionId"] for v in versions) == sorted(made)
    assert sum(v["IsLatest"] for v in versions) == 1
    for v in versions:  # every version readable with its own bytes
        body = s3.get_object(Bucket=bucket, Key="race", VersionId=v["VersionId"])["Body"].read()
        assert body == bodies[made.index(v["VersionId"])]
    # Conditional writes judge the latest version.
    latest_etag = versions[0]["ETag"]
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="race", Body=b"x", IfMatch=versions[1]["ETag"])
    assert code_status(info) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="race", Body=b"x", IfMatch=latest_etag)
    s3.delete_object(Bucket=bucket, Key="race")  # a marker: the key reads as absent
    s3.put_object(Bucket=bucket, Key="race", Body=b"created again", IfNoneMatch="*")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="race", Body=b"y", IfNoneMatch="*")
    assert code_status(info) == ("PreconditionFailed", 412)


def test_chunks_live_while_any_version_names_them(cluster, s3, bucket):
    enable(s3, bucket)
    big = os.urandom(9 * MiB)  # two chunks
    a = s3.put_object(Bucket=bucket, Key="a", Body=big)["VersionId"]
    b = s3.put_object(Bucket=bucket, Key="a", Body=big)["VersionId"]  # same bytes: same chunks
    c = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "a", "VersionId": a})
    s3.delete_object(Bucket=bucket, Key="a", VersionId=a)
    s3.delete_object(Bucket=bucket, Key="a", VersionId=b)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == big
    refs = query(cluster, f"SELECT count(*) FROM object_versions WHERE bucket = '{bucket}'")
    assert refs == [(1,)]
    s3.delete_object(Bucket=bucket, Key="c", VersionId=c["VersionId"])
    rows = query(
        cluster,
        f"SELECT count(*) FROM object_chunks oc JOIN object_versions ov "
        f"ON oc.version_id = ov.version_id WHERE ov.bucket = '{bucket}'",
    )
    assert rows == [(0,)]


def test_emptying_buckets_the_portable_way(cluster, s3):
    plain, versioned = "empty-plain", "empty-versioned"
    for name in (plain, versioned):
        s3.create_bucket(Bucket=name)
    enable(s3, versioned)

    def write(i: int) -> None:
        s3.put_object(Bucket=plain, Key=f"d{i % 7}/k{i}", Body=b"p")
        key = i % 20  # three versions of each of 20 keys
        s3.put_object(Bucket=versioned, Key=f"d{key % 7}/k{key}", Body=b"v%d" % i)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(60)))
    for key in range(0, 20, 3):
        s3.delete_object(Bucket=versioned, Key=f"d{key % 7}/k{key}")
    assert empty_the_portable_way(s3, plain) == 60
    assert empty_the_portable_way(s3, versioned) == 60 + 7
    for name in (plain, versioned):
        s3.delete_bucket(Bucket=name)
    # The aws cli's view of a fresh versioned bucket, as the seeds' commands use it.
    cluster.aws("s3api", "create-bucket", "--bucket", "cli-versions")
    cluster.aws(
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        "cli-versions",
        "--versioning-configuration",
        "Status=Enabled",
    )
    status = json.loads(cluster.aws("s3api", "get-bucket-versioning", "--bucket", "cli-versions").stdout)
    assert status["Status"] == "Enabled"
