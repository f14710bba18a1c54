"""Helpers shared by the test packages: ports, waiting, throwaway PostgreSQL."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PGBIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """One free port for a server a test starts (see free_port_block for where from)."""
    return free_port_block(1)


def free_port_block(n: int = 16) -> int:
    """A base port such that base..base+n-1 are all free on 127.0.0.1. Chosen below the
    kernel's ephemeral range (32768+): a port there can be taken as the local port of any
    outgoing connection between the choice and the server's bind."""
    for _ in range(200):
        base = random.randrange(10000, 32768 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of ports")


def free_ports(n: int) -> list[int]:
    """n distinct free ports for the processes of one cluster. Separate free_port() calls
    may return the same port twice (CI once gave two nodes of a cluster one port: the
    second died on bind while the first answered for it)."""
    base = free_port_block(n)
    return list(range(base, base + n))


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class ThrowawayPostgres:
    """A private PostgreSQL 15 cluster on 127.0.0.1, as ../shared/ci-services.md describes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sbx-pg-"))
        shutil.chown(self.root, "postgres")

    def _as_pg(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        data = str(self.root / "data")
        self._as_pg(str(PGBIN / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8", "--no-sync")
        self._as_pg(str(PGBIN / "pg_ctl"), "-D", data, "-l", str(self.root / "log"), "-w", "start", "-o",
                    f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                    "-c max_connections=300")

    def create_db(self, name: str) -> str:
        subprocess.run([str(PGBIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        name], check=True)
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._as_pg(str(PGBIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def postgres_available() -> bool:
    return (PGBIN / "initdb").exists() and os.geteuid() == 0


class ControlledClock:
    """The coordinator's clock as a test moves it (coordinator/clock.py): an offset in a file.

    In this process, `install(monkeypatch)` points coordinator.clock at the file; processes
    started with `env()` in their environment (a coordinator, `shardbox up`) read it too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        path.write_text("0")

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(self.offset))
        tmp.replace(self.path)

    def env(self) -> dict[str, str]:
        from coordinator.clock import TEST_CLOCK_ENV
        return {**os.environ, TEST_CLOCK_ENV: str(self.path)}

    def install(self, monkeypatch) -> ControlledClock:
        import coordinator.clock
        monkeypatch.setattr(coordinator.clock, "_offset_file", str(self.path))
        return self
