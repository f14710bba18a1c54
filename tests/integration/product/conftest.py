"""One real cluster (coordinator, 14 nodes, gateway: each its own process) for every product
API test of a run, on the metadata backend this run tests, and helpers to make users."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from coordinator.clock import TEST_CLOCK_ENV
from coordinator.db import Database
from gateway.api.passwords import hash_password
from tests.conftest import metadata_backend
from tests.gateway.cluster import MiniCluster
from tests.integration.product.client import Api
from tests.util import ControlledClock

CHUNK = 1 << 20
PASSWORD = "correct horse battery staple"
_names = itertools.count()
_HASH: list[str] = []


@dataclass
class Product:
    cluster: MiniCluster
    clock: ControlledClock     # the coordinator's clock (tests move it and put it back)

    @property
    def base(self) -> str:
        return self.cluster.endpoint

    def sql(self, statement: str, **params: object) -> list[tuple]:
        """Rows of a query run straight on the cluster's metadata database (what is at rest), or
        a change made there (a state another issue's worker would set, e.g. a scan status)."""
        async def go() -> list[tuple]:
            db = Database(self.cluster.database_url)
            try:
                if statement.lstrip().upper().startswith("SELECT"):
                    return await db.read(lambda conn: _rows(conn, statement, params))
                await db.write(lambda conn: conn.execute(sa.text(statement), params))
                return []
            finally:
                await db.close()
        return asyncio.run(go())

    def api(self, token: str | None = None) -> Api:
        return Api(self.base, token)

    def user(self, tenant: str | None = None, *, quota_bytes: int | None = None,
             tenant_quota: int | None = None, login: bool = True) -> tuple[str, Api]:
        """A new user with PASSWORD (in a new tenant unless one is named), logged in."""
        n = next(_names)
        name = f"u{n}-{os.getpid()}"
        tenant = tenant or f"t{n}-{os.getpid()}"
        if not _HASH:
            _HASH.append(hash_password(PASSWORD))

        async def make(client) -> None:
            try:
                await client.create_tenant(tenant, tenant_quota)
            except Exception as exc:  # an existing tenant is fine
                if getattr(exc, "code", "") != "AlreadyExists":
                    raise
            await client.create_user(tenant, name)
            await client.set_password(name, _HASH[0])
            if quota_bytes is not None:
                await client.set_user_quota(name, quota_bytes)

        self.cluster.admin_call(make)
        api = self.api()
        if login:
            answer = api.login(name, PASSWORD)
            assert answer.status == 200, answer.body
        return name, api


async def _rows(conn, statement: str, params: dict) -> list[tuple]:
    return [tuple(r) for r in await conn.execute(sa.text(statement), params)]


def _database_url(request: pytest.FixtureRequest) -> str | None:
    if metadata_backend() == "postgres":
        return request.getfixturevalue("postgres").create_db(f"sbx_product_{os.getpid()}")
    return None


@pytest.fixture(scope="session")
def product(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    mc = MiniCluster(
        tmp_path_factory.mktemp("product-cluster"), chunk_size=CHUNK, database_url=_database_url(request),
        coordinator_settings={"login_attempts_per_user_address": 5, "login_attempts_per_address": 10000,
                              "link_password_attempts": 5},
        gateway_settings={"url_ttl_s": 60.0},
    )
    clock = ControlledClock(tmp_path_factory.mktemp("product-clock") / "offset")
    try:
        with pytest.MonkeyPatch.context() as mp:  # the coordinator process reads the clock file
            mp.setenv(TEST_CLOCK_ENV, str(clock.path))
            mc.start()
    except BaseException:
        mc.stop()
        for name in ("coordinator", "gateway"):
            print(f"--- {name} log ---\n{mc.log_tail(name)}")
        raise
    try:
        yield Product(mc, clock)
    finally:
        mc.stop()
