"""Run a gateway: S3 on `[gateway] listen` until SIGTERM/SIGINT, then stop cleanly."""

from __future__ import annotations

import asyncio
import logging

import uvloop
from aiohttp import web

from config.logs import setup_logging
from config.serving import app_runner, split_listen, stop_event
from config.settings import Config, ConfigError
from gateway.app import build_app

log = logging.getLogger("gateway")
SHUTDOWN_GRACE_S = 10.0


def run(cfg: Config) -> None:
    """Blocking entry point used by `shardbox gateway`."""
    if cfg.gateway is None:
        raise ConfigError("the [gateway] section is required to run a gateway")
    setup_logging("gateway", cfg.log_level)
    uvloop.run(serve(cfg))


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or a termination signal arrives; in-flight requests get a grace period."""
    from blob import ChunkStore
    from coordinator.client import CoordinatorClient

    settings = cfg.gateway
    assert settings is not None
    stop = stop_event(stop)
    coordinator = CoordinatorClient(settings.coordinator, cfg.cluster.secret)
    store = ChunkStore(coordinator, cfg.cluster.master_key_bytes(), cfg.cluster.secret,
                       chunk_size=settings.chunk_size, min_acks=settings.min_acks,
                       shard_timeout_s=settings.shard_timeout_s, inline_max=settings.inline_max_bytes,
                       write_format=settings.storage_format,
                       max_chunks_in_flight=settings.max_chunks_in_flight)
    try:
        runner = app_runner(build_app(cfg, coordinator, store), settings.timeouts, access_log=None,
                            shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        host, port = split_listen(settings.listen)
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        try:
            await site.start()
            log.info("gateway.started", extra={"fields": {
                "listen": settings.listen, "coordinator": settings.coordinator, "region": settings.region,
                "domain": settings.domain}})
            await stop.wait()
            log.info("gateway.stopping")
        finally:
            await runner.cleanup()
    finally:
        await store.close()
        close = getattr(coordinator, "close", None)
        if close is not None:
            await close()
