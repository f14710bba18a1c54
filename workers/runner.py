"""The claiming loop every worker runs: event handlers and periodic jobs, with leases.

Event handlers subscribe to outbox event types. The runner claims due events of the types
whose handlers are ready (coordinator `claim_events`, a lease per event), runs at most
`concurrency` at once, renews the leases of those still running, and then:

- the handler returned: `finish_event` (the event leaves the outbox);
- it raised: `retry_event` with exponential backoff (base * 2^(attempts-1), capped, with
  jitter), or parked once `max_attempts` claims have been made: an operator sees it with
  `shardbox admin events parked` and replays it;
- it raised `Park`: parked at once (the handler knows retrying cannot help);
- an event claimed more than `max_attempts` times is parked without running it again: its
  worker died every time (it may be what kills them).

A worker killed mid-event loses nothing: its leases run out and another worker claims the
events again. So handlers must be idempotent: the same event handled twice has the effect
of handling it once (e.g. a status change conditional on the status it leaves).

Periodic jobs run under a named cluster-wide lease (`acquire_lease`), so one worker at a time
runs each, at most every `interval_s` cluster-wide; the lease is renewed while the job
runs and the job's state (a cursor) is saved with it, so the next holder continues. A job
whose lease is lost is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from coordinator.api import CoordinatorAPI
from coordinator.records import OutboxEvent

log = logging.getLogger("workers")


class Park(Exception):
    """Raised by a handler when retrying cannot help: the event is parked at once."""


class EventHandler(Protocol):
    """Reacts to outbox events of `event_types`; must be idempotent (see module doc)."""

    event_types: tuple[str, ...]

    async def ready(self) -> bool:
        """Whether events may be claimed now (e.g. the scanner answers); unclaimed events wait."""
        ...

    async def handle(self, event: OutboxEvent) -> None:
        """Do the work; raise to retry later, `Park` to park."""
        ...


class PeriodicJob(Protocol):
    """Work that runs every `interval_s` on one worker of the cluster at a time."""

    name: str  # the lease name, unique per kind of job (e.g. "gc.chunks")
    interval_s: float  # from the end of one run to the start of the next, cluster-wide

    async def run(self, lease: JobLease) -> None:
        """One run. `lease.state` is what the previous run saved; `await lease.save(...)`
        checkpoints it (also renews the lease)."""
        ...


@dataclass
class RunnerSettings:
    worker_id: str
    lease_s: float = 60.0
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_max_s: float = 600.0
    poll_s: float = 1.0
    concurrency: int = 4
    stop_grace_s: float = 10.0


def backoff(attempts: int, base_s: float, max_s: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones, with jitter (0.5-1x)."""
    delay = min(max_s, base_s * (2 ** max(0, min(attempts - 1, 30))))
    return delay * random.uniform(0.5, 1.0)


class JobLease:
    """A held job lease: the job's saved state, and a way to checkpoint it."""

    def __init__(
        self, coordinator: CoordinatorAPI, name: str, worker_id: str, lease_s: float, state: dict[str, Any]
    ) -> None:
        self._coordinator = coordinator
        self.name = name
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.state: dict[str, Any] = state
        self.lost = asyncio.Event()

    async def save(self, state: dict[str, Any] | None = None) -> None:
        """Checkpoint the state (this also renews the lease); raises LeaseLost if it was lost."""
        if state is not None:
            self.state = state
        held = await self._coordinator.renew_lease(self.name, self.worker_id, self.lease_s, self.state)
        if held is None:
            self.lost.set()
            raise LeaseLost(self.name)


class LeaseLost(Exception):
    """Another worker holds the job's lease now (this one was too slow to renew it)."""


