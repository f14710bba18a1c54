"""Hostile input against real processes (the shared mini cluster: gateway, coordinator, 14
nodes): absurd and malformed headers, query parameters, ranges, dates, signatures and bodies
get a precise 4xx (or 501), never a 5xx nor a dropped connection, and leave no traceback (no
error line at all) in any process's log.

The cases the hardening issue found are pinned with their exact answers; hypothesis then
fuzzes around them (bounded example counts, so the suite stays fast).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.cluster_auth import COORDINATOR, body_hash, sign_headers
from coordinator.api import CoordinatorAPI, calls
from tests.gateway import rawhttp
from tests.gateway.cluster import MiniCluster

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------ what "no crash" means


def _log_files(cluster: MiniCluster) -> list[Path]:
    return sorted(cluster.root.glob("*.log"))


def _problems(text: str, name: str) -> list[str]:
    """Lines of a log that a client's bad request must never cause."""
    out = []
    for line in text.splitlines():
        if "Traceback" in line:
            out.append(f"{name}: {line[:300]}")
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            out.append(f"{name}: not a JSON line: {line[:300]}")
            continue
        status = doc.get("status")
        if (doc.get("level") in ("error", "critical") or "exc" in doc
                or (isinstance(status, int) and status >= 500 and status != 501)):
            out.append(f"{name}: {line[:400]}")
    return out


@pytest.fixture(autouse=True)
def clean_logs(cluster: MiniCluster):
    """Every process's log gains no error, traceback or 5xx while a test of this module runs."""
    before = {p: p.stat().st_size for p in _log_files(cluster)}
    yield
    problems = []
    for path in _log_files(cluster):
        with open(path, "rb") as f:
            f.seek(before.get(path, 0))
            problems += _problems(f.read().decode("utf-8", "replace"), path.name)
    assert not problems, "\n".join(problems[:20])


def _no_5xx(status: int, raw: bytes) -> None:
    assert status < 500 or status == 501, raw[:600]


# ------------------------------------------------------------------ the gateway


