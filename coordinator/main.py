"""Run a coordinator: create the schema if missing, serve the internal API until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging

import uvloop
from aiohttp import web

from config.logs import setup_logging
from config.serving import app_runner, split_listen, stop_event
from config.settings import Config, ConfigError
from coordinator import clock
from coordinator.db import Database
from coordinator.http import build_app
from coordinator.service import Metadata

log = logging.getLogger("coordinator")


def run(cfg: Config) -> None:
    """Blocking entry point used by `shardbox coordinator`."""
    if cfg.coordinator is None:
        raise ConfigError("the [coordinator] section is required to run a coordinator")
    setup_logging("coordinator", cfg.log_level)
    uvloop.run(serve(cfg))


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or a termination signal arrives)."""
    settings = cfg.coordinator
    assert settings is not None
    stop = stop_event(stop)
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        meta = Metadata.from_settings(db, settings)
        runner = app_runner(build_app(meta, cfg.cluster.secret), settings.timeouts, access_log=None)
        await runner.setup()
        host, port = split_listen(settings.listen)
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
            fields = {"listen": settings.listen, "backend": db.dialect, "scan": settings.scan_new_objects}
            if clock.shifted():
                fields["test_clock_file"] = clock.shifted()
            log.info("coordinator.started", extra={"fields": fields})
            await stop.wait()
            log.info("coordinator.stopping")
        finally:
            await runner.cleanup()
    finally:
        await db.close()
