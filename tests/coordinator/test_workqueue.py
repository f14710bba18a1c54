"""The work queue: outbox events claimed with leases, retried, parked and replayed; named
leases for periodic jobs. Against the real database (SQLite or PostgreSQL), the clock moved
by the test instead of waited for."""

from __future__ import annotations

import asyncio

import pytest

from coordinator.events import emit
from coordinator.records import CoordinatorError
from coordinator.schema import outbox
from tests.coordinator.helpers import open_meta
from tests.util import ControlledClock


@pytest.fixture
def clock(tmp_path, monkeypatch) -> ControlledClock:
    return ControlledClock(tmp_path / "clock").install(monkeypatch)


async def _emit(meta, n: int, event_type: str = "test.event") -> None:
    async def tx(conn):
        for i in range(n):
            await emit(conn, event_type, {"n": i})

    await meta.db.write(tx)


async def _pending(meta) -> int:
    async def q(conn):
        return len((await conn.execute(outbox.select())).all())

    return await meta.db.read(q)


async def test_a_claimed_event_is_not_handed_out_again_until_its_lease_runs_out(database_url, clock):
    async with open_meta(database_url) as meta:
        await _emit(meta, 3)
        await _emit(meta, 1, "other.event")
        a = await meta.claim_events("worker-a", ["test.event"], limit=2, lease_s=30)
        assert [e.payload["n"] for e in a] == [0, 1] and all(e.attempts == 1 for e in a)
        b = await meta.claim_events("worker-b", ["test.event"], limit=10, lease_s=300)
        assert [e.payload["n"] for e in b] == [2]
        assert await meta.claim_events("worker-b", ["test.event"], limit=10, lease_s=30) == []
        clock.advance(31)  # worker-a died: its claims lapse and go to whoever asks
        again = await meta.claim_events("worker-b", ["test.event"], limit=10, lease_s=30)
        assert [(e.payload["n"], e.attempts) for e in again] == [(0, 2), (1, 2)]
        # worker-a comes back too late: the events are no longer its own
        assert await meta.finish_event(a[0].id, "worker-a") is False
        assert await meta.finish_event(again[0].id, "worker-b") is True
        assert await meta.finish_event(again[0].id, "worker-b") is False
        assert await _pending(meta) == 3


async def test_extend_keeps_a_long_event_and_reports_lost_ones(database_url, clock):
    async with open_meta(database_url) as meta:
        await _emit(meta, 2)
        (first, second) = await meta.claim_events("w1", ["test.event"], limit=2, lease_s=10)
        clock.advance(8)
        assert await meta.extend_event_leases("w1", [first.id], 10) == [first.id]
        clock.advance(8)  # second's lease has run out, first's has not
        taken = await meta.claim_events("w2", ["test.event"], limit=5, lease_s=10)
        assert [e.id for e in taken] == [second.id]
        assert await meta.extend_event_leases("w1", [first.id, second.id], 10) == [first.id]


async def test_retry_waits_out_the_backoff_then_parking_and_replay(database_url, clock):
    async with open_meta(database_url) as meta:
        await _emit(meta, 1)
        (e,) = await meta.claim_events("w", ["test.event"], lease_s=30)
        assert await meta.retry_event(e.id, "w", "boom", retry_in_s=60) is True
        assert await meta.claim_events("w", ["test.event"]) == []
        clock.advance(61)
        (e,) = await meta.claim_events("w", ["test.event"])
        assert (e.attempts, e.last_error) == (2, "boom")
        assert await meta.retry_event(e.id, "w", "still broken", retry_in_s=0, park=True) is True
        assert await meta.claim_events("w", ["test.event"]) == []
        (parked,) = await meta.list_parked_events()
        assert (parked.id, parked.last_error, parked.attempts) == (e.id, "still broken", 2)
        assert parked.parked_at is not None
        assert await meta.replay_events([e.id + 1000]) == 0
        assert await meta.replay_events() == 1
        assert await meta.list_parked_events() == []
        (e,) = await meta.claim_events("w", ["test.event"])
        assert e.attempts == 1 and e.parked_at is None
        await expect_invalid(meta.retry_event(e.id, "w", "x", retry_in_s=-1))
        await expect_invalid(meta.claim_events("", ["test.event"]))
        await expect_invalid(meta.claim_events("w", ["test.event"], limit=0))


async def expect_invalid(coro) -> None:
    with pytest.raises(CoordinatorError) as info:
        await coro
    assert info.value.code == "InvalidArgument"


async def test_concurrent_claims_never_share_an_event(database_url, clock):
    async with open_meta(database_url) as meta:
        await _emit(meta, 200)
        seen: list[int] = []

        async def worker(name: str) -> None:
            while True:
                got = await meta.claim_events(name, ["test.event"], limit=7, lease_s=60)
                if not got:
                    return
                seen.extend(e.id for e in got)
                for e in got:
                    assert await meta.finish_event(e.id, name)

        await asyncio.gather(*(worker(f"w{i}") for i in range(6)))
        assert len(seen) == 200 == len(set(seen))
        assert await _pending(meta) == 0


async def test_named_lease_runs_one_holder_at_a_time_and_spaces_the_runs(database_url, clock):
    async with open_meta(database_url) as meta:
        a = await meta.acquire_lease("gc.chunks", "w1", 30)
        assert a is not None and (a.holder, a.state) == ("w1", {})
        assert await meta.acquire_lease("gc.chunks", "w2", 30) is None
        kept = await meta.renew_lease("gc.chunks", "w1", 30, {"cursor": "abc"})
        assert kept is not None and kept.state == {"cursor": "abc"}
        assert await meta.release_lease("gc.chunks", "w1", {"cursor": "def"}, run_again_in_s=60) is True
        assert await meta.acquire_lease("gc.chunks", "w2", 30) is None  # not due yet
        clock.advance(61)
        b = await meta.acquire_lease("gc.chunks", "w2", 30)
        assert b is not None and (b.holder, b.state) == ("w2", {"cursor": "def"})
        clock.advance(31)  # w2 died holding it
        assert await meta.renew_lease("gc.chunks", "w2", 30) is None
        c = await meta.acquire_lease("gc.chunks", "w3", 30)
        assert c is not None and c.holder == "w3"
        assert await meta.release_lease("gc.chunks", "w2") is False
        names = [(lease.name, lease.holder) for lease in await meta.list_leases()]
        assert names == [("gc.chunks", "w3")]