@dataclass
class Target:
    cluster: MiniCluster
    s3: object
    bucket: str
    upload_id: str

    @property
    def port(self) -> int:
        return self.cluster.gateway_port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def signed(self, method: str, path: str, body: bytes = b"",
               signed_headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """Headers of a valid SigV4 signature (botocore's) for `path` (with its query as sent)."""
        request = AWSRequest(method=method, url=self.url(path), data=body,
                             headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **(signed_headers or {})})
        SigV4Auth(self.s3._request_signer._credentials, "s3", "us-east-1").add_auth(request)
        return [(k, v) for k, v in request.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding")]

    def send(self, method: str, path: str, extra: list[tuple[str, bytes | str]] = (), body: bytes = b"",
             signed_headers: dict[str, str] | None = None, sign: bool = True) -> tuple[int, bytes]:
        headers: list = [("Host", f"127.0.0.1:{self.port}")]
        if sign:
            headers = [h for h in self.signed(method, path, body, signed_headers) if h[0].lower() != "host"]
            headers.insert(0, ("Host", f"127.0.0.1:{self.port}"))
        status, raw = rawhttp.exchange(self.port, rawhttp.build(method, path, [*headers, *extra], body))
        _no_5xx(status, raw)
        return status, raw


@pytest.fixture(scope="module")
def gw(cluster: MiniCluster) -> Target:
    s3 = cluster.boto3_client()
    bucket = f"hostile-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="small", Body=b"small object body")
    s3.put_object(Bucket=bucket, Key="big", Body=bytes(range(256)) * 10000)   # 2.5 chunks of 1 MiB
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    return Target(cluster, s3, bucket, upload_id)


def _code(raw: bytes) -> str | None:
    start = raw.find(b"<Code>")
    return raw[start + 6:raw.find(b"</Code>")].decode() if start >= 0 else None


# The values the hardening issue found answering 500 (or nothing), with the exact answer now.
YEAR_10000 = "Mon, 01 Jan 10000 00:00:00 GMT"
BIG_YEAR = "Mon, 01 Jan 99999999999 00:00:00 GMT"


def test_unsigned_values_that_crashed_the_gateway(gw: Target) -> None:
    b = gw.bucket
    cases: list[tuple[str, str, list, int, str]] = [
        # SigV4 header auth with a Date of year 10000 or more
        ("GET", f"/{b}/small", [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDX/20260101/us-east-1/s3/"
                                 "aws4_request, SignedHeaders=host;date, Signature=" + "0" * 64),
                                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("Date", YEAR_10000)],
         403, "AccessDenied"),
        ("GET", f"/{b}/small", [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDX/20260101/us-east-1/s3/"
                                 "aws4_request, SignedHeaders=host;date, Signature=" + "0" * 64),
                                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("Date", BIG_YEAR)],
         403, "AccessDenied"),
        # SigV2 header auth, the same dates
        ("GET", f"/{b}/small", [("Authorization", "AWS AKIDX:" + "A" * 28), ("Date", YEAR_10000)],
         403, "AccessDenied"),
        ("GET", f"/{b}/small", [("Authorization", "AWS AKIDX:" + "A" * 28), ("x-amz-date", BIG_YEAR)],
         403, "AccessDenied"),
        ("GET", f"/{b}/small", [("Authorization", "AWS AKIDX:" + "A" * 28),
                                ("x-amz-date", "20261399T000000Z")], 403, "AccessDenied"),
        # SigV2 presigned Expires that passes isdigit() but not int(), or 5,000 digits
        ("GET", f"/{b}/small?AWSAccessKeyId=AKIDX&Expires=%C2%B2&Signature=x", [], 403, "AccessDenied"),
        ("GET", f"/{b}/small?AWSAccessKeyId=AKIDX&Expires={'9' * 5000}&Signature=x", [],
         403, "InvalidAccessKeyId"),
        # SigV4 presigned: absurd expiry and date
        ("GET", f"/{b}/small?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDX%2F20260101%2Fus-east-1"
                f"%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires={'9' * 5000}"
                "&X-Amz-SignedHeaders=host&X-Amz-Signature=00", [], 400, "AuthorizationQueryParametersError"),
        ("GET", f"/{b}/small?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDX%2F20261399%2Fus-east-1"
                "%2Fs3%2Faws4_request&X-Amz-Date=20261399T000000Z&X-Amz-Expires=%C2%B2"
                "&X-Amz-SignedHeaders=host&X-Amz-Signature=00", [], 400, "AuthorizationQueryParametersError"),
        # a non-ASCII access key is never looked up
        ("GET", f"/{b}/small?AWSAccessKeyId=%FF%FE&Expires=1&Signature=x", [], 403, "InvalidAccessKeyId"),
    ]
    for method, path, headers, status, code in cases:
        got, raw = gw.send(method, path, headers, sign=False)
        assert (got, _code(raw)) == (status, code), (path[:120], headers, raw[:400])


def test_signature_values_that_crashed_the_gateway(gw: Target) -> None:
    b = gw.bucket
    # a presigned URL whose signature is not ASCII: compared as bytes, it simply does not match
    url = gw.s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "small"}, ExpiresIn=300)
    path = url.split(str(gw.port), 1)[1]
    status, raw = gw.send("GET", path, sign=False)
    assert status == 200 and raw.endswith(b"small object body")
    for bad in ("%FF", "%C3%A9" * 32, "z" * 64):
        tampered = re.sub(r"(Signature=)[^&]*", lambda m, bad=bad: m.group(1) + bad, path)
        status, raw = gw.send("GET", tampered, sign=False)
        assert (status, _code(raw)) == (403, "SignatureDoesNotMatch"), raw[:300]
    # the same in an Authorization header
    headers = dict(gw.signed("GET", f"/{b}/small"))
    auth = headers["Authorization"]
    headers["Authorization"] = auth[:auth.index("Signature=") + 10] + "\u00e9" * 64
    headers["Host"] = f"127.0.0.1:{gw.port}"
    status, raw = rawhttp.exchange(gw.port, rawhttp.build("GET", f"/{b}/small", list(headers.items())))
    assert (status, _code(raw)) == (403, "SignatureDoesNotMatch"), raw[:300]


