"""Signed URLs: HMAC-SHA256 over method, path, expiry and scope, with a key id.

Any gateway verifies a signed URL alone (no lookup), and keys rotate: `[gateway] url_keys`
holds every key that may still verify (by id) and `url_key_id` the one that signs; an old
key is dropped once the URLs it signed have expired. Without configured keys one key
(id "c0") is derived from the cluster secret. A URL carries

    ?e=<unix expiry>&k=<key id>[&<scope params>]&s=<signature>

where the signature covers `METHOD \\n PATH \\n` and every query parameter but `s`, sorted,
so neither the path nor the expiry nor the scope (e.g. inline vs attachment) can be changed.
A signature says only "this gateway cluster issued this URL until e": whatever state it
refers to (an upload session, a share link) is checked again by the request that uses it.

`seal` / `unseal` make opaque path segments (AES-256-GCM under a key derived from the
signing key): a download URL handed to the public names the share link and the version it
serves without showing their ids.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from urllib.parse import urlencode

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from config.settings import GatewaySection
from config.values import secrets_equal

DERIVED_KEY_ID = "c0"
_RESERVED = frozenset({"e", "k", "s"})


class SignatureError(Exception):
    """A URL whose signature is missing, malformed, unknown, wrong or expired."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UrlSigner:
    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError(f"no url key {current!r}")
        self._mac = {kid: _derive(k, b"shardbox-url-sign") for kid, k in keys.items()}
        self._seal = {kid: AESGCM(_derive(k, b"shardbox-url-seal")) for kid, k in keys.items()}
        self.current = current

    @classmethod
    def from_settings(cls, gateway: GatewaySection, cluster_secret: str) -> UrlSigner:
        if gateway.url_keys:
            keys = {kid: base64.b64decode(v) for kid, v in gateway.url_keys.items()}
            return cls(keys, gateway.url_key_id or next(iter(keys)))
        derived = _derive(cluster_secret.encode(), b"shardbox-url-key-" + DERIVED_KEY_ID.encode())
        return cls({DERIVED_KEY_ID: derived}, DERIVED_KEY_ID)

    def _signature(self, kid: str, method: str, path: str, params: Mapping[str, str]) -> str:
        canonical = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "s")
        message = f"{method.upper()}\n{path}\n{canonical}".encode()
        return b64url(hmac.new(self._mac[kid], message, hashlib.sha256).digest())

    def sign(self, method: str, path: str, ttl_s: float, scope: Mapping[str, str] | None = None,
             now: float | None = None) -> str:
        """The query string (without '?') that makes `METHOD path` valid for ttl_s seconds."""
        params = {k: str(v) for k, v in (scope or {}).items()}
        if _RESERVED & params.keys():
            raise ValueError("scope parameters must not be named e, k or s")
        params["e"] = str(int((time.time() if now is None else now) + ttl_s))
        params["k"] = self.current
        params["s"] = self._signature(self.current, method, path, params)
        return urlencode(params)

    def verify(self, method: str, path: str, query: Mapping[str, str],
               now: float | None = None) -> dict[str, str]:
        """The scope parameters of a validly signed, unexpired URL; SignatureError otherwise."""
        params = dict(query)
        kid, sig, exp = params.get("k"), params.get("s"), params.get("e")
        if not kid or not sig or not exp:
            raise SignatureError("the URL is not signed")
        if kid not in self._mac:
            raise SignatureError("the URL was signed with a key that is no longer valid")
        if not secrets_equal(self._signature(kid, method, path, params), sig):
            raise SignatureError("the URL's signature does not match")
        try:
            expires = int(exp)
        except ValueError:
            raise SignatureError("the URL's expiry is malformed") from None
        if expires < (time.time() if now is None else now):
            raise SignatureError("the URL has expired", expired=True)
        return {k: v for k, v in params.items() if k not in _RESERVED}

    def seal(self, payload: dict[str, str]) -> str:
        """An opaque, authenticated token of `payload` (under the current key)."""
        nonce = os.urandom(12)
        body = self._seal[self.current].encrypt(nonce, orjson.dumps(payload), self.current.encode())
        return f"{self.current}.{b64url(nonce + body)}"

    def unseal(self, token: str) -> dict[str, str]:
        kid, _, blob = token.partition(".")
        aead = self._seal.get(kid)
        if aead is None or not blob:
            raise SignatureError("unknown reference")
        try:
            raw = unb64url(blob)
            data = orjson.loads(aead.decrypt(raw[:12], raw[12:], kid.encode()))
        except Exception:
            raise SignatureError("unknown reference") from None
        if not isinstance(data, dict):
            raise SignatureError("unknown reference")
        return data
