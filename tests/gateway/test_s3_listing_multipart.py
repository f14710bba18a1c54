"""boto3 and raw HTTP against a real mini cluster: ListObjects V1/V2 and multipart uploads."""

from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MiB = 1 << 20


def raw_get(cluster, s3, path: str) -> tuple[int, bytes]:
    """A SigV4-signed GET sent as is (botocore would decode `encoding-type=url` for us)."""
    import urllib.error
    import urllib.request

    url = cluster.endpoint + path
    request = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(s3._request_signer._credentials, "s3", "us-east-1").add_auth(request)
    req = urllib.request.Request(url, headers=dict(request.headers.items()), method="GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def tree(s3, bucket: str) -> list[str]:
    keys = ["a.txt", "dir/x", "dir/y", "dir/sub/z", "e f+g.txt", "\u00e9t\u00e9/1", "zeta"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"k")
    return keys


def test_list_v2_delimiter_and_paging(s3, bucket: str, tree: list[str]) -> None:
    res = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["a.txt", "e f+g.txt", "zeta"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["dir/", "\u00e9t\u00e9/"]
    assert res["KeyCount"] == 5
    assert res["Contents"][0]["ETag"] == '"' + hashlib.md5(b"k").hexdigest() + '"'
    assert res["Contents"][0]["Size"] == 1
    assert res["Contents"][0]["StorageClass"] == "STANDARD"
    res = s3.list_objects_v2(Bucket=bucket, Prefix="dir/", Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["dir/x", "dir/y"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["dir/sub/"]
    # page by 2 through everything, with and without a delimiter
    for delimiter in ("", "/"):
        seen, token = [], None
        for _ in range(10):
            kwargs = {"Bucket": bucket, "MaxKeys": 2, "Delimiter": delimiter}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3.list_objects_v2(**kwargs)
            seen += [o["Key"] for o in page.get("Contents", [])]
            seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]
        expected = sorted(tree, key=str.encode) if not delimiter else \
            ["a.txt", "dir/", "e f+g.txt", "zeta", "\u00e9t\u00e9/"]
        assert sorted(seen, key=str.encode) == sorted(expected, key=str.encode)
        assert len(seen) == len(expected)
    res = s3.list_objects_v2(Bucket=bucket, StartAfter="dir/y")
    assert [o["Key"] for o in res["Contents"]] == ["e f+g.txt", "zeta", "\u00e9t\u00e9/1"]
    assert res["StartAfter"] == "dir/y"
    res = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert res["KeyCount"] == 0 and not res.get("Contents")
    res = s3.list_objects_v2(Bucket=bucket, FetchOwner=True, Prefix="zeta")
    assert res["Contents"][0]["Owner"]["ID"]


def test_list_v1_markers(s3, bucket: str, tree: list[str]) -> None:
    res = s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/")
    assert res["IsTruncated"]
    assert res["NextMarker"] == "dir/"
    res = s3.list_objects(Bucket=bucket, Marker=res["NextMarker"], Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == ["e f+g.txt", "zeta"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["\u00e9t\u00e9/"]
    assert not res["IsTruncated"]
    res = s3.list_objects(Bucket=bucket, MaxKeys=3)
    assert res["IsTruncated"] and "NextMarker" not in res      # only with a delimiter
    assert res["Contents"][0]["Owner"]["ID"]


def test_list_encoding_type_url_raw(cluster, s3, bucket: str, tree: list[str]) -> None:
    status, body = raw_get(cluster, s3, f"/{bucket}?list-type=2&encoding-type=url&delimiter=%2F"
                                        "&prefix=&start-after=a.txt")
    assert status == 200, body
    doc = ET.fromstring(body)
    assert doc.findtext(f"{NS}EncodingType") == "url"
    assert doc.findtext(f"{NS}StartAfter") == "a.txt"
    assert doc.findtext(f"{NS}Delimiter") == "/"
    assert [c.findtext(f"{NS}Key") for c in doc.findall(f"{NS}Contents")] == ["e%20f%2Bg.txt", "zeta"]
    assert [c.findtext(f"{NS}Prefix") for c in doc.findall(f"{NS}CommonPrefixes")] == \
        ["dir/", "%C3%A9t%C3%A9/"]
    assert doc.findtext(f"{NS}KeyCount") == "4"
    assert doc.findtext(f"{NS}MaxKeys") == "1000"
    assert doc.findtext(f"{NS}IsTruncated") == "false"
    status, body = raw_get(cluster, s3, f"/{bucket}?encoding-type=url&marker=%C3%A9")
    doc = ET.fromstring(body)
    assert doc.findtext(f"{NS}Marker") == "%C3%A9"
    assert [c.findtext(f"{NS}Key") for c in doc.findall(f"{NS}Contents")] == ["%C3%A9t%C3%A9/1"]
    status, body = raw_get(cluster, s3, f"/{bucket}?list-type=2&max-keys=abc")
    assert status == 400 and b"InvalidArgument" in body
    status, body = raw_get(cluster, s3, f"/{bucket}?list-type=2&continuation-token=%25%25")
    assert status == 400 and b"InvalidArgument" in body


def test_multipart_roundtrip(s3, bucket: str) -> None:
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB + 7), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/obj", ContentType="application/x-mp",
                                    Metadata={"m": "v"})
    upload_id = up["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [("mp/obj", upload_id)]
    etags = []
    for n, data in enumerate(parts_data, start=1):
        res = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=upload_id, PartNumber=n, Body=data)
        assert res["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
        etags.append(res["ETag"])
    parts = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts["Parts"]] == \
        [(i + 1, len(d), e) for i, (d, e) in enumerate(zip(parts_data, etags, strict=True))]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp/obj", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    expected = hashlib.md5(b"".join(bytes.fromhex(e.strip('"')) for e in etags)).hexdigest() + "-3"
    assert done["ETag"] == f'"{expected}"'
    whole = b"".join(parts_data)
    got = s3.get_object(Bucket=bucket, Key="mp/obj")
    assert got["Body"].read() == whole
    assert got["ContentType"] == "application/x-mp"
    assert got["Metadata"] == {"m": "v"}
    part2 = s3.get_object(Bucket=bucket, Key="mp/obj", PartNumber=2)
    assert part2["PartsCount"] == 3
    assert part2["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB + 6}/{len(whole)}"
    assert part2["Body"].read() == parts_data[1]
    # parts and suffixes are narrowed to their chunks by the coordinator (1 MiB chunks here)
    for n, data in enumerate(parts_data, start=1):
        assert s3.get_object(Bucket=bucket, Key="mp/obj", PartNumber=n)["Body"].read() == data
    for n in (1, 1234, MiB + 1300, 6 * MiB, len(whole), len(whole) + 10):
        got = s3.get_object(Bucket=bucket, Key="mp/obj", Range=f"bytes=-{n}")
        assert got["ContentRange"] == f"bytes {max(0, len(whole) - n)}-{len(whole) - 1}/{len(whole)}"
        assert got["Body"].read() == whole[-n:]
    head = s3.head_object(Bucket=bucket, Key="mp/obj", PartNumber=3)
    assert (head["ContentLength"], head["PartsCount"]) == (1234, 3)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="mp/obj", PartNumber=4)
    assert (info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="mp/obj", Range="bytes=-0")
    assert (info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("InvalidRange", 416)
    rng = s3.get_object(Bucket=bucket, Key="mp/obj", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 10}")
    assert rng["Body"].read() == whole[5 * MiB - 10:5 * MiB + 11]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_multipart_errors_and_abort(s3, bucket: str) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=1, Body=b"a")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"], MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert info.value.response["Error"]["Code"] == "EntityTooSmall"
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"], MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]})
    assert info.value.response["Error"]["Code"] == "InvalidPart"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up["UploadId"])
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=3, Body=b"c")
    assert info.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as info:
        s3.list_parts(Bucket=bucket, Key="small", UploadId="not-an-upload")
    assert info.value.response["Error"]["Code"] == "NoSuchUpload"
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=up["UploadId"], PartNumber=10001, Body=b"c")
    assert info.value.response["Error"]["Code"] == "InvalidArgument"


def test_upload_part_copy(s3, bucket: str) -> None:
    src = os.urandom(6 * MiB + 100)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    up = s3.create_multipart_upload(Bucket=bucket, Key="assembled")
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up["UploadId"], PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    assert p1["CopyPartResult"]["ETag"] == '"' + hashlib.md5(src[:5 * MiB]).hexdigest() + '"'
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up["UploadId"], PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"})
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                  {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src[:5 * MiB] + src
    with pytest.raises(ClientError) as info:
        s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId="x", PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=0-")
    assert info.value.response["Error"]["Code"] in ("InvalidArgument", "NoSuchUpload")


def test_high_level_transfer(s3, bucket: str, tmp_path) -> None:
    """boto3's managed transfer: multipart upload with threads, ranged parallel download."""
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(12 * MiB + 3)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "big.bin", Config=cfg)
    dst = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(dst), Config=cfg)
    assert dst.read_bytes() == data
