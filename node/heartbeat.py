"""Heartbeats to the coordinator: the node's /health document plus its address.

The first one goes out at start, then one every `heartbeat_s`. Failures are logged
(once per failure streak at warning level) and retried on the next tick; a heartbeat
problem never stops the node from serving shards.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from config.cluster_auth import COORDINATOR, body_hash, sign_headers

log = logging.getLogger("node.heartbeat")

PATH = "/internal/v1/nodes/heartbeat"


async def heartbeat_loop(coordinator: str, secret: str, address: str, interval_s: float,
                         document: Callable[[], dict]) -> None:
    url = coordinator.rstrip("/") + PATH
    path = urlsplit(url).path
    failing = False
    timeout = aiohttp.ClientTimeout(total=max(2.0, min(10.0, interval_s * 2)))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            body = json.dumps({**document(), "address": address}).encode()
            headers = sign_headers(secret, "POST", path, body_hash(body), target=COORDINATOR)
            headers["Content-Type"] = "application/json"
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    if resp.status >= 300:
                        text = (await resp.text())[:300]
                        raise RuntimeError(f"coordinator answered {resp.status}: {text}")
                if failing:
                    log.info("heartbeat.recovered", extra={"fields": {"coordinator": coordinator}})
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.DEBUG if failing else logging.WARNING
                reason = str(exc) or type(exc).__name__
                log.log(level, "heartbeat.failed",
                        extra={"fields": {"coordinator": coordinator, "error": reason}})
                failing = True
            await asyncio.sleep(interval_s)
