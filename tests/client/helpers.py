"""Running the `shardbox` user commands as subprocesses, and making users with passwords."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.integration.cluster import Cluster


@dataclass
class Cli:
    """`shardbox ...` as a subprocess with its own config directory (one user, one machine)."""

    config_dir: Path
    cwd: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SHARDBOX_CONFIG_DIR": str(self.config_dir), "COLUMNS": "120"}

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "shardbox", *args], input=stdin, text=True,
                              capture_output=True, env=self.env(), cwd=self.cwd, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"shardbox {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n"
                                 f"{proc.stderr}")
        return proc

    def json(self, *args: str, stdin: str | None = None) -> dict:
        return json.loads(self.run(*args, "--json", stdin=stdin).stdout)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "shardbox", *args], env=self.env(), cwd=self.cwd,
                                **kwargs)


def add_user(up: Cluster, name: str, password: str, tenant: str = "acme") -> None:
    subprocess.run([sys.executable, "-m", "shardbox", "admin", "--data", str(up.data_dir), "user", "add",
                    name, "--tenant", tenant, "--password"], input=password + "\n", text=True, check=True,
                   capture_output=True, timeout=120)

