"""Product accounts: password logins, bearer tokens (sessions and API tokens), quota figures.

Secrets never reach this module in the clear: the gateway hashes a password with argon2id
(gateway/api/passwords.py) and a token with SHA-256 before calling, and verifies a password
against the stored hash itself, so the memory-hard work runs on the (many, stateless)
gateways, not here. What this module owns is state: who a token stands for and until when,
and how many login attempts a user name and a client address have had lately
(coordinator/ratelimit.py), counted in the same database by every gateway.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import ratelimit
from coordinator.base import QueryBase
from coordinator.db import fast_read
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.names import new_id
from coordinator.product_records import LoginCandidate, Principal, QuotaFigures, TokenInfo, Usage
from coordinator.product_rules import ProductRules
from coordinator.schema import auth_tokens, tenants, users

_at, _u, _t = auth_tokens.c, users.c, tenants.c
_HASH = re.compile(r"^[0-9a-f]{64}$")
KINDS = ("session", "api")
MAX_TOKEN_NAME = 200
MAX_TOKENS_PER_USER = 1000   # sessions and API tokens together; the oldest sessions make room

_PRINCIPAL = fast_read(
    sa.select(
        _at.token_id, _at.kind, _at.expires_at, _u.user_id, _u.name, _u.is_admin, _t.tenant_id,
        _t.name.label("tenant_name"),
    )
    .select_from(
        auth_tokens.join(users, _u.user_id == _at.user_id).join(tenants, _t.tenant_id == _u.tenant_id)
    )
    .where(_at.token_hash == sa.bindparam("h"))
)
_USER_BY_NAME = sa.select(_u.user_id, _u.password_hash).where(_u.name == sa.bindparam("n"))

MAX_SESSION_TTL_S = 366 * 86400.0


def check_token_hash(token_hash: str) -> None:
    if not _HASH.match(token_hash):
        raise error("InvalidArgument", "token_hash must be 64 lowercase hex digits")


def _token_info(row: Any) -> TokenInfo:
    return TokenInfo(id=row.token_id, name=row.name, kind=row.kind, created_at=row.created_at,
                     expires_at=row.expires_at)


def _principal(row: Any) -> Principal:
    return Principal(
        user_id=row.user_id, user_name=row.name, tenant_id=row.tenant_id, tenant_name=row.tenant_name,
        token_id=row.token_id, kind=row.kind, is_admin=bool(row.is_admin), expires_at=row.expires_at,
    )


def pair_key(user_name: str, client_addr: str) -> str:
    return f"p:{user_name}|{client_addr}"


def address_key(client_addr: str) -> str:
    return f"a:{client_addr}"


class AccountQueries(QueryBase):
    rules: ProductRules = ProductRules()

    # ---- logins ------------------------------------------------------------------------------

    async def login_begin(self, user_name: str, client_addr: str) -> LoginCandidate:
        rules = self.rules
        limits = [
            (pair_key(user_name, client_addr), rules.login_attempts_per_user_address),
            (address_key(client_addr), rules.login_attempts_per_address),
        ]

        async def tx(conn: AsyncConnection) -> LoginCandidate:
            wait = await ratelimit.take(self.db, conn, limits, rules.login_window_s, self.now())
            if wait > 0:
                await record_audit(conn, user_name, "login.throttled", user_name, {"retry_after_s": wait})
                return LoginCandidate(allowed=False, retry_after_s=wait)
            row = (await conn.execute(_USER_BY_NAME, {"n": user_name})).first()
            if row is None:
                return LoginCandidate(allowed=True)
            return LoginCandidate(allowed=True, user_id=row.user_id, password_hash=row.password_hash)

        return await self.db.write(tx)

    async def login_succeeded(
        self, user_id: str, user_name: str, client_addr: str, token_hash: str, ttl_s: float
    ) -> Principal:
        check_token_hash(token_hash)
        if not ttl_s <= MAX_SESSION_TTL_S:
            raise error("InvalidArgument", f"a session lasts at most {MAX_SESSION_TTL_S:.0f} s")

        async def tx(conn: AsyncConnection) -> Principal:
            expires_at = self.now() + ttl_s
            await ratelimit.forget(conn, pair_key(user_name, client_addr))
            await ratelimit.give_back(self.db, conn, address_key(client_addr))
            info = await self._insert_token(conn, user_id, token_hash, "session", "web session",
                                            expires_at, client_addr)
            await record_audit(conn, user_id, "login", user_name, {"token_id": info.id})
            return _principal((await conn.execute(_PRINCIPAL, {"h": token_hash})).first())

        return await self.db.write(tx)

    async def login_failed(self, user_name: str, client_addr: str) -> None:
        """The attempt was counted by login_begin already; this only leaves the audit row."""
        await self.db.write(lambda conn: record_audit(conn, user_name, "login.failed", user_name, {}))

    # ---- tokens ------------------------------------------------------------------------------

    async def _insert_token(
        self, conn: AsyncConnection, user_id: str, token_hash: str, kind: str, name: str,
        expires_at: float | None, client_addr: str | None,
    ) -> TokenInfo:
        now = self.now()
        count = (await conn.execute(
            sa.select(sa.func.count()).select_from(auth_tokens).where(_at.user_id == user_id))).scalar()
        if count >= MAX_TOKENS_PER_USER:
            # Make room by dropping the user's expired tokens, then the oldest sessions.
            await conn.execute(sa.delete(auth_tokens).where(
                _at.user_id == user_id, _at.expires_at.is_not(None), _at.expires_at <= now))
            oldest = sa.select(_at.token_hash).where(_at.user_id == user_id, _at.kind == "session") \
                .order_by(_at.created_at).limit(max(1, count - MAX_TOKENS_PER_USER + 1))
            await conn.execute(sa.delete(auth_tokens).where(_at.token_hash.in_(oldest.scalar_subquery())))
        values = {
            "token_hash": token_hash, "token_id": new_id(), "user_id": user_id, "kind": kind,
            "name": name, "created_at": now, "expires_at": expires_at, "client_addr": client_addr,
        }
        try:
            await conn.execute(auth_tokens.insert(), values)
        except sa.exc.IntegrityError:
            raise error("InvalidArgument", "the user does not exist or the token is already in use") from None
        return TokenInfo(id=values["token_id"], name=name, kind=kind, created_at=now, expires_at=expires_at)

    async def create_api_token(
        self, user_id: str, token_hash: str, name: str, expires_at: float | None = None
    ) -> TokenInfo:
        check_token_hash(token_hash)
        if not name or len(name) > MAX_TOKEN_NAME or not name.isprintable():
            raise error("InvalidArgument", f"a token name is 1-{MAX_TOKEN_NAME} printable characters")
        if expires_at is not None and expires_at <= self.now():
            raise error("InvalidArgument", "expires_at must lie in the future")

        async def tx(conn: AsyncConnection) -> TokenInfo:
            info = await self._insert_token(conn, user_id, token_hash, "api", name, expires_at, None)
            await record_audit(conn, user_id, "token.create", info.id,
                               {"name": name, "expires_at": expires_at})
            return info

        return await self.db.write(tx)

    async def authenticate(self, token_hash: str) -> Principal:
        check_token_hash(token_hash)
        row = await self.db.read(lambda conn: _first(conn, _PRINCIPAL, {"h": token_hash}))
        if row is None or (row.expires_at is not None and row.expires_at <= self.now()):
            raise error("Unauthorized", "the token is unknown, expired or revoked; log in again")
        return _principal(row)

    async def list_tokens(self, user_id: str) -> list[TokenInfo]:
        now = self.now()

        async def q(conn: AsyncConnection) -> list[TokenInfo]:
            rows = await conn.execute(
                sa.select(auth_tokens)
                .where(_at.user_id == user_id, sa.or_(_at.expires_at.is_(None), _at.expires_at > now))
                .order_by(_at.created_at, _at.token_id)
            )
            return [_token_info(r) for r in rows]

        return await self.db.read(q)

    async def revoke_token(self, user_id: str, token_id: str) -> None:
        """Logout (the session's own id) or revoking an API token. NotFound (404) if the user
        has no such token: another user's token id answers the same."""

        async def tx(conn: AsyncConnection) -> None:
            result = await conn.execute(
                sa.delete(auth_tokens).where(_at.token_id == token_id, _at.user_id == user_id))
            if result.rowcount == 0:
                raise error("NotFound", "no such token")
            await record_audit(conn, user_id, "token.revoke", token_id, {})

        await self.db.write(tx)

    # ---- users (admin) -----------------------------------------------------------------------

    async def set_password(self, user_name: str, password_hash: str | None) -> None:
        """Set (or, with None, remove) a user's password; the user's sessions end with it."""
        if password_hash is not None and not password_hash.startswith("$argon2id$"):
            raise error("InvalidArgument", "password_hash must be an argon2id PHC string")

        async def tx(conn: AsyncConnection) -> None:
            row = (await conn.execute(sa.select(_u.user_id).where(_u.name == user_name))).first()
            if row is None:
                raise error("NoSuchUser", f"user {user_name!r} does not exist")
            await conn.execute(sa.update(users).where(_u.user_id == row.user_id)
                               .values(password_hash=password_hash))
            await conn.execute(
                sa.delete(auth_tokens).where(_at.user_id == row.user_id, _at.kind == "session"))
            await record_audit(conn, "admin", "user.password", user_name, {"set": password_hash is not None})

        await self.db.write(tx)

    async def set_user_quota(self, user_name: str, quota_bytes: int | None) -> dict[str, Any]:
        if quota_bytes is not None and quota_bytes < 0:
            raise error("InvalidArgument", "quota_bytes must not be negative")

        async def tx(conn: AsyncConnection) -> dict[str, Any]:
            result = await conn.execute(
                sa.update(users).where(_u.name == user_name).values(quota_bytes=quota_bytes))
            if result.rowcount == 0:
                raise error("NoSuchUser", f"user {user_name!r} does not exist")
            await record_audit(conn, "admin", "user.quota", user_name, {"quota_bytes": quota_bytes})
            row = (await conn.execute(sa.select(users).where(_u.name == user_name))).one()
            return {"name": user_name, "quota_bytes": row.quota_bytes, "used_bytes": row.used_bytes,
                    "reserved_bytes": row.reserved_bytes}

        return await self.db.write(tx)

    # ---- usage -------------------------------------------------------------------------------

    async def get_usage(self, user_id: str) -> Usage:
        async def q(conn: AsyncConnection) -> Usage:
            row = (await conn.execute(
                sa.select(_u.quota_bytes, _u.used_bytes, _u.reserved_bytes,
                          _t.quota_bytes.label("t_quota"), _t.used_bytes.label("t_used"),
                          _t.reserved_bytes.label("t_reserved"))
                .select_from(users.join(tenants, _t.tenant_id == _u.tenant_id))
                .where(_u.user_id == user_id))).first()
            if row is None:
                raise error("NoSuchUser", "the user does not exist")
            return Usage(
                user=QuotaFigures(row.quota_bytes, row.used_bytes, row.reserved_bytes),
                tenant=QuotaFigures(row.t_quota, row.t_used, row.t_reserved),
            )

        return await self.db.read(q)


async def _first(conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> Any:
    return (await conn.execute(stmt, params)).first()
