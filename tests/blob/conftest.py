"""A module-wide cluster of 14 real node processes for the data path tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.blob.cluster import NodeCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    c = NodeCluster(tmp_path_factory.mktemp("nodes"))
    try:
        c.start()   # inside: nodes started before one fails to come up are stopped too
        yield c
    finally:
        c.stop()


@pytest.fixture
def healthy(cluster: NodeCluster) -> Iterator[NodeCluster]:
    """The cluster with all 14 nodes up before and after the test (restarts killed ones)."""
    cluster.resume(cluster.running())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.resume(cluster.running())
        cluster.start()
