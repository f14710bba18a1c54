"""The gateway's aiohttp application: one catch-all S3 route over shared per-process state."""

from __future__ import annotations

from aiohttp import web

from blob import ChunkStore
from config.settings import Config
from coordinator.api import CoordinatorAPI
from gateway import webpage
from gateway.api.routes import add_routes as add_product_routes
from gateway.downloads import DownloadLog
from gateway.s3.context import MAX_XML_BODY, STATE_KEY, GatewayState
from gateway.s3.router import add_id_headers, expect_handler, handle
from gateway.ttlcache import TtlCache, bucket_cache, key_cache
from gateway.usage import UsageMeter

# Only gates `100 Continue` (every commit checks the bucket itself), and how long another
# gateway may still apply a bucket's old ACL or CORS rules after they change.
BUCKET_CACHE_S = 5.0


def build_app(cfg: Config, coordinator: CoordinatorAPI, store: ChunkStore) -> web.Application:
    """An application serving S3 for `cfg.gateway` with the given coordinator client and ChunkStore.

    Bodies are never read by aiohttp itself (handlers stream them), so `client_max_size`
    only bounds the small XML documents read whole.
    """
    if cfg.gateway is None:
        raise ValueError("the [gateway] section is required")
    app = web.Application(client_max_size=MAX_XML_BODY)
    state = GatewayState(cfg=cfg.gateway, coordinator=coordinator, store=store,
                         keys=key_cache(coordinator, cfg.gateway.key_cache_s),
                         buckets=bucket_cache(coordinator, BUCKET_CACHE_S),
                         public_buckets=TtlCache(coordinator.find_bucket, BUCKET_CACHE_S),
                         downloads=DownloadLog(coordinator),
                         usage=UsageMeter(coordinator))
    app[STATE_KEY] = state
    add_product_routes(app, cfg, coordinator, store)  # /api/v1/..., /share/...: before the S3 catch-all
    webpage.add_routes(app, handle, cfg.gateway.domain)
    app.router.add_route("*", "/{tail:.*}", handle, expect_handler=expect_handler)
    app.on_response_prepare.append(add_id_headers)

    async def drain(app: web.Application) -> None:
        await state.drain()

    app.on_cleanup.append(drain)
    return app