@dataclass
class Runner:
    coordinator: CoordinatorAPI
    settings: RunnerSettings
    handlers: list[EventHandler] = field(default_factory=list)
    jobs: list[PeriodicJob] = field(default_factory=list)
    # Workers with a claim loop of their own (e.g. repair, which claims its own queue): each
    # runs as `loop(stopping)` and should return soon after `stopping` is set.
    loops: list[Callable[[asyncio.Event], Awaitable[None]]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _inflight: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def handler_for(self, event_type: str) -> EventHandler | None:
        for h in self.handlers:
            if event_type in h.event_types:
                return h
        return None

    async def run(self) -> None:
        """Run until `stopping` is set; then let running events finish (stop_grace_s) and
        give back the claims of the others, so another worker takes them at once."""
        tasks = [asyncio.create_task(self._events_loop(), name="events")]
        tasks += [asyncio.create_task(self._job_loop(j), name=f"job:{j.name}") for j in self.jobs]
        tasks.append(asyncio.create_task(self._renew_loop(), name="renew"))
        own = [
            asyncio.create_task(loop(self.stopping), name=f"loop:{i}") for i, loop in enumerate(self.loops)
        ]
        try:
            await self.stopping.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._drain()
            if own:
                _done, late = await asyncio.wait(own, timeout=self.settings.stop_grace_s)
                for t in late:
                    t.cancel()
                await asyncio.gather(*own, return_exceptions=True)

    # ---- events --------------------------------------------------------------------------

    async def _events_loop(self) -> None:
        s = self.settings
        while not self.stopping.is_set():
            free = s.concurrency - len(self._inflight)
            claimed: list[OutboxEvent] = []
            if free > 0 and self.handlers:
                types = await self._ready_types()
                if types:
                    try:
                        claimed = await self.coordinator.claim_events(s.worker_id, types, free, s.lease_s)
                    except Exception as exc:
                        log.warning("events.claim_failed", extra={"fields": {"error": repr(exc)}})
            for event in claimed:
                self._start(event)
            if claimed and len(claimed) == free:
                await self._wait_slot()
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), s.poll_s)

    async def _ready_types(self) -> list[str]:
        types: list[str] = []
        for h in self.handlers:
            try:
                ok = await h.ready()
            except Exception as exc:
                log.warning(
                    "handler.not_ready", extra={"fields": {"types": h.event_types, "error": repr(exc)}}
                )
                ok = False
            if ok:
                types += h.event_types
        return types

    async def _wait_slot(self) -> None:
        if self._inflight and len(self._inflight) >= self.settings.concurrency:
            await asyncio.wait(list(self._inflight.values()), return_when=asyncio.FIRST_COMPLETED)

    def _start(self, event: OutboxEvent) -> None:
        task = asyncio.create_task(self._handle(event), name=f"event:{event.id}")
        self._inflight[event.id] = task

        def done(_t: asyncio.Task[None]) -> None:
            self._inflight.pop(event.id, None)
            self._wake.set()

        task.add_done_callback(done)

    async def _handle(self, event: OutboxEvent) -> None:
        s = self.settings
        fields: dict[str, Any] = {"event_id": event.id, "type": event.event_type, "attempt": event.attempts}
        handler = self.handler_for(event.event_type)
        if handler is None:  # claimed a type nobody here handles: give it back untouched
            await self._retry(event, "no handler on this worker", 0.0, park=False)
            return
        if event.attempts > s.max_attempts:
            await self._retry(
                event,
                f"claimed {event.attempts} times without finishing (its worker died each time?)",
                0.0,
                park=True,
            )
            log.error("event.parked", extra={"fields": {**fields, "reason": "worker died each time"}})
            return
        started = time.monotonic()
        try:
            await handler.handle(event)
        except asyncio.CancelledError:
            raise
        except Park as exc:
            await self._retry(event, f"parked: {exc}", 0.0, park=True)
            log.error("event.parked", extra={"fields": {**fields, "error": str(exc)}})
            return
        except Exception as exc:
            park = event.attempts >= s.max_attempts
            delay = 0.0 if park else backoff(event.attempts, s.retry_base_s, s.retry_max_s)
            await self._retry(event, f"{type(exc).__name__}: {exc}", delay, park=park)
            level = logging.ERROR if park else logging.WARNING
            log.log(
                level,
                "event.parked" if park else "event.retry",
                exc_info=park,
                extra={
                    "fields": {
                        **fields,
                        "error": f"{type(exc).__name__}: {exc}",
                        "retry_in_s": round(delay, 2),
                    }
                },
            )
            return
        fields["ms"] = round((time.monotonic() - started) * 1000, 1)
        try:
            held = await self.coordinator.finish_event(event.id, s.worker_id)
        except Exception as exc:  # the lease runs out and the event is handled again: idempotent
            log.warning("event.finish_failed", extra={"fields": {**fields, "error": repr(exc)}})
            return
        fields["held"] = held
        log.info("event.done", extra={"fields": fields})

    async def _retry(self, event: OutboxEvent, message: str, delay: float, *, park: bool) -> None:
        try:
            await self.coordinator.retry_event(event.id, self.settings.worker_id, message, delay, park)
        except Exception as exc:  # the lease runs out instead: the event comes back anyway
            log.warning("event.retry_failed", extra={"fields": {"event_id": event.id, "error": repr(exc)}})

    async def _renew_loop(self) -> None:
        """Keep the leases of running events: renewed every third of a lease."""
        s = self.settings
        while True:
            await asyncio.sleep(s.lease_s / 3)
            ids = list(self._inflight)
            if not ids:
                continue
            try:
                held = set(await self.coordinator.extend_event_leases(s.worker_id, ids, s.lease_s))
            except Exception as exc:
                log.warning("events.renew_failed", extra={"fields": {"error": repr(exc)}})
                continue
            lost = [i for i in ids if i not in held and i in self._inflight]
            if lost:  # another worker has them now: stop duplicating its work
                log.warning("events.lease_lost", extra={"fields": {"ids": lost}})
                for i in lost:
                    self._inflight[i].cancel()

    async def _drain(self) -> None:
        if not self._inflight:
            return
        _done, pending = await asyncio.wait(list(self._inflight.values()), timeout=self.settings.stop_grace_s)
        ids = [i for i, t in list(self._inflight.items()) if t in pending]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for i in ids:  # claims given back: due again at once, on whichever worker asks first
            with contextlib.suppress(Exception):
                await self.coordinator.retry_event(i, self.settings.worker_id, "worker stopped", 0.0)

    # ---- periodic jobs ---------------------------------------------------------------------

    async def _job_loop(self, job: PeriodicJob) -> None:
        s = self.settings
        while not self.stopping.is_set():
            try:
                held = await self.coordinator.acquire_lease(job.name, s.worker_id, s.lease_s)
            except Exception as exc:
                log.warning("job.lease_failed", extra={"fields": {"job": job.name, "error": repr(exc)}})
                held = None
            if held is not None:
                await self._run_job(
                    job, JobLease(self.coordinator, job.name, s.worker_id, s.lease_s, dict(held.state))
                )
            await asyncio.sleep(min(s.poll_s * 5, job.interval_s))

    async def _run_job(self, job: PeriodicJob, lease: JobLease) -> None:
        s = self.settings
        started = time.monotonic()
        run = asyncio.create_task(job.run(lease), name=f"run:{job.name}")
        keeper = asyncio.create_task(self._keep(lease, run))
        ok = False
        try:
            await run
            ok = True
        except asyncio.CancelledError:
            if not lease.lost.is_set():  # the worker is stopping: the next holder goes on at once
                keeper.cancel()
                run.cancel()
                await asyncio.gather(keeper, run, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await self.coordinator.release_lease(job.name, s.worker_id, lease.state, 0.0)
                raise
        except LeaseLost:
            pass
        except Exception as exc:
            log.error("job.failed", exc_info=True, extra={"fields": {"job": job.name, "error": repr(exc)}})
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            if not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
        if lease.lost.is_set():
            log.warning("job.lease_lost", extra={"fields": {"job": job.name}})
            return
        # A failed run is tried again sooner than the next regular one.
        again = job.interval_s if ok else min(job.interval_s, s.retry_base_s * 5)
        with contextlib.suppress(Exception):
            await self.coordinator.release_lease(job.name, s.worker_id, lease.state, again)
        log.info(
            "job.done" if ok else "job.retry",
            extra={
                "fields": {
                    "job": job.name,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                    "ok": ok,
                    **{k: v for k, v in lease.state.items() if isinstance(v, int | float | str)},
                }
            },
        )

    async def _keep(self, lease: JobLease, run: asyncio.Task[None]) -> None:
        while not run.done():
            await asyncio.sleep(lease.lease_s / 3)
            try:
                await lease.save()
            except LeaseLost:
                run.cancel()
                return
            except Exception as exc:
                log.warning("job.renew_failed", extra={"fields": {"job": lease.name, "error": repr(exc)}})
