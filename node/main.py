"""Entry points of the node role: `run` (serve) and `rebuild_index`.

`run` opens the store (crash recovery happens here, before the port opens), serves
the HTTP API on uvloop, runs the background work (group commit, periodic compaction
and scrub, heartbeats) and on SIGTERM/SIGINT stops accepting, lets in-flight requests
finish (their writes commit), then closes LMDB and releases the store lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import uvloop
from aiohttp import web

from config.logs import setup_logging
from config.malloc import tune_malloc
from config.serving import app_runner, split_listen, stop_event
from config.settings import Config, ConfigError, NodeSection
from node import rebuild
from node.api import COMPACTOR, SCRUBBER, build_app
from node.heartbeat import heartbeat_loop
from node.store import ShardStore

log = logging.getLogger("node.main")

COMPACT_EVERY_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0
# Per-connection body buffer before aiohttp pauses reading: a whole ~840 KB shard fits, so a
# PUT body streams in without pause/resume round trips (aiohttp's default is 64 KiB).
READ_BUFSIZE = 1 << 20


def _section(cfg: Config) -> NodeSection:
    if cfg.node is None:
        raise ConfigError("the [node] section is required to run a node")
    return cfg.node


async def _every(interval_s: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(f"{name}.failed")


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT when no event is given)."""
    section = _section(cfg)
    loop = asyncio.get_running_loop()
    store = ShardStore(section)
    try:
        await loop.run_in_executor(None, store.open)
    except BaseException:
        await store.close()
        raise
    store.start()
    app = build_app(store, cfg.cluster.secret)
    runner = app_runner(app, section.timeouts, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                        read_bufsize=READ_BUFSIZE)
    await runner.setup()
    host, port = split_listen(section.listen)
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    stop = stop_event(stop)
    tasks = [loop.create_task(_every(COMPACT_EVERY_S, app[COMPACTOR].run, "compaction"))]
    if section.scrub_interval_s > 0:
        tasks.append(loop.create_task(_every(section.scrub_interval_s, app[SCRUBBER].run, "scrub")))
    if section.coordinator:
        tasks.append(loop.create_task(heartbeat_loop(
            section.coordinator, cfg.cluster.secret, section.base_url(), section.heartbeat_s,
            lambda: store.health(app[SCRUBBER].last))))
    log.info("node.started", extra={"fields": {"node_id": section.id, "listen": section.listen,
                                               "data_dir": str(section.data_dir), **store.recovery}})
    try:
        await stop.wait()
    finally:
        log.info("node.stopping", extra={"fields": {"node_id": section.id}})
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await runner.cleanup()
        await store.close()
        log.info("node.stopped", extra={"fields": {"node_id": section.id}})


def run(cfg: Config) -> None:
    """Blocking: serve `cfg.node` until SIGTERM/SIGINT."""
    _section(cfg)
    setup_logging("node", cfg.log_level)
    tune_malloc()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(cfg))


def rebuild_index(cfg: Config) -> dict:
    """Rebuild the LMDB index from the volume files alone (node must be stopped); returns stats."""
    section = _section(cfg)
    setup_logging("node", cfg.log_level)
    return rebuild.rebuild_index(section)
