from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3proto.echo_server import EchoServer


@pytest.fixture(scope="module")
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(echo_server: EchoServer) -> Iterator[EchoServer]:
    echo_server.reset()
    yield echo_server
    echo_server.reset()
