"""Signed URLs: what a signature covers, expiry, key rotation, sealed references."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import pytest

from config.settings import parse_config
from gateway.api.signing import DERIVED_KEY_ID, SignatureError, UrlSigner

K1, K2 = b"1" * 32, b"2" * 32


def _q(query: str) -> dict[str, str]:
    return dict(parse_qsl(query))


def test_a_signature_covers_method_path_expiry_and_scope() -> None:
    signer = UrlSigner({"k1": K1}, "k1")
    q = _q(signer.sign("GET", "/api/v1/blob/x", 60, {"d": "inline"}, now=1000))
    assert signer.verify("GET", "/api/v1/blob/x", q, now=1059) == {"d": "inline"}
    for method, path, change in (("PUT", "/api/v1/blob/x", {}), ("GET", "/api/v1/blob/y", {}),
                                 ("GET", "/api/v1/blob/x", {"d": "attachment"}),
                                 ("GET", "/api/v1/blob/x", {"e": str(int(q["e"]) + 3600)}),
                                 ("GET", "/api/v1/blob/x", {"extra": "1"})):
        with pytest.raises(SignatureError) as exc:
            signer.verify(method, path, {**q, **change}, now=1001)
        assert not exc.value.expired
    with pytest.raises(SignatureError) as exc:
        signer.verify("GET", "/api/v1/blob/x", q, now=1061)
    assert exc.value.expired
    with pytest.raises(SignatureError):
        signer.verify("GET", "/api/v1/blob/x", {}, now=1001)


def test_keys_rotate_old_urls_verify_until_their_key_is_dropped() -> None:
    old = UrlSigner({"k1": K1}, "k1")
    url = _q(old.sign("GET", "/p", 60, now=0))
    rotating = UrlSigner({"k1": K1, "k2": K2}, "k2")
    assert rotating.verify("GET", "/p", url, now=1) == {}
    assert _q(rotating.sign("GET", "/p", 60, now=0))["k"] == "k2"
    with pytest.raises(SignatureError):
        UrlSigner({"k2": K2}, "k2").verify("GET", "/p", url, now=1)


def test_sealed_references_are_opaque_and_authenticated() -> None:
    signer = UrlSigner({"k1": K1}, "k1")
    ref = signer.seal({"l": "link-id-123", "v": "version-456"})
    assert "link-id-123" not in ref and "version-456" not in ref
    assert signer.unseal(ref) == {"l": "link-id-123", "v": "version-456"}
    flipped = ref[:-2] + ("A" if ref[-2] != "A" else "B") + ref[-1]
    with pytest.raises(SignatureError):
        signer.unseal(flipped)
    with pytest.raises(SignatureError):
        UrlSigner({"k1": K2}, "k1").unseal(ref)


def test_the_default_key_comes_from_the_cluster_secret() -> None:
    cfg = parse_config({"cluster": {"secret": "s" * 20, "master_key": base64.b64encode(K1).decode()},
                        "gateway": {"listen": "127.0.0.1:1", "coordinator": "http://127.0.0.1:2"}})
    a = UrlSigner.from_settings(cfg.gateway, cfg.cluster.secret)
    b = UrlSigner.from_settings(cfg.gateway, cfg.cluster.secret)   # another gateway of the cluster
    assert a.current == DERIVED_KEY_ID
    assert b.verify("GET", "/p", _q(a.sign("GET", "/p", 60))) == {}
