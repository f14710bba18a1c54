"""Connection timeouts of every server (gateway, storage node, coordinator), configured short
here: idle, half-sent and unread connections are closed within the configured time, and a
client that is slow but keeps sending is not."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from config.cluster_auth import COORDINATOR, body_hash, sign_headers
from tests.gateway.cluster import MiniCluster

TIMEOUTS = {"header_s": 1.0, "body_idle_s": 1.0, "keepalive_s": 2.0, "send_idle_s": 1.0}
SLACK_S = 3.0       # a loaded test machine may answer late; never early


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniCluster]:
    mc = MiniCluster(tmp_path_factory.mktemp("timeouts"), nodes=1, timeouts=TIMEOUTS)
    try:
        mc.start()
        yield mc
    finally:
        mc.stop()


@pytest.fixture(scope="module")
def bucket(cluster: MiniCluster) -> str:
    name = f"slow-{uuid.uuid4().hex[:8]}"
    cluster.boto3_client().create_bucket(Bucket=name)
    return name


def _ports(cluster: MiniCluster) -> dict[str, int]:
    return {"gateway": cluster.gateway_port, "node": cluster.node_ports[0],
            "coordinator": cluster.coordinator_port}


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and what it sent before."""
    started = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the connection is still open after {limit:.0f} s; got {data[:200]!r}")
    return time.monotonic() - started, data


def _closed_in_time(sock: socket.socket, configured: float) -> bytes:
    elapsed, data = _until_closed(sock, configured + SLACK_S)
    assert configured * 0.8 <= elapsed <= configured + SLACK_S, elapsed
    return data


