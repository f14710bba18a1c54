"""Fixtures for the user client's end-to-end tests: a `shardbox up` per module, and one
config directory per simulated user or machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.client.helpers import Cli
from tests.integration.conftest import cluster  # noqa: F401  (one `shardbox up` per module)


@pytest.fixture
def make_cli(tmp_path: Path) -> Callable[[str], Cli]:
    def make(name: str) -> Cli:
        home = tmp_path / name
        (home / "work").mkdir(parents=True, exist_ok=True)
        return Cli(home / "config", home / "work")
    return make