def _chunked_put(gw: Target, key: str, frames: bytes, decoded_length: str) -> tuple[int, bytes]:
    creds = gw.s3._request_signer._credentials
    path = f"/{gw.bucket}/{key}"
    signed = {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked",
              "x-amz-decoded-content-length": decoded_length}
    request = AWSRequest(method="PUT", url=gw.url(path), headers=dict(signed))
    SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    headers = [("Host", f"127.0.0.1:{gw.port}")]
    headers += [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
    return rawhttp.exchange(gw.port, rawhttp.build("PUT", path, headers, frames))


def test_body_values_that_crashed_the_gateway(gw: Target) -> None:
    # a chunk signature with a high byte
    frames = (b"5;chunk-signature=" + b"\xff" * 64 + b"\r\nhello\r\n0;chunk-signature=" + b"0" * 64
              + b"\r\n\r\n")
    status, raw = _chunked_put(gw, "chunked", frames, "5")
    assert (status, _code(raw)) == (403, "SignatureDoesNotMatch"), raw[:300]
    # x-amz-decoded-content-length that passes isdigit() but not int(), or 5,000 digits
    for declared in ("\u00b2", "9" * 5000, "-1"):
        status, raw = _chunked_put(gw, "chunked", frames, declared)
        assert (status, _code(raw)) == (400, "InvalidArgument"), (declared[:10], raw[:300])


def test_range_and_date_values_that_crashed_the_gateway(gw: Target) -> None:
    b = gw.bucket
    status, raw = gw.send("GET", f"/{b}/small", [("Range", "bytes=0-" + "9" * 4301)])
    assert status == 206 and raw.endswith(b"small object body") and b"bytes 0-16/17" in raw
    status, raw = gw.send("GET", f"/{b}/small", [("Range", "bytes=" + "9" * 4301 + "-")])
    assert (status, _code(raw)) == (416, "InvalidRange")
    status, raw = gw.send("GET", f"/{b}/small", [("Range", "bytes=-" + "9" * 4301)])
    assert status == 206 and raw.endswith(b"small object body")
    for date in ("Tue, 14 Nov 99999999999 22:13:20 GMT", YEAR_10000, "Tue, 31 Feb 2023 22:13:20 GMT"):
        for header in ("If-Modified-Since", "If-Unmodified-Since"):
            status, raw = gw.send("GET", f"/{b}/small", [(header, date)])
            assert status == 200 and raw.endswith(b"small object body"), (header, date, raw[:300])
            status, raw = gw.send("PUT", f"/{b}/copy", [("x-amz-copy-source", f"{b}/small"),
                                                         ("x-amz-copy-source-" + header.lower(), date)])
            assert status == 200 and b"<CopyObjectResult" in raw, (header, date, raw[:300])
    # UploadPartCopy's source range: a huge end is past the source (416), a bad form 400
    path = f"/{b}/mp?partNumber=1&uploadId={gw.upload_id}"
    source = [("x-amz-copy-source", f"{b}/big")]
    status, raw = gw.send("PUT", path, [*source, ("x-amz-copy-source-range", "bytes=0-" + "9" * 4301)])
    assert (status, _code(raw)) == (416, "InvalidRange"), raw[:300]
    status, raw = gw.send("PUT", path, [*source, ("x-amz-copy-source-range", "bytes=\u00b2-3")])
    assert (status, _code(raw)) == (400, "InvalidArgument"), raw[:300]
    status, raw = gw.send("PUT", path, [*source, ("x-amz-copy-source-range", "bytes=0-99")])
    assert status == 200 and b"<CopyPartResult" in raw


def test_response_overrides_that_crashed_the_gateway(gw: Target) -> None:
    b = gw.bucket
    for key in ("small", "big"):
        for query in ("response-content-type=%0d%0aX:1", "response-expires=%00",
                      "response-content-disposition=a%0Ab", "response-cache-control=%7F"):
            status, raw = gw.send("GET", f"/{b}/{key}?{query}")
            assert (status, _code(raw)) == (400, "InvalidArgument"), (key, query, raw[:300])
            assert b"\r\nX:1" not in raw.partition(b"\r\n\r\n")[0]
        status, raw = gw.send("GET", f"/{b}/{key}?response-content-type=text%2Fplain%3B%20charset%3D%C3%A9")
        assert status == 200 and "Content-Type: text/plain; charset=\u00e9".encode() in raw


# ------------------------------------------------------------------ fuzzing the gateway

_NASTY = ["\u00b2", "\u0663", "1" * 5000, "9" * 4301, "-1", "+1", "1_000", " 1 ", "0x10", "1e3", "", " ",
          "\x00", "\x7f", "\u00e9", "\U0001f600", "%00", "%FF", "%0d%0a", "*", '"etag"', "W/\"x\"",
          YEAR_10000, BIG_YEAR,
          "Tue, 31 Feb 2023 00:00:00 GMT", "Tue, 14 Nov 2023 99:99:99 +9999", "99991231T235959Z",
          "20261399T000000Z", "100000101T000000Z", "bytes=0-", "bytes=-0", "bytes=5-3", "bytes=0-1,2-3",
          "bytes=\u0663-\u0664", "bytes=0-" + "9" * 30, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
          "UNSIGNED-PAYLOAD", "aws-chunked", "AAAA", "=" * 40, "A" * 9000]
_TEXT = st.one_of(
    st.sampled_from(_NASTY),
    st.text(max_size=60),
    st.text("0123456789", min_size=1, max_size=5000),
    st.integers(-(10 ** 30), 10 ** 30).map(str),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(0, 10 ** 25) | st.just(""),
              st.integers(0, 10 ** 25) | st.just("")),
)
# Header values as raw bytes: anything but CR and LF (which end the header; aiohttp answers 400).
_HEADER_VALUE = st.one_of(
    _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
_QUERY_VALUE = _TEXT.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe=""))

