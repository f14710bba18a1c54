"""Share links, the public side: `/share/{token}` and the signed URLs that serve the bytes.

`GET /share/{token}`: unknown or revoked 404, expired or used up 410, password missing or
wrong 401, too many wrong passwords 429, a file still being scanned 425, quarantined 404;
otherwise the landing page (browsers: `Accept: text/html`, with every status above too) or
JSON for scripts. The password comes as `X-Share-Password` on any /share/ request, or from
the page's form (`POST /share/{token}`), which leaves a cookie proving it for that link only.
Public answers name no owner, no creation time and no internal id.

`GET /share/{token}/download` answers 302 to a signed URL, `/api/v1/blob/{ref}`, whose `ref`
is sealed (opaque) and whose signature covers its expiry (`[gateway] url_ttl_s`). What that
URL serves comes from the link, checked again on every request: `view` links inline only,
`download` links as attachments; a revoked, expired, used-up or quarantined link's URLs stop
at once. A transfer that sends the file's last byte reserves one of the link's
max_downloads first and counts (and audits) it when complete. Bytes go through the
gateway's chunk cache, which also collapses concurrent reads of a chunk (blob/chunk_cache.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

from aiohttp import web

from blob import ReadStats
from coordinator.product_records import LINK_GONE, FileContent, LinkItem, LinkView
from coordinator.records import CoordinatorError
from coordinator.scan_gate import Reader, refusal
from gateway import webpage
from gateway.api import content, shapes
from gateway.api.context import ApiContext, answer, iso, token_hash
from gateway.api.errors import ApiError, from_coordinator
from gateway.api.signing import SignatureError, b64url

PASSWORD_HEADER = "X-Share-Password"
PROOF_COOKIE = "sbx_link"
BLOB_PATH = "/api/v1/blob/"
# Answers that hand out signed URLs: never cached, and the page's address (the token) never
# sent on as a referrer.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _wants_html(ctx: ApiContext) -> bool:
    return "text/html" in ctx.request.headers.get("Accept", "")


def _proof(ctx: ApiContext, view: LinkView) -> str:
    message = f"link:{view.link_id}:{view.password_hash}".encode()
    return b64url(hmac.new(ctx.state.csrf_key, message, hashlib.sha256).digest())


async def _open(ctx: ApiContext, password: str | None = None) -> LinkView:
    """The link's view once every check passed (ApiError otherwise)."""
    token = ctx.param("token")
    password = password if password is not None else ctx.request.headers.get(PASSWORD_HEADER)
    coordinator = ctx.state.coordinator
    try:
        view = await coordinator.link_resolve(token_hash(token), ctx.request.query.get("path"),
                                              password is not None, ctx.client_addr)
    except CoordinatorError as exc:
        raise from_coordinator(exc) from None
    if view.password_hash is not None:
        proof = ctx.request.cookies.get(PROOF_COOKIE)
        proven = proof is not None and hmac.compare_digest(proof, _proof(ctx, view))
        if not proven:
            if password is None:
                raise ApiError("PasswordRequired", f"this link needs its password (form, or the "
                               f"{PASSWORD_HEADER} header)", 401, extra={"password_required": True})
            if not await ctx.state.passwords.verify(view.password_hash, password):
                raise ApiError("WrongPassword", "wrong password for this link", 401,
                               extra={"password_required": True})
    return view


def _check_ready(item: LinkItem) -> None:
    """A link's recipient is a public reader (coordinator/scan_gate.py); the lookup already
    answered NotFound for quarantined files."""
    refused = refusal(item.status, Reader.PUBLIC) if item.type == "file" else None
    if refused is not None and refused.reason == "scanning":
        raise ApiError("TooEarly", refused.message, 425)
    if refused is not None:  # as an unknown link: the public learns nothing more
        raise from_coordinator(CoordinatorError("NotFound", LINK_GONE))


def signed_url(ctx: ApiContext, view: LinkView, item: LinkItem) -> str:
    state = ctx.state
    ref = state.signer.seal({"l": view.link_id, "f": item.file_id, "v": item.version_id or ""})
    path = BLOB_PATH + ref
    return f"{state.base_url(ctx.request)}{path}?{state.signer.sign('GET', path, state.cfg.url_ttl_s)}"


