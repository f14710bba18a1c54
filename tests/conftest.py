"""Fixtures every test package may use.

`SHARDBOX_TEST_DB` picks the metadata store for tests that take `database_url`:
`sqlite` (default) or `postgres` (a throwaway PostgreSQL 15 cluster started here).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.util import ThrowawayPostgres, postgres_available

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    if not postgres_available():
        pytest.fail("PostgreSQL 15 server binaries are not installed (run scripts/setup.sh as root)")
    pg = ThrowawayPostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def metadata_backend() -> str:
    backend = os.environ.get("SHARDBOX_TEST_DB", "sqlite")
    if backend not in ("sqlite", "postgres"):
        raise pytest.UsageError(f"SHARDBOX_TEST_DB must be sqlite or postgres, not {backend!r}")
    return backend


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty metadata database on the backend this run tests."""
    if metadata_backend() == "postgres":
        pg = request.getfixturevalue("postgres")
        return pg.create_db(f"sbx_{os.getpid()}_{next(_db_counter)}")
    return f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