_AUTH_HEADERS = ["Authorization", "X-Amz-Date", "Date", "x-amz-content-sha256", "x-amz-security-token",
                 "Expect", "Host"]
_SIGNED_REQUEST_HEADERS = [
    "Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "x-amz-copy-source",
    "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-match", "x-amz-copy-source-range",
    "x-amz-checksum-mode", "x-amz-meta-fuzz", "Content-Type", "Content-MD5", "x-amz-checksum-crc32",
    "x-amz-checksum-sha256", "x-amz-checksum-algorithm", "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-acl", "x-amz-metadata-directive", "x-amz-decoded-content-length", "x-amz-trailer",
    "x-amz-sdk-checksum-algorithm", "Cache-Control", "Expires", "Content-Disposition", "Content-Encoding",
    "x-amz-server-side-encryption-customer-algorithm", "Expect"]
_QUERY_PARAMS = [
    "response-content-type", "response-expires", "response-content-disposition", "response-cache-control",
    "partNumber", "versionId", "uploadId", "max-keys", "max-uploads", "max-parts", "part-number-marker",
    "prefix", "delimiter", "marker", "start-after", "continuation-token", "encoding-type", "list-type",
    "key-marker", "upload-id-marker", "fetch-owner", "max-buckets", "acl", "tagging", "uploads", "delete",
    "X-Amz-Expires", "X-Amz-Date", "X-Amz-Signature", "X-Amz-Credential", "Expires", "Signature",
    "AWSAccessKeyId", "X-Amz-Algorithm", "X-Amz-SignedHeaders"]


def _operations(gw: Target) -> list[tuple[str, str, bytes]]:
    b = gw.bucket
    return [("GET", f"/{b}/small", b""), ("GET", f"/{b}/big", b""), ("HEAD", f"/{b}/small", b""),
            ("PUT", f"/{b}/fuzz-put", b"fuzzed body"), ("GET", f"/{b}", b""), ("GET", "/", b""),
            ("PUT", f"/{b}/mp?partNumber=2&uploadId={gw.upload_id}", b"part"),
            ("DELETE", f"/{b}/nothing", b""),
            ("POST", f"/{b}/mp?uploads", b""), ("GET", f"/{b}/mp?uploadId={gw.upload_id}", b""),
            ("POST", f"/{b}?delete", b"<Delete><Object><Key>nothing</Key></Object></Delete>")]


@FUZZ
@given(data=st.data())
def test_fuzz_gateway_authentication_values(gw: Target, data: st.DataObject) -> None:
    """Credential headers and presigned-URL parameters before any valid signature."""
    method, path, body = data.draw(st.sampled_from(_operations(gw)))
    headers = data.draw(st.lists(st.tuples(st.sampled_from(_AUTH_HEADERS), _HEADER_VALUE), max_size=4))
    params = data.draw(st.lists(st.tuples(st.sampled_from(_QUERY_PARAMS), _QUERY_VALUE), max_size=4))
    if params:
        path += ("&" if "?" in path else "?") + "&".join(f"{k}={v}" for k, v in params)
    if not any(k == "Host" for k, _ in headers):
        headers.insert(0, ("Host", f"127.0.0.1:{gw.port}"))
    status, raw = rawhttp.exchange(gw.port, rawhttp.build(method, path, headers, body))
    _no_5xx(status, raw)


