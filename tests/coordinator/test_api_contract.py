"""The client and the server agree on every call declared in coordinator/api.py.

Three checks: `Metadata` implements each call with exactly the declared signature; the client
offers each call with that signature; and every call, with arguments and answers drawn from its
declared types, makes the round trip through the real client and the real HTTP layer intact:
the service receives what the caller passed (defaults filled in) and the caller gets back what
the service returned. The service here records and answers instead of touching a database,
because what is under test is the transport the declarations derive, not the queries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordinator.api import calls
from coordinator.client import CoordinatorClient
from coordinator.http import build_app
from coordinator.service import Metadata
from tests.util import free_port

SECRET = "contract-test-secret-0123456789"
CALLS = sorted(calls())

# Values every backend can store (the server refuses NUL, lone surrogates, integers past 64 bits).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_INT = st.integers(-(1 << 63), (1 << 63) - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_JSON = st.recursive(
    st.none() | st.booleans() | _INT | _FLOAT | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def strategy(tp: Any) -> st.SearchStrategy[Any]:
    """Values of a declared type, as the JSON between client and server can carry them."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return _JSON
    if tp is type(None) or tp is None:
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _INT
    if tp is float:
        return _FLOAT
    if tp is str:
        return _TEXT
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy(a) for a in args))
    if origin is list:
        return st.lists(strategy(args[0]), max_size=3)
    if origin is tuple:
        return st.tuples(*(strategy(a) for a in args))
    if origin is dict:
        return st.dictionaries(strategy(args[0]), strategy(args[1]), max_size=3)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = {f.name: strategy(hints[f.name]) for f in dataclasses.fields(tp) if f.init}
        return st.builds(tp, **fields)
    raise TypeError(f"no strategy for {tp!r}: teach this test the new type")


class Recorder:
    """Stands in for Metadata behind the real HTTP layer: records arguments, answers as told."""

    def __init__(self) -> None:
        self.received: dict[str, Any] | None = None
        self.answer: Any = None

    def __getattr__(self, name: str) -> Any:
        if name not in calls():
            raise AttributeError(name)

        async def call(**kwargs: Any) -> Any:
            self.received = kwargs
            return self.answer

        return call


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(recorder, SECRET))  # type: ignore[arg-type]
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.mark.parametrize("name", CALLS)
def test_metadata_implements_the_declared_signature(name: str) -> None:
    call = calls()[name]
    impl = getattr(Metadata, name, None)
    assert impl is not None and inspect.iscoroutinefunction(impl), f"Metadata lacks call {name}"
    hints = typing.get_type_hints(impl)
    params = [p for p in inspect.signature(impl).parameters.values() if p.name != "self"]
    got = [(p.name, p.kind, p.default, hints[p.name]) for p in params]
    want = [(p.name, p.kind, p.default, call.types[p.name]) for p in call.signature.parameters.values()]
    assert got == want
    assert hints["return"] == call.types["return"]


@pytest.mark.parametrize("name", CALLS)
def test_client_offers_the_declared_signature(name: str) -> None:
    method = getattr(CoordinatorClient, name)
    assert inspect.signature(method) == calls()[name].signature
    assert method.__doc__ == calls()[name].doc and method.__doc__


@pytest.mark.parametrize("name", CALLS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_call_round_trips_through_client_and_server(server, name: str, data: st.DataObject) -> None:
    url, recorder = server
    call = calls()[name]
    kwargs = {n: data.draw(strategy(call.types[n]), label=n) for n in call.signature.parameters}
    # Optional parameters are sometimes left out, so defaults travel as the declaration says.
    for n, p in call.signature.parameters.items():
        if p.default is not inspect.Parameter.empty and data.draw(st.booleans(), label=f"omit {n}"):
            del kwargs[n]
    recorder.answer = data.draw(strategy(call.types["return"]), label="answer")

    async def go() -> Any:
        async with CoordinatorClient(url, SECRET) as client:
            return await getattr(client, name)(**kwargs)

    got = asyncio.run(go())
    bound = call.signature.bind(**kwargs)
    bound.apply_defaults()
    assert recorder.received == dict(bound.arguments)
    assert got == recorder.answer
