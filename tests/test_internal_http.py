"""config.internal_http against a scripted raw HTTP server on 127.0.0.1: framing, reuse, bad answers."""

from __future__ import annotations

import asyncio
import itertools
import os

import pytest

from config.internal_http import HEAD_MAX, InternalHttp, ProtocolError


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


class RawServer:
    """Answers each request with whatever the test's handler writes; counts connections."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def __aenter__(self) -> RawServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            served = 0
            try:
                while True:
                    try:
                        request = await read_request(reader)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        return
                    self.requests.append(request)
                    served += 1
                    if await self.handler(request, writer, served) is False:
                        return
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.address = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


def ok(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def run(coro):
    return asyncio.run(coro)


def test_body_lands_whole_however_it_is_split():
    body = os.urandom(900_000)

    async def handler(request, writer, served):
        data = ok(body, "X-Shardbox-Checksum: abc\r\n")
        # Dribble: the head split inside its terminator, the body in odd pieces.
        cut = data.index(b"\r\n\r\n") + 2
        marks = [0, 5, cut, cut + 3, cut + 70_000, len(data)]
        for piece in (data[a:b] for a, b in itertools.pairwise(marks)):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)

    async def main():
        http = InternalHttp()
        async with RawServer(handler) as srv:
            for _ in range(3):
                resp = await http.request(srv.address, "GET", "/shards/x", {"A": "b"}, max_body=1 << 20)
                assert resp.status == 200 and resp.body == body
                assert resp.headers["x-shardbox-checksum"] == "abc"
            assert srv.connections == 1  # kept alive and reused
            assert srv.requests[0][0].startswith(b"GET /shards/x HTTP/1.1\r\nHost: 127.0.0.1:")
            assert b"\r\nA: b\r\n" in srv.requests[0][0]
        http.close()

    run(main())


def test_put_body_is_sent_and_empty_answers_work():
    payload = os.urandom(300_000)

    async def handler(request, writer, served):
        assert request[1] == payload
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async def main():
        http = InternalHttp()
        async with RawServer(handler) as srv:
            for _ in range(2):
                resp = await http.request(srv.address, "PUT", "/shards/y", {}, payload, max_body=100)
                assert resp.status == 204 and resp.body == b""
            assert srv.connections == 1
        http.close()

    run(main())


def test_a_closed_idle_connection_is_replaced_transparently():
    async def handler(request, writer, served):
        if served > 1:
            return False  # the keep-alive connection dies just as it is reused: no answer
        writer.write(ok(b"hello"))
        await writer.drain()

    async def main():
        http = InternalHttp()
        async with RawServer(handler) as srv:
            for _ in range(3):
                resp = await http.request(srv.address, "GET", "/shards/z", {}, max_body=100)
                assert resp.body == b"hello"
            assert srv.connections == 3
            assert len(srv.requests) == 5  # two requests were sent on a dying connection, then again
        http.close()

    run(main())


def test_a_post_is_never_sent_twice():
    """A POST may have been carried out by a server that died before answering: no retry."""

    async def handler(request, writer, served):
        if served > 1:
            return False
        writer.write(ok(b"done"))
        await writer.drain()

    async def main():
        http = InternalHttp()
        async with RawServer(handler) as srv:
            assert (await http.request(srv.address, "POST", "/call", {}, b"{}", max_body=100)).body == b"done"
            with pytest.raises(ConnectionError):
                await http.request(srv.address, "POST", "/call", {}, b"{}", max_body=100)
            assert len(srv.requests) == 2
        http.close()

    run(main())


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "chunked"),
        (ok(b"x" * 101), "at most 100"),
        (b"SMTP ready\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno-colon-here\r\n\r\n", "bad header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * HEAD_MAX + b"\r\n\r\n", "head over"),
        (ok(b"hi") + b"surplus", "more than the response body"),
    ],
)
def test_answers_we_do_not_speak_are_refused_and_not_reused(answer: bytes, match: str):
    async def handler(request, writer, served):
        if request[0].startswith(b"GET /good"):
            writer.write(ok(b"fine"))
        else:
            writer.write(answer)

    async def main():
        http = InternalHttp()
        async with RawServer(handler) as srv:
            with pytest.raises(ProtocolError, match=match):
                await http.request(srv.address, "GET", "/bad", {}, max_body=100)
            resp = await http.request(srv.address, "GET", "/good", {}, max_body=100)
            assert resp.body == b"fine"
            assert srv.connections == 2  # the broken connection was dropped
        http.close()

    run(main())


def test_truncated_body_and_timeout():
    async def handler(request, writer, served):
        if request[0].startswith(b"GET /cut"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            await writer.drain()
            return False
        if request[0].startswith(b"GET /slow"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
            await asyncio.sleep(5)
            return False
        writer.write(ok(b"fine"))

    async def main():
        http = InternalHttp()
        async with RawServer(handler) as srv:
            with pytest.raises(ConnectionError):
                await http.request(srv.address, "GET", "/cut", {}, max_body=2000)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await http.request(srv.address, "GET", "/slow", {}, max_body=2000)
            assert (await http.request(srv.address, "GET", "/ok", {}, max_body=100)).body == b"fine"
        http.close()

    run(main())


def test_nobody_listening_is_a_connection_error():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionError):
            await InternalHttp().request(f"http://127.0.0.1:{port}", "GET", "/", {}, max_body=1)
        with pytest.raises(ValueError, match="http://host:port"):
            await InternalHttp().request("https://127.0.0.1:1", "GET", "/", {}, max_body=1)

    run(main())


def test_a_body_of_the_expected_length_lands_in_the_callers_buffer():
    """`into`: a 2xx body of exactly len(into) bytes is received there (a stripe buffer at a
    shard's offset); an error answer or another length goes elsewhere and leaves it alone."""
    good = os.urandom(300_000)
    answers = [ok(good), b"HTTP/1.1 500 Oops\r\nContent-Length: 7\r\n\r\n{\"e\":1}", ok(good[:1000])]

    async def handler(request, writer, served):
        writer.write(answers[served - 1])
        await writer.drain()

    async def main():
        http = InternalHttp()
        stripe = bytearray(b"\xee" * (len(good) + 20))
        into = memoryview(stripe)[10 : 10 + len(good)]
        async with RawServer(handler) as srv:
            first = await http.request(srv.address, "GET", "/a", {}, max_body=1 << 20, into=into)
            assert first.body is into
            before = bytes(stripe)
            stripe[10:-10] = b"\xee" * len(good)
            error = await http.request(srv.address, "GET", "/b", {}, max_body=1 << 20, into=into)
            short = await http.request(srv.address, "GET", "/c", {}, max_body=1 << 20, into=into)
        http.close()
        return first, before, error, short, bytes(stripe)

    first, before, error, short, after = run(main())
    assert first.status == 200
    assert before == b"\xee" * 10 + good + b"\xee" * 10
    assert error.status == 500 and bytes(error.body) == b'{"e":1}'
    assert bytes(short.body) == good[:1000]
    assert after == b"\xee" * (len(good) + 20)     # neither touched the caller's buffer


def test_an_abandoned_exchange_writes_nothing_more_into_the_buffer():
    body = os.urandom(200_000)
    release = asyncio.Event()

    async def handler(request, writer, served):
        data = ok(body)
        writer.write(data[:100_000])
        await writer.drain()
        await release.wait()
        writer.write(data[100_000:])
        await writer.drain()

    async def main():
        http = InternalHttp()
        buf = bytearray(len(body))
        async with RawServer(handler) as srv:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await http.request(srv.address, "GET", "/slow", {}, max_body=1 << 20,
                                       into=memoryview(buf))
            seen = bytes(buf)
            release.set()
            await asyncio.sleep(0.3)
        http.close()
        return seen, bytes(buf)

    seen, later = run(main())
    assert later == seen                        # not a byte after the call gave up
    assert later[100_000:] == bytes(100_000)