@FUZZ
@given(data=st.data())
def test_fuzz_gateway_signed_headers(gw: Target, data: st.DataObject) -> None:
    """Correctly signed requests whose other headers are absurd: they reach the handlers."""
    method, path, body = data.draw(st.sampled_from(_operations(gw)))
    extra = data.draw(st.lists(st.tuples(st.sampled_from(_SIGNED_REQUEST_HEADERS), _HEADER_VALUE),
                               min_size=1, max_size=4))
    gw.send(method, path, extra, body)


@FUZZ
@given(data=st.data())
def test_fuzz_gateway_signed_query(gw: Target, data: st.DataObject) -> None:
    """Correctly signed requests with absurd query parameters."""
    method, path, body = data.draw(st.sampled_from(_operations(gw)))
    params = data.draw(st.lists(st.tuples(st.sampled_from(_QUERY_PARAMS[:27]), _QUERY_VALUE),
                                min_size=1, max_size=3))
    path += ("&" if "?" in path else "?") + "&".join(f"{k}={v}" for k, v in params)
    gw.send(method, path, [], body)


_CHUNK_SIG = st.one_of(st.binary(min_size=64, max_size=64), st.text("0123456789abcdef", min_size=64,
                                                                    max_size=64).map(str.encode))


@FUZZ
@given(data=st.data())
def test_fuzz_gateway_bodies(gw: Target, data: st.DataObject) -> None:
    """aws-chunked frames and XML documents, mangled."""
    kind = data.draw(st.sampled_from(["chunked", "delete", "complete", "create"]))
    if kind == "chunked":
        size = data.draw(st.sampled_from([b"5", b"0", b"fffffffffffffffff", b"-1", b"\xb2", b"zz", b""]))
        payload = data.draw(st.binary(max_size=40))
        frames = (size + b";chunk-signature=" + data.draw(_CHUNK_SIG) + b"\r\n" + payload + b"\r\n"
                  + data.draw(st.sampled_from([b"0;chunk-signature=" + b"0" * 64 + b"\r\n\r\n", b"", b"\r\n",
                                               b"0\r\nx-amz-checksum-crc32:\xff\r\n\r\n"])))
        declared = data.draw(st.sampled_from(["5", "0", "\u00b2", "9" * 100, str(len(payload))]))
        status, raw = _chunked_put(gw, "fuzz-chunked", frames, declared)
        _no_5xx(status, raw)
        return
    document = data.draw(st.one_of(
        st.binary(max_size=300),
        st.builds(lambda n, e: f"<CompleteMultipartUpload><Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag>"
                               "</Part></CompleteMultipartUpload>".encode("utf-8", "surrogatepass"),
                  _TEXT, _TEXT),
        st.builds(lambda k: f"<Delete><Object><Key>{k}</Key></Object></Delete>".encode(
            "utf-8", "surrogatepass"), _TEXT),
        st.builds(lambda c: f"<CreateBucketConfiguration><LocationConstraint>{c}</LocationConstraint>"
                            "</CreateBucketConfiguration>".encode("utf-8", "surrogatepass"), _TEXT)))
    b = gw.bucket
    method, path = {"delete": ("POST", f"/{b}?delete"), "complete": ("POST", f"/{b}/mp?uploadId=nope"),
                    "create": ("PUT", f"/{b}")}[kind]
    extra = [("Content-MD5", data.draw(_HEADER_VALUE))] if data.draw(st.booleans()) else []
    gw.send(method, path, extra, document)


# ------------------------------------------------------------------ nodes and the coordinator


def _internal(cluster: MiniCluster, port: int, method: str, target: bytes, headers: list,
              body: bytes = b"") -> tuple[int, bytes]:
    status, raw = rawhttp.exchange(port, rawhttp.build(method, target, [("Host", f"127.0.0.1:{port}"),
                                                                        *headers], body))
    _no_5xx(status, raw)
    return status, raw


