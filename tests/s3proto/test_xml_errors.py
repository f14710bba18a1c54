"""XML in and out, and the S3 error document (checked with botocore's own parser too)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from botocore.parsers import RestXMLParser

from gateway.s3.errors import ERRORS, S3Error, error_response, error_xml
from gateway.s3.xmlio import find_all, find_text, http_date, iso8601, parse_xml, to_xml

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"

DELETE_DOC = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
              b"<Object><Key>a &amp; b</Key></Object><Object><Key>c</Key><VersionId>v1</VersionId></Object>"
              b"<Quiet>true</Quiet></Delete>")


def test_parse_with_and_without_namespace() -> None:
    for doc in (DELETE_DOC, DELETE_DOC.replace(b' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', b"")):
        root = parse_xml(doc, "Delete")
        objects = find_all(root, "Object")
        assert [find_text(o, "Key") for o in objects] == ["a & b", "c"]
        assert find_text(objects[1], "VersionId") == "v1"
        assert find_text(objects[0], "VersionId") is None
        assert find_text(root, "Quiet") == "true"


@pytest.mark.parametrize("body", [
    b"",
    b"   ",
    b"not xml at all",
    b"<Delete><Object></Delete>",
    b"<CompleteMultipartUpload></CompleteMultipartUpload>",       # wrong root
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    b"<Delete><Object><Key>&lol2;</Key></Object></Delete>",         # entity expansion
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete>&x;</Delete>',
])
def test_malformed_xml(body: bytes) -> None:
    with pytest.raises(S3Error) as info:
        parse_xml(body, "Delete")
    assert info.value.code == "MalformedXML"
    assert info.value.status == 400


def test_to_xml_shapes_and_escaping() -> None:
    doc = to_xml("ListBucketResult", [
        ("Name", "bucket"),
        ("Prefix", ""),
        ("MaxKeys", 1000),
        ("IsTruncated", False),
        ("Marker", None),
        ("Contents", [{"Key": "a<b>&c\"'", "Size": 3}, {"Key": "tab\there\r\nnew", "Size": 0}]),
        ("CommonPrefixes", [[("Prefix", "dir/")], [("Prefix", "other/")]]),
        ("Owner", {"ID": "u1", "DisplayName": "alice"}),
    ])
    assert doc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3')
    root = ET.fromstring(doc)
    assert root.tag == NS + "ListBucketResult"
    assert root.find(NS + "Name").text == "bucket"
    assert root.find(NS + "MaxKeys").text == "1000"
    assert root.find(NS + "IsTruncated").text == "false"
    assert root.find(NS + "Marker") is None
    keys = [c.find(NS + "Key").text for c in root.findall(NS + "Contents")]
    assert keys == ["a<b>&c\"'", "tab\there\r\nnew"]
    assert [p.find(NS + "Prefix").text for p in root.findall(NS + "CommonPrefixes")] == ["dir/", "other/"]
    assert root.find(NS + "Owner").find(NS + "DisplayName").text == "alice"


def test_to_xml_root_text() -> None:
    assert ET.fromstring(to_xml("LocationConstraint", "eu-west-1")).text == "eu-west-1"
    assert ET.fromstring(to_xml("LocationConstraint", None)).text is None


def test_times() -> None:
    assert iso8601(1795587252.75) == "2026-11-25T06:14:12.000Z"
    assert http_date(1795587252.75) == "Wed, 25 Nov 2026 06:14:12 GMT"


def test_error_table_statuses() -> None:
    expected = {"AccessDenied": 403, "NoSuchKey": 404, "InvalidRange": 416, "MissingContentLength": 411,
                "NotImplemented": 501, "SlowDown": 503, "PreconditionFailed": 412, "MethodNotAllowed": 405,
                "BucketNotEmpty": 409, "NotModified": 304, "InternalError": 500, "QuotaExceeded": 403}
    for code, status in expected.items():
        assert S3Error(code).status == status
        assert ERRORS[code][0] == status
    assert S3Error("NoSuchKey", status=410).status == 410
    assert S3Error("SomethingNew").status == 400


def test_error_xml_shape() -> None:
    err = S3Error("NoSuchKey", resource="/bucket/a&b", Key="a&b")
    root = ET.fromstring(error_xml(err, "rid-1"))
    assert root.tag == "Error"
    assert [c.tag for c in root] == ["Code", "Message", "Resource", "Key", "RequestId"]
    assert root.find("Code").text == "NoSuchKey"
    assert root.find("Message").text == "The specified key does not exist."
    assert root.find("Resource").text == "/bucket/a&b"
    assert root.find("RequestId").text == "rid-1"


def test_error_response_parsed_by_botocore() -> None:
    resp = error_response(S3Error("BucketNotEmpty", resource="/b"), "rid-2", "DELETE")
    assert resp.status == 409
    assert resp.content_type == "application/xml"
    assert resp.headers["x-amz-request-id"] == "rid-2"
    parsed = RestXMLParser().parse({"status_code": resp.status, "headers": dict(resp.headers),
                                    "body": resp.body}, None)
    assert parsed["Error"]["Code"] == "BucketNotEmpty"
    assert parsed["Error"]["Message"].startswith("The bucket you tried to delete is not empty")
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-2"


def test_head_and_304_have_no_body() -> None:
    assert error_response(S3Error("NoSuchKey"), "r", "HEAD").body is None
    not_modified = error_response(S3Error("NotModified"), "r", "GET")
    assert not_modified.status == 304
    assert not_modified.body is None


def test_undecodable_text_is_replaced_not_fatal() -> None:
    doc = to_xml("Result", [("Key", "a\udcffb")])          # a surrogate-escaped request byte
    assert ET.fromstring(doc).find(NS + "Key").text == "a\ufffdb"
    err = S3Error("SignatureDoesNotMatch", CanonicalRequest="GET\n/\udce9")
    assert ET.fromstring(error_xml(err, "r")).find("CanonicalRequest").text == "GET\n/\ufffd"
