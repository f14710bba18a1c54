"""Run a worker: `shardbox worker --config FILE`, until SIGTERM/SIGINT.

Builds the event handlers and periodic jobs this worker's config enables and hands them to
the runner (workers/runner.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

import uvloop

from config.logs import setup_logging
from config.serving import stop_event
from config.settings import Config, ConfigError
from workers.notices import Notices
from workers.runner import EventHandler, PeriodicJob, Runner, RunnerSettings

log = logging.getLogger("workers")


def run(cfg: Config) -> None:
    """Blocking entry point used by `shardbox worker`."""
    if cfg.worker is None:
        raise ConfigError("the [worker] section is required to run a worker")
    setup_logging("worker", cfg.log_level)
    uvloop.run(serve(cfg))


def default_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    from blob import ChunkStore
    from coordinator.client import CoordinatorClient

    settings = cfg.worker
    assert settings is not None
    stop = stop_event(stop)
    coordinator = CoordinatorClient(settings.coordinator, cfg.cluster.secret)
    store = ChunkStore(
        coordinator,
        cfg.cluster.master_key_bytes(),
        cfg.cluster.secret,
        shard_timeout_s=settings.shard_timeout_s,
        threads=2,
        max_chunks_in_flight=2,
        tune_malloc=False,
    )
    worker_id = settings.id or default_worker_id()
    handlers: list[EventHandler] = [Notices()]
    jobs: list[PeriodicJob] = []
    loops: list[Callable[[asyncio.Event], Awaitable[None]]] = []  # workers with their own claim loop
    runner = Runner(
        coordinator,
        RunnerSettings(
            worker_id=worker_id,
            lease_s=settings.lease_s,
            max_attempts=settings.max_attempts,
            retry_base_s=settings.retry_base_s,
            retry_max_s=settings.retry_max_s,
            poll_s=settings.poll_s,
            concurrency=max(4, settings.scan.concurrency),
        ),
        handlers,
        jobs,
        loops,
        stopping=stop,
    )
    log.info(
        "worker.started",
        extra={
            "fields": {
                "worker_id": worker_id,
                "coordinator": settings.coordinator,
                "events": sorted(t for h in handlers for t in h.event_types),
                "jobs": [j.name for j in jobs],
            }
        },
    )
    try:
        await runner.run()
    finally:
        log.info("worker.stopping", extra={"fields": {"worker_id": worker_id}})
        await store.close()
        await coordinator.close()