def _credential(cluster: MiniCluster, method: str, target: str, body: bytes,
                to: str) -> list[tuple[str, str]]:
    return list(sign_headers(cluster.secret, method, target, body_hash(body), target=to).items())


def test_internal_credential_values_that_crashed(cluster: MiniCluster) -> None:
    node_port, coord_port = cluster.node_ports[0], cluster.coordinator_port
    for port, to, method, path in ((node_port, "n00", "GET", "/health"),
                                   (coord_port, COORDINATOR, "POST", "/internal/v1/list_nodes")):
        good = dict(_credential(cluster, method, path, b"{}" if method == "POST" else b"", to))
        body = b"{}" if method == "POST" else b""
        status, _ = _internal(cluster, port, method, path.encode(), list(good.items()), body)
        assert status == 200
        for field, value in (("X-Shardbox-Date", "\u00b2"), ("X-Shardbox-Date", "1" * 5000),
                             ("X-Shardbox-Date", "\u0663"), ("Authorization", "SBX2 " + "\u00e9" * 64),
                             ("Authorization", "SBX2 " + "\xff" * 64),
                             ("Authorization", "SBX2 " + "0" * 5000)):
            headers = {**good, field: value}
            status, raw = _internal(cluster, port, method, path.encode(),
                                    [(k, v.encode("utf-8")) for k, v in headers.items()], body)
            assert status == 403, (port, field, raw[:300])
        # a request signed for another node (or for a node, sent to the coordinator) is refused
        other = "n01" if to == "n00" else "n00"
        headers = _credential(cluster, method, path, body, other)
        status, raw = _internal(cluster, port, method, path.encode(), headers, body)
        assert status == 403, raw[:300]
    # the node's listing limit that passed isdigit() but not int()
    for limit in ("%C2%B2", "1" * 5000, "0", "10001", "-1"):
        target = f"/shards?limit={limit}"
        status, raw = _internal(cluster, node_port, "GET", target.encode(),
                                _credential(cluster, "GET", target, b"", "n00"))
        assert status == 400 and b"InvalidRequest" in raw, (limit[:10], raw[:300])


_INTERNAL_HEADERS = ["Authorization", "X-Shardbox-Date", "X-Shardbox-Content-Hash", "X-Request-Id",
                     "X-Shardbox-Client", "Content-Type", "Expect"]


@FUZZ
@given(data=st.data())
def test_fuzz_node_requests(cluster: MiniCluster, data: st.DataObject) -> None:
    """Paths, query strings, credential fields and bodies sent to a storage node."""
    port, node_id = cluster.node_ports[0], "n00"
    method = data.draw(st.sampled_from(["GET", "HEAD", "PUT", "DELETE", "POST", "PATCH"]))
    shard = data.draw(st.one_of(st.sampled_from(["x.0", "a" * 201, "..", "bad!id", "%00", "%FF", ""]),
                                _QUERY_VALUE))
    path = data.draw(st.sampled_from([f"/shards/{shard}", "/shards", "/shards/delete", "/health", "/metrics",
                                      "/scrub", "/compact", f"/{shard}"]))
    if path in ("/scrub", "/compact"):
        method = "GET"       # real maintenance work: keep the fuzz to refused methods there
    if data.draw(st.booleans()):
        params = data.draw(st.lists(st.tuples(st.sampled_from(["limit", "after", "x"]), _QUERY_VALUE),
                                    max_size=3))
        path += "?" + "&".join(f"{k}={v}" for k, v in params)
    body = data.draw(st.one_of(st.binary(max_size=200), st.builds(
        lambda ids: json.dumps({"ids": ids}).encode(), st.lists(_TEXT, max_size=3)))) if method in (
        "PUT", "POST") else b""
    if method == "POST" and path.startswith("/shards/delete"):
        body = json.dumps({"ids": data.draw(st.lists(_TEXT, max_size=3))}).encode()   # never real ids
    headers = _credential(cluster, method, path, body, node_id) if data.draw(st.booleans()) else []
    for name, value in data.draw(st.lists(st.tuples(st.sampled_from(_INTERNAL_HEADERS), _HEADER_VALUE),
                                          max_size=3)):
        headers = [h for h in headers if h[0] != name] + [(name, value)]
    _internal(cluster, port, method, path.encode(), headers, body)


