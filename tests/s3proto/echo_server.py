"""A tiny S3-protocol echo server for the tests: authenticates, decodes the body, reports.

It runs the real `authenticate` / `PayloadStream` / checksum code inside an aiohttp server
on 127.0.0.1 (in a background thread with its own event loop), so tests can talk to it with
real clients (botocore-signed requests over http.client, boto3 itself, raw sockets) and
see exactly what a handler would see. Every request's outcome is also recorded in
`outcomes`, for cases where the client cannot read a response (a dropped connection).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from awscrt import checksums as crt

from coordinator.records import CoordinatorError, KeyInfo
from gateway.s3 import checksum_headers
from gateway.s3.errors import S3Error, error_response
from gateway.s3.payload import PayloadStream
from gateway.s3.sigv4 import authenticate

ACCESS_KEY = "AKIDSHARDBOXTEST0001"
SECRET_KEY = "sEcReT/with+symbols=and-more-0123456789"
AWS_EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
VHOST_DOMAIN = "s3.test"      # Host: <bucket>.s3.test is a virtual-hosted request


def _actual_checksums(data_hashers: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, h in data_hashers.items():
        if name in ("crc32", "crc32c"):
            out[name] = base64.b64encode(h.to_bytes(4, "big")).decode()
        elif name == "crc64nvme":
            out[name] = base64.b64encode(h.to_bytes(8, "big")).decode()
        else:
            out[name] = base64.b64encode(h.digest()).decode()
    return out


@dataclass
class Outcome:
    method: str
    path: str
    status: int
    code: str | None = None
    message: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


class EchoServer:
    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.now_offset = 0.0          # seconds added to the server clock
        self.fixed_now: float | None = None
        self.outcomes: list[Outcome] = []
        self.keys = {
            ACCESS_KEY: KeyInfo(ACCESS_KEY, SECRET_KEY, "u1", "alice", "t1"),
            AWS_EXAMPLE_KEY: KeyInfo(AWS_EXAMPLE_KEY, AWS_EXAMPLE_SECRET, "u2", "example", "t2"),
        }
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="echo-s3", daemon=True)
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reset(self) -> None:
        self.now_offset = 0.0
        self.fixed_now = None
        self.outcomes.clear()

    def wait_outcomes(self, n: int, timeout: float = 10.0) -> list[Outcome]:
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.outcomes)

    # ------------------------------------------------------------ request handling
    async def _lookup(self, access_key: str) -> KeyInfo:
        await asyncio.sleep(0)
        key = self.keys.get(access_key)
        if key is None:
            raise CoordinatorError("InvalidAccessKeyId", "no such key", 403)
        return key

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = self.fixed_now if self.fixed_now is not None else time.time() + self.now_offset
        try:
            host = request.headers.get("Host", "").rsplit(":", 1)[0]
            vhost = host[: -len(VHOST_DOMAIN) - 1] if host.endswith("." + VHOST_DOMAIN) else None
            auth = await authenticate(request, self._lookup, self.region, now=now, vhost_bucket=vhost)
            body = {"version": auth.version, "access_key": auth.access_key, "user": auth.key.user_name,
                    "payload_mode": auth.payload_mode, "payload_sha256": auth.payload_sha256,
                    "presigned": auth.presigned, "region": auth.region, "scope": auth.scope,
                    "amz_date": auth.amz_date, "seed_signature": auth.seed_signature}
            if request.method in ("PUT", "POST"):
                body.update(await self._read_body(request, auth))
        except S3Error as err:
            self.outcomes.append(Outcome(request.method, request.raw_path, err.status, err.code,
                                         err.message))
            return error_response(err, "test-request-id", request.method)
        self.outcomes.append(Outcome(request.method, request.raw_path, 200, body=body))
        if request.method in ("PUT", "POST"):
            # S3 clients treat a body on a 200 PUT as an error document; the report goes in a header.
            report = base64.b64encode(json.dumps(body).encode()).decode()
            return web.Response(status=200, headers={"x-echo": report, "ETag": '"0"'})
        return web.json_response(body)

    async def _read_body(self, request: web.Request, auth: Any) -> dict[str, Any]:
        trailers = checksum_headers.trailer_names(request)
        expected = checksum_headers.requested_checksums(request, trailers)
        md5_expected = checksum_headers.content_md5(request)
        stream = PayloadStream(request, auth)
        decoded_length = stream.decoded_length
        md5 = hashlib.md5()
        sha = hashlib.sha256()
        hashers: dict[str, Any] = {}
        for name in expected:
            hashers[name] = 0 if name in ("crc32", "crc32c", "crc64nvme") else hashlib.new(name)
        pieces = 0
        async for piece in stream:
            pieces += 1
            md5.update(piece)
            sha.update(piece)
            for name, h in hashers.items():
                if name == "crc32":
                    hashers[name] = zlib.crc32(piece, h)
                elif name == "crc32c":
                    hashers[name] = crt.crc32c(piece, h)
                elif name == "crc64nvme":
                    hashers[name] = crt.crc64nvme(piece, h)
                else:
                    h.update(piece)
        actual = _actual_checksums(hashers)
        checksum_headers.verify(expected, stream.trailers, actual, md5.hexdigest(), md5_expected)
        return {"body_sha256": sha.hexdigest(), "body_len": stream.bytes_read, "pieces": pieces,
                "decoded_length": decoded_length, "trailers": stream.trailers, "checksums": actual,
                "chunked": stream.chunked}
