"""Tenant quota: reservations and settlement, each one conditional UPDATE.

`used_bytes` counts the logical size of a tenant's live objects (dedup does not discount
it); `reserved_bytes` counts bytes of uploads in flight. A reservation succeeds only if
used + reserved + n stays within quota, decided by the database in one statement, so
concurrent uploads can never overshoot.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator.errors import error
from coordinator.schema import tenants

_t = tenants.c


async def _fail(conn: AsyncConnection, tenant_id: str, n: int) -> None:
    row = (
        await conn.execute(
            sa.select(_t.quota_bytes, _t.used_bytes, _t.reserved_bytes).where(_t.tenant_id == tenant_id)
        )
    ).first()
    if row is None:
        raise error("InvalidArgument", f"unknown tenant {tenant_id!r}")
    raise error(
        "QuotaExceeded",
        f"storing {n} more bytes would exceed the quota of {row.quota_bytes} bytes "
        f"({row.used_bytes} used, {row.reserved_bytes} reserved)",
    )


_ADJUST = (
    sa.update(tenants)
    .where(_t.tenant_id == sa.bindparam("tid"))
    .values(
        reserved_bytes=_t.reserved_bytes + sa.bindparam("reserved", type_=sa.BigInteger),
        used_bytes=_t.used_bytes + sa.bindparam("used", type_=sa.BigInteger),
    )
)
# Built once; the condition is the quota check, decided by the database in the same statement.
_GROW = _ADJUST.where(
    _t.used_bytes + _t.reserved_bytes + sa.bindparam("growth", type_=sa.BigInteger) <= _t.quota_bytes
)


async def adjust(conn: AsyncConnection, tenant_id: str, reserved_delta: int = 0, used_delta: int = 0) -> None:
    """Apply both deltas at once; if the total grows, it must still fit the quota."""
    growth = reserved_delta + used_delta
    params = {"tid": tenant_id, "reserved": reserved_delta, "used": used_delta}
    if growth > 0:
        result = await conn.execute(_GROW, {**params, "growth": growth})
    else:
        result = await conn.execute(_ADJUST, params)
    if result.rowcount == 0:
        await _fail(conn, tenant_id, growth)


async def reserve(conn: AsyncConnection, tenant_id: str, n: int) -> None:
    await adjust(conn, tenant_id, reserved_delta=n)