def _head(method: str, path: str, port: int, headers: dict[str, str], length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_connection_that_sends_nothing_is_closed(cluster: MiniCluster) -> None:
    for name, port in _ports(cluster).items():
        with _connect(port) as sock:
            assert _closed_in_time(sock, TIMEOUTS["header_s"]) == b"", name


def test_a_half_sent_request_head_gets_408(cluster: MiniCluster) -> None:
    for name, port in _ports(cluster).items():
        with _connect(port) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            data = _closed_in_time(sock, TIMEOUTS["header_s"])
            assert data.startswith(b"HTTP/1.1 408 "), (name, data[:200])


def test_a_head_sent_slowly_byte_by_byte_is_cut_at_the_header_time(cluster: MiniCluster) -> None:
    port = cluster.gateway_port
    with _connect(port) as sock:
        started = time.monotonic()
        head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + b"a" * 100
        sent = 0
        try:
            while sent < len(head) and time.monotonic() - started < TIMEOUTS["header_s"] + SLACK_S:
                sock.sendall(head[sent:sent + 1])
                sent += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, data = _until_closed(sock, SLACK_S)
        assert data.startswith(b"HTTP/1.1 408 "), data[:200]
        assert time.monotonic() - started <= TIMEOUTS["header_s"] + SLACK_S


def _signed_node(method: str, path: str, body: bytes, cluster: MiniCluster) -> dict[str, str]:
    return sign_headers(cluster.secret, method, path, body_hash(body), target="n00")


def _signed_coordinator(path: str, body: bytes, cluster: MiniCluster) -> dict[str, str]:
    return sign_headers(cluster.secret, "POST", path, body_hash(body), target=COORDINATOR)


def _signed_s3(cluster: MiniCluster, method: str, path: str) -> dict[str, str]:
    s3 = cluster.boto3_client()
    request = AWSRequest(method=method, url=cluster.endpoint + path,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(s3._request_signer._credentials, "s3", "us-east-1").add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}


def test_a_body_that_stops_coming_is_refused_and_the_connection_closed(cluster: MiniCluster,
                                                                          bucket: str) -> None:
    body = os.urandom(1000)
    cases = {
        "gateway": ("PUT", f"/{bucket}/stalled", _signed_s3(cluster, "PUT", f"/{bucket}/stalled"),
                    b"400 ", b"<Code>RequestTimeout</Code>"),
        "node": ("PUT", "/shards/stalled.0", _signed_node("PUT", "/shards/stalled.0", body, cluster),
                 b"408 ", b'"RequestTimeout"'),
        "coordinator": ("POST", "/internal/v1/list_nodes",
                        _signed_coordinator("/internal/v1/list_nodes", body, cluster),
                        b"408 ", b'"RequestTimeout"'),
    }
    for name, (method, path, headers, status, code) in cases.items():
        port = _ports(cluster)[name]
        with _connect(port) as sock:
            sock.sendall(_head(method, path, port, headers, len(body)) + body[:100])
            data = _closed_in_time(sock, TIMEOUTS["body_idle_s"])
            assert data.startswith(b"HTTP/1.1 " + status) and code in data, (name, data[:400])
    # nothing of the stalled uploads is visible
    assert "Contents" not in cluster.boto3_client().list_objects_v2(Bucket=bucket)


def test_a_slow_body_that_keeps_coming_is_accepted(cluster: MiniCluster, bucket: str) -> None:
    """Pauses shorter than body_idle_s, for longer than it in all: not a timeout."""
    shard = os.urandom(3000)
    document = b"<Delete><Object><Key>nothing</Key></Object>" + b" " * 3000 + b"</Delete>"
    for name, method, path, body, headers, expect in (
            ("node", "PUT", "/shards/slow.0", shard, _signed_node("PUT", "/shards/slow.0", shard, cluster),
             b"201 "),
            ("gateway", "POST", f"/{bucket}?delete", document,
             _signed_s3(cluster, "POST", f"/{bucket}?delete"), b"200 ")):
        port = _ports(cluster)[name]
        with _connect(port) as sock:
            sock.sendall(_head(method, path, port, {**headers, "Connection": "close"}, len(body)))
            started = time.monotonic()
            for i in range(0, len(body), 500):
                sock.sendall(body[i:i + 500])
                time.sleep(TIMEOUTS["body_idle_s"] * 0.4)
            assert time.monotonic() - started > TIMEOUTS["body_idle_s"] * 2
            _, data = _until_closed(sock, 30)
            assert data.startswith(b"HTTP/1.1 " + expect), (name, data[:300])


def test_an_idle_keepalive_connection_is_closed(cluster: MiniCluster) -> None:
    requests = {
        "gateway": _head("GET", "/", cluster.gateway_port, _signed_s3(cluster, "GET", "/")),
        "node": _head("GET", "/health", cluster.node_ports[0], _signed_node("GET", "/health", b"", cluster)),
        "coordinator": _head("POST", "/internal/v1/list_nodes", cluster.coordinator_port,
                             _signed_coordinator("/internal/v1/list_nodes", b"{}", cluster), 2) + b"{}",
    }
    for name, request in requests.items():
        with _connect(_ports(cluster)[name]) as sock:
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 200 "), (name, head[:300])
            # the answer announces the keep-alive time (our internal clients reuse for half of it)
            assert b"\r\nKeep-Alive: timeout=2\r\n" in head, (name, head[:600])
            _closed_in_time(sock, TIMEOUTS["keepalive_s"])


def test_an_answer_the_client_does_not_read_is_dropped(cluster: MiniCluster) -> None:
    """A client that stops reading a large shard holds the node's buffers only send_idle_s."""
    shard = os.urandom(24 << 20)
    port = cluster.node_ports[0]
    with _connect(port) as sock:
        headers = {**_signed_node("PUT", "/shards/unread.0", shard, cluster), "Connection": "close"}
        sock.sendall(_head("PUT", "/shards/unread.0", port, headers, len(shard)) + shard)
        assert _until_closed(sock, 60)[1].startswith(b"HTTP/1.1 201 ")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    with sock:
        headers = _signed_node("GET", "/shards/unread.0", b"", cluster)
        sock.sendall(_head("GET", "/shards/unread.0", port, headers))
        time.sleep(TIMEOUTS["send_idle_s"] + SLACK_S)      # the client reads nothing meanwhile
        _, data = _until_closed(sock, 30)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert len(data) < len(shard), "the whole shard went out to a client that did not read"
