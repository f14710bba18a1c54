"""Every product API route (the contract of docs/internals.md "Product API"), registered on
the gateway's application before the S3 catch-all.

The paths under /api/v1/ and /share/ never shadow a bucket: the coordinator refuses to
create buckets named "api" or "share" (coordinator.records.RESERVED_BUCKET_NAMES).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from blob import ChunkStore
from config.settings import Config
from coordinator.api import ProductAPI
from gateway.api import handlers_accounts as acc
from gateway.api import handlers_files as fs
from gateway.api import handlers_links as links
from gateway.api import handlers_share as share
from gateway.api import handlers_uploads as up
from gateway.api.context import ApiContext, endpoint
from gateway.api.errors import ApiError
from gateway.api.signing import UrlSigner, _derive
from gateway.api.state import API_STATE, ApiState
from gateway.s3.router import handle as s3_handle

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "/api/v1"


def _unless_vhost(handler: Handler, domain: str | None) -> Handler:
    """With virtual-host addressing, `bucket.DOMAIN/api/v1/...` is an object key: S3's."""
    if not domain:
        return handler
    suffix = "." + domain.lower()

    async def route(request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower().rstrip(".")
        if host.endswith(suffix) and len(host) > len(suffix):
            return await s3_handle(request)
        return await handler(request)

    return route


async def _unknown(ctx: ApiContext) -> web.StreamResponse:
    raise ApiError("NotFound", f"no API endpoint {ctx.request.method} {ctx.request.path}", 404)


def add_routes(app: web.Application, cfg: Config, coordinator: ProductAPI, store: ChunkStore) -> None:
    assert cfg.gateway is not None
    secret = cfg.cluster.secret
    app[API_STATE] = ApiState(
        cfg=cfg.gateway, coordinator=coordinator, store=store,
        signer=UrlSigner.from_settings(cfg.gateway, secret),
        csrf_key=_derive(secret.encode(), b"shardbox-csrf"),
    )
    r = app.router

    def add(method: str, path: str, handler, auth: str = "user") -> None:
        r.add_route(method, PREFIX + path, _unless_vhost(endpoint(handler, auth=auth), cfg.gateway.domain))

    add("GET", "/info", acc.info, auth="none")
    add("POST", "/auth/login", acc.login, auth="none")
    add("POST", "/auth/logout", acc.logout)
    add("GET", "/me", acc.me)
    add("POST", "/tokens", acc.create_token)
    add("GET", "/tokens", acc.list_tokens)
    add("DELETE", "/tokens/{token_id}", acc.revoke_token)
    add("GET", "/usage", acc.usage)

    add("POST", "/uploads/init", up.init)
    add("POST", "/uploads/finalize", up.finalize)
    add("GET", "/uploads/{upload_id}", up.status)
    add("DELETE", "/uploads/{upload_id}", up.abort)
    add("PUT", "/uploads/{upload_id}/chunks/{index}", up.put_chunk_body, auth="none")  # signed URL

    add("GET", "/files", fs.list_folder)
    add("GET", "/stat", fs.stat)
    add("POST", "/folders", fs.create_folder)
    add("GET", "/files/{file_id}", fs.get_file)
    add("PATCH", "/files/{file_id}", fs.update_file)
    add("DELETE", "/files/{file_id}", fs.trash_file)
    add("POST", "/files/{file_id}/restore", fs.restore_file)
    add("GET", "/trash", fs.list_trash)
    add("GET", "/files/{file_id}/versions", fs.list_versions)
    add("POST", "/files/{file_id}/versions/{version}/restore", fs.restore_version)
    add("GET", "/files/{file_id}/content", fs.file_content)
    add("HEAD", "/files/{file_id}/content", fs.file_content)
    add("POST", "/files/{file_id}/grants", fs.create_grant)
    add("GET", "/files/{file_id}/grants", fs.list_grants)
    add("DELETE", "/files/{file_id}/grants/{grant_id}", fs.revoke_grant)
    add("GET", "/shared", fs.shared_with_me)

    add("POST", "/files/{file_id}/share_links", links.create_link)
    add("GET", "/share_links", links.list_links)
    add("DELETE", "/share_links/{link_id}", links.revoke_link)
    add("GET", "/blob/{ref}", share.blob, auth="none")  # signed URL (a HEAD is signed as its GET)
    add("HEAD", "/blob/{ref}", share.blob, auth="none")

    # The public side of share links (gateway/api/handlers_share.py).
    for method, path, handler in (("GET", "/share/{token}", share.landing),
                                  ("POST", "/share/{token}", share.password_form),
                                  ("GET", "/share/{token}/download", share.download)):
        r.add_route(method, path, _unless_vhost(endpoint(handler, auth="none"), cfg.gateway.domain))
    r.add_route("*", "/share/{tail:.*}", _unless_vhost(endpoint(_unknown, auth="none"), cfg.gateway.domain))

    # Anything else under the prefix is the API's own 404 (JSON), never the S3 catch-all's.
    unknown = _unless_vhost(endpoint(_unknown, auth="none"), cfg.gateway.domain)
    r.add_route("*", PREFIX + "/{tail:.*}", unknown)
    r.add_route("*", PREFIX, unknown)
