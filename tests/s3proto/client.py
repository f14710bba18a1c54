"""Client side of the protocol tests: botocore signs, http.client sends the exact bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.s3proto.echo_server import ACCESS_KEY, REGION, SECRET_KEY

Headers = list[tuple[str, str]]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        assert self.status == 200, (self.status, self.body[:600])
        if "x-echo" in self.headers:          # PUT/POST answers carry the report in a header
            return json.loads(base64.b64decode(self.headers["x-echo"]))
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, str]:
        """The <Error> document's children, by tag."""
        assert self.status >= 300, (self.status, self.body[:300])
        root = ET.fromstring(self.body)
        assert root.tag == "Error"
        return {child.tag: child.text or "" for child in root}

    @property
    def code(self) -> str:
        return self.error["Code"]


def send(port: int, method: str, target: str, headers: Headers, body: bytes = b"") -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        names = {k.lower() for k, _ in headers}
        if "host" not in names:
            conn.putheader("Host", f"127.0.0.1:{port}")
        for name, value in headers:
            conn.putheader(name, value)
        if "content-length" not in names and "transfer-encoding" not in names and (body or method in (
                "PUT", "POST")):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def creds(access_key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> Credentials:
    return Credentials(access_key, secret)


def sign(port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
         access_key: str = ACCESS_KEY, secret: str = SECRET_KEY, region: str = REGION,
         unsigned: bool = False, generic: bool = False) -> Headers:
    """Headers botocore's S3 signer adds for this request (plus Host).

    `generic=True` uses the plain SigV4 signer, which keeps a preset X-Amz-Content-SHA256
    (needed for the STREAMING-* values that the S3 signer would overwrite).
    """
    all_headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{target}", data=body, headers=all_headers)
    if unsigned:
        req.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = SigV4Auth if generic else S3SigV4Auth
    signer(creds(access_key, secret), "s3", region).add_auth(req)
    return list(req.headers.items())


def signed_request(port: int, method: str, target: str, body: bytes = b"",
                   headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    return send(port, method, target, sign(port, method, target, body, headers, **kw), body)


def presign(port: int, method: str, target: str, *, expires: int = 3600, access_key: str = ACCESS_KEY,
            secret: str = SECRET_KEY, region: str = REGION, headers: dict[str, str] | None = None) -> str:
    """A presigned path+query for `target` (botocore S3SigV4QueryAuth)."""
    all_headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    req = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{target}", headers=all_headers)
    S3SigV4QueryAuth(creds(access_key, secret), "s3", region, expires=expires).add_auth(req)
    parts = urlsplit(req.url)
    return f"{parts.path}?{parts.query}"


def seed_signature(headers: Headers) -> str:
    auth = dict(headers)["Authorization"]
    return auth.rsplit("Signature=", 1)[1]


def signing_key(secret: str, date: str, region: str = REGION) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def signed_chunks(data_chunks: list[bytes], key: bytes, amz_date: str, scope: str, seed: str,
                  trailers: list[tuple[str, str]] | None = None) -> bytes:
    """Encode `data_chunks` as a STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] body (AWS algorithm)."""
    out = bytearray()
    previous = seed
    for chunk in [*data_chunks, b""]:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA,
                         hashlib.sha256(chunk).hexdigest()])
        previous = hmac_hex(key, sts)
        out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
        if chunk:
            out += chunk + b"\r\n"
    if trailers is not None:
        canonical = "".join(f"{n}:{v}\n" for n, v in trailers)
        for n, v in trailers:
            out += f"{n}:{v}\r\n".encode()
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                         hashlib.sha256(canonical.encode()).hexdigest()])
        out += f"x-amz-trailer-signature:{hmac_hex(key, sts)}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def unsigned_chunks(data_chunks: list[bytes], trailers: list[tuple[str, str]] | None = None) -> bytes:
    out = bytearray()
    for chunk in data_chunks:
        out += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    out += b"0\r\n"
    for n, v in trailers or []:
        out += f"{n}:{v}\r\n".encode()
    out += b"\r\n"
    return bytes(out)
