"""Hand-made HTTP requests for the cases a normal client refuses to send."""

from __future__ import annotations

import socket
import time

from config.cluster_auth import sign_headers
from tests.node.nodeproc import NODE_ID, SECRET


def _complete(raw: bytes) -> bool:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value)
    return False


def raw_put(port: int, path: str, body: bytes, content_hash: str, *, content_length: int | None,
            chunked: bool = False, timeout: float = 10.0, piece: int | None = None,
            pause_s: float = 0.0) -> tuple[int, bytes]:
    """Send a PUT whose body may be shorter than Content-Length (then half-close) or chunked.

    With `piece`, the body goes out `piece` bytes per send with `pause_s` between sends, so
    the server receives it in many separate reads.
    """
    headers = sign_headers(SECRET, "PUT", path, content_hash, target=NODE_ID)
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            if piece is None:
                sock.sendall(body)
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for start in range(0, len(body), piece):
                    sock.sendall(body[start:start + piece])
                    time.sleep(pause_s)
            if content_length is not None and len(body) < content_length and body:
                sock.shutdown(socket.SHUT_WR)     # a truncated body: tell the server no more comes
        except OSError:
            pass                       # the server may answer and close before reading it all
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
            if _complete(b"".join(chunks)):
                break      # the server may linger waiting for a body we never send
    raw = b"".join(chunks)
    if not raw:
        return 0, b""
    head, _, rest = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest
