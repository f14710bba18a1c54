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

from blob.node_maintenance import NodeMaintenance
from config.logs import setup_logging
from config.serving import stop_event
from config.settings import Config, ConfigError, ScanSection
from workers.builtin_scan import BuiltinScanner
from workers.clamd import Clamd
from workers.gc import ChunkGc, Reconcile, UploadExpiry
from workers.lifecycle import LifecycleWorker
from workers.notices import Notices
from workers.repair import RepairWorker
from workers.runner import EventHandler, PeriodicJob, Runner, RunnerSettings
from workers.scan import RescanJob, ScanHandler
from workers.verdict import Scanner

log = logging.getLogger("workers")
# Every kind of event handler a worker runs: together they handle every event type the
# coordinator writes to the outbox (tests/workers/test_event_types.py checks it).
HANDLERS: tuple[type, ...] = (Notices, ScanHandler)


def run(cfg: Config) -> None:
    """Blocking entry point used by `shardbox worker`."""
    if cfg.worker is None:
        raise ConfigError("the [worker] section is required to run a worker")
    setup_logging("worker", cfg.log_level)
    uvloop.run(serve(cfg))


def default_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


def build_scanner(scan: ScanSection) -> Scanner | None:
    """The scanner the config asks for (None: this worker scans nothing)."""
    if scan.backend == "clamd":
        return Clamd(scan.clamd_socket, scan.clamd_address, timeout_s=scan.clamd_timeout_s)
    if scan.backend == "builtin":
        return BuiltinScanner(scan.blocklist)
    return None


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
    # Unique per process, also when a restarted worker keeps its configured name: claims of the
    # dead one must not look like this one's.
    worker_id = f"{settings.id}:{os.getpid()}" if settings.id else default_worker_id()
    scanner = build_scanner(settings.scan)
    scan = ScanHandler(
        coordinator,
        store,
        scanner,
        too_large=settings.scan.too_large,
        max_scan_bytes=settings.scan.max_scan_bytes,
        concurrency=settings.scan.concurrency,
    )
    handlers: list[EventHandler] = [Notices(), scan]
    jobs: list[PeriodicJob] = []
    loops: list[Callable[[asyncio.Event], Awaitable[None]]] = []  # workers with their own claim loop
    maint = NodeMaintenance(cfg.cluster.secret)
    jobs += [
        ChunkGc(coordinator, maint, worker_id, settings.gc, settings.lease_s),
        UploadExpiry(coordinator, settings.gc),
        Reconcile(coordinator, maint, worker_id, settings.gc, settings.lease_s),
    ]
    if scanner is not None:
        jobs.append(
            RescanJob(
                coordinator,
                scan,
                objects_per_s=settings.scan.rescan_objects_per_s,
                mb_per_s=settings.scan.rescan_mb_per_s,
            )
        )
    if settings.repair.enabled:
        repair = settings.repair
        loops.append(
            RepairWorker(
                coordinator,
                store.nodes,
                worker_id=f"{worker_id}:repair",
                batch=repair.batch,
                concurrency=repair.concurrency,
                rate_mb_s=repair.rate_mb_s,
                lease_s=repair.lease_s,
                shard_timeout_s=settings.shard_timeout_s,
            ).run
        )
    if settings.lifecycle.enabled:
        loops.append(
            LifecycleWorker(
                coordinator, interval_s=settings.lifecycle.interval_s, batch=settings.lifecycle.batch
            ).run
        )
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
                "scanner": settings.scan.backend if scanner is None else scanner.name,
            }
        },
    )
    try:
        await runner.run()
    finally:
        log.info("worker.stopping", extra={"fields": {"worker_id": worker_id}})
        await store.close()
        await maint.close()
        await coordinator.close()
