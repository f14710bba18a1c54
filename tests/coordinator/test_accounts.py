"""Product accounts on the metadata store: login attempt counting, tokens by hash, usage."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from coordinator.product_rules import ProductRules
from coordinator.records import CoordinatorError
from coordinator.schema import auth_tokens
from tests.coordinator.helpers import open_meta

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


def th(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _user(meta, name: str = "alice", tenant: str = "acme") -> dict:
    user = await meta.create_user(tenant, name)
    await meta.set_password(name, HASH)
    return user


async def test_login_attempts_are_counted_per_user_and_address(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        meta.rules = ProductRules(login_attempts_per_user_address=3, login_attempts_per_address=5)
        user = await _user(meta)
        for _ in range(3):
            c = await meta.login_begin("alice", "10.0.0.1")
            assert c.allowed and c.user_id == user["user_id"] and c.password_hash == HASH
        refused = await meta.login_begin("alice", "10.0.0.1")
        assert not refused.allowed and 0 < refused.retry_after_s <= 900
        assert refused.password_hash is None
        # The same user from another address, and another user from this one, go ahead.
        assert (await meta.login_begin("alice", "10.0.0.2")).allowed
        assert (await meta.login_begin("bob", "10.0.0.1")).allowed
        # ... until the address as a whole is full (3 + 1 refused-not-counted + 1 = 4 counted).
        assert (await meta.login_begin("carol", "10.0.0.1")).allowed
        assert not (await meta.login_begin("dave", "10.0.0.1")).allowed


async def test_a_success_clears_its_user_and_address_count(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        meta.rules = ProductRules(login_attempts_per_user_address=2, login_attempts_per_address=100)
        user = await _user(meta)
        await meta.login_begin("alice", "10.0.0.1")
        await meta.login_begin("alice", "10.0.0.1")
        assert not (await meta.login_begin("alice", "10.0.0.1")).allowed
        meta.rules = ProductRules(login_attempts_per_user_address=3, login_attempts_per_address=100)
        assert (await meta.login_begin("alice", "10.0.0.1")).allowed
        p = await meta.login_succeeded(user["user_id"], "alice", "10.0.0.1", th("t1"), 60)
        assert p.user_name == "alice" and p.tenant_name == "acme" and p.kind == "session"
        meta.rules = ProductRules(login_attempts_per_user_address=2, login_attempts_per_address=100)
        assert (await meta.login_begin("alice", "10.0.0.1")).allowed


async def test_unknown_user_answers_like_a_known_one(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        c = await meta.login_begin("nobody", "10.0.0.9")
        assert c.allowed and c.user_id is None and c.password_hash is None


async def test_tokens_are_found_by_hash_only_and_end_when_revoked_or_expired(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await _user(meta)
        bob = await _user(meta, "bob")
        info = await meta.create_api_token(alice["user_id"], th("sbx_t_secret"), "ci")
        p = await meta.authenticate(th("sbx_t_secret"))
        assert (p.user_name, p.kind, p.token_id) == ("alice", "api", info.id)

        async def stored(conn):
            return [tuple(r) for r in await conn.execute(sa.select(auth_tokens))]

        rows = await meta.db.read(stored)
        assert rows and all("sbx_t_secret" not in str(v) for row in rows for v in row)
        assert [t.id for t in await meta.list_tokens(alice["user_id"])] == [info.id]
        with pytest.raises(CoordinatorError) as exc:
            await meta.revoke_token(bob["user_id"], info.id)   # not bob's: same answer as unknown
        assert (exc.value.code, exc.value.status) == ("NotFound", 404)
        await meta.revoke_token(alice["user_id"], info.id)
        with pytest.raises(CoordinatorError) as exc:
            await meta.authenticate(th("sbx_t_secret"))
        assert (exc.value.code, exc.value.status) == ("Unauthorized", 401)

        await meta.login_succeeded(alice["user_id"], "alice", "a", th("old"), -1)
        with pytest.raises(CoordinatorError) as exc:
            await meta.authenticate(th("old"))
        assert exc.value.code == "Unauthorized"


async def test_a_new_password_ends_the_web_sessions(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await _user(meta)
        await meta.login_succeeded(alice["user_id"], "alice", "a", th("s1"), 60)
        await meta.create_api_token(alice["user_id"], th("api1"), "ci")
        await meta.set_password("alice", HASH)
        with pytest.raises(CoordinatorError):
            await meta.authenticate(th("s1"))
        assert (await meta.authenticate(th("api1"))).kind == "api"   # API tokens are revoked apart
        with pytest.raises(CoordinatorError) as exc:
            await meta.set_password("alice", "plaintext")
        assert exc.value.code == "InvalidArgument"


async def test_usage_shows_user_and_tenant_figures(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        await meta.create_tenant("acme", 1000)
        alice = await _user(meta)
        await meta.set_user_quota("alice", 400)
        usage = await meta.get_usage(alice["user_id"])
        assert (usage.user.quota_bytes, usage.user.used_bytes, usage.user.reserved_bytes) == (400, 0, 0)
        assert (usage.tenant.quota_bytes, usage.tenant.used_bytes) == (1000, 0)
