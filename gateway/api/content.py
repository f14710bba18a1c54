"""Serving a file's bytes: Range, ETag and conditional GET, disposition, safe previews.

Shared by the owner's download (`GET /api/v1/files/{id}/content`) and signed share-link URLs.
Range handling follows HTTP (RFC 9110): `bytes=a-b`, `bytes=a-`, `bytes=-n`; a range past
the end is 416 with `Content-Range: bytes */size`; anything else (several ranges, bad
syntax) is ignored and the whole file sent. `If-None-Match` answers 304, `If-Match` 412,
`If-Range` with another ETag sends the whole file. The ETag is the version's (strong: the
content's hash), so a CDN or a browser can revalidate cheaply.

Bytes users uploaded are never run by a browser on this origin: every answer carries
`Content-Security-Policy: sandbox` (no script, an opaque origin) and `nosniff`, and types
that could hold script (HTML, SVG, XML, JavaScript) are shown inline as plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from coordinator.product_records import FileContent
from gateway.api.context import ApiContext
from gateway.api.errors import ApiError

log = logging.getLogger("gateway.api")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
SCRIPTABLE = ("text/html", "application/xhtml", "image/svg", "text/xml", "application/xml", "javascript",
              "text/javascript", "application/ecmascript", "text/ecmascript")
MAX_OFFSET = 1 << 53


@dataclass(frozen=True)
class Span:
    """What a request asks for before the size is known: explicit bounds, a suffix, or all."""

    start: int | None = None
    end: int | None = None
    suffix: int | None = None

    @property
    def whole(self) -> bool:
        return self.start is None and self.suffix is None


def requested_span(header: str | None) -> Span:
    if header is None:
        return Span()
    m = _RANGE.match(header)
    if m is None or (m.group(1) == "" and m.group(2) == ""):
        return Span()
    if m.group(1) == "":
        return Span(suffix=min(int(m.group(2)), MAX_OFFSET))
    start = min(int(m.group(1)), MAX_OFFSET)
    end = min(int(m.group(2)), MAX_OFFSET) if m.group(2) else None
    if end is not None and end < start:
        return Span()
    return Span(start=start, end=end)


def resolve_span(span: Span, size: int) -> tuple[int, int] | None:
    """The inclusive bytes a span takes of `size` bytes; None for the whole file; 416 if none."""
    if span.whole:
        return None
    if span.suffix is not None:
        if span.suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - span.suffix), size - 1
    assert span.start is not None
    if span.start >= size:
        raise _unsatisfiable(size)
    return span.start, size - 1 if span.end is None else min(span.end, size - 1)


def _unsatisfiable(size: int) -> ApiError:
    return ApiError("InvalidRange", f"the range asked lies outside the file's {size} bytes", 416,
                    headers={"Content-Range": f"bytes */{size}"})


def _tag_matches(header: str, etag: str) -> bool:
    bare = etag.strip('"')
    for item in header.split(","):
        tag = item.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == bare:
            return True
    return False


def disposition(kind: str, name: str) -> str:
    """Content-Disposition with the name both as ASCII fallback and as RFC 5987 UTF-8."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def shown_type(content_type: str | None, inline: bool) -> str:
    ctype = content_type or "application/octet-stream"
    if inline and any(ctype.lower().startswith(s) or s in ctype.lower() for s in SCRIPTABLE):
        return "text/plain; charset=utf-8"
    return ctype


Loader = Callable[[int | None, int | None], Awaitable[FileContent]]
Reader = Callable[[FileContent, int, int], AsyncIterator[bytes | memoryview]]


async def serve(ctx: ApiContext, load: Loader, read: Reader, *, inline: Callable[[], bool],
                cache_control: str, public: bool = False,
                on_start: Callable[[FileContent, bool], Awaitable[object]] | None = None,
                on_end: Callable[[object, bool], Awaitable[None]] | None = None) -> web.StreamResponse:
    """Answer a GET/HEAD for a file's bytes. `load(start, end)` returns the entry and the version
    with the chunks of those bytes; `read` streams them. `on_start(content, takes_last_byte)`
    runs before the first byte is sent (it may refuse, e.g. a used-up link) and what it returns
    goes to `on_end(token, completed)` once the body is sent or failed. `inline()` (asked after
    `load`, which may decide it) chooses an inline or an attachment disposition; `public`
    bytes (share links) may be embedded by other sites."""
    request = ctx.request
    head = request.method == "HEAD"
    span = requested_span(request.headers.get("Range"))
    content = await load(span.start, span.end)
    obj, entry = content.object, content.entry
    etag = obj.etag
    if_range = request.headers.get("If-Range")
    if if_range is not None and not span.whole and not _tag_matches(if_range, etag):
        span = Span()
        content = await load(None, None)
        obj = content.object
    shown_inline = inline()
    headers = {
        "ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": cache_control,
        "Content-Type": shown_type(entry.content_type, shown_inline),
        "Content-Disposition": disposition("inline" if shown_inline else "attachment", entry.name),
        "Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff",
        # Share-link bytes may be embedded anywhere (a forum showing a shared photo); a user's own
        # files only by this site.
        "Cross-Origin-Resource-Policy": "cross-origin" if public else "same-site",
    }
    if_match = request.headers.get("If-Match")
    if if_match is not None and not _tag_matches(if_match, etag):
        raise ApiError("PreconditionFailed", "the file's ETag is not the one given in If-Match", 412)
    if_none = request.headers.get("If-None-Match")
    if if_none is not None and _tag_matches(if_none, etag):
        return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
    bounds = resolve_span(span, obj.size)
    status = 200
    start, end = 0, obj.size - 1
    if bounds is not None:
        status = 206
        start, end = bounds
        headers["Content-Range"] = f"bytes {start}-{end}/{obj.size}"
    length = end - start + 1 if obj.size else 0
    headers["Content-Length"] = str(length)
    if head:
        return web.Response(status=status, headers=headers)
    takes_last = end == obj.size - 1 or obj.size == 0
    token = await on_start(content, takes_last) if on_start is not None else None
    completed = False
    resp = web.StreamResponse(status=status, headers=headers)
    sent = 0
    try:
        async with contextlib.aclosing(_pieces(read, content, start, end, length)) as pieces:
            first = await anext(pieces, None)  # DataUnavailable here is still a clean 503
            await resp.prepare(request)
            if first is not None:
                await resp.write(first)
                sent = len(first)
                del first
                async for piece in pieces:
                    await resp.write(piece)
                    sent += len(piece)
                    del piece
        await resp.write_eof()
        completed = sent == length
    except ConnectionError as exc:
        resp.force_close()
        ctx.log_fields.update(client_gone=True, detail=str(exc))
    except Exception as exc:
        if not resp.prepared:
            raise
        resp.force_close()
        ctx.log_fields.update(error=type(exc).__name__, detail=str(exc))
        log.error("content.stream_failed", extra={"fields": {"request_id": ctx.request_id, "sent": sent,
                                                             "error": repr(exc)}})
    finally:
        ctx.log_fields["bytes_out"] = sent
        if on_end is not None:
            await asyncio.shield(on_end(token, completed))
    return resp


async def _pieces(read: Reader, content: FileContent, start: int, end: int,
                  length: int) -> AsyncIterator[bytes | memoryview]:
    if length:
        async with contextlib.aclosing(read(content, start, end)) as stream:
            async for piece in stream:
                yield piece
