"""SigV4 verification with real botocore signatures, over HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
from urllib.parse import quote

import pytest
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest

from tests.s3proto.client import creds, presign, send, sign, signed_request
from tests.s3proto.echo_server import ACCESS_KEY, SECRET_KEY, EchoServer


def test_header_auth_get(server: EchoServer) -> None:
    reply = signed_request(server.port, "GET", "/bucket/key.txt")
    info = reply.json()
    assert info["access_key"] == ACCESS_KEY
    assert info["user"] == "alice"
    assert info["payload_mode"] == "signed"
    assert info["payload_sha256"] == hashlib.sha256(b"").hexdigest()
    assert info["presigned"] is False
    assert info["scope"].endswith("/us-east-1/s3/aws4_request")


def test_header_auth_put_signed_payload(server: EchoServer) -> None:
    body = b"hello shardbox\n" * 1000
    info = signed_request(server.port, "PUT", "/bucket/obj", body,
                          {"Content-Type": "text/plain", "x-amz-meta-color": "  blue   and   green "}).json()
    assert info["payload_mode"] == "signed"
    assert info["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert info["body_len"] == len(body)
    assert info["decoded_length"] == len(body)


def test_signed_payload_tampered_body_is_rejected(server: EchoServer) -> None:
    body = b"x" * 5000
    headers = sign(server.port, "PUT", "/bucket/obj", body)
    reply = send(server.port, "PUT", "/bucket/obj", headers, b"y" + body[1:])
    assert reply.status == 400
    assert reply.code == "XAmzContentSHA256Mismatch"


def test_unsigned_payload(server: EchoServer) -> None:
    body = b"\x00\x01binary" * 333
    info = signed_request(server.port, "PUT", "/bucket/unsigned", body, unsigned=True).json()
    assert info["payload_mode"] == "unsigned"
    assert info["payload_sha256"] is None
    assert info["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_date_header_instead_of_x_amz_date(server: EchoServer) -> None:
    headers = sign(server.port, "GET", "/bucket/k", headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})
    names = {k.lower() for k, _ in headers}
    assert "date" in names and "x-amz-date" not in names
    assert send(server.port, "GET", "/bucket/k", headers).json()["payload_mode"] == "signed"


def test_header_value_whitespace_is_normalised(server: EchoServer) -> None:
    # botocore signs the trimmed/collapsed value; we send it with the original spacing.
    headers = sign(server.port, "GET", "/b/k", headers={"x-amz-meta-note": "a    b\t c"})
    assert send(server.port, "GET", "/b/k", headers).status == 200


def test_wrong_secret(server: EchoServer) -> None:
    reply = signed_request(server.port, "GET", "/bucket/key", secret="not-the-secret")
    assert reply.status == 403
    err = reply.error
    assert err["Code"] == "SignatureDoesNotMatch"
    assert err["AWSAccessKeyId"] == ACCESS_KEY
    assert err["RequestId"] == "test-request-id"
    assert err["CanonicalRequest"].startswith("GET\n/bucket/key\n")


def test_unknown_access_key(server: EchoServer) -> None:
    reply = signed_request(server.port, "GET", "/bucket/key", access_key="AKIDNOBODY")
    assert reply.status == 403
    assert reply.code == "InvalidAccessKeyId"


def test_clock_skew(server: EchoServer) -> None:
    server.now_offset = 16 * 60
    reply = signed_request(server.port, "GET", "/bucket/key")
    assert reply.status == 403
    assert reply.code == "RequestTimeTooSkewed"
    server.now_offset = 14 * 60
    assert signed_request(server.port, "GET", "/bucket/key").status == 200


def test_region_mismatch_names_expected_region(server: EchoServer) -> None:
    reply = signed_request(server.port, "GET", "/bucket/key", region="eu-west-3")
    assert reply.status == 400
    err = reply.error
    assert err["Code"] == "AuthorizationHeaderMalformed"
    assert err["Region"] == "us-east-1"
    assert "eu-west-3" in err["Message"]


def test_anonymous_request_is_denied(server: EchoServer) -> None:
    reply = send(server.port, "GET", "/bucket/key", [])
    assert reply.status == 403
    assert reply.code == "AccessDenied"


def test_anonymous_head_has_no_body(server: EchoServer) -> None:
    reply = send(server.port, "HEAD", "/bucket/key", [])
    assert reply.status == 403
    assert reply.body == b""
    assert reply.headers["x-amz-request-id"] == "test-request-id"


@pytest.mark.parametrize("authorization, code", [
    ("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, Signature=abc",
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1, SignedHeaders=host, Signature=abc",
     "AuthorizationHeaderMalformed"),
    ("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, "
     "Signature=abc", "AuthorizationHeaderMalformed"),
    ("AWS AKIDUNKNOWN:c2lnbmF0dXJl", "InvalidAccessKeyId"),     # SigV2, unknown key
    ("AWS4-ECDSA-P256-SHA256 Credential=AKID/20260101/s3/aws4_request", "InvalidRequest"),
    ("Bearer token", "AuthorizationHeaderMalformed"),
])
def test_malformed_authorization_header(server: EchoServer, authorization: str, code: str) -> None:
    reply = send(server.port, "GET", "/b/k", [("Authorization", authorization),
                                              ("x-amz-date", "20260101T000000Z"),
                                              ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")])
    assert reply.code == code


def test_missing_content_sha256(server: EchoServer) -> None:
    headers = [(k, v) for k, v in sign(server.port, "GET", "/b/k") if k.lower() != "x-amz-content-sha256"]
    reply = send(server.port, "GET", "/b/k", headers)
    assert reply.status == 400
    assert reply.code == "InvalidRequest"
    assert "x-amz-content-sha256" in reply.error["Message"]


def test_bad_date_header(server: EchoServer) -> None:
    headers = [(k, "yesterday") if k.lower() == "x-amz-date" else (k, v)
               for k, v in sign(server.port, "GET", "/b/k")]
    reply = send(server.port, "GET", "/b/k", headers)
    assert reply.status == 403
    assert reply.code == "AccessDenied"


def test_header_and_query_auth_together(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/b/k")
    headers = sign(server.port, "GET", "/b/k")
    assert send(server.port, "GET", target, headers).code == "InvalidArgument"


# ------------------------------------------------------------------ special characters

SPECIAL_KEYS = [
    "plain.txt",
    "with space/and more spaces",
    "unicodé/ファイル/файл.bin",
    "plus+sign+key",
    "percent%25literal%",
    "tilde~and-_.",
    "slash//runs///here/",
    "/leading-slash",
    "dots/./and/../segments",
    "quote'bang!paren(star)*,semi;colon:at@eq=amp&dollar$",
    "emoji-\U0001f600",
]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
def test_special_characters_in_keys(server: EchoServer, key: str) -> None:
    # Encoded the way botocore's S3 serializer encodes keys.
    target = "/bucket/" + quote(key, safe="/~")
    body = key.encode()
    info = signed_request(server.port, "PUT", target, body).json()
    assert info["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert server.outcomes[-1].path == target


@pytest.mark.parametrize("sent, signed", [
    ("/bucket/a%7eb", "/bucket/a~b"),                # lowercase escape for an unreserved char
    ("/bucket/it's!(x)*", "/bucket/it%27s%21%28x%29%2A"),   # sub-delims left bare by the client
    ("/bucket/%e2%82%ac", "/bucket/%E2%82%AC"),      # lowercase hex
])
def test_path_canonicalised_like_aws(server: EchoServer, sent: str, signed: str) -> None:
    # The client signs the AWS canonical form but puts a different, equivalent spelling on the wire.
    headers = sign(server.port, "GET", signed)
    assert send(server.port, "GET", sent, headers).status == 200


def test_path_signed_as_sent(server: EchoServer) -> None:
    # A client that signs its own non-canonical spelling verbatim is accepted too.
    target = "/bucket/it's!(x)*"
    assert signed_request(server.port, "GET", target).status == 200


def test_path_tampering_detected(server: EchoServer) -> None:
    headers = sign(server.port, "GET", "/bucket/a")
    assert send(server.port, "GET", "/bucket/b", headers).code == "SignatureDoesNotMatch"
    headers = sign(server.port, "GET", "/bucket//a")
    assert send(server.port, "GET", "/bucket/a", headers).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("query", [
    "?acl",
    "?list-type=2&prefix=&delimiter=%2F&max-keys=10",
    "?uploads=&prefix=a%20b&encoding-type=url",
    "?versionId=abc&partNumber=3&uploadId=x%2By%3Dz",
    "?z=1&a=2&a=1&m=%E2%82%AC&tilde=~&empty=",
    "?prefix=caf%C3%A9%2F&start-after=k%25",
])
def test_query_strings(server: EchoServer, query: str) -> None:
    assert signed_request(server.port, "GET", "/bucket" + query).status == 200


def test_query_plus_as_space(server: EchoServer) -> None:
    # Sent form-encoded (+ for space), signed with the AWS encoding of the decoded value.
    headers = sign(server.port, "GET", "/bucket?prefix=a%20b")
    assert send(server.port, "GET", "/bucket?prefix=a+b", headers).status == 200


def test_query_tampering_detected(server: EchoServer) -> None:
    headers = sign(server.port, "GET", "/bucket?prefix=a&max-keys=5")
    for tampered in ("/bucket?prefix=b&max-keys=5", "/bucket?prefix=a&max-keys=5&x=1"):
        assert send(server.port, "GET", tampered, headers).code == "SignatureDoesNotMatch"


# ------------------------------------------------------------------ presigned URLs


def test_presigned_get(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/bucket/some%20key%2Bplus")
    info = send(server.port, "GET", target, []).json()
    assert info["presigned"] is True
    assert info["payload_mode"] == "unsigned"
    assert info["access_key"] == ACCESS_KEY


def test_presigned_get_with_response_overrides(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/bucket/k?response-content-disposition=attachment%3B%20"
                                         "filename%3D%22a%20b.txt%22&response-content-type=text%2Fplain")
    assert send(server.port, "GET", target, []).status == 200


def test_presigned_put(server: EchoServer) -> None:
    target = presign(server.port, "PUT", "/bucket/upload.bin")
    body = bytes(range(256)) * 100
    info = send(server.port, "PUT", target, [], body).json()
    assert info["presigned"] is True
    assert info["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_presigned_expired(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/bucket/k", expires=60)
    server.now_offset = 120
    reply = send(server.port, "GET", target, [])
    assert reply.status == 403
    assert reply.code == "AccessDenied"
    assert reply.error["Message"] == "Request has expired"


def test_presigned_too_long(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/bucket/k", expires=604801)
    reply = send(server.port, "GET", target, [])
    assert reply.status == 400
    assert reply.code == "AuthorizationQueryParametersError"
    week = presign(server.port, "GET", "/bucket/k", expires=604800)
    assert send(server.port, "GET", week, []).status == 200


def test_presigned_tampered(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/bucket/k")
    other_key = target.replace("/bucket/k", "/bucket/j")
    assert send(server.port, "GET", other_key, []).code == "SignatureDoesNotMatch"
    assert send(server.port, "GET", target + "&extra=1", []).code == "SignatureDoesNotMatch"
    expires = target.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601")
    assert send(server.port, "GET", expires, []).code == "SignatureDoesNotMatch"
    # a different method than the one signed
    assert send(server.port, "DELETE", target, []).code == "SignatureDoesNotMatch"


def test_presigned_wrong_secret_and_unknown_key(server: EchoServer) -> None:
    assert send(server.port, "GET", presign(server.port, "GET", "/b/k", secret="nope"), []).code \
        == "SignatureDoesNotMatch"
    assert send(server.port, "GET", presign(server.port, "GET", "/b/k", access_key="AKIDNOBODY"), []).code \
        == "InvalidAccessKeyId"


def test_presigned_missing_parameter(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/bucket/k")
    parts = [p for p in target.split("?", 1)[1].split("&") if not p.startswith("X-Amz-SignedHeaders")]
    reply = send(server.port, "GET", "/bucket/k?" + "&".join(parts), [])
    assert reply.code == "AuthorizationQueryParametersError"


def test_presigned_region_mismatch(server: EchoServer) -> None:
    reply = send(server.port, "GET", presign(server.port, "GET", "/b/k", region="ap-south-1"), [])
    assert reply.code == "AuthorizationQueryParametersError"
    assert reply.error["Region"] == "us-east-1"


def test_presigned_with_signed_header(server: EchoServer) -> None:
    target = presign(server.port, "PUT", "/b/k", headers={"x-amz-meta-owner": "bob"})
    assert send(server.port, "PUT", target, [("x-amz-meta-owner", "bob")], b"data").status == 200
    assert send(server.port, "PUT", target, [("x-amz-meta-owner", "eve")], b"data").code \
        == "SignatureDoesNotMatch"


def test_presigned_not_yet_valid(server: EchoServer) -> None:
    target = presign(server.port, "GET", "/b/k")
    server.now_offset = -3600
    assert send(server.port, "GET", target, []).code == "AccessDenied"




def test_undecodable_input_never_crashes(server: EchoServer) -> None:
    """Percent-escapes that are not UTF-8 and non-UTF-8 header bytes: a clean answer, never a 500."""
    for target in ("/bucket/%FF%FE", "/bucket/k?prefix=%FF&x=%C3"):
        assert signed_request(server.port, "GET", target).status == 200   # signed as sent: accepted
        wrong = sign(server.port, "GET", "/bucket/other")
        assert send(server.port, "GET", target, wrong).code == "SignatureDoesNotMatch"
    headers = [*sign(server.port, "GET", "/bucket/k"), ("x-amz-meta-name", "caf\u00e9")]  # latin-1 byte
    assert _raw_status(server.port, b"GET /bucket/k HTTP/1.1", headers) == 200   # unsigned header
    signed = sign(server.port, "GET", "/bucket/k", headers={"x-amz-meta-name": "caf\u00e9"})
    # Signed as UTF-8, sent as one latin-1 byte: the bytes differ from what was signed, so 403
    # (SignatureDoesNotMatch, as AWS answers botocore for raw non-ASCII metadata), not a 500.
    assert _raw_status(server.port, b"GET /bucket/k HTTP/1.1", signed) == 403


def test_absolute_form_request_target(server: EchoServer) -> None:
    headers = sign(server.port, "GET", "/bucket/k?acl")
    line = f"GET http://127.0.0.1:{server.port}/bucket/k?acl HTTP/1.1".encode()
    assert _raw_status(server.port, line, headers) == 200


def _raw_status(port: int, request_line: bytes, headers: list[tuple[str, str]]) -> int:
    head = request_line + b"\r\n" + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


# ------------------------------------------------------------------ Signature Version 2


def _v2_headers(method: str, url: str, auth_path: str | None = None, secret: str = SECRET_KEY,
                headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
    req = AWSRequest(method=method, url=url, headers=headers or {})
    req.auth_path = auth_path
    HmacV1Auth(creds(secret=secret)).add_auth(req)
    return list(req.headers.items())


def test_sigv2_header_path_style(server: EchoServer) -> None:
    target = "/bucket/a%20b?uploadId=x%2By&partNumber=2"
    headers = _v2_headers("PUT", f"http://127.0.0.1:{server.port}{target}",
                          headers={"Content-Type": "text/plain", "x-amz-meta-k": "v"})
    info = send(server.port, "PUT", target, headers, b"v2").json()
    assert info["version"] == "v2"
    assert info["payload_mode"] == "unsigned"
    assert info["body_len"] == 2
    tampered = target.replace("partNumber=2", "partNumber=3")   # a sub-resource is signed
    assert send(server.port, "PUT", tampered, headers, b"v2").code == "SignatureDoesNotMatch"
    wrong = _v2_headers("GET", f"http://127.0.0.1:{server.port}/bucket/k", secret="nope")
    assert send(server.port, "GET", "/bucket/k", wrong).code == "SignatureDoesNotMatch"


def test_sigv2_bucket_url_signed_with_trailing_slash(server: EchoServer) -> None:
    """botocore signs the path-style bucket URL `/bucket` as the V2 resource `/bucket/`."""
    headers = _v2_headers("PUT", f"http://127.0.0.1:{server.port}/bucket", auth_path="/bucket/")
    assert send(server.port, "PUT", "/bucket", headers).json()["version"] == "v2"
    other = _v2_headers("PUT", f"http://127.0.0.1:{server.port}/other", auth_path="/bucket/")
    assert send(server.port, "PUT", "/other", other).code == "SignatureDoesNotMatch"


def test_sigv2_header_virtual_hosted(server: EchoServer) -> None:
    host = f"photos.s3.test:{server.port}"
    headers = _v2_headers("GET", f"http://{host}/k.jpg", auth_path="/photos/k.jpg")
    assert send(server.port, "GET", "/k.jpg", [("Host", host), *headers]).json()["version"] == "v2"
    # The same signature on a host the server does not read as a bucket does not verify.
    other = [("Host", f"127.0.0.1:{server.port}"), *headers]
    assert send(server.port, "GET", "/k.jpg", other).code == "SignatureDoesNotMatch"


def test_sigv2_skew(server: EchoServer) -> None:
    headers = _v2_headers("GET", f"http://127.0.0.1:{server.port}/b/k")
    server.now_offset = 3600
    assert send(server.port, "GET", "/b/k", headers).code == "RequestTimeTooSkewed"
