from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.node.nodeproc import NodeProcess


@pytest.fixture
def make_node(tmp_path) -> Iterator[Callable[..., NodeProcess]]:
    """Factory for started node processes; every one is stopped at the end of the test."""
    nodes: list[NodeProcess] = []

    def make(name: str = "node", **options) -> NodeProcess:
        node = NodeProcess(tmp_path / name, options)
        nodes.append(node)
        return node.start()

    yield make
    for node in nodes:
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait(10)


@pytest.fixture
def node(make_node) -> NodeProcess:
    return make_node()
