"""A small async client for the product API (/api/v1): one method per call the CLI makes.

Errors come back as `ApiError` carrying the server's `{"error": {"code", "message"}}`, so
the CLI can print the server's own words. Connections are kept alive and shared by the
parallel chunk streams.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

API = "/api/v1"
USER_AGENT = "shardbox-cli/0.1"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message


class ProductClient:
    """Talks to one gateway with one bearer token (or none, for login)."""

    def __init__(self, server: str, token: str | None = None, *, connections: int = 16,
                 timeout_s: float = 300.0) -> None:
        self.server = normalise_server(server)
        self.token = token
        self._session: aiohttp.ClientSession | None = None
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout_s)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT}, timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ProductClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def auth(self, headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers with the bearer token (never sent to signed URLs: they carry their own)."""
        out = dict(headers or {})
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path or for a URL the server handed out (absolute or relative)."""
        return urllib.parse.urljoin(self.server + "/", path_or_url)

    async def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> Any:
        """One JSON request; the decoded answer (None for 204), or ApiError."""
        params = {k: str(v) for k, v in (params or {}).items() if v is not None}
        async with self.session.request(method, self.url(API + path), json=json, params=params or None,
                                        headers=self.auth(headers)) as resp:
            if resp.status >= 400:
                raise await error_from(resp)
            if resp.status == 204:
                return None
            return await resp.json(content_type=None)

    # accounts -------------------------------------------------------------------------------
    async def login(self, username: str, password: str) -> dict:
        return await self.call("POST", "/auth/login", json={"username": username, "password": password})

    async def logout(self) -> None:
        await self.call("POST", "/auth/logout")

    async def create_token(self, name: str) -> dict:
        return await self.call("POST", "/tokens", json={"name": name})

    async def revoke_token(self, token_id: str) -> None:
        await self.call("DELETE", f"/tokens/{quote(token_id)}")

    async def me(self) -> dict:
        """{"user": {"id","name","tenant","is_admin"}, "auth": "cookie"|"bearer"}."""
        return await self.call("GET", "/me")

    async def info(self) -> dict:
        """Server facts a client needs before init (no auth): {"chunk_size", ...}."""
        return await self.call("GET", "/info")

    # uploads --------------------------------------------------------------------------------
    async def init_upload(self, path: str, size: int, chunk_size: int, chunks: list[str],
                          content_hash: str, content_type: str | None = None) -> dict:
        body = {"path": path, "size": size, "chunk_size": chunk_size, "chunks": chunks,
                "content_hash": content_hash}
        if content_type:
            body["content_type"] = content_type
        return await self.call("POST", "/uploads/init", json=body)

    async def upload_status(self, upload_id: str) -> dict:
        return await self.call("GET", f"/uploads/{quote(upload_id)}")

    async def finalize(self, upload_id: str) -> dict:
        return await self.call("POST", "/uploads/finalize", json={"upload_id": upload_id})

    async def abort(self, upload_id: str) -> None:
        await self.call("DELETE", f"/uploads/{quote(upload_id)}")

    async def put_chunk(self, url: str, body: AsyncIterator[bytes] | bytes, length: int) -> None:
        """PUT one chunk to its signed URL; the URL is the credential, so no bearer header is sent."""
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        async with self.session.put(self.url(url), data=body, headers=headers) as resp:
            if resp.status >= 400:
                raise await error_from(resp)
            await resp.read()

    # files and folders ----------------------------------------------------------------------
    async def list_folder(self, path: str, cursor: str | None = None, limit: int | None = None) -> dict:
        return await self.call("GET", "/files", params={"path": path, "cursor": cursor, "limit": limit})

    # Calls about one entry answer {"entry": {"id","name","path","type","size","version","status",...}};
    # these return the entry itself.
    async def stat(self, path: str) -> dict:
        return (await self.call("GET", "/stat", params={"path": path}))["entry"]

    async def get_file(self, file_id: str) -> dict:
        return (await self.call("GET", f"/files/{quote(file_id)}"))["entry"]

    async def mkdir(self, path: str) -> dict:
        return (await self.call("POST", "/folders", json={"path": path}))["entry"]

    async def update(self, file_id: str, changes: dict) -> dict:
        return (await self.call("PATCH", f"/files/{quote(file_id)}", json=changes))["entry"]

    async def delete(self, file_id: str) -> Any:
        return await self.call("DELETE", f"/files/{quote(file_id)}")

    async def versions(self, file_id: str) -> dict:
        return await self.call("GET", f"/files/{quote(file_id)}/versions")

    async def open_content(self, file_id: str, start: int = 0,
                           if_range: str | None = None) -> aiohttp.ClientResponse:
        """The file's bytes from `start` (a ranged GET when resuming). Caller closes the response."""
        headers = {}
        if start:
            headers["Range"] = f"bytes={start}-"
            if if_range:
                headers["If-Range"] = if_range
        resp = await self.session.get(self.url(f"{API}/files/{quote(file_id)}/content"),
                                      headers=self.auth(headers))
        if resp.status >= 400:
            try:
                raise await error_from(resp)
            finally:
                resp.release()
        return resp

    # share links ----------------------------------------------------------------------------
    async def create_share(self, file_id: str, permission: str, expires_at: str | None = None,
                           password: str | None = None, max_downloads: int | None = None) -> dict:
        body: dict[str, Any] = {"permission": permission}
        if expires_at is not None:
            body["expires_at"] = expires_at
        if password is not None:
            body["password"] = password
        if max_downloads is not None:
            body["max_downloads"] = max_downloads
        return await self.call("POST", f"/files/{quote(file_id)}/share_links", json=body)

    async def list_shares(self) -> dict:
        return await self.call("GET", "/share_links")

    async def revoke_share(self, link_id: str) -> None:
        await self.call("DELETE", f"/share_links/{quote(link_id)}")


def quote(segment: str) -> str:
    return urllib.parse.quote(str(segment), safe="")


def normalise_server(server: str) -> str:
    """`127.0.0.1:9000` -> `http://127.0.0.1:9000`; no trailing slash."""
    server = server.strip()
    if "://" not in server:
        server = "http://" + server
    parts = urllib.parse.urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a server URL: {server!r} (expected http(s)://HOST[:PORT])")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


async def error_from(resp: aiohttp.ClientResponse) -> ApiError:
    code, message = f"HTTP{resp.status}", resp.reason or ""
    try:
        doc = await resp.json(content_type=None)
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or "")
    except (ValueError, aiohttp.ClientError, UnicodeDecodeError):
        pass
    return ApiError(resp.status, code, message)
