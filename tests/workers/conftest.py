"""Worker tests run against a real coordinator process (and, end to end, a `shardbox up`)."""

from tests.coordinator.conftest import (  # noqa: F401 - fixtures and the async-test hook
    coordinator,
    pytest_pyfunc_call,
    start_coordinator,
)