def _json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                        st.floats(allow_nan=False), _TEXT)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=10), inner, max_size=3), max_leaves=8)


# Calls whose fuzzed arguments can only be refused or touch nothing another test relies on.
_SAFE_CALLS = [call for call in calls().values() if call.name in vars(CoordinatorAPI) and call.name not in (
    "create_bucket", "delete_bucket", "delete_objects", "delete_object", "abort_upload", "copy_object")]


@FUZZ
@given(data=st.data())
def test_fuzz_coordinator_requests(cluster: MiniCluster, data: st.DataObject) -> None:
    """API calls with arguments of every JSON type and value, and mangled credentials."""
    port = cluster.coordinator_port
    call = data.draw(st.sampled_from([*_SAFE_CALLS, None]))
    if call is not None and data.draw(st.booleans()):
        names = [p for p in call.signature.parameters if data.draw(st.integers(0, 4))]
        doc = {p: data.draw(_json_values()) for p in names}
        body = json.dumps(doc).encode()
    else:
        body = data.draw(st.one_of(st.binary(max_size=200),
                                   _json_values().map(lambda v: json.dumps(v).encode())))
    path = call.path if call is not None else "/internal/v1/no_such_call"
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    headers = _credential(cluster, method, path, body, COORDINATOR)
    for field, value in data.draw(st.lists(st.tuples(st.sampled_from(_INTERNAL_HEADERS), _HEADER_VALUE),
                                           max_size=2)):
        headers = [h for h in headers if h[0] != field] + [(field, value)]
    _internal(cluster, port, method, path.encode(), headers, body)


def test_bad_http_is_one_line_not_a_traceback(cluster: MiniCluster, gw: Target) -> None:
    """Requests aiohttp cannot parse get its 400 and one info line, in every role."""
    garbage = [b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n",
               b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
               b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
               b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n"]
    for port in (gw.port, cluster.node_ports[0], cluster.coordinator_port):
        for request in garbage:
            status, raw = rawhttp.exchange(port, request)
            assert status == 400, raw[:200]
    lines = [json.loads(line) for line in (cluster.root / "gateway.log").read_text().splitlines()[-200:]]
    assert any(entry.get("event") == "http.bad_request" for entry in lines)


def test_hostile_inputs_left_every_object_intact(gw: Target) -> None:
    assert gw.s3.get_object(Bucket=gw.bucket, Key="small")["Body"].read() == b"small object body"
    big = gw.s3.get_object(Bucket=gw.bucket, Key="big")["Body"].read()
    assert hashlib.sha256(big).digest() == hashlib.sha256(bytes(range(256)) * 10000).digest()


# ------------------------------------------------------------------ browser form uploads (POST)


def _post_form(gw: Target, fields: list[tuple[str, str | bytes]], content_type: str | None = None,
               body: bytes | None = None) -> tuple[int, bytes]:
    boundary = "sbxHostileBoundary"
    if body is None:
        parts = []
        for name, value in [*fields, ("file", b"form file body")]:
            data = value if isinstance(value, bytes) else value.encode("utf-8")
            extra = '; filename="f.txt"' if name == "file" else ""
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'
            parts.append(head.encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = [("Host", f"127.0.0.1:{gw.port}"),
               ("Content-Type", content_type or f"multipart/form-data; boundary={boundary}")]
    status, raw = rawhttp.exchange(gw.port, rawhttp.build("POST", f"/{gw.bucket}", headers, body))
    _no_5xx(status, raw)
    return status, raw


def _signed_policy(gw: Target, expiration: str = "2099-01-01T00:00:00Z", conditions: list | None = None,
                   date: str = "20260101") -> list[tuple[str, str]]:
    """A POST policy and its SigV4 fields, signed the way AWS documents it (not by the gateway's
    code); it allows any key and a success_action_redirect."""
    import base64
    import hmac as hmac_mod

    creds = gw.s3._request_signer._credentials
    credential = f"{creds.access_key}/{date}/us-east-1/s3/aws4_request"
    signed = [("x-amz-algorithm", "AWS4-HMAC-SHA256"), ("x-amz-credential", credential),
              ("x-amz-date", f"{date}T000000Z")]
    policy = {"expiration": expiration, "conditions": [
        {"bucket": gw.bucket}, ["starts-with", "$key", ""], ["starts-with", "$success_action_redirect", ""],
        *({name: value} for name, value in signed), *(conditions or [])]}
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()

    def mac(key: bytes, msg: str) -> bytes:
        return hmac_mod.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(mac(f"AWS4{creds.secret_key}".encode(), date), "us-east-1"), "s3"), "aws4_request")
    return [("policy", encoded), *signed,
            ("x-amz-signature", hmac_mod.new(key, encoded.encode(), hashlib.sha256).hexdigest())]


