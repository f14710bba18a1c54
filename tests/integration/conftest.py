"""End-to-end fixtures: a `shardbox up` per test module, on the backend this run tests."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import metadata_backend
from tests.integration.cluster import Cluster, start_cluster

_names = itertools.count()


def _database_url(request: pytest.FixtureRequest) -> str | None:
    if metadata_backend() == "postgres":
        pg = request.getfixturevalue("postgres")
        return pg.create_db(f"sbx_up_{os.getpid()}_{next(_names)}")
    return None


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A whole shardbox (coordinator, 14 nodes, gateway) shared by the tests of one module."""
    data = tmp_path_factory.mktemp("up") / "data"
    data.mkdir()
    c = start_cluster(data, database_url=_database_url(request))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def s3(cluster: Cluster):
    return cluster.s3()


@pytest.fixture
def bucket(s3) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name
