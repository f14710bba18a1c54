"""Heartbeats reach the coordinator signed, at once and then periodically; an absent one is harmless."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from config.cluster_auth import COORDINATOR, body_hash, verify_headers
from tests.node.nodeproc import SECRET
from tests.util import free_port


class _Coordinator(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        claimed = verify_headers(SECRET, "POST", self.path, self.headers, target=COORDINATOR)
        assert claimed == body_hash(body)
        self.received.append({"path": self.path, "doc": json.loads(body), "at": time.monotonic()})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_heartbeats_are_signed_and_periodic(make_node):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Coordinator)
    _Coordinator.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        node = make_node(coordinator=f"http://127.0.0.1:{server.server_port}", heartbeat_s=0.2,
                         pool="warm", rack="r1")
        deadline = time.monotonic() + 10
        while len(_Coordinator.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_Coordinator.received) >= 3
        first = _Coordinator.received[0]
        assert first["path"] == "/internal/v1/nodes/heartbeat"
        doc = first["doc"]
        assert doc["address"] == f"http://127.0.0.1:{node.port}"
        assert doc["node_id"] == "n1" and doc["pool"] == "warm" and doc["rack"] == "r1"
        assert doc["capacity_bytes"] > 0 and "free_bytes" in doc and "shard_count" in doc
    finally:
        server.shutdown()


def test_unreachable_coordinator_does_not_stop_the_node(make_node):
    node = make_node(coordinator=f"http://127.0.0.1:{free_port()}", heartbeat_s=0.1)
    time.sleep(0.5)
    assert node.client.put("hb.0", b"data").status == 201
    assert node.client.get("hb.0").body == b"data"
    assert node.stop() == 0
    failures = [e for e in node.log_lines() if e.get("event") == "heartbeat.failed"]
    assert failures and failures[0]["level"] == "warning"
