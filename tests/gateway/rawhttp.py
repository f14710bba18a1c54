"""Signed HTTP requests sent byte for byte, for what boto3 would hide or refuse to send.

botocore signs (so the gateway's SigV4 check is the real one), then the request goes out on
a plain socket: header values as raw UTF-8, any Host (virtual-host style), any body.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def sign(s3, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", **headers})
    SigV4Auth(s3._request_signer._credentials, "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def request(port: int, s3, method: str, url: str, headers: dict[str, str] | None = None,
            body: bytes = b"") -> tuple[int, bytes]:
    """Send one signed request to 127.0.0.1:`port` as if to `url`; (status, whole raw response)."""
    signed = sign(s3, method, url, headers or {}, body)
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1".encode(), f"Host: {parts.netloc}".encode()]
    for name, value in signed.items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("utf-8")))
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


class NoAnswer(AssertionError):
    """The server closed the connection without a status line."""


def exchange(port: int, data: bytes, timeout: float = 15.0) -> tuple[int, bytes]:
    """Send `data` (one request, `Connection: close`) as is; (status, whole raw response).

    Raises NoAnswer when the connection ends without an HTTP status line: a dropped connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass             # answered (and closed) before taking the whole body: read the answer
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except ConnectionResetError:
            pass
    if not raw.startswith(b"HTTP/1."):
        raise NoAnswer(f"no HTTP answer, got {raw[:100]!r}")
    return int(raw.split(b" ", 2)[1]), raw


def build(method: str, target: bytes | str, headers: list[tuple[bytes | str, bytes | str]],
          body: bytes = b"") -> bytes:
    """One HTTP/1.1 request, byte for byte (header values may hold any bytes)."""
    def b(v: bytes | str) -> bytes:
        return v if isinstance(v, bytes) else v.encode("utf-8")
    lines = [b(method) + b" " + b(target) + b" HTTP/1.1"]
    lines += [b(k) + b": " + b(v) for k, v in headers]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
