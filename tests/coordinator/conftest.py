"""Fixtures for the coordinator tests: async test functions, a Metadata on a fresh database,
and a real coordinator process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.util import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-cluster-secret-0123456789"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests in a fresh event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


class CoordinatorProcess:
    """A `shardbox coordinator` child process with its own config file."""

    def __init__(self, tmp: Path, database_url: str, **settings: object) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        lines = [
            "[cluster]",
            f'secret = "{SECRET}"',
            "",
            "[coordinator]",
            f'listen = "127.0.0.1:{self.port}"',
            f'database_url = "{database_url}"',
        ]
        lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in settings.items()]
        self.config = tmp / f"coordinator-{self.port}.toml"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = tmp / f"coordinator-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shardbox", "coordinator", "--config", str(self.config)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, timeout=120, proc=self.proc)  # generous: a busy machine starts slowly
        except Exception:
            self.stop()
            raise RuntimeError(f"coordinator did not start:\n{self.log.read_text()[-4000:]}") from None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def coordinator(database_url: str, tmp_path: Path) -> Iterator[CoordinatorProcess]:
    proc = CoordinatorProcess(tmp_path, database_url)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def start_coordinator(database_url: str, tmp_path: Path) -> Iterator:
    """Factory for a coordinator with custom [coordinator] settings."""
    procs: list[CoordinatorProcess] = []

    def start(**settings: object) -> CoordinatorProcess:
        proc = CoordinatorProcess(tmp_path, database_url, **settings)
        procs.append(proc)
        proc.start()
        return proc

    try:
        yield start
    finally:
        for p in procs:
            p.stop()
