"""Accounts through the real gateway: password login, cookies and CSRF, tokens, rate limits."""

from __future__ import annotations

import json
import subprocess
import sys
from http.cookies import SimpleCookie

from tests.integration.product.client import Api, request
from tests.integration.product.conftest import PASSWORD, Product


def _cookies(answer) -> dict[str, SimpleCookie]:
    jar = {}
    for header in answer.headers.getlist("Set-Cookie"):
        c = SimpleCookie()
        c.load(header)
        for name, morsel in c.items():
            jar[name] = morsel
    return jar


def test_wrong_password_and_unknown_user_get_the_same_answer(product: Product) -> None:
    name, _ = product.user(login=False)
    api = product.api()
    wrong = api.login(name, "not the password")
    unknown = api.login("no-such-user-anywhere", "whatever")
    assert (wrong.status, wrong.json) == (401, unknown.json)
    assert unknown.status == 401 and unknown.code == "InvalidCredentials"
    assert api.get("/api/v1/me").status == 401


def test_login_gives_a_bearer_token_and_a_strict_httponly_cookie(product: Product) -> None:
    name, api = product.user()
    me = api.get("/api/v1/me")
    assert me.status == 200 and me.json["user"]["name"] == name and me.json["auth"] == "bearer"

    login = request("POST", product.base + "/api/v1/auth/login",
                    json.dumps({"username": name, "password": PASSWORD}).encode(),
                    {"Content-Type": "application/json"})
    jar = _cookies(login)
    session, csrf = jar["sbx_session"], jar["sbx_csrf"]
    assert session["httponly"] and session["samesite"] == "Strict" and session["path"] == "/"
    assert not csrf["httponly"] and csrf["samesite"] == "Strict"
    assert csrf.value == login.json["csrf_token"] and session.value == login.json["token"]

    browser = Api(product.base, cookies={"sbx_session": session.value, "sbx_csrf": csrf.value})
    assert browser.get("/api/v1/me").json["auth"] == "cookie"
    # A write carried by the cookie alone (what a forged cross-site form sends) is refused ...
    forged = browser.post("/api/v1/tokens", {"name": "x"})
    assert (forged.status, forged.code) == (403, "CsrfFailed")
    wrong = browser.post("/api/v1/tokens", {"name": "x"}, headers={"X-CSRF-Token": "A" * 32})
    assert (wrong.status, wrong.code) == (403, "CsrfFailed")
    not_ascii = browser.post("/api/v1/tokens", {"name": "x"}, headers={"X-CSRF-Token": "\u00e9" * 32})
    assert (not_ascii.status, not_ascii.code) == (403, "CsrfFailed")     # compared as bytes, no crash
    other_site = browser.post("/api/v1/tokens", {"name": "x"},
                              headers={"X-CSRF-Token": csrf.value, "Origin": "https://evil.example"})
    assert (other_site.status, other_site.code) == (403, "CsrfFailed")
    # ... the page's own request, with the token from the readable cookie, goes through.
    ok = browser.post("/api/v1/tokens", {"name": "x"}, headers={"X-CSRF-Token": csrf.value})
    assert ok.status == 201

    out = browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf.value})
    assert out.status == 204
    assert browser.get("/api/v1/me").status == 401
    assert api.get("/api/v1/me").status == 200   # the other session lives on


def test_api_tokens_are_listed_without_secret_and_revoked_at_once(product: Product) -> None:
    _, api = product.user()
    made = api.post("/api/v1/tokens", {"name": "backup script", "expires_at": "2099-01-01T00:00:00Z"})
    assert made.status == 201 and made.json["token"].startswith("sbx_t_")
    assert made.json["expires_at"] == "2099-01-01T00:00:00Z"
    script = Api(product.base, made.json["token"])
    assert script.get("/api/v1/me").json["auth"] == "bearer"
    listed = api.get("/api/v1/tokens").json["tokens"]
    assert made.json["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed) and made.json["token"] not in json.dumps(listed)
    assert api.call("DELETE", f"/api/v1/tokens/{made.json['id']}").status == 204
    gone = script.get("/api/v1/me")
    assert (gone.status, gone.code) == (401, "Unauthorized")
    assert api.call("DELETE", f"/api/v1/tokens/{made.json['id']}").status == 404

    bad = api.post("/api/v1/tokens", {"name": "x", "expires_at": "yesterday"})
    assert (bad.status, bad.code) == (400, "InvalidArgument")


def test_tokens_are_stored_as_hashes_only(product: Product) -> None:
    _, api = product.user()
    token = api.post("/api/v1/tokens", {"name": "hashed"}).json["token"]
    rows = product.sql("SELECT * FROM auth_tokens")
    assert rows and not any(api.token in " ".join(map(str, r)) or token in " ".join(map(str, r))
                            for r in rows)


def test_login_is_rate_limited_per_user_and_address(product: Product) -> None:
    name, _ = product.user(login=False)
    api = product.api()
    answers = [api.login(name, "guess") for _ in range(5)]
    assert [a.status for a in answers] == [401] * 5
    throttled = api.login(name, PASSWORD)          # even the right password waits now
    assert (throttled.status, throttled.code) == (429, "TooManyRequests")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 900
    other, _ = product.user(login=False)           # another user from the same address is not held up
    assert api.login(other, PASSWORD).status == 200


def test_unknown_api_path_is_a_json_404(product: Product) -> None:
    a = product.api().get("/api/v1/no/such/thing")
    assert (a.status, a.code) == (404, "NotFound")
    assert product.api().get("/api/v1/info").json["chunk_size"] == 1 << 20


def test_admin_user_add_with_password(product: Product, tmp_path) -> None:
    cfg = product.cluster.root / "coordinator.toml"
    name = f"cli-{tmp_path.name[-8:]}".lower()
    done = subprocess.run([sys.executable, "-m", "shardbox", "admin", "--config", str(cfg), "user", "add",
                           name, "--tenant", "cli-tenant", "--password"],
                          input="s3cret-from-stdin\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "with a password" in done.stdout
    assert product.api().login(name, "s3cret-from-stdin").status == 200
    assert product.api().login(name, "wrong").status == 401