def test_form_upload_values_that_would_crash(gw: Target) -> None:
    fields = [("key", "form-ok"), *_signed_policy(gw)]
    status, raw = _post_form(gw, fields)
    assert status == 204, raw[:300]
    # a signature that is not ASCII: compared as bytes, it does not match
    tampered = [(k, "\u00e9" * 64 if k == "x-amz-signature" else v) for k, v in fields]
    status, raw = _post_form(gw, tampered)
    assert (status, _code(raw)) == (403, "SignatureDoesNotMatch"), raw[:300]
    # an expiration that is no date, correctly signed
    for expiration in ("2030-13-45T99:99:99Z", "10000-01-01T00:00:00Z", "2030-02-30T00:00:00Z"):
        status, raw = _post_form(gw, [("key", "form-x"), *_signed_policy(gw, expiration)])
        assert (status, _code(raw)) == (400, "InvalidPolicyDocument"), (expiration, raw[:300])
    status, raw = _post_form(gw, [("key", "form-x"),
                                  *_signed_policy(gw, conditions=[["content-length-range", 0, 1e400]])])
    assert (status, _code(raw)) == (400, "InvalidPolicyDocument"), raw[:300]
    # a redirect the policy allows but that would split the answer's headers
    status, raw = _post_form(gw, [("key", "form-x"), ("success_action_redirect", "http://x/\r\nX-Evil: 1"),
                                  *_signed_policy(gw)])
    assert (status, _code(raw)) == (400, "InvalidArgument"), raw[:300]
    # a key with CR LF is stored, and named URL-encoded in the Location header
    status, raw = _post_form(gw, [("key", "line\r\nbreak"), *_signed_policy(gw)])
    assert status == 204 and b"\r\nX-Evil" not in raw and b"line%0D%0Abreak" in raw, raw[:400]
    # bodies that are not multipart/form-data
    for content_type, body in (("multipart/form-data; boundary=abc", b"garbage"),
                               ("multipart/form-data; boundary=" + "x" * 100, b"--x\r\n"),
                               ("multipart/form-data; boundary=abc", b"--abc\r\nno headers end")):
        status, raw = _post_form(gw, [], content_type, body)
        assert (status, _code(raw)) == (400, "MalformedPOSTRequest"), (content_type, raw[:300])


_FORM_FIELDS = ["key", "policy", "x-amz-signature", "x-amz-credential", "x-amz-algorithm", "x-amz-date",
                "signature", "awsaccesskeyid", "success_action_status", "success_action_redirect", "acl",
                "tagging", "Content-Type", "x-amz-meta-fuzz", "expires"]


@FUZZ
@given(data=st.data())
def test_fuzz_gateway_form_uploads(gw: Target, data: st.DataObject) -> None:
    """Browser form uploads (POST with a policy) whose fields, policy and framing are mangled."""
    fields = data.draw(st.lists(st.tuples(st.sampled_from(_FORM_FIELDS), _TEXT), max_size=5))
    if data.draw(st.booleans()):      # a correctly signed policy, so the fuzzed fields get judged
        expiration = data.draw(st.sampled_from(["2099-01-01T00:00:00Z", *_NASTY[:30]]))
        fields = [("key", "fuzz-form"), *_signed_policy(gw, expiration), *fields]
    if data.draw(st.booleans()):
        _post_form(gw, fields)
    else:
        _post_form(gw, [], data.draw(st.sampled_from(["multipart/form-data; boundary=b",
                                                      "multipart/form-data", "multipart/mixed; boundary=b"])),
                   data.draw(st.binary(max_size=300)))
