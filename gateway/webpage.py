"""The web page: static files from gateway/web/, served by the gateway itself (no build step).

`/` answers the app to a browser (a GET that accepts HTML and carries no S3 credential;
an S3 client asking for `/` still gets ListBuckets), `/_app/...` serves the page's files
(an underscore is never part of a bucket name, so this cannot shadow a bucket), and the
product API's `/share/{token}` handler answers browsers with `SHARE_PAGE`. The page only
talks to /api/v1 and /share like any other client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from gateway.s3.router import resolve_address

WEB_DIR = Path(__file__).with_name("web")
APP_PREFIX = "/_app"
APP_PAGE = WEB_DIR / "index.html"
SHARE_PAGE = WEB_DIR / "share.html"

# Everything the page loads comes from this origin; inline scripts and plugins are refused.
# media/img/frame from 'self' and blob: cover previews served by the gateway's signed URLs.
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
       "img-src 'self' blob: data:; media-src 'self' blob:; frame-src 'self'; object-src 'self'; "
       "connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def page_response(path: Path = APP_PAGE, status: int = 200) -> web.FileResponse:
    """An HTML page of ours with the headers every page gets (CSP, no referrer: share tokens
    are in the address bar and must not leak to other sites)."""
    return web.FileResponse(path, status=status, headers=PAGE_HEADERS)


def share_page(status: int) -> web.FileResponse:
    """The recipient's landing page, with the link's status code (its script asks for the
    JSON document and says what happened: expired, revoked, scanning, password needed)."""
    return page_response(SHARE_PAGE, status)


def is_browser_page_request(request: web.Request) -> bool:
    """A person opening the gateway's address, not an S3 client listing its buckets."""
    if request.method not in ("GET", "HEAD"):
        return False
    if "Authorization" in request.headers or any(h.lower().startswith("x-amz-") for h in request.headers):
        return False
    if any(k.lower().startswith("x-amz-") or k in ("AWSAccessKeyId", "Signature") for k in request.query):
        return False
    return "text/html" in request.headers.get("Accept", "")


def add_routes(app: web.Application, s3_handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
               domain: str | None) -> None:
    """Register the page's routes; call before the S3 catch-all route. `domain` is the S3
    virtual-host domain: `/` of a bucket's own host name stays that bucket's listing."""

    async def root(request: web.Request) -> web.StreamResponse:
        if (is_browser_page_request(request)
                and resolve_address(request.headers.get("Host"), "/", domain).bucket is None):
            return page_response()
        return await s3_handler(request)

    app.router.add_route("GET", "/", root)
    app.router.add_static(APP_PREFIX, WEB_DIR, append_version=False, follow_symlinks=False)

    async def static_headers(request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(APP_PREFIX + "/"):
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Cache-Control", "no-cache")

    app.on_response_prepare.append(static_headers)
