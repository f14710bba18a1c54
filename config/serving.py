"""What every role's `serve()` needs the same way: its listen address and a stop signal."""

from __future__ import annotations

import asyncio
import signal


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (validated by config.settings) -> (host without IPv6 brackets, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def stop_event(stop: asyncio.Event | None = None) -> asyncio.Event:
    """`stop`, or a new event set by SIGTERM/SIGINT (where this thread may handle signals)."""
    if stop is not None:
        return stop
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    return stop
