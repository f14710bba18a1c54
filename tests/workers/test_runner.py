"""The claiming loop against a real coordinator: retries with backoff, parking after too many
attempts, the operator's `shardbox admin events parked|replay`, and several runners sharing
one queue with each event handled once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter

from coordinator.client import CoordinatorClient
from coordinator.records import OutboxEvent
from tests.coordinator.conftest import SECRET
from tests.coordinator.helpers import health_doc, put_object, setup_tenant
from workers.runner import Runner, RunnerSettings


class Flaky:
    """Fails the objects whose key starts with "bad", handles the rest; counts what it saw."""

    event_types = ("object.finalized",)

    def __init__(self) -> None:
        self.handled: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.fail_bad = True

    async def ready(self) -> bool:
        return True

    async def handle(self, event: OutboxEvent) -> None:
        key = event.payload["key"]
        if key.startswith("bad") and self.fail_bad:
            self.failures[key] += 1
            raise RuntimeError(f"cannot handle {key}")
        await asyncio.sleep(0.01)
        self.handled[key] += 1


async def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _admin(coordinator, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardbox", "admin", "--config", str(coordinator.config),
                           *args], capture_output=True, text=True, timeout=60)


async def test_failures_back_off_then_park_and_an_operator_replays_them(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await asyncio.gather(*(api.heartbeat(health_doc(i)) for i in range(14)))
        key = await setup_tenant(api)
        for name in ("good-1", "bad-1", "good-2"):
            await put_object(api, key, "bkt", name, [name.encode() * 100])
        flaky = Flaky()
        runner = Runner(api, RunnerSettings(worker_id="w1", lease_s=30, max_attempts=3, retry_base_s=0.05,
                                            retry_max_s=0.2, poll_s=0.05), [flaky])
        task = asyncio.create_task(runner.run())
        try:
            await _wait(lambda: flaky.failures["bad-1"] == 3 and len(flaky.handled) == 2)
            parked = _admin(coordinator, "events", "parked", "--json")
            assert parked.returncode == 0, parked.stderr
            (doc,) = json.loads(parked.stdout)["parked"]
            assert (doc["type"], doc["payload"]["key"], doc["attempts"]) == ("object.finalized", "bad-1", 3)
            assert doc["last_error"] == "RuntimeError: cannot handle bad-1"
            table = _admin(coordinator, "events", "parked")
            assert "bad-1" in table.stdout and "cannot handle bad-1" in table.stdout
            await asyncio.sleep(0.3)  # parked: no more attempts, however long it waits
            assert flaky.failures["bad-1"] == 3
            flaky.fail_bad = False  # the operator fixed the cause
            replay = _admin(coordinator, "events", "replay", str(doc["id"]))
            assert replay.returncode == 0 and "1 event back in the queue" in replay.stdout
            await _wait(lambda: flaky.handled["bad-1"] == 1)
            assert flaky.handled == Counter({"good-1": 1, "good-2": 1, "bad-1": 1})
            assert json.loads(_admin(coordinator, "events", "parked", "--json").stdout) == {"parked": []}
            nothing = _admin(coordinator, "events", "replay", "--all")
            assert nothing.returncode == 0 and "0 events back in the queue" in nothing.stdout
        finally:
            runner.stopping.set()
            await task


async def test_three_runners_share_the_queue_and_handle_each_event_once(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await asyncio.gather(*(api.heartbeat(health_doc(i)) for i in range(14)))
        key = await setup_tenant(api)
        names = [f"obj-{i}" for i in range(60)]
        for name in names:
            await put_object(api, key, "bkt", name, [name.encode() * 10])
        handlers = [Flaky() for _ in range(3)]
        runners = [Runner(api, RunnerSettings(worker_id=f"w{i}", lease_s=30, poll_s=0.05, concurrency=3), [h])
                   for i, h in enumerate(handlers)]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        try:
            await _wait(lambda: sum(sum(h.handled.values()) for h in handlers) >= 60)
            await asyncio.sleep(0.2)
            total = sum((h.handled for h in handlers), Counter())
            assert total == Counter({n: 1 for n in names})
            assert sum(1 for h in handlers if h.handled) >= 2  # the work was shared
        finally:
            for r in runners:
                r.stopping.set()
            await asyncio.gather(*tasks)