def _public_doc(ctx: ApiContext, view: LinkView) -> dict:
    url_key = "preview_url" if view.permission == "view" else "download_url"

    def with_url(item: LinkItem) -> dict:
        doc = shapes.public_item(item)
        if item.type == "file" and item.status == "ready":
            doc[url_key] = signed_url(ctx, view, item)
        return doc

    doc = {**with_url(view.item), "permission": view.permission}
    if view.expires_at is not None:
        doc["expires_at"] = iso(view.expires_at)
    if view.items is not None:
        doc["items"] = [with_url(i) for i in view.items]
    return doc


async def landing(ctx: ApiContext) -> web.StreamResponse:
    html = _wants_html(ctx)
    try:
        view = await _open(ctx)
        _check_ready(view.item)
    except ApiError as err:
        if html:
            return webpage.share_page(err.status)
        raise
    if html:
        return webpage.share_page(200)
    return answer(_public_doc(ctx, view), headers=NO_STORE)


async def password_form(ctx: ApiContext) -> web.StreamResponse:
    """The landing page's password form: right, and a cookie for this link's path proves it."""
    form = await ctx.request.post()
    password = form.get("password")
    if not isinstance(password, str) or not password:
        raise ApiError("InvalidArgument", "the form needs a password field")
    try:
        view = await _open(ctx, password)
    except ApiError as err:
        if _wants_html(ctx):
            return webpage.share_page(err.status)
        raise
    resp = web.HTTPSeeOther(location=ctx.request.path)
    resp.set_cookie(PROOF_COOKIE, _proof(ctx, view), path=ctx.request.path, httponly=True, samesite="Strict",
                    secure=ctx.state.cfg.cookie_secure or ctx.request.secure, max_age=86400)
    return resp


async def download(ctx: ApiContext) -> web.StreamResponse:
    view = await _open(ctx)
    item = view.item
    if item.type != "file":
        raise ApiError("InvalidArgument", "this is a folder: download its files with ?path=", 400)
    _check_ready(item)
    return web.Response(status=302, headers={"Location": signed_url(ctx, view, item), **NO_STORE})


async def blob(ctx: ApiContext) -> web.StreamResponse:
    """A signed URL: the bytes of one version of a shared file, under the link's rules."""
    state, request = ctx.state, ctx.request
    try:
        state.signer.verify("GET", request.path, request.query)
        ref = state.signer.unseal(ctx.param("ref"))
    except SignatureError as exc:
        raise ApiError("ExpiredUrl" if exc.expired else "SignatureDoesNotMatch",
                       f"{exc}; open the share link again", 403) from None
    link_id, file_id, version_id = ref.get("l", ""), ref.get("f", ""), ref.get("v", "")
    coordinator = state.coordinator
    permission: list[str] = []

    async def load(start: int | None, end: int | None) -> FileContent:
        got = await coordinator.link_content(link_id, file_id, version_id, start, end)
        permission.append(got.permission)
        return got.content

    stats = ReadStats()  # node traffic this request caused (a cache hit or a shared fetch: none)

    def read(c: FileContent, start: int, end: int) -> AsyncIterator[bytes | memoryview]:
        return state.chunk_cache.read(c.object, start, end, request_id=ctx.request_id, stats=stats)

    async def begin(c: FileContent, takes_last: bool) -> str | None:
        if not takes_last:
            return None
        return await coordinator.link_download_begin(link_id, file_id, version_id, ctx.client_addr)

    async def end(download_id: object, completed: bool) -> None:
        if isinstance(download_id, str):
            await coordinator.link_download_end(download_id, completed)

    max_age = state.cfg.link_cache_max_age_s
    cache_control = "public, no-cache" if max_age == 0 else f"public, max-age={max_age}"

    try:
        return await content.serve(ctx, load, read, inline=lambda: permission[-1] == "view",
                                   cache_control=cache_control, public=True, on_start=begin, on_end=end)
    finally:
        ctx.log_fields.update(stats.log_fields())
