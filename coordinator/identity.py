"""Tenants, users and access keys (the admin API and the gateway's key lookup)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.base import QueryBase
from coordinator.db import fast_read
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.names import new_access_key, new_id
from coordinator.records import KeyInfo
from coordinator.schema import access_keys, tenants, users

_NAME_MAX = 128
_ak, _u = access_keys.c, users.c
# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
_KEYS = sa.select(_ak.access_key, _ak.secret_key, _u.user_id, _u.name, _u.tenant_id, _u.is_admin).select_from(
    access_keys.join(users, _ak.user_id == _u.user_id)
)
_GET_KEY = fast_read(_KEYS.where(_ak.access_key == sa.bindparam("ak"), _ak.active))
_FIRST_ADMIN_KEY = (
    _KEYS.where(_u.is_admin, _ak.active).order_by(_u.created_at, _ak.created_at, _ak.access_key).limit(1)
)


def _key_info(row: Any) -> KeyInfo:
    """A row of _KEYS as the record the API returns."""
    return KeyInfo(
        access_key=row.access_key,
        secret_key=row.secret_key,
        user_id=row.user_id,
        user_name=row.name,
        tenant_id=row.tenant_id,
        is_admin=bool(row.is_admin),
    )


def _check_name(kind: str, name: str) -> None:
    if not name or len(name) > _NAME_MAX or not name.isprintable() or name != name.strip():
        raise error(
            "InvalidArgument",
            f"{kind} name must be 1-{_NAME_MAX} printable characters "
            f"without surrounding spaces, got {name!r}",
        )


def _tenant_dict(row: Any) -> dict[str, Any]:
    return {
        "tenant_id": row.tenant_id,
        "name": row.name,
        "quota_bytes": row.quota_bytes,
        "used_bytes": row.used_bytes,
        "reserved_bytes": row.reserved_bytes,
        "created_at": row.created_at,
    }


class IdentityQueries(QueryBase):
    async def get_key(self, access_key: str) -> KeyInfo:
        async def q(conn: AsyncConnection) -> Any:
            return (await conn.execute(_GET_KEY, {"ak": access_key})).first()

        row = await self.db.read(q)
        if row is None:
            raise error("InvalidAccessKeyId", "the access key id does not exist in our records")
        return _key_info(row)

    async def _tenant_by_name(self, conn: AsyncConnection, name: str) -> Any:
        return (await conn.execute(sa.select(tenants).where(tenants.c.name == name))).first()

    async def _insert_tenant(self, conn: AsyncConnection, name: str, quota_bytes: int | None) -> Any:
        now = self.now()
        tenant_id = new_id()
        quota = self.default_quota_bytes if quota_bytes is None else quota_bytes
        await conn.execute(
            tenants.insert().values(
                tenant_id=tenant_id,
                name=name,
                quota_bytes=quota,
                used_bytes=0,
                reserved_bytes=0,
                created_at=now,
            )
        )
        await record_audit(
            conn, "admin", "tenant.create", name, {"tenant_id": tenant_id, "quota_bytes": quota}
        )
        return await self._tenant_by_name(conn, name)

    async def create_tenant(self, name: str, quota_bytes: int | None = None) -> dict[str, Any]:
        """Create a tenant; AlreadyExists (409) if the name is taken."""
        _check_name("tenant", name)
        if quota_bytes is not None and quota_bytes < 0:
            raise error("InvalidArgument", "quota_bytes must not be negative")

        async def tx(conn: AsyncConnection) -> dict[str, Any]:
            if await self._tenant_by_name(conn, name) is not None:
                raise error("AlreadyExists", f"tenant {name!r} already exists")
            try:
                return _tenant_dict(await self._insert_tenant(conn, name, quota_bytes))
            except sa.exc.IntegrityError:
                raise error("AlreadyExists", f"tenant {name!r} already exists") from None

        return await self.db.write(tx)

    async def set_quota(self, tenant_name: str, quota_bytes: int) -> dict[str, Any]:
        if quota_bytes < 0:
            raise error("InvalidArgument", "quota_bytes must not be negative")

        async def tx(conn: AsyncConnection) -> dict[str, Any]:
            result = await conn.execute(
                sa.update(tenants).where(tenants.c.name == tenant_name).values(quota_bytes=quota_bytes)
            )
            if result.rowcount == 0:
                raise error("NoSuchTenant", f"tenant {tenant_name!r} does not exist")
            await record_audit(conn, "admin", "tenant.quota", tenant_name, {"quota_bytes": quota_bytes})
            return _tenant_dict(await self._tenant_by_name(conn, tenant_name))

        return await self.db.write(tx)

    async def get_tenant(self, tenant_name: str) -> dict[str, Any]:
        row = await self.db.read(lambda conn: self._tenant_by_name(conn, tenant_name))
        if row is None:
            raise error("NoSuchTenant", f"tenant {tenant_name!r} does not exist")
        return _tenant_dict(row)

    async def _insert_user(
        self, conn: AsyncConnection, tenant_name: str, user_name: str, is_admin: bool
    ) -> dict[str, Any]:
        tenant = await self._tenant_by_name(conn, tenant_name)
        if tenant is None:
            tenant = await self._insert_tenant(conn, tenant_name, None)
        exists = (await conn.execute(sa.select(users.c.user_id).where(users.c.name == user_name))).first()
        if exists is not None:
            raise error("AlreadyExists", f"user {user_name!r} already exists")
        user_id = new_id()
        try:
            await conn.execute(
                users.insert().values(
                    user_id=user_id,
                    tenant_id=tenant.tenant_id,
                    name=user_name,
                    is_admin=is_admin,
                    created_at=self.now(),
                )
            )
        except sa.exc.IntegrityError:
            raise error("AlreadyExists", f"user {user_name!r} already exists") from None
        await record_audit(
            conn,
            "admin",
            "user.create",
            user_name,
            {"user_id": user_id, "tenant": tenant_name, "is_admin": is_admin},
        )
        return {
            "user_id": user_id,
            "name": user_name,
            "tenant_id": tenant.tenant_id,
            "tenant_name": tenant_name,
            "is_admin": is_admin,
        }

    async def create_user(self, tenant_name: str, user_name: str, is_admin: bool = False) -> dict[str, Any]:
        """Create a user in a tenant (the tenant is created with the default quota if missing)."""
        _check_name("tenant", tenant_name)
        _check_name("user", user_name)
        return await self.db.write(lambda conn: self._insert_user(conn, tenant_name, user_name, is_admin))

    async def _insert_key(self, conn: AsyncConnection, user_name: str) -> KeyInfo:
        user = (await conn.execute(sa.select(users).where(users.c.name == user_name))).first()
        if user is None:
            raise error("NoSuchUser", f"user {user_name!r} does not exist")
        access, secret = new_access_key()
        await conn.execute(
            access_keys.insert().values(
                access_key=access, secret_key=secret, user_id=user.user_id, active=True, created_at=self.now()
            )
        )
        await record_audit(conn, "admin", "key.create", user_name, {"access_key": access})
        return KeyInfo(
            access_key=access,
            secret_key=secret,
            user_id=user.user_id,
            user_name=user.name,
            tenant_id=user.tenant_id,
            is_admin=bool(user.is_admin),
        )

    async def create_key(self, user_name: str) -> KeyInfo:
        return await self.db.write(lambda conn: self._insert_key(conn, user_name))

    async def list_users(self) -> list[dict[str, Any]]:
        u, t, ak = users.c, tenants.c, access_keys.c

        async def q(conn: AsyncConnection) -> list[dict[str, Any]]:
            rows = (
                await conn.execute(
                    sa.select(
                        u.user_id, u.name, u.is_admin, u.created_at, t.tenant_id, t.name.label("tenant_name")
                    )
                    .select_from(users.join(tenants, u.tenant_id == t.tenant_id))
                    .order_by(u.name)
                )
            ).all()
            keys = (
                await conn.execute(
                    sa.select(ak.user_id, ak.access_key)
                    .where(ak.active)
                    .order_by(ak.created_at, ak.access_key)
                )
            ).all()
            by_user: dict[str, list[str]] = {}
            for k in keys:
                by_user.setdefault(k.user_id, []).append(k.access_key)
            return [
                {
                    "user_id": r.user_id,
                    "name": r.name,
                    "is_admin": bool(r.is_admin),
                    "tenant_id": r.tenant_id,
                    "tenant_name": r.tenant_name,
                    "created_at": r.created_at,
                    "access_keys": by_user.get(r.user_id, []),
                }
                for r in rows
            ]

        return await self.db.read(q)

    async def ensure_admin(self) -> KeyInfo:
        """First run: tenant "default", user "admin" (is_admin) and a key; later runs: that key again."""

        async def tx(conn: AsyncConnection) -> KeyInfo:
            row = (await conn.execute(_FIRST_ADMIN_KEY)).first()
            if row is not None:
                return _key_info(row)
            admin = (
                await conn.execute(sa.select(users).where(_u.is_admin).order_by(_u.created_at).limit(1))
            ).first()
            if admin is None:
                await self._insert_user(conn, "default", "admin", True)
                user_name = "admin"
            else:
                user_name = admin.name
            return await self._insert_key(conn, user_name)

        return await self.db.write(tx)
