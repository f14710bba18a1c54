"""A small synchronous client of the product API for tests (urllib3, as any script would)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3

_POOL = urllib3.PoolManager(maxsize=64, retries=False, timeout=urllib3.Timeout(connect=10, read=120))


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            return self.json["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


def request(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            redirect: bool = False, preload: bool = True) -> Answer:
    resp = _POOL.request(method, url, body=body, headers=headers or {}, redirect=False,
                         preload_content=preload)
    if redirect and resp.status in (301, 302, 303, 307, 308):  # follow it, as a browser would
        resp.drain_conn()
        return request("GET", resp.headers["Location"], headers={k: v for k, v in (headers or {}).items()
                                                                 if k.lower() != "authorization"},
                       preload=preload)
    return Answer(resp.status, resp.headers, resp.data if preload else b"")


@dataclass
class Api:
    """One client: a base URL and, once logged in, a bearer token (or cookies)."""

    base: str
    token: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def call(self, method: str, path: str, doc: Any = None, headers: dict[str, str] | None = None,
             body: bytes | None = None, **kw: Any) -> Answer:
        h = dict(headers or {})
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if doc is not None:
            body = json.dumps(doc).encode()
            h["Content-Type"] = "application/json"
        return request(method, self.url(path), body, h, **kw)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def post(self, path: str, doc: Any = None, **kw: Any) -> Answer:
        return self.call("POST", path, doc, **kw)

    def login(self, user: str, password: str) -> Answer:
        a = request("POST", self.url("/api/v1/auth/login"),
                    json.dumps({"username": user, "password": password}).encode(),
                    {"Content-Type": "application/json"})
        if a.status == 200:
            self.token = a.json["token"]
        return a

    # ---- uploads -----------------------------------------------------------------------------

    def upload(self, path: str, data: bytes, chunk_size: int, *, stop_after: int | None = None,
               headers: dict[str, str] | None = None) -> tuple[Answer, int]:
        """The whole protocol: init, PUT the missing chunks, finalize. Returns the finalize answer
        (or the init answer if it failed) and the chunk bytes sent."""
        digests = chunk_digests(data, chunk_size)
        init = self.post("/api/v1/uploads/init", init_doc(path, data, chunk_size, digests))
        if init.status != 201:
            return init, 0
        sent = self.send_chunks(init.json, data, chunk_size, stop_after=stop_after)
        if stop_after is not None:
            return init, sent
        fin = self.post("/api/v1/uploads/finalize", {"upload_id": init.json["upload_id"]}, headers=headers)
        return fin, sent

    def send_chunks(self, session: dict, data: bytes, chunk_size: int, stop_after: int | None = None) -> int:
        sent = 0
        for n, index in enumerate(session["missing"]):
            if stop_after is not None and n >= stop_after:
                break
            piece = data[index * chunk_size:(index + 1) * chunk_size]
            a = request("PUT", session["urls"][str(index)], piece)
            assert a.status == 200, (a.status, a.body)
            sent += len(piece)
        return sent


def chunk_digests(data: bytes, chunk_size: int) -> list[str]:
    return [hashlib.sha256(data[i:i + chunk_size]).hexdigest() for i in range(0, len(data), chunk_size)]


def content_hash(digests: list[str]) -> str:
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()


def init_doc(path: str, data: bytes, chunk_size: int, digests: list[str] | None = None) -> dict:
    digests = digests if digests is not None else chunk_digests(data, chunk_size)
    return {"path": path, "size": len(data), "chunk_size": chunk_size, "chunks": digests,
            "content_hash": content_hash(digests)}


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")
